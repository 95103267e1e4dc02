/*
 * learner.c: fastai's training step over an executor (learner.h).
 * Losses, accuracy and softmax run on the host through the kernels' ops on
 * the (N, n_out) logits; everything else is the executor's.
 */
#include "learner.h"

#include "accuracy.h"
#include "check.h"
#include "log.h"
#include "xent.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct learner_t {
    learner_config_t cfg;
    char arch[16];
    char **class_names;  // (n_classes) owned copies
    char *run_config_json;
    xresnet_t *net;
    const exec_backend_t *be;
    exec_t *exec;
    learner_progress_t prog;
    int cap_n;           // rows of the logits buffers
    float *logits;       // (cap_n, n_out)
    float *dlogits;      // (cap_n, n_out)
    int plan_n, plan_h, plan_w;  // the executor's current plan (0: none)
    float *pad_x;        // (plan_n, H, W, 3) an eval batch padded to the plan's size
    size_t pad_cap;      // floats
    // submitted, not yet collected steps, oldest first
    struct {
        int64_t ticket;  // executor ticket (queued backends)
        float loss;      // the loss (synchronous backends)
    } pending[LEARNER_MAX_INFLIGHT];
    int n_pending;
};

static int s_plan(learner_t *l, int n, int h, int w);

learner_config_t learner_default_config(const char *arch, int n_out)
{
    return (learner_config_t){.arch = arch,
                              .n_out = n_out,
                              .backend = EXEC_ONEDNN,
                              .winograd = true,
                              .seed = 42,
                              .lr = 1e-3,
                              .mom = 0.9,
                              .sqr_mom = 0.99,
                              .eps = 1e-5,
                              .wd = 0.01,
                              .norm_mean = {0.485f, 0.456f, 0.406f},
                              .norm_std = {0.229f, 0.224f, 0.225f}};
}

learner_t *learner_new(const learner_config_t *cfg)
{
    if (cfg->n_classes != 0 && cfg->n_classes != cfg->n_out) {
        nf_log_error("learner: %d class names for %d outputs", cfg->n_classes, cfg->n_out);
        return NULL;
    }
    if (!(cfg->ls_eps >= 0.0f && cfg->ls_eps < 1.0f) || cfg->n_classes > LEARNER_MAX_CLASSES) {
        nf_log_error("learner: bad config (ls_eps %g, %d classes)", (double)cfg->ls_eps,
                     cfg->n_classes);
        return NULL;
    }
    const exec_backend_t *be = exec_backend(cfg->backend);
    if (!be) {
        nf_log_error("learner: backend %d is not built in", (int)cfg->backend);
        return NULL;
    }
    xresnet_config_t xc = {.arch = cfg->arch, .n_out = cfg->n_out, .c_in = 3,
                           .dropout = cfg->dropout};
    xresnet_t *net = xresnet_new(&xc);
    if (!net) return NULL;
    exec_config_t ec = {.net = net, .threads = cfg->threads, .device = cfg->device,
                        .winograd = cfg->winograd, .bf16 = cfg->bf16,
                        .no_graphs = cfg->no_graphs, .no_autotune = cfg->no_autotune};
    exec_t *exec = be->create(&ec);
    if (!exec) {
        xresnet_destroy(&net);
        return NULL;
    }
    learner_t *l = nf_xcalloc(1, sizeof(*l));
    l->cfg = *cfg;
    l->net = net;
    l->be = be;
    l->exec = exec;
    snprintf(l->arch, sizeof(l->arch), "%s", net->arch);
    l->cfg.arch = l->arch;
    if (cfg->n_classes > 0 && cfg->class_names) {
        l->class_names = nf_xcalloc((size_t)cfg->n_classes, sizeof(char *));
        for (int i = 0; i < cfg->n_classes; i++)
            l->class_names[i] = nf_xstrdup(cfg->class_names[i]);
        l->cfg.class_names = (const char *const *)l->class_names;
    } else {
        l->cfg.n_classes = 0;
        l->cfg.class_names = NULL;
    }
    if (cfg->run_config_json) l->run_config_json = nf_xstrdup(cfg->run_config_json);
    l->cfg.run_config_json = l->run_config_json;
    l->prog.seed = cfg->seed;
    l->prog.lr = cfg->lr;
    l->prog.mom = cfg->mom;
    l->prog.smooth = recorder_smooth_make(0.98);

    // fastai's init_cnn
    float *params = nf_xmalloc(net->n_param_floats * sizeof(float));
    float *rm = nf_xmalloc(net->n_bn_floats * sizeof(float));
    float *rv = nf_xmalloc(net->n_bn_floats * sizeof(float));
    xresnet_init_fastai(net, cfg->seed, params, rm, rv);
    exec_state_t st = {.params = params, .run_mean = rm, .run_var = rv};
    be->state_write(exec, &st);
    free(params);
    free(rm);
    free(rv);
    if (cfg->bs > 0 && cfg->size > 0 && s_plan(l, cfg->bs, cfg->size, cfg->size) != 0) {
        learner_destroy(&l);
        return NULL;
    }
    return l;
}

