/*
 * exec_cuda.c: the CUDA executor (HAVE_CUDA builds only), the full-speed GPU
 * trainer behind the executor table (exec.h).
 *
 * Storage: activations and their gradients in the executor's dtype (bf16 for
 * training, f32 for tight parity tests), NHWC; conv and linear weights read
 * as a bf16 copy of the fp32 master weights, which Adam rewrites as it
 * updates; every BatchNorm vector, master weight, Adam moment and the loss
 * in fp32. Layer gradients land where Adam reads them: conv and linear
 * weight gradients in one flat bf16 buffer, the others in the fp32 one, and
 * a per-element flag tells Adam which (kernels/adam.h, adam_flat_step).
 *
 * A plan (one per batch shape, a few kept) holds:
 *  - a program of fused steps built from the op list: ConvLayer's BN + ReLU
 *    is one bnact op; the last BN of a ResBlock's conv path is deferred to
 *    the residual join and fused with it (y = ReLU(bn(x) + shortcut), the BN
 *    output is never stored); pools, head and loss as they are;
 *  - a backward schedule: which gradient write overwrites and which adds
 *    (a block input feeds two paths: the second contribution is accumulated
 *    in place by cuDNN's beta = 1 or bnact's flags, no temporary);
 *  - every buffer of the shape in one device allocation;
 *  - autotuned convolution algorithms (cudnnFind*Ex, once per shape, on the
 *    plan's own buffers filled with random values), and the workspace;
 *  - CUDA graphs, one per kind of run (train step, eval forward) and loss
 *    setting: the first run of a kind is eager (it lets cuDNN and cuBLAS do
 *    their lazy set-up), the second is captured, later ones replay it.
 * Progressive resizing therefore costs one plan, one tuning and one capture
 * per size; going back to a kept size costs nothing.
 *
 * A queued step (step_submit): wait for the input's event, bring the images
 * into the plan's input buffer (device copy or cast; host images through a
 * pinned staging slot), copy the step's small host inputs (labels, Mixup
 * weights, Adam's scalar factors, the dropout index) from a pinned slot to
 * the device, launch the graph (forward, loss, backward, Adam), copy the
 * loss and logits back into the pinned slot and record an event. No host
 * synchronisation: step_wait() waits for that event only.
 *
 * The host interface of exec.h (forward/backward/adam_step with host
 * buffers) runs the same program eagerly and synchronises; tests and the
 * generic learner path use it.
 */
#include "exec.h"

#include "adam.h"
#include "adaptive_avgpool.h"
#include "add.h"
#include "avgpool2d.h"
#include "bnact.h"
#include "cast.h"
#include "check.h"
#include "conv2d.h"
#include "cuda_check.h"
#include "cuda_ctx.h"
#include "dropout.h"
#include "fill.h"
#include "kdtype.h"
#include "linear.h"
#include "log.h"
#include "maxpool2d.h"
#include "relu.h"
#include "timeutil.h"
#include "xent.h"

#include <stdlib.h>
#include <string.h>

#define S_MAX_PLANS 4       // batch shapes kept (train size, eval size, a partial batch, ...)
#define S_MAX_GRAPHS 4      // graphs kept per plan
#define S_ALIGN 256         // byte alignment of every buffer in a plan's arena
#define S_TUNE_WS ((size_t)1 << 30)  // workspace offered to algorithms while autotuning

typedef enum {
    S_CONV,
    S_BNACT,     // BN [+ residual join] [+ ReLU]
    S_ADD_RELU,  // an unfused residual join (not produced for xresnet)
    S_MAXPOOL,
    S_AVGPOOL,
    S_GAP,
    S_DROPOUT,
    S_LINEAR
} s_kind_t;

typedef struct {
    s_kind_t kind;
    int op;            // the xresnet op (the BN op for a fused join)
    int in, res, out;  // values: input, residual / second input (-1), output
    bool relu;
    // backward: how the gradient of `in` / `res` is written
    bool acc_in, acc_res;  // add to what is there (the value's second consumer)
    bool tmp_in;           // the op cannot add: write into tmp, then add
} s_step_t;

// The small per-step inputs that live on the device and that a graph reads.
typedef struct {
    adam_scalars_t adam;
    uint64_t dropout_index;
} s_consts_t;

// What selects a graph of a plan.
typedef struct {
    bool train, mixup;
    float smoothing;
    uint64_t dropout_seed;
} s_gkey_t;

typedef struct {
    s_gkey_t key;
    int runs;               // runs of this kind so far
    cudaGraphExec_t exec;   // captured at the second run (NULL before / without graphs)
    uint64_t last_use;
} s_graph_t;

typedef struct {
    int n, h, w;
    uint64_t last_use;
    xresnet_shape_t *shapes;  // (n_values)
    s_step_t *steps;          // (n_steps)
    int n_steps;
    int logits;               // value of the logits
    char *arena;              // one device allocation holding everything below
    size_t arena_bytes;
    void **data, **diff;      // (n_values) dtype; NULL when not materialised
    float **bn_save;          // (n_ops) BN: saved mean and invstd (2C)
    int32_t **argmax;         // (n_ops) max pool
    uint8_t **keep;           // (n_ops) dropout mask
    void *tmp;                // dtype, the largest value: a contribution that cannot be added in place
    float *x_f32;             // (N, H, W, C_in) f32 staging of host images (bf16 executors)
    int32_t *d_y, *d_ymix;    // (N)
    float *d_lam;             // (N)
    float *d_loss;            // (1)
    s_graph_t graphs[S_MAX_GRAPHS];
} s_plan_t;

// A pinned host slot of one queued step.
typedef struct {
    int64_t ticket;  // -1 when free
    cudaEvent_t done;
    s_consts_t *consts;  // pinned
    int32_t *y, *ymix;   // pinned (cap)
    float *lam;          // pinned (cap)
    float *loss;         // pinned (1)
    void *logits;        // pinned (cap * n_out) in dtype
    float *x;            // pinned (x_cap) host images
    int cap;             // rows
    size_t x_cap;        // floats
    int n;               // rows of the step
} s_slot_t;

