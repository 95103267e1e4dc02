/*
 * test_learner_cuda.c: the queued GPU training step (label gpu; exits 77
 * with the reason where there is no usable GPU or no CUDA in the build).
 *
 * The same xresnet18 (golden-pattern weights, head dropout 0.25, label
 * smoothing 0.1, Mixup on some batches, lr and mom changed at every step)
 * takes the same 6 training steps over three batch shapes (a progressive
 * resize and back), then one eval batch smaller than the plan, on:
 *   A  ref executor (the oracle; synchronous)
 *   B  cuda f32, no graphs, heuristics (eager, one step at a time)
 *   C  cuda f32, graphs, heuristics, two steps in flight (submit/collect)
 *   D  as C with the images on the device, through a 2-slot device ring with
 *      ready/done events (the augment -> trainer hand-over)
 *   E  cuda bf16, graphs, autotuned algorithms, device images in f32 (cast)
 * Asserts: B against A within fp32 summation-order tolerances (losses,
 * weights, Adam moments, BN running statistics, eval logits); C and D
 * against B to rounding level (the replayed graph reads each step's labels,
 * Mixup weights, lr/mom and dropout index: a stale one shows at ~1e-5 on the
 * weights, 100x the tolerance); E against A within bf16 tolerances; graphs
 * captured and replayed where enabled, none where not.
 */
#include "learner.h"
#include "testlib.h"

#include "rng.h"

#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_STEPS 6
#define S_MAXN 8

static const struct {
    int n, h, w;
    bool mixup;
} S_BATCHES[S_STEPS] = {{8, 32, 32, false}, {8, 32, 32, true},  {8, 32, 32, false},
                        {6, 40, 40, true},  {6, 40, 40, false}, {8, 32, 32, true}};

typedef struct {
    float *x;       // (n, h, w, 3)
    int32_t y[S_MAXN], ymix[S_MAXN];
    float lam[S_MAXN];
} s_batch_t;

static void s_make_batch(s_batch_t *b, int k)
{
    const int n = S_BATCHES[k].n, h = S_BATCHES[k].h, w = S_BATCHES[k].w;
    nf_rng_t r = nf_rng_make(11, NF_RNG_STREAM_TEST, (uint32_t)k, 0);
    b->x = nf_xmalloc((size_t)n * h * w * 3 * sizeof(float));
    for (size_t i = 0; i < (size_t)n * h * w * 3; i++) b->x[i] = 2.0f * nf_rng_uniform(&r) - 1.0f;
    for (int i = 0; i < n; i++) {
        b->y[i] = (int32_t)nf_rng_below(&r, 10);
        b->ymix[i] = (int32_t)nf_rng_below(&r, 10);
        b->lam[i] = 0.5f + 0.5f * nf_rng_uniform(&r);
    }
}

typedef struct {
    const char *name;
    exec_kind_t kind;
    bool bf16, graphs, autotune, async, device;
    learner_t *l;
    float loss[S_STEPS];
    float *params, *m, *v, *rm, *rv, *eval_logits;
    exec_stats_t stats;
} s_run_t;

static void s_lr(learner_t *l, int k) { learner_set_hypers(l, 1e-4 * (1 + k), 0.9 - 0.02 * k); }

static learner_batch_t s_lbatch(const s_batch_t *b, int k)
{
    learner_batch_t lb = {.x = b->x, .y = b->y, .n = S_BATCHES[k].n, .h = S_BATCHES[k].h,
                          .w = S_BATCHES[k].w};
    if (S_BATCHES[k].mixup) {
        lb.y_mix = b->ymix;
        lb.lam = b->lam;
    }
    return lb;
}

static void s_check_cuda(cudaError_t rc, const char *what)
{
    NF_CHECK(rc == cudaSuccess, "%s: %s", what, cudaGetErrorString(rc));
}

