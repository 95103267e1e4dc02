/*
 * ckpt.c: learner checkpoints (ckpt.h) through common/safetensors.h, with
 * cJSON for the structured metadata fields.
 */
#include "ckpt.h"

#include "check.h"
#include "log.h"
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
// exact numbers in JSON: strings with 17 significant digits (cJSON's own
// number printing may drop the last bit)

static void s_put(cJSON *o, const char *key, double v)
{
    char buf[40];
    snprintf(buf, sizeof(buf), "%.17g", v);
    NF_CHECK(cJSON_AddStringToObject(o, key, buf), "cJSON out of memory");
}

static void s_put_i(cJSON *o, const char *key, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    NF_CHECK(cJSON_AddStringToObject(o, key, buf), "cJSON out of memory");
}

static int s_get(const cJSON *o, const char *key, double *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(it) || !it->valuestring[0]) return -1;
    char *end;
    errno = 0;
    double v = strtod(it->valuestring, &end);
    if (*end != '\0' || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

static int s_get_i(const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(it) || !it->valuestring[0]) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(it->valuestring, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static char *s_float_array(const float *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    NF_CHECK(a, "cJSON out of memory");
    for (int i = 0; i < n; i++)
        NF_CHECK(cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i])), "cJSON");
    char *s = cJSON_PrintUnformatted(a);
    NF_CHECK(s, "cJSON out of memory");
    cJSON_Delete(a);
    return s;
}

static int s_parse_float_array(const char *text, float *v, int n)
{
    cJSON *a = text ? cJSON_Parse(text) : NULL;
    int rc = cJSON_IsArray(a) && cJSON_GetArraySize(a) == n ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        const cJSON *it = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(it)) rc = -1;
        else
            v[i] = (float)it->valuedouble;
    }
    cJSON_Delete(a);
    return rc;
}

// ---------------------------------------------------------------------------
// progress <-> JSON

static char *s_progress_json(const learner_progress_t *p, const learner_config_t *cfg)
{
    cJSON *o = cJSON_CreateObject();
    NF_CHECK(o, "cJSON out of memory");
    s_put_i(o, "step", p->step);
    s_put_i(o, "bn_batches", p->bn_batches);
    s_put_i(o, "adam_step", p->adam_step);
    s_put(o, "lr", p->lr);
    s_put(o, "mom", p->mom);
    s_put_i(o, "fit_active", p->fit_active);
    s_put_i(o, "fit_index", p->fit_index);
    s_put_i(o, "fit_pos", p->fit_pos);
    // informational (not read back): the epoch of the active fit, 0-based
    s_put_i(o, "epoch", p->fit.n_iter > 0 ? p->fit_pos / p->fit.n_iter : 0);
    s_put_i(o, "sched_kind", p->fit.kind);
    s_put_i(o, "sched_n_epoch", p->fit.n_epoch);
    s_put_i(o, "sched_n_iter", p->fit.n_iter);
    s_put(o, "sched_lr_max", p->fit.lr_max);
    s_put(o, "sched_lr_end", p->fit.lr_end);
    s_put(o, "sched_div", p->fit.div);
    s_put(o, "sched_div_final", p->fit.div_final);
    s_put(o, "sched_pct_start", p->fit.pct_start);
    s_put(o, "sched_mom0", p->fit.moms[0]);
    s_put(o, "sched_mom1", p->fit.moms[1]);
    s_put(o, "sched_mom2", p->fit.moms[2]);
    s_put(o, "sched_mom", p->fit.mom);
    s_put_i(o, "sched_reset_opt", p->fit.reset_opt);
    s_put(o, "smooth_beta", p->smooth.beta);
    s_put(o, "smooth_val", p->smooth.val);
    s_put_i(o, "smooth_count", p->smooth.count);
    s_put(o, "ls_eps", cfg->ls_eps);
    s_put(o, "wd", cfg->wd);
    s_put(o, "sqr_mom", cfg->sqr_mom);
    s_put(o, "eps", cfg->eps);
    char seed[32];
    snprintf(seed, sizeof(seed), "%" PRIu64, p->seed);
    NF_CHECK(cJSON_AddStringToObject(o, "seed", seed), "cJSON out of memory");
    char *s = cJSON_PrintUnformatted(o);
    NF_CHECK(s, "cJSON out of memory");
    cJSON_Delete(o);
    return s;
}