struct exec_t {
    exec_config_t cfg;
    const xresnet_t *net;
    cuda_ctx_t *ctx;
    kdtype_t dtype;
    size_t esz;
    // model state (xresnet.h layouts)
    float *params, *grads, *adam_m, *adam_v, *run_mean, *run_var;  // fp32
    uint16_t *params_lp, *grads_lp;  // bf16 weight copy, bf16 weight gradients (bf16 only)
    uint8_t *flags;                  // (n_param_floats) ADAM_FLAG_*
    uint8_t *flags_host;
    s_consts_t *d_consts;
    // plans
    s_plan_t *plans[S_MAX_PLANS];
    s_plan_t *cur;
    uint64_t clock;
    // queued steps
    s_slot_t slots[EXEC_MAX_INFLIGHT];
    int64_t next_ticket;
    // host scratch of the synchronous interface
    s_consts_t *h_consts;  // pinned
    void *h_buf;           // pinned, h_cap elements of max(f32, dtype)
    size_t h_cap;
    exec_stats_t stats;
};

// ---------------------------------------------------------------------------
// small helpers

static size_t s_align(size_t b) { return (b + S_ALIGN - 1) / S_ALIGN * S_ALIGN; }

static void *s_dalloc(size_t bytes)
{
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 16));
    CUDA_CHECK(cudaMemset(p, 0, bytes ? bytes : 16));
    return p;
}

static void s_dfree(void *p)
{
    if (p) CUDA_CHECK(cudaFree(p));
}

static void *s_halloc(size_t bytes)
{
    void *p = NULL;
    CUDA_CHECK(cudaMallocHost(&p, bytes ? bytes : 16));
    memset(p, 0, bytes ? bytes : 16);
    return p;
}

static void s_hfree(void *p)
{
    if (p) CUDA_CHECK(cudaFreeHost(p));
}

static size_t s_count(const exec_t *e, const s_plan_t *pl, int v)
{
    const xresnet_shape_t *s = &pl->shapes[v];
    return (size_t)pl->n * s->c * s->h * s->w;
}

static void *s_weight(const exec_t *e, int param)
{
    const size_t off = e->net->params[param].offset;
    return e->params_lp ? (void *)(e->params_lp + off) : (void *)(e->params + off);
}

// Where a conv/linear weight gradient goes: the flat bf16 buffer or the fp32 one.
static void *s_wgrad(const exec_t *e, int param)
{
    const size_t off = e->net->params[param].offset;
    return e->grads_lp ? (void *)(e->grads_lp + off) : (void *)(e->grads + off);
}

static float *s_param(const exec_t *e, int param) { return e->params + e->net->params[param].offset; }
static float *s_grad(const exec_t *e, int param) { return e->grads + e->net->params[param].offset; }

// ---------------------------------------------------------------------------
// op parameters on a plan

static conv2d_params_t s_conv_params(const exec_t *e, const s_plan_t *pl, const xresnet_op_t *op)
{
    const xresnet_shape_t *si = &pl->shapes[op->in0];
    return (conv2d_params_t){.n = pl->n, .h = si->h, .w = si->w, .c_in = op->c_in,
                             .c_out = op->c_out, .kh = op->k, .kw = op->k,
                             .stride = op->stride, .pad = op->pad, .dtype = e->dtype};
}

static pool2d_params_t s_pool_params(const exec_t *e, const s_plan_t *pl, const xresnet_op_t *op)
{
    const xresnet_shape_t *si = &pl->shapes[op->in0];
    return (pool2d_params_t){.n = pl->n, .h = si->h, .w = si->w, .c = si->c, .kh = op->k,
                             .kw = op->k, .stride = op->stride, .pad = op->pad,
                             .ceil_mode = op->kind == XRESNET_OP_AVGPOOL,
                             .count_include_pad = true, .dtype = e->dtype};
}

static bnact_params_t s_bn_params(const exec_t *e, const s_plan_t *pl, const s_step_t *st)
{
    const xresnet_shape_t *si = &pl->shapes[st->in];
    bnact_params_t p = bnact_default_params(pl->n, si->h, si->w, si->c);
    p.relu = st->relu;
    p.residual = st->res >= 0;
    p.accumulate_dx = st->acc_in;
    p.accumulate_dr = st->acc_res;
    p.dtype = e->dtype;
    return p;
}

static adaptive_avgpool_params_t s_gap_params(const exec_t *e, const s_plan_t *pl, int in)
{
    const xresnet_shape_t *si = &pl->shapes[in];
    return (adaptive_avgpool_params_t){.n = pl->n, .h = si->h, .w = si->w, .c = si->c,
                                       .dtype = e->dtype};
}

// ---------------------------------------------------------------------------
// program

// The fused step list of the op list (see the top of the file).
static int s_build_steps(const xresnet_t *net, s_step_t *steps)
{
    int *consumers = nf_xcalloc((size_t)net->n_values, sizeof(int));
    int *producer = nf_xmalloc((size_t)net->n_values * sizeof(int));
    for (int v = 0; v < net->n_values; v++) producer[v] = -1;
    for (int i = 0; i < net->n_ops; i++) {
        const xresnet_op_t *op = &net->ops[i];
        consumers[op->in0]++;
        if (op->in1 >= 0) consumers[op->in1]++;
        producer[op->out] = i;
    }
    bool *deferred = nf_xcalloc((size_t)net->n_ops, sizeof(bool));
    int n = 0;
    for (int i = 0; i < net->n_ops; i++) {
        const xresnet_op_t *op = &net->ops[i];
        s_step_t st = {.op = i, .in = op->in0, .res = -1, .out = op->out};
        switch (op->kind) {
        case XRESNET_OP_CONV: st.kind = S_CONV; break;
        case XRESNET_OP_BN: {
            // the conv path's last BN: fused into the join that consumes it
            bool fuse = false;
            if (!op->relu && consumers[op->out] == 1)
                for (int j = i + 1; j < net->n_ops; j++)
                    if (net->ops[j].kind == XRESNET_OP_ADD_RELU && net->ops[j].in0 == op->out)
                        fuse = true;
            if (fuse) {
                deferred[i] = true;
                continue;
            }
            st.kind = S_BNACT;
            st.relu = op->relu;
            break;
        }
        case XRESNET_OP_ADD_RELU: {
            const int bn = producer[op->in0];
            if (bn >= 0 && deferred[bn]) {
                st.kind = S_BNACT;
                st.op = bn;
                st.in = net->ops[bn].in0;
                st.res = op->in1;
                st.relu = true;
            } else {
                st.kind = S_ADD_RELU;
                st.res = op->in1;
            }
            break;
        }
        case XRESNET_OP_MAXPOOL: st.kind = S_MAXPOOL; break;
        case XRESNET_OP_AVGPOOL: st.kind = S_AVGPOOL; break;
        case XRESNET_OP_GAP: st.kind = S_GAP; break;
        case XRESNET_OP_DROPOUT: st.kind = S_DROPOUT; break;
        case XRESNET_OP_LINEAR: st.kind = S_LINEAR; break;
        }
        steps[n++] = st;
    }
    free(consumers);
    free(producer);
    free(deferred);
    return n;
}