static void s_train(s_run_t *r, const s_batch_t *batches, const xresnet_t *net0, const float *p0,
                    const float *rm0, const float *rv0)
{
    learner_config_t c = learner_default_config("xresnet18", 10);
    c.backend = r->kind;
    c.bf16 = r->bf16;
    c.no_graphs = !r->graphs;
    c.no_autotune = !r->autotune;
    c.dropout = 0.25f;
    c.ls_eps = 0.1f;
    c.seed = 5;
    r->l = learner_new(&c);
    if (!r->l) t_skip("the %s learner could not start (no usable GPU)", r->name);
    exec_state_t st = {.params = (float *)p0, .run_mean = (float *)rm0, .run_var = (float *)rv0};
    learner_state_write(r->l, &st);

    // D, E: a two-slot device ring fed by a producer stream, as augment feeds the trainer
    void *ring[2] = {NULL, NULL};
    cudaEvent_t ready[2], done[2];
    cudaStream_t prod = NULL;
    const size_t slot_bytes = (size_t)S_MAXN * 40 * 40 * 3 * sizeof(float);
    if (r->device) {
        s_check_cuda(cudaStreamCreateWithFlags(&prod, cudaStreamNonBlocking), "stream");
        for (int i = 0; i < 2; i++) {
            s_check_cuda(cudaMalloc(&ring[i], slot_bytes), "cudaMalloc");
            s_check_cuda(cudaEventCreateWithFlags(&ready[i], cudaEventDisableTiming), "event");
            s_check_cuda(cudaEventCreateWithFlags(&done[i], cudaEventDisableTiming), "event");
            s_check_cuda(cudaEventRecord(done[i], prod), "record");
        }
    }
    int collected = 0;
    for (int k = 0; k < S_STEPS; k++) {
        s_lr(r->l, k);
        learner_batch_t lb = s_lbatch(&batches[k], k);
        if (r->device) {
            const int s = k % 2;
            const size_t bytes = (size_t)lb.n * lb.h * lb.w * 3 * sizeof(float);
            // the slot is written only once the step that read it last is done with it
            s_check_cuda(cudaStreamWaitEvent(prod, done[s], 0), "wait");
            s_check_cuda(cudaMemcpyAsync(ring[s], lb.x, bytes, cudaMemcpyHostToDevice, prod), "copy");
            s_check_cuda(cudaEventRecord(ready[s], prod), "record");
            s_check_cuda(cudaStreamSynchronize(prod), "sync");  // lb.x is pageable
            lb.x = NULL;
            lb.dev = (exec_dev_images_t){.x = ring[s], .dtype = KDTYPE_F32, .ready = ready[s],
                                         .done = done[s]};
        }
        if (r->async) {
            if (learner_train_pending(r->l) == LEARNER_MAX_INFLIGHT)
                T_CHECK(learner_train_collect(r->l, &r->loss[collected++]) == 1, "collect");
            T_CHECK(learner_train_submit(r->l, &lb) == 0, "%s: submit step %d", r->name, k);
        } else {
            T_CHECK(learner_train_step(r->l, &lb, &r->loss[collected++]) == 0, "%s: step %d",
                    r->name, k);
        }
    }
    while (collected < S_STEPS && learner_train_collect(r->l, &r->loss[collected])) collected++;
    T_CHECK(collected == S_STEPS && learner_train_pending(r->l) == 0, "%s: %d losses collected",
            r->name, collected);
    if (r->device) {
        for (int i = 0; i < 2; i++) {
            s_check_cuda(cudaEventSynchronize(done[i]), "done event");
            s_check_cuda(cudaFree(ring[i]), "free");
            s_check_cuda(cudaEventDestroy(ready[i]), "event");
            s_check_cuda(cudaEventDestroy(done[i]), "event");
        }
        s_check_cuda(cudaStreamDestroy(prod), "stream");
    }
    // eval: 5 images at the 32 px plan (padded to the planned 8)
    learner_batch_t eb = s_lbatch(&batches[0], 0);
    eb.n = 5;
    r->eval_logits = nf_xmalloc(5 * 10 * sizeof(float));
    learner_eval_t ev = {0};
    T_CHECK(learner_eval_batch(r->l, &eb, &ev) == 0, "%s: eval", r->name);
    memcpy(r->eval_logits, learner_logits(r->l), 5 * 10 * sizeof(float));
    const size_t np = net0->n_param_floats, nb = net0->n_bn_floats;
    r->params = nf_xmalloc(np * 4), r->m = nf_xmalloc(np * 4), r->v = nf_xmalloc(np * 4);
    r->rm = nf_xmalloc(nb * 4), r->rv = nf_xmalloc(nb * 4);
    exec_state_t out = {r->params, r->rm, r->rv, r->m, r->v};
    learner_state_read(r->l, &out);
    r->stats = learner_exec_stats(r->l);
    printf("%s: losses", r->name);
    for (int k = 0; k < S_STEPS; k++) printf(" %.6f", (double)r->loss[k]);
    printf("; %d plans, %d graphs, %lld replays, %lld eager runs, %d tuned convs, plan %.2f s\n",
           r->stats.plans, r->stats.graphs, (long long)r->stats.graph_launches,
           (long long)r->stats.eager_runs, r->stats.tuned_convs, r->stats.plan_s);
}