// Parses the progress JSON; *ls_eps gets the loss eps. Returns 0 or -1.
static int s_progress_parse(const char *text, learner_progress_t *p, float *ls_eps)
{
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return -1;
    }
    const int64_t big = INT64_MAX / 2;
    int64_t fit_active, kind, n_epoch, n_iter, reset_opt, fit_index, count;
    double beta, val, eps;
    int rc = 0;
    memset(p, 0, sizeof(*p));
    rc |= s_get_i(o, "step", 0, big, &p->step);
    rc |= s_get_i(o, "bn_batches", 0, big, &p->bn_batches);
    rc |= s_get_i(o, "adam_step", 0, big, &p->adam_step);
    rc |= s_get(o, "lr", &p->lr);
    rc |= s_get(o, "mom", &p->mom);
    rc |= s_get_i(o, "fit_active", 0, 1, &fit_active);
    rc |= s_get_i(o, "fit_index", 0, INT32_MAX, &fit_index);
    rc |= s_get_i(o, "fit_pos", 0, big, &p->fit_pos);
    rc |= s_get_i(o, "sched_kind", SCHED_ONE_CYCLE, SCHED_EXP, &kind);
    rc |= s_get_i(o, "sched_n_epoch", 0, INT32_MAX, &n_epoch);
    rc |= s_get_i(o, "sched_n_iter", 0, INT32_MAX, &n_iter);
    rc |= s_get(o, "sched_lr_max", &p->fit.lr_max);
    rc |= s_get(o, "sched_lr_end", &p->fit.lr_end);
    rc |= s_get(o, "sched_div", &p->fit.div);
    rc |= s_get(o, "sched_div_final", &p->fit.div_final);
    rc |= s_get(o, "sched_pct_start", &p->fit.pct_start);
    rc |= s_get(o, "sched_mom0", &p->fit.moms[0]);
    rc |= s_get(o, "sched_mom1", &p->fit.moms[1]);
    rc |= s_get(o, "sched_mom2", &p->fit.moms[2]);
    rc |= s_get(o, "sched_mom", &p->fit.mom);
    rc |= s_get_i(o, "sched_reset_opt", 0, 1, &reset_opt);
    rc |= s_get(o, "smooth_beta", &beta);
    rc |= s_get(o, "smooth_val", &val);
    rc |= s_get_i(o, "smooth_count", 0, INT32_MAX, &count);
    rc |= s_get(o, "ls_eps", &eps);
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(o, "seed");
    char *end = NULL;
    errno = 0;
    if (!cJSON_IsString(seed) || !seed->valuestring[0]) rc = -1;
    else
        p->seed = strtoull(seed->valuestring, &end, 10);
    if (rc == 0 && (*end != '\0' || errno == ERANGE || seed->valuestring[0] == '-')) rc = -1;
    cJSON_Delete(o);
    if (rc != 0 || (fit_active && (n_epoch < 1 || n_iter < 1)) || !(eps >= 0 && eps < 1))
        return -1;
    p->fit_active = fit_active != 0;
    p->fit_index = (int)fit_index;
    p->fit.kind = (sched_kind_t)kind;
    p->fit.n_epoch = (int)n_epoch;
    p->fit.n_iter = (int)n_iter;
    p->fit.reset_opt = reset_opt != 0;
    p->smooth.beta = beta;
    p->smooth.val = (float)val;
    p->smooth.count = (int)count;
    *ls_eps = (float)eps;
    return 0;
}

// ---------------------------------------------------------------------------
// save