// Backward schedule: walking the steps in reverse, the first gradient write
// into a value overwrites it, later ones add (in place where the op can).
static void s_schedule_backward(const xresnet_t *net, s_step_t *steps, int n_steps)
{
    bool *written = nf_xcalloc((size_t)net->n_values, sizeof(bool));
    for (int k = n_steps - 1; k >= 0; k--) {
        s_step_t *st = &steps[k];
        if (st->in > 0) {
            st->acc_in = written[st->in];
            const bool can_add = st->kind == S_CONV || st->kind == S_BNACT ||
                                 st->kind == S_ADD_RELU;
            st->tmp_in = st->acc_in && !can_add;
            written[st->in] = true;
        }
        if (st->res >= 0) {
            st->acc_res = written[st->res];
            written[st->res] = true;
        }
    }
    free(written);
}

// ---------------------------------------------------------------------------
// plans

static void s_graph_drop(s_graph_t *g)
{
    if (g->exec) CUDA_CHECK(cudaGraphExecDestroy(g->exec));
    memset(g, 0, sizeof *g);
}

static void s_plan_free(exec_t *e, s_plan_t **pl_p)
{
    s_plan_t *pl = *pl_p;
    if (!pl) return;
    cuda_ctx_sync(e->ctx);
    for (int g = 0; g < S_MAX_GRAPHS; g++) s_graph_drop(&pl->graphs[g]);
    s_dfree(pl->arena);
    free(pl->shapes);
    free(pl->steps);
    free(pl->data);
    free(pl->diff);
    free(pl->bn_save);
    free(pl->argmax);
    free(pl->keep);
    e->stats.device_bytes -= pl->arena_bytes;
    free(pl);
    *pl_p = NULL;
}

// The next buffer of a plan's arena: NULL while sizing (base == NULL).
static void *s_take(char *base, size_t *off, size_t bytes)
{
    void *p = base ? (void *)(base + *off) : NULL;
    *off += s_align(bytes);
    return p;
}

// Carves the plan's buffers out of one allocation: first a pass that only
// sums sizes (base == NULL), then one that sets the pointers.
static size_t s_plan_layout(exec_t *e, s_plan_t *pl, char *base)
{
    const xresnet_t *net = e->net;
    size_t off = 0;
    bool *stored = nf_xcalloc((size_t)net->n_values, sizeof(bool));
    stored[0] = true;
    for (int k = 0; k < pl->n_steps; k++) stored[pl->steps[k].out] = true;
    size_t biggest = 0;
    for (int v = 0; v < net->n_values; v++) {
        if (!stored[v]) continue;
        const size_t c = s_count(e, pl, v);
        if (c > biggest) biggest = c;
        pl->data[v] = s_take(base, &off, c * e->esz);
        if (v > 0) pl->diff[v] = s_take(base, &off, c * e->esz);
    }
    for (int k = 0; k < pl->n_steps; k++) {
        const s_step_t *st = &pl->steps[k];
        const size_t c_out = (size_t)net->ops[st->op].c_out;
        if (st->kind == S_BNACT) pl->bn_save[st->op] = s_take(base, &off, 2 * c_out * 4);
        if (st->kind == S_MAXPOOL) pl->argmax[st->op] = s_take(base, &off, s_count(e, pl, st->out) * 4);
        if (st->kind == S_DROPOUT) pl->keep[st->op] = s_take(base, &off, s_count(e, pl, st->out));
    }
    pl->tmp = s_take(base, &off, biggest * e->esz);
    pl->x_f32 = s_take(base, &off, s_count(e, pl, 0) * sizeof(float));
    pl->d_y = s_take(base, &off, (size_t)pl->n * 4);
    pl->d_ymix = s_take(base, &off, (size_t)pl->n * 4);
    pl->d_lam = s_take(base, &off, (size_t)pl->n * 4);
    pl->d_loss = s_take(base, &off, 4);
    free(stored);
    return off;
}

// Autotunes every convolution of the plan on its own buffers, then reserves
// the workspace every op of the plan needs.
static void s_plan_tune(exec_t *e, s_plan_t *pl)
{
    size_t ws = 0;
    if (!e->cfg.no_autotune) cuda_ctx_reserve_workspace(e->ctx, S_TUNE_WS);
    for (int k = 0; k < pl->n_steps; k++) {
        const s_step_t *st = &pl->steps[k];
        const xresnet_op_t *op = &e->net->ops[st->op];
        size_t need = 0;
        if (st->kind == S_CONV) {
            conv2d_params_t p = s_conv_params(e, pl, op);
            if (e->cfg.no_autotune) {
                need = conv2d_workspace_bytes_cuda(&p, e->ctx);
            } else {
                conv2d_tune_buffers_t b = {.y = pl->data[st->out], .x = pl->data[st->in],
                                           .w = s_weight(e, op->param), .dy = pl->diff[st->out],
                                           .dx = pl->tmp, .dw = s_wgrad(e, op->param)};
                need = conv2d_autotune_cuda(&p, &b, S_TUNE_WS, e->ctx);
            }
        } else if (st->kind == S_BNACT) {
            bnact_params_t p = s_bn_params(e, pl, st);
            need = bnact_workspace_bytes_cuda(&p);
        }
        if (need > ws) ws = need;
    }
    cuda_ctx_reserve_workspace(e->ctx, ws);
}

