/*
 * test_step_golden.c: two full xresnet18 training steps through the learner
 * against fastai (fixtures/trainer/step_xresnet18.safetensors, written by
 * tests/reference/gen_step.py; the fixture scheme is explained there and in
 * docs/trainer.md), on every CPU executor: ref, onednn with direct
 * convolutions, onednn with Winograd.
 *
 * Weights and batches come from the formula both sides share; step 1 is
 * cross-entropy at bs 4, 40 px; step 2 label smoothing + Mixup at bs 6,
 * 32 px (a re-plan). Asserted per step: logits, loss, per-tensor gradient
 * norms and sampled gradient elements (every tensor, so a single wrong layer
 * fails), per-tensor update norms and sampled updated weights (fastai Adam
 * with wd only on conv/linear weights), and after step 1 every BN running
 * statistic.
 *
 * Tolerances come from ONE table (s_tols, by tensor category, with a column
 * for the exact backends and one for Winograd); rows for the individual
 * fixture tensors are generated from it, scaled by each tensor's RMS where
 * the category says so.
 */
#include "fixture.h"
#include "learner.h"
#include "testlib.h"
#include "xresnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    CAT_LOGITS,       // atol = tol * max |logit|
    CAT_LOSS,         // rtol
    CAT_GRAD,         // atol = tol * RMS of the whole gradient tensor
    CAT_GRAD_NORM,    // rtol on the L2 norm of each gradient tensor
    CAT_UPDATE_NORM,  // rtol on the L2 norm of each tensor's update
                      // (the updated weights themselves: within 2 lr, see s_run)
    CAT_RUNNING,      // atol = tol * max |running stat|
    CAT_COUNT
} s_cat_t;

// The one tolerance table: [category] = {exact backends (ref, onednn
// direct), onednn Winograd}. PyTorch sums in its own orders, so even the
// exact backends differ from it by fp32 rounding; BN's backward amplifies
// it in the small-batch gradients. Winograd adds its transform's rounding.
static const struct {
    const char *what;
    double tol[2];
} s_tols[CAT_COUNT] = {
    [CAT_LOGITS] = {"logits", {5e-5, 2e-4}},
    [CAT_LOSS] = {"loss", {2e-5, 5e-5}},
    [CAT_GRAD] = {"gradient samples", {2e-3, 3e-2}},
    [CAT_GRAD_NORM] = {"gradient norms", {2e-4, 5e-3}},
    [CAT_UPDATE_NORM] = {"update norms", {2e-4, 5e-3}},
    [CAT_RUNNING] = {"running stats", {1e-5, 1e-5}},
};

typedef struct {
    const char *name;
    exec_kind_t kind;
    bool winograd;
} s_backend_t;

static double s_worst[CAT_COUNT];

static float *s_pattern_batch(int t, int n, int h, int w)
{
    size_t count = (size_t)n * h * w * 3;
    float *x = nf_xmalloc(count * sizeof(float));
    for (size_t e = 0; e < count; e++)
        x[e] = 2.0f * xresnet_pattern_u((uint32_t)t, (uint32_t)e) - 1.0f;
    return x;
}

static size_t s_sample_idx(int t, size_t numel, size_t k, size_t n_samples)
{
    if (numel <= n_samples) return k;
    return (size_t)floor((double)xresnet_pattern_u((uint32_t)t + 20000u, (uint32_t)k) *
                         (double)numel);
}

// Compares with a tolerance row built from the table: |got - want| <=
// tol * scale (scale from the caller: a max or an RMS), relative 0.
static void s_expect(fixture_t *f, const char *name, const float *got, size_t n, s_cat_t cat,
                     int col, double scale)
{
    double tol = s_tols[cat].tol[col];
    fixture_tol_t row = {name, tol * scale, 0.0};
    const float *want = fixture_f32(f, name, n);
    if (want) {
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            double d = fabs((double)got[i] - want[i]) / (scale > 0 ? scale : 1);
            if (!(d <= worst)) worst = d;
        }
        if (worst > s_worst[cat]) s_worst[cat] = worst;
    }
    fixture_expect(f, &row, 1, name, got, n);
}

static double s_max_abs(const float *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(v[i]) > m) m = fabs(v[i]);
    return m;
}