typedef struct {
    float *params, *m, *v, *rm, *rv;  // host copies in xresnet.h's layout
} s_host_t;

static void s_host_alloc(s_host_t *h, const xresnet_t *net)
{
    size_t np = net->n_param_floats, nb = net->n_bn_floats;
    h->params = nf_xcalloc(np ? np : 1, sizeof(float));
    h->m = nf_xcalloc(np ? np : 1, sizeof(float));
    h->v = nf_xcalloc(np ? np : 1, sizeof(float));
    h->rm = nf_xcalloc(nb ? nb : 1, sizeof(float));
    h->rv = nf_xcalloc(nb ? nb : 1, sizeof(float));
}

static void s_host_free(s_host_t *h)
{
    free(h->params);
    free(h->m);
    free(h->v);
    free(h->rm);
    free(h->rv);
}

static void s_shape64(const xresnet_param_t *p, int64_t out[4])
{
    for (int d = 0; d < p->ndim; d++) out[d] = p->shape[d];
}

int ckpt_save(learner_t *l, const char *path)
{
    const xresnet_t *net = learner_net(l);
    const learner_config_t *cfg = learner_config(l);
    learner_sync(l);  // every queued step is in the state and the smoothed loss
    learner_progress_t prog = learner_progress(l);
    s_host_t h;
    s_host_alloc(&h, net);
    exec_state_t st = {h.params, h.rm, h.rv, h.m, h.v};
    learner_state_read(l, &st);
    int64_t nbt = prog.bn_batches;

    safetensors_writer_t *w = safetensors_writer_new();
    char name[XRESNET_MAX_NAME + 32];
    int rc = 0;
    for (int t = 0; t < net->n_params; t++) {
        const xresnet_param_t *p = &net->params[t];
        int64_t shape[4];
        s_shape64(p, shape);
        rc |= safetensors_writer_add(w, p->name, SAFETENSORS_F32, p->ndim, shape,
                                     h.params + p->offset);
        snprintf(name, sizeof(name), "opt.grad_avg.%s", p->name);
        rc |= safetensors_writer_add(w, name, SAFETENSORS_F32, p->ndim, shape, h.m + p->offset);
        snprintf(name, sizeof(name), "opt.sqr_avg.%s", p->name);
        rc |= safetensors_writer_add(w, name, SAFETENSORS_F32, p->ndim, shape, h.v + p->offset);
    }
    for (int k = 0; k < net->n_bn; k++) {
        const xresnet_bn_t *bn = &net->bns[k];
        int64_t c[1] = {bn->c};
        snprintf(name, sizeof(name), "%s.running_mean", bn->prefix);
        rc |= safetensors_writer_add(w, name, SAFETENSORS_F32, 1, c, h.rm + bn->offset);
        snprintf(name, sizeof(name), "%s.running_var", bn->prefix);
        rc |= safetensors_writer_add(w, name, SAFETENSORS_F32, 1, c, h.rv + bn->offset);
        snprintf(name, sizeof(name), "%s.num_batches_tracked", bn->prefix);
        rc |= safetensors_writer_add(w, name, SAFETENSORS_I64, 0, NULL, &nbt);
    }
    NF_CHECK(rc == 0, "checkpoint tensor names must be unique and valid");

    char buf[64];
    safetensors_writer_set_meta(w, "format", CKPT_FORMAT);
    safetensors_writer_set_meta(w, "format_version", CKPT_FORMAT_VERSION);
    safetensors_writer_set_meta(w, "arch", net->arch);
    snprintf(buf, sizeof(buf), "%d", net->cfg.n_out);
    safetensors_writer_set_meta(w, "n_out", buf);
    snprintf(buf, sizeof(buf), "%d", net->cfg.c_in);
    safetensors_writer_set_meta(w, "c_in", buf);
    snprintf(buf, sizeof(buf), "%.9g", (double)net->cfg.dropout);
    safetensors_writer_set_meta(w, "dropout", buf);
    safetensors_writer_set_meta(
        w, "layout",
        "conv weights (C_out, KH, KW, C_in): PyTorch = permute(0, 3, 1, 2); "
        "all other tensors as PyTorch");
    cJSON *names = cJSON_CreateArray();
    NF_CHECK(names, "cJSON out of memory");
    for (int i = 0; i < cfg->n_classes; i++)
        NF_CHECK(cJSON_AddItemToArray(names, cJSON_CreateString(cfg->class_names[i])), "cJSON");
    char *names_s = cJSON_PrintUnformatted(names);
    NF_CHECK(names_s, "cJSON out of memory");
    cJSON_Delete(names);
    safetensors_writer_set_meta(w, "class_names", names_s);
    free(names_s);
    char *mean_s = s_float_array(cfg->norm_mean, 3), *std_s = s_float_array(cfg->norm_std, 3);
    safetensors_writer_set_meta(w, "norm_mean", mean_s);
    safetensors_writer_set_meta(w, "norm_std", std_s);
    free(mean_s);
    free(std_s);
    if (cfg->run_config_json) safetensors_writer_set_meta(w, "config", cfg->run_config_json);
    char *prog_s = s_progress_json(&prog, cfg);
    safetensors_writer_set_meta(w, "progress", prog_s);
    free(prog_s);

    rc = safetensors_writer_write(w, path);
    safetensors_writer_destroy(&w);
    s_host_free(&h);
    if (rc != 0) nf_log_error("checkpoint: cannot write %s", path);
    return rc;
}