static s_plan_t *s_plan_new(exec_t *e, int n, int h, int w, xresnet_shape_t *shapes)
{
    const double t0 = nf_now_s();
    const xresnet_t *net = e->net;
    s_plan_t *pl = nf_xcalloc(1, sizeof *pl);
    pl->n = n, pl->h = h, pl->w = w;
    pl->shapes = shapes;
    pl->steps = nf_xcalloc((size_t)net->n_ops, sizeof *pl->steps);
    pl->n_steps = s_build_steps(net, pl->steps);
    s_schedule_backward(net, pl->steps, pl->n_steps);
    pl->logits = net->ops[net->n_ops - 1].out;
    pl->data = nf_xcalloc((size_t)net->n_values, sizeof(void *));
    pl->diff = nf_xcalloc((size_t)net->n_values, sizeof(void *));
    pl->bn_save = nf_xcalloc((size_t)net->n_ops, sizeof(float *));
    pl->argmax = nf_xcalloc((size_t)net->n_ops, sizeof(int32_t *));
    pl->keep = nf_xcalloc((size_t)net->n_ops, sizeof(uint8_t *));
    pl->arena_bytes = s_plan_layout(e, pl, NULL);
    pl->arena = s_dalloc(pl->arena_bytes);
    s_plan_layout(e, pl, pl->arena);
    // realistic contents for the timings of the autotuner (zeros run faster)
    fill_params_t fp = {.count = pl->arena_bytes / e->esz, .lo = -1, .hi = 1, .seed = 1,
                        .dtype = e->dtype};
    fill_uniform_cuda(pl->arena, &fp, e->ctx);
    s_plan_tune(e, pl);
    CUDA_CHECK(cudaMemsetAsync(pl->arena, 0, pl->arena_bytes, e->ctx->stream));
    cuda_ctx_sync(e->ctx);
    e->stats.plans++;
    e->stats.device_bytes += pl->arena_bytes;
    e->stats.plan_s += nf_now_s() - t0;
    nf_log_info("cuda: planned %s for %d x %dx%d: %d fused steps, %.1f MB, %.2f s", net->arch, n,
                h, w, pl->n_steps, (double)pl->arena_bytes / 1e6, nf_now_s() - t0);
    return pl;
}

static int s_plan(exec_t *e, int n, int h, int w)
{
    e->clock++;
    for (int i = 0; i < S_MAX_PLANS; i++) {
        s_plan_t *pl = e->plans[i];
        if (pl && pl->n == n && pl->h == h && pl->w == w) {
            pl->last_use = e->clock;
            e->cur = pl;
            return 0;
        }
    }
    xresnet_shape_t *shapes = nf_xmalloc((size_t)e->net->n_values * sizeof(*shapes));
    if (n < 1 || xresnet_shapes(e->net, h, w, shapes) != 0) {
        nf_log_error("cuda: cannot plan %s for %d images of %dx%d", e->net->arch, n, h, w);
        free(shapes);
        return -1;
    }
    int slot = 0;
    for (int i = 0; i < S_MAX_PLANS; i++) {
        if (!e->plans[i]) {
            slot = i;
            break;
        }
        if (e->plans[i]->last_use < e->plans[slot]->last_use) slot = i;
    }
    s_plan_free(e, &e->plans[slot]);
    e->plans[slot] = s_plan_new(e, n, h, w, shapes);
    e->plans[slot]->last_use = e->clock;
    e->cur = e->plans[slot];
    return 0;
}

// ---------------------------------------------------------------------------
// forward and backward of the current plan (enqueued on the stream)

static void s_forward_ops(exec_t *e, bool train, uint64_t dropout_seed)
{
    const s_plan_t *pl = e->cur;
    const xresnet_t *net = e->net;
    cuda_ctx_t *ctx = e->ctx;
    for (int k = 0; k < pl->n_steps; k++) {
        const s_step_t *st = &pl->steps[k];
        const xresnet_op_t *op = &net->ops[st->op];
        const void *x = pl->data[st->in];
        void *y = pl->data[st->out];
        switch (st->kind) {
        case S_CONV: {
            conv2d_params_t p = s_conv_params(e, pl, op);
            conv2d_forward_cuda(y, x, s_weight(e, op->param), &p, ctx);
            break;
        }
        case S_BNACT: {
            bnact_params_t p = s_bn_params(e, pl, st);
            const xresnet_bn_t *bn = &net->bns[op->bn];
            const void *r = st->res >= 0 ? pl->data[st->res] : NULL;
            if (train)
                bnact_forward_train_cuda(y, pl->bn_save[st->op], pl->bn_save[st->op] + op->c_out,
                                         e->run_mean + bn->offset, e->run_var + bn->offset, x, r,
                                         s_param(e, op->param), s_param(e, op->param + 1), &p,
                                         ctx);
            else
                bnact_forward_eval_cuda(y, x, r, s_param(e, op->param), s_param(e, op->param + 1),
                                        e->run_mean + bn->offset, e->run_var + bn->offset, &p,
                                        ctx);
            break;
        }
        case S_ADD_RELU: {
            relu_params_t p = {.count = s_count(e, pl, st->out), .dtype = e->dtype};
            relu_add_forward_cuda(y, x, pl->data[st->res], &p, ctx);
            break;
        }
        case S_MAXPOOL: {
            pool2d_params_t p = s_pool_params(e, pl, op);
            maxpool2d_forward_cuda(y, pl->argmax[st->op], x, &p, ctx);
            break;
        }
        case S_AVGPOOL: {
            pool2d_params_t p = s_pool_params(e, pl, op);
            avgpool2d_forward_cuda(y, x, &p, ctx);
            break;
        }
        case S_GAP: {
            adaptive_avgpool_params_t p = s_gap_params(e, pl, st->in);
            adaptive_avgpool_forward_cuda(y, x, &p, ctx);
            break;
        }
        case S_DROPOUT: {
            dropout_params_t p = {.count = s_count(e, pl, st->out),
                                  .p = train ? net->cfg.dropout : 0.0f,
                                  .seed = dropout_seed, .dtype = e->dtype};
            if (p.p > 0.0f)
                dropout_forward_cuda(y, pl->keep[st->op], x, &e->d_consts->dropout_index, &p, ctx);
            else
                CUDA_CHECK(cudaMemcpyAsync(y, x, p.count * e->esz, cudaMemcpyDeviceToDevice,
                                           ctx->stream));
            break;
        }
        case S_LINEAR: {
            linear_params_t p = {.n = pl->n, .in = op->c_in, .out = op->c_out, .dtype = e->dtype};
            linear_forward_cuda(y, x, s_weight(e, op->param), s_param(e, op->param + 1), &p, ctx);
            break;
        }
        }
    }
}

// Adds tmp into the gradient of value v (an op that cannot accumulate).
static void s_add_tmp(exec_t *e, int v)
{
    add_params_t p = {.count = s_count(e, e->cur, v), .dtype = e->dtype};
    add_forward_cuda(e->cur->diff[v], e->cur->diff[v], e->cur->tmp, &p, e->ctx);
}