void learner_destroy(learner_t **self_p)
{
    if (!self_p || !*self_p) return;
    learner_t *l = *self_p;
    if (l->exec) learner_sync(l);
    if (l->exec) l->be->destroy(&l->exec);
    xresnet_destroy(&l->net);
    for (int i = 0; l->class_names && i < l->cfg.n_classes; i++) free(l->class_names[i]);
    free(l->class_names);
    free(l->run_config_json);
    free(l->logits);
    free(l->dlogits);
    free(l->pad_x);
    free(l);
    *self_p = NULL;
}

// ---------------------------------------------------------------------------
// steps

// Validates a batch from the outside world (nothing is planned or run).
static int s_check_batch(const learner_t *l, const learner_batch_t *b, bool train)
{
    if (!(b->x || b->dev.x) || !b->y || b->n < 1 || b->h < 1 || b->w < 1) {
        nf_log_error("learner: empty or malformed batch (%d x %dx%d)", b->n, b->h, b->w);
        return -1;
    }
    if (!b->x && !l->be->step_submit) {
        nf_log_error("learner: device images need the cuda backend (this one is %s)",
                     l->be->name);
        return -1;
    }
    if (train && b->n < 2) {
        nf_log_error("learner: a training batch needs at least 2 images (BatchNorm)");
        return -1;
    }
    if ((b->y_mix == NULL) != (b->lam == NULL)) {
        nf_log_error("learner: Mixup needs both partner labels and weights");
        return -1;
    }
    for (int i = 0; i < b->n; i++) {
        bool bad = b->y[i] < 0 || b->y[i] >= l->cfg.n_out;
        if (train && b->y_mix)
            bad = bad || b->y_mix[i] < 0 || b->y_mix[i] >= l->cfg.n_out;
        if (bad) {
            nf_log_error("learner: sample %d of the batch has label %d / partner %d (n_out %d)",
                         i, b->y[i], train && b->y_mix ? b->y_mix[i] : -1, l->cfg.n_out);
            return -1;
        }
        if (train && b->lam && !(b->lam[i] >= 0.0f && b->lam[i] <= 1.0f)) {
            nf_log_error("learner: sample %d of the batch has Mixup weight %g", i,
                         (double)b->lam[i]);
            return -1;
        }
    }
    return 0;
}

// Plans the executor for n images of h x w (free when unchanged).
static int s_plan(learner_t *l, int n, int h, int w)
{
    if (l->be->plan(l->exec, n, h, w) != 0) return -1;
    l->plan_n = n;
    l->plan_h = h;
    l->plan_w = w;
    if (n > l->cap_n) {
        l->cap_n = n;
        free(l->logits);
        free(l->dlogits);
        l->logits = nf_xmalloc((size_t)n * l->cfg.n_out * sizeof(float));
        l->dlogits = nf_xmalloc((size_t)n * l->cfg.n_out * sizeof(float));
    }
    return 0;
}