// ---------------------------------------------------------------------------
// load

static int s_read_tensor(const safetensors_t *st, const char *path, const char *name,
                         safetensors_dtype_t dtype, int ndim, const int64_t *shape, void *dst)
{
    const safetensors_tensor_t *t = safetensors_find(st, name);
    if (!t) {
        nf_log_error("checkpoint %s: tensor '%s' missing", path, name);
        return -1;
    }
    bool ok = t->dtype == dtype && t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    if (!ok) {
        nf_log_error("checkpoint %s: tensor '%s' has another dtype or shape than %s expects",
                     path, name, "this model");
        return -1;
    }
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)shape[d];
    return safetensors_copy(t, dtype, numel, dst);
}

static safetensors_t *s_open(const char *path)
{
    char err[256];
    safetensors_t *st = safetensors_open(path, err, sizeof(err));
    if (!st) {
        nf_log_error("checkpoint %s: %s", path, err);
        return NULL;
    }
    const char *fmt = safetensors_meta_get(st, "format");
    const char *ver = safetensors_meta_get(st, "format_version");
    if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0 || !ver || strcmp(ver, CKPT_FORMAT_VERSION) != 0) {
        nf_log_error("checkpoint %s: not a netteflow checkpoint of format version %s", path,
                     CKPT_FORMAT_VERSION);
        safetensors_close(&st);
    }
    return st;
}