static void s_backward_ops(exec_t *e)
{
    const s_plan_t *pl = e->cur;
    const xresnet_t *net = e->net;
    cuda_ctx_t *ctx = e->ctx;
    for (int k = pl->n_steps - 1; k >= 0; k--) {
        const s_step_t *st = &pl->steps[k];
        const xresnet_op_t *op = &net->ops[st->op];
        void *dy = pl->diff[st->out];
        const void *x = pl->data[st->in];
        void *dx = st->in > 0 ? (st->tmp_in ? pl->tmp : pl->diff[st->in]) : NULL;
        switch (st->kind) {
        case S_CONV: {
            conv2d_params_t p = s_conv_params(e, pl, op);
            conv2d_backward_weights_cuda(s_wgrad(e, op->param), dy, x, &p, ctx);
            if (!dx) break;
            p.accumulate = st->acc_in;
            conv2d_backward_data_cuda(dx, dy, s_weight(e, op->param), &p, ctx);
            break;
        }
        case S_BNACT: {
            bnact_params_t p = s_bn_params(e, pl, st);
            bnact_backward_cuda(dx, st->res >= 0 ? pl->diff[st->res] : NULL,
                                s_grad(e, op->param), s_grad(e, op->param + 1), dy,
                                pl->data[st->out], x, s_param(e, op->param), pl->bn_save[st->op],
                                pl->bn_save[st->op] + op->c_out, &p, ctx);
            break;
        }
        case S_ADD_RELU: {
            const size_t c = s_count(e, pl, st->out);
            relu_params_t rp = {.count = c, .dtype = e->dtype};
            relu_backward_cuda(dy, dy, pl->data[st->out], &rp, ctx);
            const int ins[2] = {st->in, st->res};
            const bool acc[2] = {st->acc_in, st->acc_res};
            for (int i = 0; i < 2; i++) {
                add_params_t ap = {.count = c, .dtype = e->dtype};
                if (acc[i])
                    add_forward_cuda(pl->diff[ins[i]], pl->diff[ins[i]], dy, &ap, ctx);
                else
                    CUDA_CHECK(cudaMemcpyAsync(pl->diff[ins[i]], dy, c * e->esz,
                                               cudaMemcpyDeviceToDevice, ctx->stream));
            }
            break;
        }
        case S_MAXPOOL: {
            pool2d_params_t p = s_pool_params(e, pl, op);
            maxpool2d_backward_cuda(dx, dy, pl->argmax[st->op], &p, ctx);
            break;
        }
        case S_AVGPOOL: {
            pool2d_params_t p = s_pool_params(e, pl, op);
            avgpool2d_backward_cuda(dx, dy, &p, ctx);
            break;
        }
        case S_GAP: {
            adaptive_avgpool_params_t p = s_gap_params(e, pl, st->in);
            adaptive_avgpool_backward_cuda(dx, dy, &p, ctx);
            break;
        }
        case S_DROPOUT: {
            dropout_params_t p = {.count = s_count(e, pl, st->out), .p = net->cfg.dropout,
                                  .dtype = e->dtype};
            if (p.p > 0.0f)
                dropout_backward_cuda(dx, dy, pl->keep[st->op], &p, ctx);
            else
                CUDA_CHECK(cudaMemcpyAsync(dx, dy, p.count * e->esz, cudaMemcpyDeviceToDevice,
                                           ctx->stream));
            break;
        }
        case S_LINEAR: {
            linear_params_t p = {.n = pl->n, .in = op->c_in, .out = op->c_out, .dtype = e->dtype};
            linear_backward_cuda(dx, s_wgrad(e, op->param), s_grad(e, op->param + 1), dy, x,
                                 s_weight(e, op->param), &p, ctx);
            break;
        }
        }
        if (st->tmp_in) s_add_tmp(e, st->in);
    }
}

// The loss and its gradient on the device, from the labels in the plan.
static void s_loss_ops(exec_t *e, const s_gkey_t *key)
{
    const s_plan_t *pl = e->cur;
    xent_params_t xp = {.n = pl->n, .c = e->net->cfg.n_out, .smoothing = key->smoothing,
                        .dtype = e->dtype};
    const int32_t *ymix = key->mixup ? pl->d_ymix : NULL;
    const float *lam = key->mixup ? pl->d_lam : NULL;
    xent_forward_cuda(pl->d_loss, NULL, pl->data[pl->logits], pl->d_y, ymix, lam, &xp, e->ctx);
    xent_backward_cuda(pl->diff[pl->logits], pl->data[pl->logits], pl->d_y, ymix, lam, &xp,
                       e->ctx);
}

static void s_adam_op(exec_t *e)
{
    adam_flat_step_cuda(e->params, e->adam_m, e->adam_v, e->params_lp, e->grads, e->grads_lp,
                        e->flags, &e->d_consts->adam, e->net->n_param_floats, e->ctx);
}

// One run of a graph kind: the ops of a whole training step, or an eval forward.
static void s_run_ops(exec_t *e, const s_gkey_t *key)
{
    s_forward_ops(e, key->train, key->dropout_seed);
    if (!key->train) return;
    s_loss_ops(e, key);
    s_backward_ops(e);
    s_adam_op(e);
}

static bool s_key_eq(const s_gkey_t *a, const s_gkey_t *b)
{
    return a->train == b->train && a->mixup == b->mixup && a->smoothing == b->smoothing &&
           a->dropout_seed == b->dropout_seed;
}

// Runs a graph kind on the current plan: eager the first time, captured the
// second, replayed afterwards (or always eager with cfg.no_graphs).
static void s_run(exec_t *e, const s_gkey_t *key)
{
    s_plan_t *pl = e->cur;
    s_graph_t *g = NULL;
    for (int i = 0; i < S_MAX_GRAPHS && !g; i++)
        if (pl->graphs[i].runs > 0 && s_key_eq(&pl->graphs[i].key, key)) g = &pl->graphs[i];
    if (!g) {
        g = &pl->graphs[0];
        for (int i = 0; i < S_MAX_GRAPHS; i++) {
            if (pl->graphs[i].runs == 0) {
                g = &pl->graphs[i];
                break;
            }
            if (pl->graphs[i].last_use < g->last_use) g = &pl->graphs[i];
        }
        cuda_ctx_sync(e->ctx);  // an evicted graph may still be running
        s_graph_drop(g);
        g->key = *key;
    }
    g->last_use = ++e->clock;
    if (e->cfg.no_graphs || g->runs == 0) {
        g->runs++;
        e->stats.eager_runs++;
        s_run_ops(e, key);
        return;
    }
    cuda_ctx_t *ctx = e->ctx;
    if (!g->exec) {
        const bool dbg = ctx->debug_sync;
        ctx->debug_sync = false;  // no synchronisation may happen while capturing
        CUDA_CHECK(cudaStreamBeginCapture(ctx->stream, cudaStreamCaptureModeThreadLocal));
        s_run_ops(e, key);
        cudaGraph_t graph = NULL;
        CUDA_CHECK(cudaStreamEndCapture(ctx->stream, &graph));
        CUDA_CHECK(cudaGraphInstantiate(&g->exec, graph, 0));
        CUDA_CHECK(cudaGraphDestroy(graph));
        ctx->debug_sync = dbg;
        e->stats.graphs++;
    }
    g->runs++;
    e->stats.graph_launches++;
    CUDA_CHECK(cudaGraphLaunch(g->exec, ctx->stream));
    if (ctx->debug_sync) CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
}