// The schedule's lr/mom for the next step, and the counters after it.
static adam_params_t s_step_begin(learner_t *l)
{
    learner_progress_t *p = &l->prog;
    if (p->fit_active) {
        const int pos = (int)p->fit_pos;
        p->lr = sched_lr_at(&p->fit, pos);
        p->mom = sched_mom_at(&p->fit, pos);
    }
    p->adam_step++;
    return (adam_params_t){.count = l->net->n_param_floats,
                           .lr = p->lr,
                           .mom = p->mom,
                           .sqr_mom = l->cfg.sqr_mom,
                           .eps = l->cfg.eps,
                           .wd = l->cfg.wd,
                           .step = p->adam_step};
}

static void s_step_end(learner_t *l)
{
    learner_progress_t *p = &l->prog;
    p->step++;
    p->bn_batches++;
    if (p->fit_active) {
        p->fit_pos++;
        if (p->fit_pos >= sched_total_steps(&p->fit)) p->fit_active = false;
    }
}

// A whole step on a synchronous backend: forward, host loss, backward, Adam.
static float s_step_sync(learner_t *l, const learner_batch_t *b, const adam_params_t *hp)
{
    exec_forward_t fa = {.x = b->x, .train = true, .dropout_seed = l->prog.seed,
                         .dropout_index = (uint64_t)l->prog.step};
    l->be->forward(l->exec, &fa, l->logits);
    xent_params_t xp = {.n = b->n, .c = l->cfg.n_out, .smoothing = l->cfg.ls_eps};
    float loss;
    xent_forward_cpu(&loss, NULL, l->logits, b->y, b->y_mix, b->lam, &xp);
    xent_backward_cpu(l->dlogits, l->logits, b->y, b->y_mix, b->lam, &xp);
    l->be->backward(l->exec, l->dlogits);
    l->be->adam_step(l->exec, hp);
    return loss;
}

int learner_train_submit(learner_t *l, const learner_batch_t *b)
{
    NF_CHECK(l->n_pending < LEARNER_MAX_INFLIGHT,
             "learner: %d steps submitted and not collected", l->n_pending);
    if (s_check_batch(l, b, true) != 0 || s_plan(l, b->n, b->h, b->w) != 0) return -1;
    const adam_params_t hp = s_step_begin(l);
    if (l->be->step_submit) {
        exec_step_t st = {.x = b->x, .dev = b->dev, .y = b->y, .y_mix = b->y_mix,
                          .lam = b->lam, .smoothing = l->cfg.ls_eps, .adam = hp,
                          .dropout_seed = l->prog.seed, .dropout_index = (uint64_t)l->prog.step};
        l->pending[l->n_pending].ticket = l->be->step_submit(l->exec, &st);
    } else {
        l->pending[l->n_pending].loss = s_step_sync(l, b, &hp);
    }
    l->n_pending++;
    s_step_end(l);
    return 0;
}

int learner_train_collect(learner_t *l, float *loss_out)
{
    if (l->n_pending == 0) return 0;
    float loss = l->pending[0].loss;
    if (l->be->step_submit) l->be->step_wait(l->exec, l->pending[0].ticket, &loss, l->logits);
    for (int i = 1; i < l->n_pending; i++) l->pending[i - 1] = l->pending[i];
    l->n_pending--;
    recorder_smooth_add(&l->prog.smooth, loss);
    *loss_out = loss;
    return 1;
}

int learner_train_pending(const learner_t *l) { return l->n_pending; }

void learner_sync(learner_t *l)
{
    float loss;
    while (learner_train_collect(l, &loss)) {}
}

int learner_train_step(learner_t *l, const learner_batch_t *b, float *loss_out)
{
    float loss;
    while (l->n_pending >= LEARNER_MAX_INFLIGHT) learner_train_collect(l, &loss);
    if (learner_train_submit(l, b) != 0) return -1;
    while (learner_train_collect(l, &loss)) {}
    *loss_out = loss;
    return 0;
}