int ckpt_load(learner_t *l, const char *path)
{
    safetensors_t *st = s_open(path);
    if (!st) return -1;
    const xresnet_t *net = learner_net(l);
    const char *arch = safetensors_meta_get(st, "arch");
    const char *n_out = safetensors_meta_get(st, "n_out");
    char want_n[16];
    snprintf(want_n, sizeof(want_n), "%d", net->cfg.n_out);
    if (!arch || strcmp(arch, net->arch) != 0 || !n_out || strcmp(n_out, want_n) != 0) {
        nf_log_error("checkpoint %s holds %s with %s outputs; this learner is %s with %d", path,
                     arch ? arch : "?", n_out ? n_out : "?", net->arch, net->cfg.n_out);
        safetensors_close(&st);
        return -1;
    }
    learner_progress_t prog;
    float ls_eps = 0;
    if (s_progress_parse(safetensors_meta_get(st, "progress"), &prog, &ls_eps) != 0) {
        nf_log_error("checkpoint %s: missing or malformed progress metadata", path);
        safetensors_close(&st);
        return -1;
    }
    s_host_t h;
    s_host_alloc(&h, net);
    int rc = 0;
    char name[XRESNET_MAX_NAME + 32];
    for (int t = 0; rc == 0 && t < net->n_params; t++) {
        const xresnet_param_t *p = &net->params[t];
        int64_t shape[4];
        s_shape64(p, shape);
        rc |= s_read_tensor(st, path, p->name, SAFETENSORS_F32, p->ndim, shape,
                            h.params + p->offset);
        snprintf(name, sizeof(name), "opt.grad_avg.%s", p->name);
        rc |= s_read_tensor(st, path, name, SAFETENSORS_F32, p->ndim, shape, h.m + p->offset);
        snprintf(name, sizeof(name), "opt.sqr_avg.%s", p->name);
        rc |= s_read_tensor(st, path, name, SAFETENSORS_F32, p->ndim, shape, h.v + p->offset);
    }
    for (int k = 0; rc == 0 && k < net->n_bn; k++) {
        const xresnet_bn_t *bn = &net->bns[k];
        int64_t c[1] = {bn->c}, nbt = 0;
        snprintf(name, sizeof(name), "%s.running_mean", bn->prefix);
        rc |= s_read_tensor(st, path, name, SAFETENSORS_F32, 1, c, h.rm + bn->offset);
        snprintf(name, sizeof(name), "%s.running_var", bn->prefix);
        rc |= s_read_tensor(st, path, name, SAFETENSORS_F32, 1, c, h.rv + bn->offset);
        snprintf(name, sizeof(name), "%s.num_batches_tracked", bn->prefix);
        rc |= s_read_tensor(st, path, name, SAFETENSORS_I64, 0, NULL, &nbt);
    }
    safetensors_close(&st);
    if (rc == 0) {
        exec_state_t es = {h.params, h.rm, h.rv, h.m, h.v};
        learner_state_write(l, &es);
        learner_set_progress(l, &prog);
        learner_set_ls_eps(l, ls_eps);
    }
    s_host_free(&h);
    return rc == 0 ? 0 : -1;
}

// ---------------------------------------------------------------------------
// info

int ckpt_info_read(const char *path, ckpt_info_t *info)
{
    memset(info, 0, sizeof(*info));
    safetensors_t *st = s_open(path);
    if (!st) return -1;
    int rc = 0;
    const char *arch = safetensors_meta_get(st, "arch");
    const char *n_out = safetensors_meta_get(st, "n_out");
    const char *dropout = safetensors_meta_get(st, "dropout");
    char *end = NULL;
    long n = n_out ? strtol(n_out, &end, 10) : 0;
    if (!arch || strlen(arch) >= sizeof(info->arch) || !n_out || *end || n < 1 ||
        n > 1000000)
        rc = -1;
    else {
        snprintf(info->arch, sizeof(info->arch), "%s", arch);
        info->n_out = (int)n;
        info->dropout = dropout ? strtof(dropout, NULL) : 0.0f;
    }
    if (rc == 0 &&
        (s_parse_float_array(safetensors_meta_get(st, "norm_mean"), info->norm_mean, 3) ||
         s_parse_float_array(safetensors_meta_get(st, "norm_std"), info->norm_std, 3)))
        rc = -1;
    cJSON *names = rc == 0 ? cJSON_Parse(safetensors_meta_get(st, "class_names")) : NULL;
    if (rc == 0) {
        int k = cJSON_IsArray(names) ? cJSON_GetArraySize(names) : -1;
        if (k < 0 || k > LEARNER_MAX_CLASSES || (k != 0 && k != info->n_out)) rc = -1;
        else if (k > 0) {
            info->n_classes = k;
            info->class_names = nf_xcalloc((size_t)k, sizeof(*info->class_names));
            for (int i = 0; i < k && rc == 0; i++) {
                const cJSON *it = cJSON_GetArrayItem(names, i);
                if (!cJSON_IsString(it) || strlen(it->valuestring) >= LEARNER_MAX_CLASS_NAME)
                    rc = -1;
                else
                    snprintf(info->class_names[i], LEARNER_MAX_CLASS_NAME, "%s", it->valuestring);
            }
        }
    }
    cJSON_Delete(names);
    const char *config = safetensors_meta_get(st, "config");
    if (rc == 0 && config) info->config_json = nf_xstrdup(config);
    learner_progress_t prog;
    float ls_eps;
    if (rc == 0 && s_progress_parse(safetensors_meta_get(st, "progress"), &prog, &ls_eps) == 0)
        info->step = prog.step;
    else
        rc = -1;
    safetensors_close(&st);
    if (rc != 0) {
        nf_log_error("checkpoint %s: malformed metadata", path);
        ckpt_info_free(info);
    }
    return rc;
}