// ---------------------------------------------------------------------------
// inputs

// Brings a batch's images into the plan's input buffer (enqueued): device
// images by a copy or a cast, host images (already in pinned memory) by an
// upload and, for a bf16 executor, a cast.
static void s_images_in(exec_t *e, const float *x_host, const exec_dev_images_t *dev)
{
    s_plan_t *pl = e->cur;
    cuda_ctx_t *ctx = e->ctx;
    const size_t count = s_count(e, pl, 0);
    if (!x_host) {
        NF_CHECK(dev->x, "cuda: a batch without images");
        NF_CHECK(dev->dtype == KDTYPE_F32 || dev->dtype == KDTYPE_BF16, "cuda: image dtype %d",
                 (int)dev->dtype);
        if (dev->ready) CUDA_CHECK(cudaStreamWaitEvent(ctx->stream, (cudaEvent_t)dev->ready, 0));
        cast_params_t cp = {.count = count};
        if (dev->dtype == e->dtype)
            CUDA_CHECK(cudaMemcpyAsync(pl->data[0], dev->x, count * e->esz,
                                       cudaMemcpyDeviceToDevice, ctx->stream));
        else if (dev->dtype == KDTYPE_F32)
            cast_f32_to_bf16_cuda(pl->data[0], dev->x, &cp, ctx);
        else
            cast_bf16_to_f32_cuda(pl->data[0], dev->x, &cp, ctx);
        if (dev->done) CUDA_CHECK(cudaEventRecord((cudaEvent_t)dev->done, ctx->stream));
        return;
    }
    float *dst = e->dtype == KDTYPE_F32 ? (float *)pl->data[0] : pl->x_f32;
    CUDA_CHECK(cudaMemcpyAsync(dst, x_host, count * sizeof(float), cudaMemcpyHostToDevice,
                               ctx->stream));
    if (e->dtype != KDTYPE_F32) {
        cast_params_t cp = {.count = count};
        cast_f32_to_bf16_cuda(pl->data[0], pl->x_f32, &cp, ctx);
    }
}

// Grows the pinned scratch of the synchronous interface.
static void *s_hbuf(exec_t *e, size_t elems)
{
    if (elems > e->h_cap) {
        s_hfree(e->h_buf);
        e->h_buf = s_halloc(elems * sizeof(float));
        e->h_cap = elems;
    }
    return e->h_buf;
}

// Device (dtype) -> host fp32, synchronously.
static void s_download(exec_t *e, float *dst, const void *src, size_t count)
{
    void *buf = s_hbuf(e, count);
    CUDA_CHECK(cudaMemcpyAsync(buf, src, count * e->esz, cudaMemcpyDeviceToHost, e->ctx->stream));
    cuda_ctx_sync(e->ctx);
    if (e->dtype == KDTYPE_F32) {
        memcpy(dst, buf, count * sizeof(float));
    } else {
        const uint16_t *b = buf;
        for (size_t i = 0; i < count; i++) dst[i] = kdtype_bf16_to_f32(b[i]);
    }
}

// Host fp32 -> device (dtype), synchronously.
static void s_upload(exec_t *e, void *dst, const float *src, size_t count)
{
    void *buf = s_hbuf(e, count);
    if (e->dtype == KDTYPE_F32) {
        memcpy(buf, src, count * sizeof(float));
    } else {
        uint16_t *b = buf;
        for (size_t i = 0; i < count; i++) b[i] = kdtype_f32_to_bf16(src[i]);
    }
    CUDA_CHECK(cudaMemcpyAsync(dst, buf, count * e->esz, cudaMemcpyHostToDevice, e->ctx->stream));
    cuda_ctx_sync(e->ctx);
}

static void s_consts_upload(exec_t *e, const s_consts_t *c)
{
    *e->h_consts = *c;
    CUDA_CHECK(cudaMemcpyAsync(e->d_consts, e->h_consts, sizeof *c, cudaMemcpyHostToDevice,
                               e->ctx->stream));
    cuda_ctx_sync(e->ctx);
}

// ---------------------------------------------------------------------------
// the synchronous interface (exec.h)

static void s_forward(exec_t *e, const exec_forward_t *args, float *logits)
{
    NF_CHECK(e->cur, "cuda: forward before plan");
    const s_plan_t *pl = e->cur;
    float *buf = NULL;
    if (args->x) {
        const size_t count = s_count(e, pl, 0);
        buf = s_hbuf(e, count);
        memcpy(buf, args->x, count * sizeof(float));
    }
    s_images_in(e, buf, &args->dev);
    s_gkey_t key = {.train = false};
    if (args->train) {
        // the host interface's train forward: eager, then backward() and adam_step()
        s_consts_t c = *e->h_consts;
        c.dropout_index = args->dropout_index;
        s_consts_upload(e, &c);
        e->stats.eager_runs++;
        s_forward_ops(e, true, args->dropout_seed);
    } else {
        s_run(e, &key);
    }
    s_download(e, logits, pl->data[pl->logits], (size_t)pl->n * e->net->cfg.n_out);
}

static void s_backward(exec_t *e, const float *dlogits)
{
    NF_CHECK(e->cur, "cuda: backward before plan");
    const s_plan_t *pl = e->cur;
    s_upload(e, pl->diff[pl->logits], dlogits, (size_t)pl->n * e->net->cfg.n_out);
    s_backward_ops(e);
}

static void s_adam_step(exec_t *e, const adam_params_t *hp)
{
    s_consts_t c = *e->h_consts;
    c.adam = adam_scalars(hp);
    s_consts_upload(e, &c);
    s_adam_op(e);
}

static void s_adam_reset(exec_t *e)
{
    const size_t bytes = e->net->n_param_floats * sizeof(float);
    CUDA_CHECK(cudaMemsetAsync(e->adam_m, 0, bytes, e->ctx->stream));
    CUDA_CHECK(cudaMemsetAsync(e->adam_v, 0, bytes, e->ctx->stream));
}