typedef struct {
    double fwd;     // losses and eval logits: relative to the largest value
    double upd;     // weights: mean |diff| in units of the summed lr (max: 2 summed lr)
    double state;   // Adam's second moment and BN running statistics, relative
} s_tol_t;

// Sum of the lr of the S_STEPS steps (s_lr).
static double s_lr_sum(void)
{
    double t = 0;
    for (int k = 0; k < S_STEPS; k++) t += 1e-4 * (1 + k);
    return t;
}

static void s_compare(const s_run_t *a, const s_run_t *b, const xresnet_t *net, s_tol_t tol)
{
    char what[160];
    for (int k = 0; k < S_STEPS; k++) {
        snprintf(what, sizeof what, "%s vs %s: loss of step %d", a->name, b->name, k);
        t_close_f32(what, &a->loss[k], &b->loss[k], 1, 0, tol.fwd);
    }
    snprintf(what, sizeof what, "%s vs %s: eval logits", a->name, b->name);
    double mx = 0;
    for (int i = 0; i < 50; i++) mx = fmax(mx, fabs(b->eval_logits[i]));
    t_close_f32(what, a->eval_logits, b->eval_logits, 50, tol.fwd * mx, tol.fwd);
    // Adam moves an element whose gradient is near eps by up to lr either way
    // on rounding-level gradient differences: a bound on every weight and a
    // tight one on the mean (a wrong step, a stale lr, is off by ~lr everywhere)
    const double lr = s_lr_sum();
    double maxd = 0, sumd = 0;
    for (size_t i = 0; i < net->n_param_floats; i++) {
        const double d = fabs((double)a->params[i] - b->params[i]);
        if (!(d <= maxd)) maxd = d;
        sumd += d;
    }
    const double meand = sumd / (double)net->n_param_floats;
    T_CHECK(maxd <= 2 * lr && meand <= tol.upd * lr,
            "%s vs %s: weights max |diff| %.3g, mean %.3g (summed lr %.3g, mean bound %.3g)",
            a->name, b->name, maxd, meand, lr, tol.upd * lr);
    printf("%s vs %s: weights max |diff| %.3g, mean |diff| %.3g (%.3g summed lr)\n", a->name,
           b->name, maxd, meand, meand / lr);
    snprintf(what, sizeof what, "%s vs %s: Adam sqr_avg", a->name, b->name);
    mx = 0;
    for (size_t i = 0; i < net->n_param_floats; i++) mx = fmax(mx, fabs(b->v[i]));
    t_close_f32(what, a->v, b->v, net->n_param_floats, tol.state * mx, tol.state);
    snprintf(what, sizeof what, "%s vs %s: running var", a->name, b->name);
    t_close_f32(what, a->rv, b->rv, net->n_bn_floats, tol.state, tol.state);
    snprintf(what, sizeof what, "%s vs %s: running mean", a->name, b->name);
    t_close_f32(what, a->rm, b->rm, net->n_bn_floats, tol.state, tol.state);
}