static void s_run(fixture_t *f, const s_backend_t *b)
{
    int col = b->winograd ? 1 : 0;
    learner_config_t cfg = learner_default_config("xresnet18", 10);
    cfg.backend = b->kind;
    cfg.winograd = b->winograd;
    learner_t *l = learner_new(&cfg);
    NF_CHECK(l, "learner %s", b->name);
    const xresnet_t *net = learner_net(l);
    size_t np = net->n_param_floats, nb = net->n_bn_floats;
    float *w0 = nf_xmalloc(np * sizeof(float)), *w1 = nf_xmalloc(np * sizeof(float));
    float *g = nf_xmalloc(np * sizeof(float));
    float *rm = nf_xmalloc(nb * sizeof(float)), *rv = nf_xmalloc(nb * sizeof(float));
    float *zeros = nf_xcalloc(np, sizeof(float));
    xresnet_init_pattern(net, w0, rm, rv);
    exec_state_t st = {w0, rm, rv, zeros, zeros};
    learner_state_write(l, &st);
    learner_reset_opt(l);
    size_t n_samples = (size_t)fixture_meta_int(f, "samples");
    size_t max_numel = 0;
    for (int t = 0; t < net->n_params; t++)
        if (net->params[t].numel > max_numel) max_numel = net->params[t].numel;
    float *torch_buf = nf_xmalloc(max_numel * sizeof(float));
    float *torch_w0 = nf_xmalloc(max_numel * sizeof(float));
    float *sample = nf_xmalloc(n_samples * sizeof(float));
    float *gnorm = nf_xmalloc((size_t)net->n_params * sizeof(float));
    float *unorm = nf_xmalloc((size_t)net->n_params * sizeof(float));

    for (int s = 1; s <= 2; s++) {
        char key[96];
        snprintf(key, sizeof(key), "s%d.bs", s);
        int bs = (int)fixture_meta_int(f, key);
        snprintf(key, sizeof(key), "s%d.size", s);
        int size = (int)fixture_meta_int(f, key);
        snprintf(key, sizeof(key), "s%d.lr", s);
        double lr = fixture_meta_double(f, key);
        snprintf(key, sizeof(key), "s%d.mom", s);
        double mom = fixture_meta_double(f, key);
        snprintf(key, sizeof(key), "s%d.ls_eps", s);
        learner_set_ls_eps(l, (float)fixture_meta_double(f, key));
        snprintf(key, sizeof(key), "in.s%d.y", s);
        const int32_t *y = fixture_i32(f, key, (size_t)bs);
        const int32_t *y_mix = NULL;
        const float *lam = NULL;
        if (s == 2) {
            y_mix = fixture_i32(f, "in.s2.y_mix", (size_t)bs);
            lam = fixture_f32(f, "in.s2.lam", (size_t)bs);
        }
        if (!y || (s == 2 && (!y_mix || !lam))) break;
        float *x = s_pattern_batch(s == 1 ? 100000 : 100002, bs, size, size);
        learner_batch_t batch = {.x = x, .y = y, .y_mix = y_mix, .lam = lam, .n = bs,
                                 .h = size, .w = size};
        learner_set_hypers(l, lr, mom);
        exec_state_t before = {.params = w0};
        learner_state_read(l, &before);
        float loss;
        T_CHECK(learner_train_step(l, &batch, &loss) == 0, "%s step %d", b->name, s);
        learner_grads_read(l, g);
        exec_state_t after = {.params = w1, .run_mean = rm, .run_var = rv};
        learner_state_read(l, &after);

        snprintf(key, sizeof(key), "out.s%d.logits", s);
        const float *want_logits = fixture_f32(f, key, (size_t)bs * 10);
        double lmax = want_logits ? s_max_abs(want_logits, (size_t)bs * 10) : 1;
        s_expect(f, key, learner_logits(l), (size_t)bs * 10, CAT_LOGITS, col, lmax);
        snprintf(key, sizeof(key), "out.s%d.loss", s);
        const float *want_loss = fixture_f32(f, key, 1);
        s_expect(f, key, &loss, 1, CAT_LOSS, col, want_loss ? fabs(want_loss[0]) : 1);

        snprintf(key, sizeof(key), "out.s%d.grad_norm", s);
        const float *want_gn = fixture_f32(f, key, (size_t)net->n_params);
        if (!want_gn) break;
        int bad_updates = 0;
        for (int t = 0; t < net->n_params; t++) {
            const xresnet_param_t *p = &net->params[t];
            size_t ns = p->numel < n_samples ? p->numel : n_samples;
            // gradients: norm, and samples in PyTorch's order scaled by the
            // tensor's RMS
            xresnet_param_to_torch(p, g + p->offset, torch_buf);
            double gn = 0;
            for (size_t e = 0; e < p->numel; e++) gn += (double)torch_buf[e] * torch_buf[e];
            gnorm[t] = (float)sqrt(gn);
            for (size_t k = 0; k < ns; k++)
                sample[k] = torch_buf[s_sample_idx(t, p->numel, k, n_samples)];
            snprintf(key, sizeof(key), "out.s%d.grad.%s", s, p->name);
            s_expect(f, key, sample, ns, CAT_GRAD, col, want_gn[t] / sqrt((double)p->numel));
            // updates: norm, and the updated weights at the samples. Adam moves
            // an element by at most lr (plus the tiny decay): an element whose
            // gradient is near eps can land anywhere in that range on
            // rounding-level gradient differences, so samples are checked to
            // within 2 lr and the update norm tightly.
            xresnet_param_to_torch(p, w0 + p->offset, torch_w0);
            xresnet_param_to_torch(p, w1 + p->offset, torch_buf);
            double un = 0;
            for (size_t e = 0; e < p->numel; e++) {
                double d = (double)torch_buf[e] - torch_w0[e];
                un += d * d;
            }
            unorm[t] = (float)sqrt(un);
            for (size_t k = 0; k < ns; k++)
                sample[k] = torch_buf[s_sample_idx(t, p->numel, k, n_samples)];
            snprintf(key, sizeof(key), "out.s%d.w.%s", s, p->name);
            fixture_tol_t row = {key, 2 * lr, 0.0};
            if (!fixture_expect(f, &row, 1, key, sample, ns)) bad_updates++;
        }
        T_CHECK(bad_updates == 0, "%s step %d: %d tensors with updates beyond 2 lr", b->name, s,
                bad_updates);
        // norms: relative, one row per tensor built from the table
        const char *norm_keys[2] = {"grad_norm", "update_norm"};
        const float *norms[2] = {gnorm, unorm};
        const s_cat_t norm_cats[2] = {CAT_GRAD_NORM, CAT_UPDATE_NORM};
        for (int k = 0; k < 2; k++) {
            snprintf(key, sizeof(key), "out.s%d.%s", s, norm_keys[k]);
            const float *want = fixture_f32(f, key, (size_t)net->n_params);
            for (int t = 0; want && t < net->n_params; t++)
                s_worst[norm_cats[k]] =
                    fmax(s_worst[norm_cats[k]], fabs(norms[k][t] - want[t]) / fmax(want[t], 1e-30));
            fixture_tol_t row = {key, 0.0, s_tols[norm_cats[k]].tol[col]};
            fixture_expect(f, &row, 1, key, norms[k], (size_t)net->n_params);
        }
        if (s == 1) {
            const float *wm = fixture_f32(f, "out.s1.running_mean", nb);
            const float *wv = fixture_f32(f, "out.s1.running_var", nb);
            s_expect(f, "out.s1.running_mean", rm, nb, CAT_RUNNING, col,
                     wm ? s_max_abs(wm, nb) : 1);
            s_expect(f, "out.s1.running_var", rv, nb, CAT_RUNNING, col, wv ? s_max_abs(wv, nb) : 1);
        }
        printf("%-16s step %d: loss %.7f (fastai %.7f)\n", b->name, s, (double)loss,
               want_loss ? (double)want_loss[0] : NAN);
        free(x);
        float *tmp = w0;  // the next step starts from these weights
        w0 = w1;
        w1 = tmp;
    }
    free(w0);
    free(w1);
    free(g);
    free(rm);
    free(rv);
    free(zeros);
    free(torch_buf);
    free(torch_w0);
    free(sample);
    free(gnorm);
    free(unorm);
    learner_destroy(&l);
}

int main(void)
{
    static const s_backend_t backends[] = {
        {"ref", EXEC_REF, false},
        {"onednn", EXEC_ONEDNN, false},
        {"onednn-winograd", EXEC_ONEDNN, true},
    };
    for (size_t i = 0; i < NF_ARRAY_LEN(backends); i++) {
        fixture_t *f = fixture_open("trainer/step_xresnet18.safetensors");
        if (!f) break;
        memset(s_worst, 0, sizeof(s_worst));
        s_run(f, &backends[i]);
        printf("%-16s worst (relative to scale): logits %.2g, loss %.2g, gradient samples %.2g, "
               "gradient norms %.2g, update norms %.2g, running stats %.2g\n",
               backends[i].name, s_worst[CAT_LOGITS], s_worst[CAT_LOSS], s_worst[CAT_GRAD],
               s_worst[CAT_GRAD_NORM], s_worst[CAT_UPDATE_NORM], s_worst[CAT_RUNNING]);
        fixture_close(&f);
    }
    return t_done();
}