void ckpt_info_free(ckpt_info_t *info)
{
    free(info->class_names);
    free(info->config_json);
    info->class_names = NULL;
    info->config_json = NULL;
    info->n_classes = 0;
}

learner_config_t ckpt_info_config(const ckpt_info_t *info, const learner_config_t *base)
{
    learner_config_t c = *base;
    c.arch = info->arch;
    c.n_out = info->n_out;
    c.dropout = info->dropout;
    c.n_classes = info->n_classes;
    c.class_names = NULL;
    memcpy(c.norm_mean, info->norm_mean, sizeof(c.norm_mean));
    memcpy(c.norm_std, info->norm_std, sizeof(c.norm_std));
    c.run_config_json = info->config_json;
    return c;
}

// ---------------------------------------------------------------------------
// file names and retention

void ckpt_path(const char *dir, int64_t step, char *buf, size_t len)
{
    snprintf(buf, len, "%s/ckpt-%010" PRId64 ".safetensors", dir, step);
}

// The step of "ckpt-<digits>.safetensors", or -1.
static int64_t s_ckpt_step(const char *name)
{
    const char *pre = "ckpt-", *suf = ".safetensors";
    size_t lp = strlen(pre), ls = strlen(suf), n = strlen(name);
    if (n <= lp + ls || strncmp(name, pre, lp) != 0 || strcmp(name + n - ls, suf) != 0) return -1;
    int64_t v = 0;
    for (size_t i = lp; i < n - ls; i++) {
        if (name[i] < '0' || name[i] > '9' || v > INT64_MAX / 10 - 9) return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

typedef struct {
    int64_t step;
    char name[256];
} s_ckpt_file_t;

static int s_cmp_step_desc(const void *a, const void *b)
{
    int64_t x = ((const s_ckpt_file_t *)a)->step, y = ((const s_ckpt_file_t *)b)->step;
    return x < y ? 1 : x > y ? -1 : 0;
}

int ckpt_retain(const char *dir, int keep)
{
    DIR *d = opendir(dir);
    if (!d) {
        nf_log_error("checkpoint retention: cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    s_ckpt_file_t *files = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        int64_t s = s_ckpt_step(de->d_name);
        if (s < 0 || strlen(de->d_name) >= sizeof(files[0].name)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            files = nf_xrealloc(files, cap * sizeof(*files));
        }
        files[n].step = s;
        snprintf(files[n].name, sizeof(files[n].name), "%s", de->d_name);
        n++;
    }
    int rd_err = errno;
    closedir(d);
    if (rd_err != 0) {
        nf_log_error("checkpoint retention: reading %s: %s", dir, strerror(rd_err));
        free(files);
        return -1;
    }
    if (n > 0) qsort(files, n, sizeof(*files), s_cmp_step_desc);
    int deleted = 0;
    char path[4096];
    for (size_t i = keep > 0 ? (size_t)keep : 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
        if (unlink(path) != 0 && errno != ENOENT) {
            nf_log_error("checkpoint retention: cannot delete %s: %s", path, strerror(errno));
            continue;
        }
        deleted++;
    }
    free(files);
    return deleted;
}
