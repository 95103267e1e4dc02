/*
 * exec_cpu.c: the host state shared by the ref and onednn executors
 * (exec_cpu.h).
 */
#include "exec_cpu.h"

#include "check.h"
#include "rng.h"

#include <stdlib.h>
#include <string.h>

static float *s_zeros(size_t n)
{
    float *p = nf_xaligned((n ? n : 1) * sizeof(float));
    memset(p, 0, (n ? n : 1) * sizeof(float));
    return p;
}

void exec_cpu_state_init(exec_cpu_state_t *s, const xresnet_t *net)
{
    memset(s, 0, sizeof(*s));
    s->net = net;
    size_t np = net->n_param_floats, nb = net->n_bn_floats;
    s->n_floats = np;
    s->params = s_zeros(np);
    s->grads = s_zeros(np);
    s->adam_m = s_zeros(np);
    s->adam_v = s_zeros(np);
    s->do_wd = nf_xcalloc(np ? np : 1, 1);
    for (int t = 0; t < net->n_params; t++) {
        const xresnet_param_t *p = &net->params[t];
        if (p->do_wd) memset(s->do_wd + p->offset, 1, p->numel);
    }
    s->run_mean = s_zeros(nb);
    s->run_var = s_zeros(nb);
    for (size_t i = 0; i < nb; i++) s->run_var[i] = 1.0f;
}

void exec_cpu_state_free(exec_cpu_state_t *s)
{
    free(s->params);
    free(s->grads);
    free(s->adam_m);
    free(s->adam_v);
    free(s->do_wd);
    free(s->run_mean);
    free(s->run_var);
    memset(s, 0, sizeof(*s));
}

void exec_cpu_state_write(exec_cpu_state_t *s, const exec_state_t *host)
{
    NF_CHECK(s->n_floats == s->net->n_param_floats, "state is not in xresnet.h's layout");
    size_t np = s->net->n_param_floats * sizeof(float), nb = s->net->n_bn_floats * sizeof(float);
    if (host->params) memcpy(s->params, host->params, np);
    if (host->adam_m) memcpy(s->adam_m, host->adam_m, np);
    if (host->adam_v) memcpy(s->adam_v, host->adam_v, np);
    if (host->run_mean) memcpy(s->run_mean, host->run_mean, nb);
    if (host->run_var) memcpy(s->run_var, host->run_var, nb);
}

void exec_cpu_state_read(const exec_cpu_state_t *s, const exec_state_t *host)
{
    NF_CHECK(s->n_floats == s->net->n_param_floats, "state is not in xresnet.h's layout");
    size_t np = s->net->n_param_floats * sizeof(float), nb = s->net->n_bn_floats * sizeof(float);
    if (host->params) memcpy(host->params, s->params, np);
    if (host->adam_m) memcpy(host->adam_m, s->adam_m, np);
    if (host->adam_v) memcpy(host->adam_v, s->adam_v, np);
    if (host->run_mean) memcpy(host->run_mean, s->run_mean, nb);
    if (host->run_var) memcpy(host->run_var, s->run_var, nb);
}

void exec_cpu_adam_step(exec_cpu_state_t *s, const adam_params_t *hp)
{
    adam_params_t p = *hp;
    p.count = s->n_floats;
    adam_step_cpu(s->params, s->adam_m, s->adam_v, NULL, s->grads, s->do_wd, &p);
}

void exec_cpu_adam_reset(exec_cpu_state_t *s)
{
    size_t np = s->n_floats * sizeof(float);
    memset(s->adam_m, 0, np);
    memset(s->adam_v, 0, np);
}

void exec_cpu_bn_running_update(float *run_mean, float *run_var, const float *mean,
                                const float *var_b, int c, double m)
{
    const double mom = 0.1;
    const double unbias = m > 1.0 ? m / (m - 1.0) : 1.0;
    for (int i = 0; i < c; i++) {
        run_mean[i] = (float)((1.0 - mom) * run_mean[i] + mom * mean[i]);
        run_var[i] = (float)((1.0 - mom) * run_var[i] + mom * ((double)var_b[i] * unbias));
    }
}

void exec_cpu_dropout_mask(float *mask, size_t count, float p, uint64_t seed, uint64_t index)
{
    if (p <= 0.0f) {
        for (size_t i = 0; i < count; i++) mask[i] = 1.0f;
        return;
    }
    const float keep = 1.0f / (1.0f - p);
    nf_rng_t r = nf_rng_make(seed, NF_RNG_STREAM_DROPOUT, (uint32_t)(index >> 32), (uint32_t)index);
    for (size_t i = 0; i < count; i++) mask[i] = nf_rng_uniform(&r) < p ? 0.0f : keep;
}