static void s_refresh_lp(exec_t *e)
{
    if (!e->params_lp) return;
    cast_params_t cp = {.count = e->net->n_param_floats};
    cast_f32_to_bf16_cuda(e->params_lp, e->params, &cp, e->ctx);
}

// State transfers are rare (start, checkpoints, tests): copies on the
// executor's stream, waited for.
static void s_copy(exec_t *e, void *dst, const void *src, size_t floats, enum cudaMemcpyKind kind)
{
    CUDA_CHECK(cudaMemcpyAsync(dst, src, floats * sizeof(float), kind, e->ctx->stream));
}

static void s_state_write(exec_t *e, const exec_state_t *host)
{
    const size_t np = e->net->n_param_floats, nb = e->net->n_bn_floats;
    cuda_ctx_sync(e->ctx);
    if (host->params) s_copy(e, e->params, host->params, np, cudaMemcpyHostToDevice);
    if (host->adam_m) s_copy(e, e->adam_m, host->adam_m, np, cudaMemcpyHostToDevice);
    if (host->adam_v) s_copy(e, e->adam_v, host->adam_v, np, cudaMemcpyHostToDevice);
    if (host->run_mean) s_copy(e, e->run_mean, host->run_mean, nb, cudaMemcpyHostToDevice);
    if (host->run_var) s_copy(e, e->run_var, host->run_var, nb, cudaMemcpyHostToDevice);
    if (host->params) s_refresh_lp(e);
    cuda_ctx_sync(e->ctx);
}

static void s_state_read(exec_t *e, const exec_state_t *host)
{
    const size_t np = e->net->n_param_floats, nb = e->net->n_bn_floats;
    cuda_ctx_sync(e->ctx);
    if (host->params) s_copy(e, host->params, e->params, np, cudaMemcpyDeviceToHost);
    if (host->adam_m) s_copy(e, host->adam_m, e->adam_m, np, cudaMemcpyDeviceToHost);
    if (host->adam_v) s_copy(e, host->adam_v, e->adam_v, np, cudaMemcpyDeviceToHost);
    if (host->run_mean) s_copy(e, host->run_mean, e->run_mean, nb, cudaMemcpyDeviceToHost);
    if (host->run_var) s_copy(e, host->run_var, e->run_var, nb, cudaMemcpyDeviceToHost);
    cuda_ctx_sync(e->ctx);
}

// The fp32 gradients: the fp32 buffer, with the bf16 weight gradients widened.
static void s_grads_read(exec_t *e, float *grads)
{
    const size_t np = e->net->n_param_floats;
    s_copy(e, grads, e->grads, np, cudaMemcpyDeviceToHost);
    cuda_ctx_sync(e->ctx);
    if (!e->grads_lp) return;
    uint16_t *lp = nf_xmalloc(np * sizeof(uint16_t) + 2);
    CUDA_CHECK(cudaMemcpyAsync(lp, e->grads_lp, np * sizeof(uint16_t), cudaMemcpyDeviceToHost,
                               e->ctx->stream));
    cuda_ctx_sync(e->ctx);
    for (size_t i = 0; i < np; i++)
        if (e->flags_host[i] & ADAM_FLAG_GRAD_BF16) grads[i] = kdtype_bf16_to_f32(lp[i]);
    free(lp);
}

// ---------------------------------------------------------------------------
// queued steps

static void s_slot_reserve(s_slot_t *s, int n, int n_out, size_t x_floats, size_t esz)
{
    if (n > s->cap) {
        s_hfree(s->y), s_hfree(s->ymix), s_hfree(s->lam), s_hfree(s->logits);
        s->cap = n;
        s->y = s_halloc((size_t)n * 4);
        s->ymix = s_halloc((size_t)n * 4);
        s->lam = s_halloc((size_t)n * 4);
        s->logits = s_halloc((size_t)n * n_out * esz);
    }
    if (x_floats > s->x_cap) {
        s_hfree(s->x);
        s->x = s_halloc(x_floats * sizeof(float));
        s->x_cap = x_floats;
    }
}

static int64_t s_step_submit(exec_t *e, const exec_step_t *st)
{
    NF_CHECK(e->cur, "cuda: step before plan");
    s_plan_t *pl = e->cur;
    cuda_ctx_t *ctx = e->ctx;
    const int64_t ticket = e->next_ticket;
    s_slot_t *slot = &e->slots[ticket % EXEC_MAX_INFLIGHT];
    NF_CHECK(slot->ticket < 0, "cuda: more than %d steps in flight", EXEC_MAX_INFLIGHT);
    const int n = pl->n, n_out = e->net->cfg.n_out;
    const bool mixup = st->y_mix && st->lam;
    const size_t x_floats = st->x ? s_count(e, pl, 0) : 0;
    s_slot_reserve(slot, n, n_out, x_floats, e->esz);
    slot->consts->adam = adam_scalars(&st->adam);
    slot->consts->dropout_index = st->dropout_index;
    memcpy(slot->y, st->y, (size_t)n * 4);
    if (mixup) {
        memcpy(slot->ymix, st->y_mix, (size_t)n * 4);
        memcpy(slot->lam, st->lam, (size_t)n * 4);
    }
    if (st->x) memcpy(slot->x, st->x, x_floats * sizeof(float));
    s_images_in(e, st->x ? slot->x : NULL, &st->dev);
    CUDA_CHECK(cudaMemcpyAsync(e->d_consts, slot->consts, sizeof(s_consts_t),
                               cudaMemcpyHostToDevice, ctx->stream));
    CUDA_CHECK(cudaMemcpyAsync(pl->d_y, slot->y, (size_t)n * 4, cudaMemcpyHostToDevice,
                               ctx->stream));
    if (mixup) {
        CUDA_CHECK(cudaMemcpyAsync(pl->d_ymix, slot->ymix, (size_t)n * 4, cudaMemcpyHostToDevice,
                                   ctx->stream));
        CUDA_CHECK(cudaMemcpyAsync(pl->d_lam, slot->lam, (size_t)n * 4, cudaMemcpyHostToDevice,
                                   ctx->stream));
    }
    const s_gkey_t key = {.train = true, .mixup = mixup, .smoothing = st->smoothing,
                          .dropout_seed = st->dropout_seed};
    s_run(e, &key);
    CUDA_CHECK(cudaMemcpyAsync(slot->loss, pl->d_loss, 4, cudaMemcpyDeviceToHost, ctx->stream));
    CUDA_CHECK(cudaMemcpyAsync(slot->logits, pl->data[pl->logits], (size_t)n * n_out * e->esz,
                               cudaMemcpyDeviceToHost, ctx->stream));
    CUDA_CHECK(cudaEventRecord(slot->done, ctx->stream));
    slot->ticket = ticket;
    slot->n = n;
    e->next_ticket++;
    return ticket;
}