int learner_eval_batch(learner_t *l, const learner_batch_t *b, learner_eval_t *out)
{
    learner_batch_t plain = *b;
    plain.y_mix = NULL;
    plain.lam = NULL;
    if (s_check_batch(l, &plain, false) != 0) return -1;
    // A smaller batch of the planned image size (the last validation batch)
    // runs padded with zero images to the planned batch size instead of
    // re-planning: in eval mode every sample is computed independently, so
    // the real rows are the same.
    const float *x = b->x;
    if (b->x && b->n < l->plan_n && b->h == l->plan_h && b->w == l->plan_w) {
        size_t per = (size_t)b->h * b->w * 3, need = (size_t)l->plan_n * per;
        if (need > l->pad_cap) {
            free(l->pad_x);
            l->pad_x = nf_xaligned(need * sizeof(float));
            l->pad_cap = need;
        }
        memcpy(l->pad_x, b->x, (size_t)b->n * per * sizeof(float));
        memset(l->pad_x + (size_t)b->n * per, 0, (size_t)(l->plan_n - b->n) * per * sizeof(float));
        x = l->pad_x;
    } else if (s_plan(l, b->n, b->h, b->w) != 0) {
        return -1;
    }
    learner_sync(l);  // the running statistics of every queued step
    exec_forward_t fa = {.x = x, .train = false, .dev = b->dev};
    l->be->forward(l->exec, &fa, l->logits);
    xent_params_t xp = {.n = b->n, .c = l->cfg.n_out, .smoothing = l->cfg.ls_eps};
    xent_forward_cpu(&out->loss, NULL, l->logits, b->y, NULL, NULL, &xp);
    accuracy_params_t ap = {.n = b->n, .c = l->cfg.n_out};
    accuracy_cpu(&out->correct, l->logits, b->y, &ap);
    if (out->probs) xent_softmax_cpu(out->probs, l->logits, &xp);
    return 0;
}

// ---------------------------------------------------------------------------
// hyper-parameters and schedules

void learner_set_hypers(learner_t *l, double lr, double mom)
{
    l->prog.fit_active = false;
    l->prog.lr = lr;
    l->prog.mom = mom;
}

void learner_reset_opt(learner_t *l)
{
    learner_sync(l);
    l->be->adam_reset(l->exec);
    l->prog.adam_step = 0;
}

void learner_fit_begin(learner_t *l, const sched_t *s)
{
    learner_sync(l);  // losses of the previous fit stay in its smoothed loss
    if (s->reset_opt) learner_reset_opt(l);
    l->prog.fit = *s;
    l->prog.fit_active = sched_total_steps(s) > 0;
    l->prog.fit_pos = 0;
    l->prog.fit_index++;
    recorder_smooth_reset(&l->prog.smooth);
}

void learner_set_ls_eps(learner_t *l, float ls_eps)
{
    NF_CHECK(ls_eps >= 0.0f && ls_eps < 1.0f, "label smoothing eps %g", (double)ls_eps);
    l->cfg.ls_eps = ls_eps;
}

// ---------------------------------------------------------------------------
// accessors

const float *learner_logits(const learner_t *l) { return l->logits; }
const xresnet_t *learner_net(const learner_t *l) { return l->net; }
const learner_config_t *learner_config(const learner_t *l) { return &l->cfg; }
learner_progress_t learner_progress(const learner_t *l) { return l->prog; }
void learner_set_progress(learner_t *l, const learner_progress_t *p)
{
    learner_sync(l);
    l->prog = *p;
}
void learner_state_read(learner_t *l, const exec_state_t *host)
{
    learner_sync(l);
    l->be->state_read(l->exec, host);
}
void learner_state_write(learner_t *l, const exec_state_t *host)
{
    learner_sync(l);
    l->be->state_write(l->exec, host);
}
void learner_grads_read(learner_t *l, float *grads)
{
    learner_sync(l);
    l->be->grads_read(l->exec, grads);
}
exec_t *learner_exec(learner_t *l) { return l->exec; }
exec_stats_t learner_exec_stats(learner_t *l)
{
    exec_stats_t st = {0};
    if (l->be->stats) l->be->stats(l->exec, &st);
    return st;
}
