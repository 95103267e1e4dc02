/*
 * eval.c: see eval.h. Checkpoint -> learner, validation streams -> exact
 * loss/accuracy, TTA probabilities by sample index, predictions.
 */
#include "eval.h"

#include "augment.h"
#include "ckpt.h"
#include "decode.h"
#include "learner.h"
#include "log.h"
#include "recipe.h"
#include "timeutil.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_PLAIN_STREAM = 10, S_TTA_STREAM = 11, S_WAIT_MS = 500 };

struct eval_t {
    eval_config_t cfg;
    learner_t *l;
    char arch[16];
    int n_out;
};

eval_t *eval_new(const eval_config_t *cfg)
{
    eval_t *self = nf_xcalloc(1, sizeof *self);
    self->cfg = *cfg;
    if (!self->cfg.credits) self->cfg.credits = 4;
    return self;
}

void eval_destroy(eval_t **self_p)
{
    if (!self_p || !*self_p) return;
    learner_destroy(&(*self_p)->l);
    free(*self_p);
    *self_p = NULL;
}

static bool s_stopped(const eval_t *self)
{
    if (self->cfg.stop_fd < 0) return false;
    struct pollfd p = {.fd = self->cfg.stop_fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

// What a checkpoint says about how it was trained.
typedef struct {
    ckpt_info_t info;
    recipe_t recipe;
    uint32_t size, presize, bs, epochs_done;
    bool normalize;
} s_model_t;

static int s_model_read(const char *path, s_model_t *m)
{
    memset(m, 0, sizeof *m);
    if (ckpt_info_read(path, &m->info) != 0) return -1;
    recipe_defaults(&m->recipe);
    cJSON *o = m->info.config_json ? cJSON_Parse(m->info.config_json) : NULL;
    if (o) {
        const cJSON *rec = cJSON_GetObjectItemCaseSensitive(o, "recipe");
        char *s = rec ? cJSON_PrintUnformatted(rec) : NULL;
        if (s) (void)recipe_from_json(&m->recipe, s);
        free(s);
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(o, "at");
        const cJSON *v;
        if ((v = cJSON_GetObjectItemCaseSensitive(at, "size")) && cJSON_IsNumber(v))
            m->size = (uint32_t)v->valuedouble;
        if ((v = cJSON_GetObjectItemCaseSensitive(at, "presize")) && cJSON_IsNumber(v))
            m->presize = (uint32_t)v->valuedouble;
        if ((v = cJSON_GetObjectItemCaseSensitive(at, "bs")) && cJSON_IsNumber(v))
            m->bs = (uint32_t)v->valuedouble;
        if ((v = cJSON_GetObjectItemCaseSensitive(at, "epochs_done")) && cJSON_IsNumber(v))
            m->epochs_done = (uint32_t)v->valuedouble;
        cJSON_Delete(o);
    }
    const recipe_phase_t *last = &m->recipe.phases[m->recipe.n_phases - 1];
    if (!m->size) m->size = (uint32_t)last->size;
    if (!m->presize) m->presize = (uint32_t)last->presize;
    if (!m->bs) m->bs = (uint32_t)last->bs;
    // identity statistics (0, 1) were stored for runs without Normalize
    m->normalize = false;
    for (int c = 0; c < 3; c++)
        m->normalize |= m->info.norm_mean[c] != 0.0f || m->info.norm_std[c] != 1.0f;
    return 0;
}

int eval_checkpoint_recipe(const char *path, recipe_t *out)
{
    s_model_t m;
    if (s_model_read(path, &m) != 0) return -1;
    *out = m.recipe;
    ckpt_info_free(&m.info);
    return 0;
}

// The learner for a checkpoint (kept across checkpoints of one architecture).
static int s_load(eval_t *self, const char *path, const s_model_t *m)
{
    if (self->l && (strcmp(self->arch, m->info.arch) != 0 || self->n_out != m->info.n_out))
        learner_destroy(&self->l);
    if (!self->l) {
        learner_config_t base = learner_default_config(m->info.arch, m->info.n_out);
        base.backend = self->cfg.backend;
        base.threads = self->cfg.threads;
        learner_config_t lc = ckpt_info_config(&m->info, &base);
        self->l = learner_new(&lc);
        if (!self->l) return -1;
        snprintf(self->arch, sizeof self->arch, "%s", m->info.arch);
        self->n_out = m->info.n_out;
    }
    return ckpt_load(self->l, path);
}

// Per-sample accumulation over passes, keyed by dataset index.
typedef struct {
    int32_t *row;      // (n_items) dataset index -> row, -1 = not seen
    int32_t *label;    // (cap) label of each row
    float *plain;      // (cap, C) softmax of the plain pass
    float *aug;        // (cap, C) sum of the TTA passes' softmax
    uint32_t n_rows, cap, n_items;
    int c;
} s_probs_t;

static int32_t s_row(s_probs_t *p, uint32_t index, int32_t label)
{
    if (index >= p->n_items) return -1;
    if (p->row[index] >= 0) return p->row[index];
    if (p->n_rows == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 1024;
        p->label = nf_xrealloc(p->label, p->cap * sizeof *p->label);
        p->plain = nf_xrealloc(p->plain, (size_t)p->cap * p->c * sizeof *p->plain);
        p->aug = nf_xrealloc(p->aug, (size_t)p->cap * p->c * sizeof *p->aug);
    }
    int32_t r = (int32_t)p->n_rows++;
    p->row[index] = r;
    p->label[r] = label;
    memset(p->plain + (size_t)r * p->c, 0, (size_t)p->c * sizeof(float));
    memset(p->aug + (size_t)r * p->c, 0, (size_t)p->c * sizeof(float));
    return r;
}

// One pass over a validation stream. plain: loss/accuracy and plain probs;
// else (TTA) probabilities added to aug. Returns 0 or -1.
static int s_pass(eval_t *self, const s_model_t *m, const eval_job_t *job, uint32_t pass,
                  s_probs_t *pr, double *loss_sum, uint32_t *correct, uint32_t *n, uint32_t *bad)
{
    augment_stream_request_t q = {
        .stream = pass ? S_TTA_STREAM : S_PLAIN_STREAM, .split = 1,
        .mode = pass ? AUGMENT_MODE_TTA : AUGMENT_MODE_VALID, .epoch = 0, .pass = pass,
        .batch_size = job->batch_size ? job->batch_size : m->bs,
        .size = job->size ? job->size : m->size,
        .presize = job->presize ? job->presize : m->presize, .credits = self->cfg.credits,
        .min_scale = m->recipe.min_scale, .normalize = m->normalize, .dtype = AUGMENT_DTYPE_F32,
        .resample = (augment_resample_t)m->recipe.resample, .seed = m->recipe.seed};
    memcpy(q.mean, m->info.norm_mean, sizeof q.mean);
    memcpy(q.std, m->info.norm_std, sizeof q.std);
    augment_stream_plan_t plan;
    if (augment_client_start(self->cfg.client, &q, &plan, 120000) != 0) {
        if (errno != EINTR)
            nf_log_error("evaluator: no validation stream from augment: %s", strerror(errno));
        return -1;
    }
    float *probs = nf_xmalloc((size_t)q.batch_size * pr->c * sizeof *probs);
    int rc = 0;
    for (;;) {
        augment_tensor_batch_t *b = NULL;
        int got = augment_client_next(self->cfg.client, q.stream, &b, S_WAIT_MS);
        if (got == 0) break;
        if (got < 0) {
            if (errno == ETIMEDOUT && !s_stopped(self)) continue;
            if (errno != ETIMEDOUT && errno != EINTR)
                nf_log_error("evaluator: validation stream: %s", strerror(errno));
            rc = -1;
            break;
        }
        if (b->n > 0) {
            learner_batch_t lb = {.x = b->pixels, .y = b->labels, .n = b->n, .h = b->h, .w = b->w};
            learner_eval_t ev = {.probs = probs};
            if (learner_eval_batch(self->l, &lb, &ev) != 0) {
                augment_client_release(self->cfg.client, &b);
                rc = -1;
                break;
            }
            if (!pass) {
                *loss_sum += (double)ev.loss * b->n;
                *correct += (uint32_t)ev.correct;
                *n += (uint32_t)b->n;
            }
            for (int i = 0; i < b->n && pr->row; i++) {
                int32_t r = s_row(pr, b->indices[i], b->labels[i]);
                if (r < 0) continue;
                float *dst = (pass ? pr->aug : pr->plain) + (size_t)r * pr->c;
                for (int k = 0; k < pr->c; k++) dst[k] += probs[(size_t)i * pr->c + k];
            }
        }
        augment_client_release(self->cfg.client, &b);
    }
    free(probs);
    augment_stream_stats_t ss;
    if (rc == 0 && augment_client_stats(self->cfg.client, q.stream, &ss) == 0 && bad)
        *bad = ss.bad_files;
    return rc;
}

void eval_tta_combine(const float *aug_sum, const float *plain, const int32_t *labels, int n,
                      int c, int n_pass, double beta, double *accuracy, double *loss)
{
    // fastai: preds = torch.lerp(mean(aug), plain, beta), on probabilities (not logits)
    int hit = 0;
    double nll = 0;
    for (int r = 0; r < n; r++) {
        const float *a = aug_sum + (size_t)r * c, *pl = plain + (size_t)r * c;
        int best = 0;
        double bv = -1;
        for (int k = 0; k < c; k++) {
            double v = (1.0 - beta) * (a[k] / n_pass) + beta * pl[k];
            if (v > bv) {
                bv = v;
                best = k;
            }
            if (k == labels[r]) nll -= log(fmax(v, 1e-12));
        }
        hit += best == labels[r];
    }
    *accuracy = n ? (double)hit / n : 0.0;
    *loss = n ? nll / n : 0.0;
}

int eval_run(eval_t *self, const eval_job_t *job, eval_result_t *out,
             void (*on_plain)(const eval_result_t *plain, void *arg), void *arg)
{
    memset(out, 0, sizeof *out);
    s_model_t m;
    if (s_model_read(job->checkpoint, &m) != 0) return -1;
    int rc = -1;
    s_probs_t pr = {.c = m.info.n_out};
    if (s_load(self, job->checkpoint, &m) != 0) goto done;
    bool tta = job->tta < 0 ? m.recipe.tta : job->tta > 0;
    int tta_n = job->tta_n > 0 ? job->tta_n : m.recipe.tta_n;
    double beta = job->tta_beta >= 0 ? job->tta_beta : m.recipe.tta_beta;
    uint32_t nc, nt, nv;
    const char *const *names;
    if (augment_client_dataset(self->cfg.client, &nc, &names, &nt, &nv, 120000) != 0) {
        nf_log_error("evaluator: no dataset description from augment");
        goto done;
    }
    if ((int)nc != m.info.n_out) {
        nf_log_error("evaluator: the checkpoint has %d classes, the dataset %u", m.info.n_out, nc);
        goto done;
    }
    if (tta) {
        pr.n_items = nt + nv;
        pr.row = nf_xmalloc(pr.n_items * sizeof *pr.row);
        for (uint32_t i = 0; i < pr.n_items; i++) pr.row[i] = -1;
    }
    double t0 = nf_now_s(), loss_sum = 0;
    uint32_t correct = 0, n = 0;
    if (s_pass(self, &m, job, 0, &pr, &loss_sum, &correct, &n, &out->bad_files) != 0) goto done;
    if (n == 0) {
        nf_log_error("evaluator: the validation split is empty");
        goto done;
    }
    out->valid_loss = loss_sum / n;
    out->accuracy = (double)correct / n;
    out->n_samples = n;
    out->plain_s = nf_now_s() - t0;
    out->epochs_done = m.epochs_done;
    if (on_plain) on_plain(out, arg);
    if (tta) {
        t0 = nf_now_s();
        for (int p = 1; p <= tta_n; p++)
            if (s_pass(self, &m, job, (uint32_t)p, &pr, &loss_sum, &correct, &n, NULL) != 0)
                goto done;
        eval_tta_combine(pr.aug, pr.plain, pr.label, (int)pr.n_rows, pr.c, tta_n, beta,
                         &out->tta_accuracy, &out->tta_loss);
        out->has_tta = true;
        out->tta_n = tta_n;
        out->tta_beta = beta;
        out->tta_s = nf_now_s() - t0;
    }
    rc = 0;
done:
    free(pr.row);
    free(pr.label);
    free(pr.plain);
    free(pr.aug);
    ckpt_info_free(&m.info);
    return rc;
}

// ---------------------------------------------------------------------------
// predictions

static void s_print_prediction(const eval_predict_t *p, const s_model_t *m, const char *file,
                               const float *probs)
{
    int c = m->info.n_out, top = p->top > 0 ? p->top : 3;
    if (top > c) top = c;
    int order[64];
    if (top > 64) top = 64;
    for (int t = 0; t < top; t++) {
        int best = -1;
        for (int k = 0; k < c; k++) {
            bool used = false;
            for (int u = 0; u < t; u++) used |= order[u] == k;
            if (!used && (best < 0 || probs[k] > probs[best])) best = k;
        }
        order[t] = best;
    }
    const char *name0 = order[0] < m->info.n_classes ? m->info.class_names[order[0]] : "?";
    if (p->json) {
        printf("{\"file\": \"%s\", \"class\": \"%s\", \"index\": %d, \"top\": [", file, name0,
               order[0]);
        for (int t = 0; t < top; t++)
            printf("%s{\"class\": \"%s\", \"p\": %.6f}", t ? ", " : "",
                   order[t] < m->info.n_classes ? m->info.class_names[order[t]] : "?",
                   (double)probs[order[t]]);
        printf("]}\n");
    } else {
        printf("%s: %s (%.4f)", file, name0, (double)probs[order[0]]);
        for (int t = 1; t < top; t++)
            printf("  %s %.4f", order[t] < m->info.n_classes ? m->info.class_names[order[t]] : "?",
                   (double)probs[order[t]]);
        printf("\n");
    }
}

int eval_predict(eval_t *self, const eval_predict_t *p)
{
    s_model_t m;
    if (s_model_read(p->checkpoint, &m) != 0) return -1;
    int rc = -1;
    uint32_t size = p->size ? p->size : m.size, presize = p->presize ? p->presize : m.presize;
    augment_config_t ac;
    augment_config_defaults(&ac);
    ac.size = (int)size;
    ac.presize = (int)presize;
    ac.max_batch = 1;
    ac.min_scale = m.recipe.min_scale;
    ac.resample = (augment_resample_t)m.recipe.resample;
    ac.normalize = m.normalize;
    memcpy(ac.mean, m.info.norm_mean, sizeof ac.mean);
    memcpy(ac.std, m.info.norm_std, sizeof ac.std);
    augment_t *aug = NULL;
    loader_decoder_t *dec = NULL;
    uint8_t *raw = NULL, *buf = NULL;
    float *x = NULL, *probs = NULL;
    if (s_load(self, p->checkpoint, &m) != 0 || !(aug = augment_new(&ac)) ||
        !(dec = loader_decoder_new()))
        goto done;
    raw = nf_xmalloc((size_t)presize * presize * 3);
    x = nf_xaligned(augment_out_bytes(aug, 1));
    probs = nf_xmalloc((size_t)m.info.n_out * sizeof *probs);
    size_t cap = 0;
    int failed = 0;
    for (int i = 0; i < p->n_files; i++) {
        loader_bad_t why = LOADER_BAD_NONE;
        loader_decode_info_t info = {.bad = LOADER_BAD_NONE};
        long len = loader_read_file(p->files[i], &buf, &cap, &why, info.detail, sizeof info.detail);
        loader_presize_params_t pp = {.size = presize};
        if (len < 0 || loader_decoder_presize(dec, &pp, buf, (size_t)len, raw, &info) != 0) {
            printf("%s: cannot read: %s (%s)\n", p->files[i],
                   loader_bad_name(len < 0 ? why : info.bad), info.detail);
            failed++;
            continue;
        }
        int32_t label = 0;
        uint32_t index = 0;
        augment_raw_t r = {.pixels = raw, .n = 1, .h = (int)presize, .w = (int)presize,
                           .labels = &label, .indices = &index, .mode = AUGMENT_MODE_VALID};
        augment_out_t o = {.pixels = x};
        learner_batch_t lb = {.x = x, .y = &label, .n = 1, .h = (int)size, .w = (int)size};
        learner_eval_t ev = {.probs = probs};
        if (augment_batch(aug, &o, &r) != 0 || learner_eval_batch(self->l, &lb, &ev) != 0) {
            printf("%s: evaluation failed\n", p->files[i]);
            failed++;
            continue;
        }
        s_print_prediction(p, &m, p->files[i], probs);
    }
    fflush(stdout);
    rc = failed ? 1 : 0;
done:
    free(raw);
    free(buf);
    free(x);
    free(probs);
    augment_destroy(&aug);
    loader_decoder_destroy(&dec);
    ckpt_info_free(&m.info);
    return rc;
}