static void s_step_wait(exec_t *e, int64_t ticket, float *loss, float *logits)
{
    s_slot_t *slot = &e->slots[ticket % EXEC_MAX_INFLIGHT];
    NF_CHECK(ticket >= 0 && slot->ticket == ticket, "cuda: step %lld is not in flight",
             (long long)ticket);
    CUDA_CHECK(cudaEventSynchronize(slot->done));
    *loss = *slot->loss;
    if (logits) {
        const size_t c = (size_t)slot->n * e->net->cfg.n_out;
        if (e->dtype == KDTYPE_F32) {
            memcpy(logits, slot->logits, c * sizeof(float));
        } else {
            const uint16_t *b = slot->logits;
            for (size_t i = 0; i < c; i++) logits[i] = kdtype_bf16_to_f32(b[i]);
        }
    }
    slot->ticket = -1;
}

static void s_stats(exec_t *e, exec_stats_t *out)
{
    *out = e->stats;
    int tuned = 0;
    for (int i = 0; i < S_MAX_PLANS; i++)
        if (e->plans[i] && !e->cfg.no_autotune)
            for (int k = 0; k < e->plans[i]->n_steps; k++) tuned += e->plans[i]->steps[k].kind == S_CONV;
    out->tuned_convs = tuned;
}

// ---------------------------------------------------------------------------
// lifetime

static exec_t *s_create(const exec_config_t *cfg)
{
    if (cuda_device_count() < 1) {
        nf_log_error("cuda: no usable CUDA device");
        return NULL;
    }
    cuda_ctx_config_t cc = {.device = cfg->device};
    cuda_ctx_t *ctx = cuda_ctx_new(&cc);
    if (!ctx) return NULL;
    exec_t *e = nf_xcalloc(1, sizeof(*e));
    e->cfg = *cfg;
    e->net = cfg->net;
    e->ctx = ctx;
    e->dtype = cfg->bf16 ? KDTYPE_BF16 : KDTYPE_F32;
    e->esz = kdtype_size(e->dtype);
    const xresnet_t *net = cfg->net;
    const size_t np = net->n_param_floats, nb = net->n_bn_floats;
    e->params = s_dalloc(np * sizeof(float));
    e->grads = s_dalloc(np * sizeof(float));
    e->adam_m = s_dalloc(np * sizeof(float));
    e->adam_v = s_dalloc(np * sizeof(float));
    e->run_mean = s_dalloc(nb * sizeof(float));
    e->run_var = s_dalloc(nb * sizeof(float));
    e->flags = s_dalloc(np);
    e->d_consts = s_dalloc(sizeof(s_consts_t));
    e->h_consts = s_halloc(sizeof(s_consts_t));
    e->stats.device_bytes = np * 4 * 4 + nb * 4 * 2 + np;
    if (cfg->bf16) {
        e->params_lp = s_dalloc(np * sizeof(uint16_t));
        e->grads_lp = s_dalloc(np * sizeof(uint16_t));
        e->stats.device_bytes += np * 4;
    }
    // Adam's flags: decay on conv and linear weights, whose gradients are
    // bf16 in a bf16 executor; running var 1 (PyTorch's init)
    e->flags_host = nf_xcalloc(np ? np : 1, 1);
    for (int t = 0; t < net->n_params; t++) {
        const xresnet_param_t *p = &net->params[t];
        if (!p->do_wd) continue;
        const uint8_t f = (uint8_t)(ADAM_FLAG_WD | (cfg->bf16 ? ADAM_FLAG_GRAD_BF16 : 0));
        memset(e->flags_host + p->offset, f, p->numel);
    }
    float *ones = nf_xmalloc((nb ? nb : 1) * sizeof(float));
    for (size_t i = 0; i < nb; i++) ones[i] = 1.0f;
    CUDA_CHECK(cudaMemcpy(e->flags, e->flags_host, np, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(e->run_var, ones, nb * sizeof(float), cudaMemcpyHostToDevice));
    free(ones);
    for (int i = 0; i < EXEC_MAX_INFLIGHT; i++) {
        s_slot_t *s = &e->slots[i];
        s->ticket = -1;
        CUDA_CHECK(cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming));
        s->consts = s_halloc(sizeof(s_consts_t));
        s->loss = s_halloc(sizeof(float));
    }
    return e;
}

static void s_destroy(exec_t **self_p)
{
    if (!self_p || !*self_p) return;
    exec_t *e = *self_p;
    cuda_ctx_sync(e->ctx);
    for (int i = 0; i < S_MAX_PLANS; i++) s_plan_free(e, &e->plans[i]);
    for (int i = 0; i < EXEC_MAX_INFLIGHT; i++) {
        s_slot_t *s = &e->slots[i];
        CUDA_CHECK(cudaEventDestroy(s->done));
        s_hfree(s->consts), s_hfree(s->loss), s_hfree(s->y), s_hfree(s->ymix);
        s_hfree(s->lam), s_hfree(s->logits), s_hfree(s->x);
    }
    s_dfree(e->params), s_dfree(e->grads), s_dfree(e->adam_m), s_dfree(e->adam_v);
    s_dfree(e->run_mean), s_dfree(e->run_var), s_dfree(e->flags), s_dfree(e->d_consts);
    s_dfree(e->params_lp), s_dfree(e->grads_lp);
    s_hfree(e->h_consts), s_hfree(e->h_buf);
    free(e->flags_host);
    cuda_ctx_destroy(&e->ctx);
    free(e);
    *self_p = NULL;
}

const exec_backend_t exec_cuda_backend = {
    .name = "cuda",
    .create = s_create,
    .destroy = s_destroy,
    .plan = s_plan,
    .state_write = s_state_write,
    .state_read = s_state_read,
    .forward = s_forward,
    .backward = s_backward,
    .grads_read = s_grads_read,
    .adam_step = s_adam_step,
    .adam_reset = s_adam_reset,
    .step_submit = s_step_submit,
    .step_wait = s_step_wait,
    .stats = s_stats,
};

const exec_backend_t *exec_cuda_table(void) { return &exec_cuda_backend; }