int main(void)
{
    if (!exec_backend(EXEC_CUDA)) t_skip("this build has no cuda executor (built without nvcc)");
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1)
        t_skip("no usable CUDA device (cudaGetDeviceCount reports %d)", ndev);
    xresnet_config_t xc = {.arch = "xresnet18", .n_out = 10, .c_in = 3, .dropout = 0.25f};
    xresnet_t *net = xresnet_new(&xc);
    const size_t np = net->n_param_floats, nb = net->n_bn_floats;
    float *p0 = nf_xmalloc(np * 4), *rm0 = nf_xmalloc(nb * 4), *rv0 = nf_xmalloc(nb * 4);
    xresnet_init_pattern(net, p0, rm0, rv0);
    s_batch_t batches[S_STEPS];
    for (int k = 0; k < S_STEPS; k++) s_make_batch(&batches[k], k);

    s_run_t runs[] = {
        {.name = "A ref", .kind = EXEC_REF},
        {.name = "B cuda f32 eager", .kind = EXEC_CUDA},
        {.name = "C cuda f32 graphs async", .kind = EXEC_CUDA, .graphs = true, .async = true},
        {.name = "D cuda f32 graphs device ring", .kind = EXEC_CUDA, .graphs = true,
         .async = true, .device = true},
        {.name = "E cuda bf16 graphs autotuned", .kind = EXEC_CUDA, .bf16 = true, .graphs = true,
         .autotune = true, .async = true, .device = true},
    };
    const int n_runs = (int)(sizeof runs / sizeof *runs);
    for (int i = 0; i < n_runs; i++) s_train(&runs[i], batches, net, p0, rm0, rv0);

    // fp32 summation orders (cuDNN, our reductions) against the ref; graphs,
    // queued steps and device images against eager to rounding; bf16 loosely
    const s_tol_t fp32 = {1e-3, 5e-2, 1e-3}, same = {1e-6, 1e-4, 1e-6}, bf16 = {5e-2, 0.3, 5e-2};
    s_compare(&runs[1], &runs[0], net, fp32);
    s_compare(&runs[2], &runs[1], net, same);
    s_compare(&runs[3], &runs[2], net, same);
    s_compare(&runs[4], &runs[0], net, bf16);
    T_CHECK(runs[1].stats.graphs == 0 && runs[1].stats.graph_launches == 0,
            "no graphs when disabled");
    for (int i = 2; i < n_runs; i++) {
        // train graphs at 32 and 40 px (Mixup on and off), the eval graph is
        // only captured on a second eval run
        T_CHECK(runs[i].stats.graphs >= 2 && runs[i].stats.graph_launches >= 1,
                "%s: %d graphs, %lld replays", runs[i].name, runs[i].stats.graphs,
                (long long)runs[i].stats.graph_launches);
        T_CHECK(runs[i].stats.plans == 2, "%s: %d plans for two shapes", runs[i].name,
                runs[i].stats.plans);
    }
    T_CHECK(runs[4].stats.tuned_convs > 0, "autotuned convolutions");
    for (int i = 0; i < n_runs; i++) {
        learner_destroy(&runs[i].l);
        free(runs[i].params), free(runs[i].m), free(runs[i].v), free(runs[i].rm);
        free(runs[i].rv), free(runs[i].eval_logits);
    }
    for (int k = 0; k < S_STEPS; k++) free(batches[k].x);
    free(p0), free(rm0), free(rv0);
    xresnet_destroy(&net);
    return t_done();
}
