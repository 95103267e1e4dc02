/*
 * exec_onednn.c: the fast CPU executor, through oneDNN 2.6's C API.
 *
 * Why it is built this way (design-brief.md §4, performance-anchors.md):
 * Debian's oneDNN has no fast f32 kernels for plain NHWC tensors on some
 * ISAs and silently falls back to its reference loops (`ref:any`, ~0.1
 * GFLOP/s), while with dnnl_format_tag_any it picks jit kernels on blocked
 * layouts at 100+ GFLOP/s. So:
 *  - every convolution is created with `any` layouts (its source first tried
 *    in the producer's layout, to avoid a reorder) and the activations stay
 *    in the layouts oneDNN chose from layer to layer; BatchNorm (with the
 *    ReLU fused, dnnl_fuse_norm_relu), pooling and the residual add (binary
 *    with a ReLU post-op) work on those layouts; gradients use the layout of
 *    their activation;
 *  - tensors are reordered only where they enter (the NHWC image batch, the
 *    weights when they change) or leave (logits are plain; weight gradients
 *    are reordered into the flat (C_out, KH, KW, C_in) buffer Adam updates);
 *  - primitives are created once per (layer, shape) in plan(), recorded as
 *    three programs (forward-train, forward-eval, backward) of primitive
 *    executions and a few host steps, and replayed; a new batch shape
 *    re-plans once;
 *  - any primitive whose implementation is a reference one is refused where
 *    an alternative exists, and every chosen implementation is listed by
 *    exec_onednn_impls() so a test fails on a silent fallback.
 *
 * Memory: forward activations each have their own buffer (all are needed by
 * the backward pass); gradient buffers are shared by interval colouring of
 * their lifetimes in the backward pass, and the residual join's input
 * gradients alias its output gradient (ReLU backward in place), so the
 * gradient memory is a few activation-sized buffers.
 *
 * Host loops (OpenMP where it matters): BatchNorm running-stat update,
 * dropout, Adam (kernels' adam_step_cpu). Losses are the learner's.
 * Not here: bf16 (the CPU path is fp32), GPU engines.
 */
#include "exec.h"
#include "exec_cpu.h"

#include "check.h"
#include "log.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define S_DNNL(call)                                                                          \
    do {                                                                                      \
        dnnl_status_t s_st_ = (call);                                                         \
        NF_CHECK(s_st_ == dnnl_success, "%s: %s", #call, dnnl_status2str(s_st_));             \
    } while (0)

#define S_MAX_ARGS 10
#define S_EPS 1e-5f

struct exec_t;
typedef void (*s_host_fn)(struct exec_t *e, int op);

// One step of a program: a primitive execution, or a host function.
typedef struct {
    dnnl_primitive_t prim;
    int nargs;
    dnnl_exec_arg_t args[S_MAX_ARGS];
    s_host_fn host;
    int op;
} s_step_t;

typedef struct {
    s_step_t *v;
    int n, cap;
} s_prog_t;

// A buffer whose size is known only at the end of planning; memory objects
// over it are created without a handle and pointed at it in s_finalize().
typedef struct {
    size_t bytes;
    float *ptr;
    int free_after;  // storage slots: backward time after which the slot is free
} s_slot_t;

// A memory object whose buffer is known only at the end of planning: a slot,
// or a parameter tensor (in the params or grads buffer) once the parameter
// layout is settled.
typedef struct {
    dnnl_memory_t mem;
    int slot;   // >= 0: this slot
    int param;  // slot < 0: this parameter...
    int which;  // ...in the params (0) or grads (1) buffer
} s_deferred_t;

typedef struct {
    dnnl_memory_desc_t md;  // layout of the value, and of its gradient
    float *data;            // (owned by the plan; value 0 is the caller's images)
    dnnl_memory_t mem;
    int storage;            // gradient storage (-1: no gradient needed)
    int slot;               // the storage's buffer slot
    dnnl_memory_t dmem;     // gradient memory, over the slot
    int first_consumer;     // op whose backward contributes first (highest index)
    int producer;           // op that computes it (-1 for the image)
} s_value_t;

// What the backward pass needs from the forward planning of one op.
typedef struct {
    dnnl_primitive_desc_t fwd_pd;  // hint for the backward descriptors
    dnnl_alg_kind_t alg;           // conv: the forward's algorithm (direct or Winograd)
    dnnl_memory_t src;             // conv: the source as the forward primitive read it
    dnnl_memory_desc_t src_md;
    dnnl_memory_t w_fwd;           // conv: the weights (the parameter itself)
    dnnl_memory_desc_t w_fwd_md;   // the forward primitive's weights layout
    dnnl_memory_t ws;              // BN with ReLU, max pool: workspace
    dnnl_memory_t mean, var;       // BN: batch statistics (biased variance)
    float *mean_buf, *var_buf;     // (C)
    dnnl_memory_t scale, shift;    // BN / linear: weights over params
    float *mask;                   // dropout: (N, C) scaled keep mask
    dnnl_memory_t pooled;          // GAP: the (N, C, 1, 1) result in oneDNN's layout
    dnnl_memory_desc_t pooled_md;
} s_op_t;

// Per-storage record for the interval colouring of gradient buffers.
typedef struct {
    size_t bytes;
    int birth, death;  // backward times (op j runs at n_ops - 1 - j); birth -1 = before
    int slot;
} s_storage_t;

struct exec_t {
    exec_config_t cfg;
    const xresnet_t *net;
    // Parameters, gradients and Adam moments live in st's flat buffers in the
    // executor's own layout: each conv weight in the layout its forward
    // primitive reads (so neither the forward weights nor the weight
    // gradients are reordered each step), the rest as in xresnet.h.
    // State transfers convert from and to xresnet.h's layout.
    exec_cpu_state_t st;
    dnnl_memory_desc_t *pmd;  // (n_params) current layout of each parameter
    size_t *poff;             // (n_params) its offset in st's buffers
    dnnl_memory_desc_t *want; // (n_params) the layout the plan binds it with
    bool *want_set;           // (n_params)
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    bool w_dirty;  // params changed since the weight reorders last ran

    // the plan (n == 0: none)
    int n, h, w;
    xresnet_shape_t *shapes;  // (n_values)
    s_value_t *vals;          // (n_values)
    s_op_t *ops;              // (n_ops)
    s_prog_t wprog, fwd_train, fwd_eval, bwd;
    float *logits;            // (N, n_out) oneDNN output
    dnnl_memory_t x_mem;      // value 0, handle set per forward
    // owned resources of the plan
    void **bufs;
    int n_bufs, cap_bufs;
    dnnl_memory_t *mems;
    int n_mems, cap_mems;
    dnnl_primitive_t *prims;
    int n_prims, cap_prims;
    dnnl_primitive_desc_t *pds;
    int n_pds, cap_pds;
    exec_onednn_impl_t *impls;
    int n_impls, cap_impls;
    s_slot_t *slots;
    int n_slots, cap_slots;
    s_deferred_t *deferred;
    int n_deferred, cap_deferred;
    int tmp_slot[2];  // backward scratch for gradient contributions
};

// ---------------------------------------------------------------------------
// small helpers: growth, resource registration

#define S_PUSH(arr, n, cap, val)                                                              \
    do {                                                                                      \
        if ((n) == (cap)) {                                                                   \
            (cap) = (cap) ? 2 * (cap) : 32;                                                   \
            (arr) = nf_xrealloc((arr), (size_t)(cap) * sizeof(*(arr)));                       \
        }                                                                                     \
        (arr)[(n)++] = (val);                                                                 \
    } while (0)

static float *s_buf(exec_t *e, size_t bytes)
{
    float *p = nf_xaligned(bytes ? bytes : 64);
    memset(p, 0, bytes ? bytes : 64);
    S_PUSH(e->bufs, e->n_bufs, e->cap_bufs, (void *)p);
    return p;
}

static dnnl_memory_t s_mem(exec_t *e, const dnnl_memory_desc_t *md, void *ptr)
{
    dnnl_memory_t m;
    S_DNNL(dnnl_memory_create(&m, md, e->eng, ptr));
    S_PUSH(e->mems, e->n_mems, e->cap_mems, m);
    return m;
}

// A memory object that will point into slot `slot` (sized up to md's size).
static dnnl_memory_t s_mem_slot(exec_t *e, const dnnl_memory_desc_t *md, int slot)
{
    dnnl_memory_t m = s_mem(e, md, DNNL_MEMORY_NONE);
    size_t bytes = dnnl_memory_desc_get_size(md);
    if (e->slots[slot].bytes < bytes) e->slots[slot].bytes = bytes;
    s_deferred_t d = {m, slot, -1, 0};
    S_PUSH(e->deferred, e->n_deferred, e->cap_deferred, d);
    return m;
}

// A memory object over parameter t in the params (which 0) or grads (1)
// buffer. The first binding of a parameter fixes its layout in the plan.
static dnnl_memory_t s_mem_param(exec_t *e, const dnnl_memory_desc_t *md, int t, int which)
{
    if (!e->want_set[t]) {
        e->want[t] = *md;
        e->want_set[t] = true;
    }
    NF_CHECK(dnnl_memory_desc_equal(md, &e->want[t]), "parameter %s bound in two layouts",
             e->net->params[t].name);
    dnnl_memory_t m = s_mem(e, md, DNNL_MEMORY_NONE);
    s_deferred_t d = {m, -1, t, which};
    S_PUSH(e->deferred, e->n_deferred, e->cap_deferred, d);
    return m;
}

static int s_new_slot(exec_t *e)
{
    s_slot_t s = {0, NULL, -2};
    S_PUSH(e->slots, e->n_slots, e->cap_slots, s);
    return e->n_slots - 1;
}

// A fresh buffer with its memory object, in layout md.
static dnnl_memory_t s_mem_new(exec_t *e, const dnnl_memory_desc_t *md, float **buf_out)
{
    float *b = s_buf(e, dnnl_memory_desc_get_size(md));
    if (buf_out) *buf_out = b;
    return s_mem(e, md, b);
}

static dnnl_memory_desc_t s_md(int nd, const dnnl_dim_t *dims, dnnl_format_tag_t tag)
{
    dnnl_memory_desc_t md;
    S_DNNL(dnnl_memory_desc_init_by_tag(&md, nd, dims, dnnl_f32, tag));
    return md;
}

static bool s_md_eq(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b)
{
    return dnnl_memory_desc_equal(a, b) != 0;
}

static const char *s_impl(const_dnnl_primitive_desc_t pd)
{
    const char *impl = NULL;
    S_DNNL(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    return impl ? impl : "?";
}

static bool s_is_ref(const_dnnl_primitive_desc_t pd) { return strncmp(s_impl(pd), "ref", 3) == 0; }

// A primitive descriptor, or NULL when oneDNN has no implementation or only
// a reference one (the caller then tries other layouts).
static dnnl_primitive_desc_t s_pd_try(exec_t *e, const_dnnl_op_desc_t desc,
                                      const_dnnl_primitive_attr_t attr,
                                      const_dnnl_primitive_desc_t hint)
{
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, desc, attr, e->eng, hint);
    if (st == dnnl_unimplemented) return NULL;
    NF_CHECK(st == dnnl_success, "dnnl_primitive_desc_create: %s", dnnl_status2str(st));
    if (s_is_ref(pd)) {
        S_DNNL(dnnl_primitive_desc_destroy(pd));
        return NULL;
    }
    S_PUSH(e->pds, e->n_pds, e->cap_pds, pd);
    return pd;
}

// A primitive descriptor that must exist (reference implementations are
// accepted here and will show up in exec_onednn_impls).
static dnnl_primitive_desc_t s_pd(exec_t *e, const_dnnl_op_desc_t desc,
                                  const_dnnl_primitive_attr_t attr,
                                  const_dnnl_primitive_desc_t hint, const char *what)
{
    dnnl_primitive_desc_t pd = s_pd_try(e, desc, attr, hint);
    if (pd) return pd;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, desc, attr, e->eng, hint);
    NF_CHECK(st == dnnl_success, "%s: dnnl_primitive_desc_create: %s", what, dnnl_status2str(st));
    nf_log_warn("onednn: %s runs on a reference implementation (%s)", what, s_impl(pd));
    S_PUSH(e->pds, e->n_pds, e->cap_pds, pd);
    return pd;
}

static dnnl_primitive_t s_prim(exec_t *e, const_dnnl_primitive_desc_t pd, const char *what)
{
    dnnl_primitive_t p;
    S_DNNL(dnnl_primitive_create(&p, pd));
    S_PUSH(e->prims, e->n_prims, e->cap_prims, p);
    exec_onednn_impl_t rec;
    snprintf(rec.what, sizeof(rec.what), "%s", what);
    snprintf(rec.impl, sizeof(rec.impl), "%s", s_impl(pd));
    S_PUSH(e->impls, e->n_impls, e->cap_impls, rec);
    return p;
}

static const dnnl_memory_desc_t *s_q(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int i)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, what, i);
    NF_CHECK(md, "primitive descriptor has no memory descriptor %d/%d", (int)what, i);
    return md;
}

// ---------------------------------------------------------------------------
// programs

// The description of a primitive (for error messages).
static const char *s_prim_what(const exec_t *e, const_dnnl_primitive_t prim)
{
    for (int i = 0; i < e->n_prims; i++)
        if (e->prims[i] == prim) return e->impls[i].what;
    return "?";
}


// Checks at plan time that every argument's layout is the one the primitive
// expects (oneDNN would only say "invalid_arguments" when executing).
static void s_check_args(const exec_t *e, dnnl_primitive_t prim, int nargs,
                         const dnnl_exec_arg_t *args)
{
    const_dnnl_primitive_desc_t pd;
    S_DNNL(dnnl_primitive_get_primitive_desc(prim, &pd));
    for (int i = 0; i < nargs; i++) {
        const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md,
                                                                      args[i].arg);
        const dnnl_memory_desc_t *got;
        S_DNNL(dnnl_memory_get_memory_desc(args[i].memory, &got));
        NF_CHECK(want && want->ndims > 0 && s_md_eq(want, got),
                 "onednn: %s: argument %d has a layout the primitive does not take",
                 s_prim_what(e, prim), args[i].arg);
    }
}

static void s_emit(const exec_t *e, s_prog_t *p, dnnl_primitive_t prim, int nargs,
                   const dnnl_exec_arg_t *args)
{
    NF_CHECK(nargs <= S_MAX_ARGS, "too many primitive arguments");
    s_check_args(e, prim, nargs, args);
    s_step_t s = {.prim = prim, .nargs = nargs, .op = -1};
    memcpy(s.args, args, (size_t)nargs * sizeof(*args));
    S_PUSH(p->v, p->n, p->cap, s);
}

static void s_emit_host(s_prog_t *p, s_host_fn fn, int op)
{
    s_step_t s = {.host = fn, .op = op};
    S_PUSH(p->v, p->n, p->cap, s);
}

static void s_run(exec_t *e, const s_prog_t *p)
{
    for (int i = 0; i < p->n; i++) {
        const s_step_t *s = &p->v[i];
        if (!s->prim) {
            s->host(e, s->op);
            continue;
        }
        dnnl_status_t st = dnnl_primitive_execute(s->prim, e->strm, s->nargs, s->args);
        NF_CHECK(st == dnnl_success, "onednn: executing %s: %s", s_prim_what(e, s->prim),
                 dnnl_status2str(st));
    }
    S_DNNL(dnnl_stream_wait(e->strm));
}

// Appends dst = reorder(src) to p.
static void s_emit_reorder(exec_t *e, s_prog_t *p, dnnl_memory_t src,
                           const dnnl_memory_desc_t *src_md, dnnl_memory_t dst,
                           const dnnl_memory_desc_t *dst_md, const char *what)
{
    dnnl_primitive_desc_t pd;
    S_DNNL(dnnl_reorder_primitive_desc_create(&pd, src_md, e->eng, dst_md, e->eng, NULL));
    S_PUSH(e->pds, e->n_pds, e->cap_pds, pd);
    dnnl_primitive_t r = s_prim(e, pd, what);
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
    s_emit(e, p, r, 2, a);
}

// Appends dst += src (same layout), in place, to p.
static void s_emit_accumulate(exec_t *e, s_prog_t *p, dnnl_memory_t dst, dnnl_memory_t src,
                              const dnnl_memory_desc_t *md, const char *what)
{
    dnnl_binary_desc_t bd;
    S_DNNL(dnnl_binary_desc_init(&bd, dnnl_binary_add, md, md, md));
    dnnl_primitive_desc_t pd = s_pd(e, &bd, NULL, NULL, what);
    dnnl_primitive_t prim = s_prim(e, pd, what);
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC_0, dst}, {DNNL_ARG_SRC_1, src}, {DNNL_ARG_DST, dst}};
    s_emit(e, p, prim, 3, a);
}

// ---------------------------------------------------------------------------
// gradient contributions: a backward primitive produces d(loss)/d(value) in
// layout md; the first contribution (in backward order) writes the value's
// gradient, later ones are added to it.

typedef struct {
    int value;
    dnnl_memory_t target;  // where the primitive writes
    dnnl_memory_desc_t md;
    bool direct;           // target is the value's gradient itself
} s_contrib_t;

static s_contrib_t s_contrib_begin(exec_t *e, int value, int op, const dnnl_memory_desc_t *md)
{
    s_value_t *v = &e->vals[value];
    s_contrib_t c = {.value = value, .md = *md};
    bool first = v->first_consumer == op;
    if (first && s_md_eq(md, &v->md)) {
        c.target = v->dmem;
        c.direct = true;
    } else {
        c.target = s_mem_slot(e, md, e->tmp_slot[0]);
    }
    return c;
}

static void s_contrib_end(exec_t *e, s_prog_t *p, const s_contrib_t *c, int op, const char *what)
{
    if (c->direct) return;
    s_value_t *v = &e->vals[c->value];
    bool first = v->first_consumer == op;
    char name[64];
    if (first) {
        snprintf(name, sizeof(name), "reorder grad %s", what);
        s_emit_reorder(e, p, c->target, &c->md, v->dmem, &v->md, name);
        return;
    }
    dnnl_memory_t src = c->target;
    if (!s_md_eq(&c->md, &v->md)) {
        src = s_mem_slot(e, &v->md, e->tmp_slot[1]);
        snprintf(name, sizeof(name), "reorder grad %s", what);
        s_emit_reorder(e, p, c->target, &c->md, src, &v->md, name);
    }
    snprintf(name, sizeof(name), "accumulate grad %s", what);
    s_emit_accumulate(e, p, v->dmem, src, &v->md, name);
}

// ---------------------------------------------------------------------------
// host steps

static void s_host_bn_running(exec_t *e, int op)
{
    const xresnet_op_t *o = &e->net->ops[op];
    const xresnet_bn_t *bn = &e->net->bns[o->bn];
    const xresnet_shape_t *s = &e->shapes[o->in0];
    double m = (double)e->n * s->h * s->w;
    exec_cpu_bn_running_update(e->st.run_mean + bn->offset, e->st.run_var + bn->offset,
                               e->ops[op].mean_buf, e->ops[op].var_buf, bn->c, m);
}

static size_t s_count(exec_t *e, int value)
{
    const xresnet_shape_t *s = &e->shapes[value];
    return (size_t)e->n * s->c * s->h * s->w;
}

static void s_host_dropout_fwd(exec_t *e, int op)
{
    const xresnet_op_t *o = &e->net->ops[op];
    const float *x = e->vals[o->in0].data;
    float *y = e->vals[o->out].data;
    const float *mask = e->ops[op].mask;
    size_t n = s_count(e, o->out);
    for (size_t i = 0; i < n; i++) y[i] = x[i] * mask[i];
}

static void s_host_copy_fwd(exec_t *e, int op)
{
    const xresnet_op_t *o = &e->net->ops[op];
    memcpy(e->vals[o->out].data, e->vals[o->in0].data, s_count(e, o->out) * sizeof(float));
}

static float *s_dptr(exec_t *e, int value)
{
    void *p = NULL;
    S_DNNL(dnnl_memory_get_data_handle(e->vals[value].dmem, &p));
    return p;
}

static void s_host_dropout_bwd(exec_t *e, int op)
{
    const xresnet_op_t *o = &e->net->ops[op];
    const float *dy = s_dptr(e, o->out);
    float *dx = s_dptr(e, o->in0);
    const float *mask = e->ops[op].mask;
    size_t n = s_count(e, o->out);
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * mask[i];
}

// ---------------------------------------------------------------------------
// forward planning, one function per op kind

// (oneDNN reads its stride/padding/kernel arguments as dnnl_dims_t arrays.)
static void s_conv_geometry(exec_t *e, const xresnet_op_t *op, dnnl_dims_t src, dnnl_dims_t wt,
                            dnnl_dims_t dst, dnnl_dims_t strides, dnnl_dims_t pl,
                            dnnl_dims_t pr)
{
    const xresnet_shape_t *si = &e->shapes[op->in0], *so = &e->shapes[op->out];
    src[0] = e->n, src[1] = op->c_in, src[2] = si->h, src[3] = si->w;
    wt[0] = op->c_out, wt[1] = op->c_in, wt[2] = op->k, wt[3] = op->k;
    dst[0] = e->n, dst[1] = op->c_out, dst[2] = so->h, dst[3] = so->w;
    strides[0] = strides[1] = op->stride;
    pl[0] = pl[1] = op->pad;
    pr[0] = (dnnl_dim_t)(so->h - 1) * op->stride + op->k - si->h - op->pad;
    pr[1] = (dnnl_dim_t)(so->w - 1) * op->stride + op->k - si->w - op->pad;
}

typedef enum { S_CONV_FWD, S_CONV_BWD_D, S_CONV_BWD_W } s_conv_kind_t;

// The convolution primitive descriptor of op i for one pass. Tries, best
// first: Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions when the config
// asks for it (about twice the direct kernels' speed on AVX-512; see
// docs/trainer.md for its accuracy), then the direct algorithm; for each,
// the wanted layouts (no reorder around the primitive) then `any`. The first
// non-reference implementation wins; if there is none, the direct one on
// `any` is taken (and shows up in exec_onednn_impls).
static dnnl_primitive_desc_t s_conv_pd(exec_t *e, int i, s_conv_kind_t kind,
                                       const dnnl_memory_desc_t *src,
                                       const dnnl_memory_desc_t *wt,
                                       const dnnl_memory_desc_t *dst, const char *what)
{
    const xresnet_op_t *op = &e->net->ops[i];
    s_op_t *r = &e->ops[i];
    dnnl_dims_t sd, wd, dd, st, pl, pr;
    s_conv_geometry(e, op, sd, wd, dd, st, pl, pr);
    dnnl_memory_desc_t any[3] = {s_md(4, sd, dnnl_format_tag_any),
                                 s_md(4, wd, dnnl_format_tag_any),
                                 s_md(4, dd, dnnl_format_tag_any)};
    dnnl_alg_kind_t algs[2];
    int n_algs = 0;
    if (e->cfg.winograd && op->k == 3 && op->stride == 1)
        algs[n_algs++] = dnnl_convolution_winograd;
    algs[n_algs++] = dnnl_convolution_direct;
    for (int a = 0; a <= n_algs; a++) {
        bool last = a == n_algs;  // the last resort: direct on any
        dnnl_alg_kind_t alg = last ? dnnl_convolution_direct : algs[a];
        const_dnnl_primitive_desc_t hint =
            kind == S_CONV_FWD || alg != r->alg ? NULL : r->fwd_pd;
        for (int lay = last ? 1 : 0; lay < 2; lay++) {
            const dnnl_memory_desc_t *s_ = lay ? &any[0] : src, *w_ = lay ? &any[1] : wt,
                                     *d_ = lay ? &any[2] : dst;
            dnnl_convolution_desc_t cd;
            if (kind == S_CONV_FWD)
                S_DNNL(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, alg, s_,
                                                          w_, NULL, d_, st, pl, pr));
            else if (kind == S_CONV_BWD_D)
                S_DNNL(dnnl_convolution_backward_data_desc_init(&cd, alg, s_, w_, d_, st, pl, pr));
            else
                S_DNNL(dnnl_convolution_backward_weights_desc_init(&cd, alg, s_, w_, NULL, d_,
                                                                   st, pl, pr));
            dnnl_primitive_desc_t pd =
                last ? s_pd(e, &cd, NULL, hint, what) : s_pd_try(e, &cd, NULL, hint);
            if (pd) {
                if (kind == S_CONV_FWD) r->alg = alg;
                return pd;
            }
        }
    }
    NF_CHECK(0, "unreachable");
}

static void s_plan_conv_fwd(exec_t *e, int i, const char *name)
{
    const xresnet_op_t *op = &e->net->ops[i];
    s_op_t *r = &e->ops[i];
    s_value_t *in = &e->vals[op->in0], *out = &e->vals[op->out];
    dnnl_dims_t src, wt, dst, st, pl, pr;
    s_conv_geometry(e, op, src, wt, dst, st, pl, pr);
    dnnl_memory_desc_t w_any = s_md(4, wt, dnnl_format_tag_any);
    dnnl_memory_desc_t dst_any = s_md(4, dst, dnnl_format_tag_any);
    char what[64];
    // the source in the producer's layout if possible (no reorder)
    snprintf(what, sizeof(what), "conv fwd %s", name);
    dnnl_primitive_desc_t pd = s_conv_pd(e, i, S_CONV_FWD, &in->md, &w_any, &dst_any, what);
    r->fwd_pd = pd;
    r->src_md = *s_q(pd, dnnl_query_src_md, 0);
    r->src = in->mem;
    if (!s_md_eq(&r->src_md, &in->md)) {
        r->src = s_mem_new(e, &r->src_md, NULL);
        snprintf(what, sizeof(what), "reorder src %s", name);
        s_emit_reorder(e, &e->fwd_train, in->mem, &in->md, r->src, &r->src_md, what);
        // the eval program reads the same primitive (created once)
        s_emit(e, &e->fwd_eval, e->fwd_train.v[e->fwd_train.n - 1].prim, 2,
               e->fwd_train.v[e->fwd_train.n - 1].args);
    }
    out->md = *s_q(pd, dnnl_query_dst_md, 0);
    out->mem = s_mem_new(e, &out->md, &out->data);

    // the weight parameter is kept in the forward primitive's layout
    r->w_fwd_md = *s_q(pd, dnnl_query_weights_md, 0);
    r->w_fwd = s_mem_param(e, &r->w_fwd_md, op->param, 0);
    snprintf(what, sizeof(what), "conv fwd %s", name);
    dnnl_primitive_t prim = s_prim(e, pd, what);
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, r->src}, {DNNL_ARG_WEIGHTS, r->w_fwd},
                            {DNNL_ARG_DST, out->mem}};
    s_emit(e, &e->fwd_train, prim, 3, a);
    s_emit(e, &e->fwd_eval, prim, 3, a);
}

static void s_plan_bn_fwd(exec_t *e, int i, const char *name)
{
    const xresnet_op_t *op = &e->net->ops[i];
    const xresnet_bn_t *bn = &e->net->bns[op->bn];
    s_op_t *r = &e->ops[i];
    s_value_t *in = &e->vals[op->in0], *out = &e->vals[op->out];
    unsigned flags = dnnl_use_scale | dnnl_use_shift | (op->relu ? dnnl_fuse_norm_relu : 0u);
    char what[64];

    dnnl_batch_normalization_desc_t bd;
    S_DNNL(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_training, &in->md, S_EPS,
                                                      flags));
    snprintf(what, sizeof(what), "bn fwd %s", name);
    dnnl_primitive_desc_t pd = s_pd(e, &bd, NULL, NULL, what);
    r->fwd_pd = pd;
    out->md = *s_q(pd, dnnl_query_dst_md, 0);
    out->mem = s_mem_new(e, &out->md, &out->data);
    dnnl_dim_t c[1] = {bn->c};
    dnnl_memory_desc_t vec = s_md(1, c, dnnl_a);
    r->mean = s_mem_new(e, &vec, &r->mean_buf);
    r->var = s_mem_new(e, &vec, &r->var_buf);
    r->scale = s_mem_param(e, &vec, op->param, 0);
    r->shift = s_mem_param(e, &vec, op->param + 1, 0);
    if (op->relu) r->ws = s_mem_new(e, s_q(pd, dnnl_query_workspace_md, 0), NULL);
    dnnl_primitive_t prim = s_prim(e, pd, what);
    dnnl_exec_arg_t a[S_MAX_ARGS] = {{DNNL_ARG_SRC, in->mem},      {DNNL_ARG_DST, out->mem},
                                     {DNNL_ARG_SCALE, r->scale},   {DNNL_ARG_SHIFT, r->shift},
                                     {DNNL_ARG_MEAN, r->mean},     {DNNL_ARG_VARIANCE, r->var},
                                     {DNNL_ARG_WORKSPACE, r->ws}};
    s_emit(e, &e->fwd_train, prim, op->relu ? 7 : 6, a);
    s_emit_host(&e->fwd_train, s_host_bn_running, i);

    // eval: running statistics
    S_DNNL(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, &in->md, S_EPS,
                                                      flags | dnnl_use_global_stats));
    snprintf(what, sizeof(what), "bn eval %s", name);
    dnnl_primitive_desc_t epd = s_pd(e, &bd, NULL, NULL, what);
    NF_CHECK(s_md_eq(s_q(epd, dnnl_query_dst_md, 0), &out->md), "bn eval layout differs");
    dnnl_primitive_t eprim = s_prim(e, epd, what);
    dnnl_memory_t rm = s_mem(e, &vec, e->st.run_mean + bn->offset);
    dnnl_memory_t rv = s_mem(e, &vec, e->st.run_var + bn->offset);
    dnnl_exec_arg_t ea[6] = {{DNNL_ARG_SRC, in->mem},    {DNNL_ARG_DST, out->mem},
                             {DNNL_ARG_SCALE, r->scale}, {DNNL_ARG_SHIFT, r->shift},
                             {DNNL_ARG_MEAN, rm},        {DNNL_ARG_VARIANCE, rv}};
    s_emit(e, &e->fwd_eval, eprim, 6, ea);
}

// Pooling geometry: max 3/2/1, avg 2/2 ceil-mode (the ceil overhang is
// right padding, excluded from the divisor as PyTorch does), global average.
static void s_pool_geometry(exec_t *e, const xresnet_op_t *op, dnnl_dims_t k, dnnl_dims_t st,
                            dnnl_dims_t pl, dnnl_dims_t pr)
{
    const xresnet_shape_t *si = &e->shapes[op->in0], *so = &e->shapes[op->out];
    if (op->kind == XRESNET_OP_GAP) {
        k[0] = si->h, k[1] = si->w;
        st[0] = st[1] = 1;
        pl[0] = pl[1] = pr[0] = pr[1] = 0;
        return;
    }
    k[0] = k[1] = op->k;
    st[0] = st[1] = op->stride;
    pl[0] = pl[1] = op->pad;
    pr[0] = (dnnl_dim_t)(so->h - 1) * op->stride + op->k - si->h - op->pad;
    pr[1] = (dnnl_dim_t)(so->w - 1) * op->stride + op->k - si->w - op->pad;
}

static void s_plan_pool_fwd(exec_t *e, int i, const char *name)
{
    const xresnet_op_t *op = &e->net->ops[i];
    s_op_t *r = &e->ops[i];
    s_value_t *in = &e->vals[op->in0], *out = &e->vals[op->out];
    const xresnet_shape_t *so = &e->shapes[op->out];
    bool is_max = op->kind == XRESNET_OP_MAXPOOL, is_gap = op->kind == XRESNET_OP_GAP;
    dnnl_alg_kind_t alg = is_max ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
    dnnl_dims_t k, st, pl, pr;
    s_pool_geometry(e, op, k, st, pl, pr);
    dnnl_dim_t dst[4] = {e->n, op->c_out, is_gap ? 1 : so->h, is_gap ? 1 : so->w};
    dnnl_memory_desc_t dst_any = s_md(4, dst, dnnl_format_tag_any);
    char what[64];
    snprintf(what, sizeof(what), "%s fwd %s", is_max ? "maxpool" : is_gap ? "gap" : "avgpool",
             name);
    dnnl_pooling_desc_t d;
    S_DNNL(dnnl_pooling_forward_desc_init(&d, dnnl_forward_training, alg, &in->md, &dst_any, st,
                                          k, pl, pr));
    dnnl_primitive_desc_t pd = s_pd(e, &d, NULL, NULL, what);
    r->fwd_pd = pd;
    const dnnl_memory_desc_t *dmd = s_q(pd, dnnl_query_dst_md, 0);
    dnnl_memory_t dst_mem;
    if (is_gap) {
        // the flattened (N, C) value is plain; oneDNN's (N, C, 1, 1) result is
        // reordered into it (a tiny copy)
        r->pooled_md = *dmd;
        r->pooled = s_mem_new(e, dmd, NULL);
        dst_mem = r->pooled;
        dnnl_dim_t flat[2] = {e->n, op->c_out};
        out->md = s_md(2, flat, dnnl_nc);
        out->mem = s_mem_new(e, &out->md, &out->data);
    } else {
        out->md = *dmd;
        out->mem = s_mem_new(e, &out->md, &out->data);
        dst_mem = out->mem;
    }
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, in->mem}, {DNNL_ARG_DST, dst_mem}, {0, NULL}};
    int nargs = 2;
    if (is_max) {
        r->ws = s_mem_new(e, s_q(pd, dnnl_query_workspace_md, 0), NULL);
        a[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, r->ws};
    }
    dnnl_primitive_t prim = s_prim(e, pd, what);
    s_emit(e, &e->fwd_train, prim, nargs, a);
    s_emit(e, &e->fwd_eval, prim, nargs, a);
    if (is_gap) {
        // the 4-D view of the flat value for the reorder
        dnnl_dim_t d4[4] = {e->n, op->c_out, 1, 1};
        dnnl_memory_desc_t flat4 = s_md(4, d4, dnnl_nchw);
        dnnl_memory_t view = s_mem(e, &flat4, out->data);
        snprintf(what, sizeof(what), "reorder flatten %s", name);
        s_emit_reorder(e, &e->fwd_train, r->pooled, &r->pooled_md, view, &flat4, what);
        s_emit(e, &e->fwd_eval, e->fwd_train.v[e->fwd_train.n - 1].prim, 2,
               e->fwd_train.v[e->fwd_train.n - 1].args);
    }
}

static void s_plan_add_fwd(exec_t *e, int i, const char *name)
{
    const xresnet_op_t *op = &e->net->ops[i];
    s_value_t *a = &e->vals[op->in0], *b = &e->vals[op->in1], *out = &e->vals[op->out];
    char what[64];
    dnnl_post_ops_t po;
    S_DNNL(dnnl_post_ops_create(&po));
    S_DNNL(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
    dnnl_primitive_attr_t attr;
    S_DNNL(dnnl_primitive_attr_create(&attr));
    S_DNNL(dnnl_primitive_attr_set_post_ops(attr, po));
    dnnl_memory_t src1 = b->mem;
    dnnl_binary_desc_t bd;
    S_DNNL(dnnl_binary_desc_init(&bd, dnnl_binary_add, &a->md, &b->md, &a->md));
    dnnl_primitive_desc_t pd = s_pd_try(e, &bd, attr, NULL);
    if (!pd) {
        // shortcut in another layout: reorder it into the branch's layout first
        src1 = s_mem_new(e, &a->md, NULL);
        snprintf(what, sizeof(what), "reorder shortcut %s", name);
        s_emit_reorder(e, &e->fwd_train, b->mem, &b->md, src1, &a->md, what);
        s_emit(e, &e->fwd_eval, e->fwd_train.v[e->fwd_train.n - 1].prim, 2,
               e->fwd_train.v[e->fwd_train.n - 1].args);
        S_DNNL(dnnl_binary_desc_init(&bd, dnnl_binary_add, &a->md, &a->md, &a->md));
        snprintf(what, sizeof(what), "add+relu fwd %s", name);
        pd = s_pd(e, &bd, attr, NULL, what);
    }
    S_DNNL(dnnl_primitive_attr_destroy(attr));
    S_DNNL(dnnl_post_ops_destroy(po));
    e->ops[i].fwd_pd = pd;
    out->md = a->md;
    out->mem = s_mem_new(e, &out->md, &out->data);
    snprintf(what, sizeof(what), "add+relu fwd %s", name);
    dnnl_primitive_t prim = s_prim(e, pd, what);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC_0, a->mem}, {DNNL_ARG_SRC_1, src1},
                               {DNNL_ARG_DST, out->mem}};
    s_emit(e, &e->fwd_train, prim, 3, args);
    s_emit(e, &e->fwd_eval, prim, 3, args);
}

static void s_plan_dropout_fwd(exec_t *e, int i)
{
    const xresnet_op_t *op = &e->net->ops[i];
    s_value_t *in = &e->vals[op->in0], *out = &e->vals[op->out];
    out->md = in->md;
    out->mem = s_mem_new(e, &out->md, &out->data);
    e->ops[i].mask = s_buf(e, s_count(e, op->out) * sizeof(float));
    s_emit_host(&e->fwd_train, s_host_dropout_fwd, i);
    s_emit_host(&e->fwd_eval, s_host_copy_fwd, i);
}

static void s_plan_linear_fwd(exec_t *e, int i, const char *name)
{
    const xresnet_op_t *op = &e->net->ops[i];
    s_op_t *r = &e->ops[i];
    s_value_t *in = &e->vals[op->in0], *out = &e->vals[op->out];
    dnnl_dim_t wd[2] = {op->c_out, op->c_in}, bd_[1] = {op->c_out}, dd[2] = {e->n, op->c_out};
    dnnl_memory_desc_t wmd = s_md(2, wd, dnnl_oi), bmd = s_md(1, bd_, dnnl_a);
    out->md = s_md(2, dd, dnnl_nc);
    char what[64];
    snprintf(what, sizeof(what), "linear fwd %s", name);
    dnnl_inner_product_desc_t d;
    S_DNNL(dnnl_inner_product_forward_desc_init(&d, dnnl_forward_training, &in->md, &wmd, &bmd,
                                                &out->md));
    dnnl_primitive_desc_t pd = s_pd(e, &d, NULL, NULL, what);
    r->fwd_pd = pd;
    NF_CHECK(s_md_eq(s_q(pd, dnnl_query_weights_md, 0), &wmd), "linear weights layout");
    r->scale = s_mem_param(e, &wmd, op->param, 0);      // the weight
    r->shift = s_mem_param(e, &bmd, op->param + 1, 0);  // the bias
    out->mem = s_mem(e, &out->md, e->logits);
    out->data = e->logits;
    dnnl_primitive_t prim = s_prim(e, pd, what);
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, in->mem},
                            {DNNL_ARG_WEIGHTS, r->scale},
                            {DNNL_ARG_BIAS, r->shift},
                            {DNNL_ARG_DST, out->mem}};
    s_emit(e, &e->fwd_train, prim, 4, a);
    s_emit(e, &e->fwd_eval, prim, 4, a);
}

// ---------------------------------------------------------------------------
// gradient storages: aliasing and interval colouring

static int s_bwd_time(const exec_t *e, int op) { return e->net->n_ops - 1 - op; }

static void s_plan_storages(exec_t *e)
{
    const xresnet_t *net = e->net;
    int nv = net->n_values;
    s_storage_t *sto = nf_xcalloc((size_t)nv, sizeof(*sto));
    int n_sto = 0;
    for (int v = 0; v < nv; v++) e->vals[v].storage = -1;
    for (int i = net->n_ops - 1; i >= 0; i--) {
        const xresnet_op_t *op = &net->ops[i];
        s_value_t *out = &e->vals[op->out];
        if (out->storage < 0) {
            out->storage = n_sto;
            sto[n_sto++] = (s_storage_t){.birth = 1 << 30, .death = -1, .slot = -1};
        }
        int ins[2] = {op->in0, op->in1};
        for (int k = 0; k < 2; k++) {
            int v = ins[k];
            if (v <= 0 || e->vals[v].storage >= 0) continue;  // the image needs no gradient
            // the residual join passes its (in-place ReLU) gradient to both
            // inputs: alias when the layouts agree
            if (op->kind == XRESNET_OP_ADD_RELU && s_md_eq(&e->vals[v].md, &out->md)) {
                e->vals[v].storage = out->storage;
            } else {
                e->vals[v].storage = n_sto;
                sto[n_sto++] = (s_storage_t){.birth = 1 << 30, .death = -1, .slot = -1};
            }
        }
    }
    // lifetimes in backward time
    for (int v = 1; v < nv; v++) {
        s_value_t *val = &e->vals[v];
        if (val->storage < 0) continue;
        s_storage_t *s = &sto[val->storage];
        int birth = val->first_consumer < 0 ? -1 : s_bwd_time(e, val->first_consumer);
        int death = s_bwd_time(e, val->producer);
        if (birth < s->birth) s->birth = birth;
        if (death > s->death) s->death = death;
        size_t bytes = dnnl_memory_desc_get_size(&val->md);
        if (bytes > s->bytes) s->bytes = bytes;
    }
    // greedy colouring by birth: reuse the smallest free slot that fits, else
    // grow the largest free one, else open a new slot
    for (int done = 0; done < n_sto; done++) {
        int pick = -1;
        for (int s = 0; s < n_sto; s++)
            if (sto[s].slot < 0 && (pick < 0 || sto[s].birth < sto[pick].birth)) pick = s;
        s_storage_t *s = &sto[pick];
        int best = -1, largest = -1;
        for (int k = 0; k < e->n_slots; k++) {
            s_slot_t *sl = &e->slots[k];
            if (sl->free_after == -2 || sl->free_after >= s->birth) continue;
            if (sl->bytes >= s->bytes && (best < 0 || sl->bytes < e->slots[best].bytes)) best = k;
            if (largest < 0 || sl->bytes > e->slots[largest].bytes) largest = k;
        }
        int slot = best >= 0 ? best : largest;
        if (slot < 0) slot = s_new_slot(e);
        if (e->slots[slot].bytes < s->bytes) e->slots[slot].bytes = s->bytes;
        e->slots[slot].free_after = s->death;
        s->slot = slot;
    }
    for (int v = 1; v < nv; v++) {
        s_value_t *val = &e->vals[v];
        if (val->storage < 0) continue;
        val->slot = sto[val->storage].slot;
        val->dmem = s_mem_slot(e, &val->md, val->slot);
    }
    free(sto);
}

// ---------------------------------------------------------------------------
// backward planning, one function per op kind (called in reverse op order)

static void s_plan_conv_bwd(exec_t *e, int i, const char *name)
{
    const xresnet_op_t *op = &e->net->ops[i];
    s_op_t *r = &e->ops[i];
    s_value_t *out = &e->vals[op->out];
    dnnl_dims_t src, wt, dst, st, pl, pr;
    s_conv_geometry(e, op, src, wt, dst, st, pl, pr);
    dnnl_memory_desc_t w_any = s_md(4, wt, dnnl_format_tag_any);
    char what[64];

    // weights gradient: the forward's source layout, the output gradient's
    // layout and the weight's own layout if possible (no reorders)
    snprintf(what, sizeof(what), "conv bwd-w %s", name);
    dnnl_primitive_desc_t pd =
        s_conv_pd(e, i, S_CONV_BWD_W, &r->src_md, &r->w_fwd_md, &out->md, what);
    dnnl_memory_t bsrc = r->src, bdy = out->dmem;
    const dnnl_memory_desc_t *md = s_q(pd, dnnl_query_src_md, 0);
    if (!s_md_eq(md, &r->src_md)) {
        bsrc = s_mem_slot(e, md, e->tmp_slot[0]);
        snprintf(what, sizeof(what), "reorder bwd-w src %s", name);
        s_emit_reorder(e, &e->bwd, r->src, &r->src_md, bsrc, md, what);
    }
    md = s_q(pd, dnnl_query_diff_dst_md, 0);
    if (!s_md_eq(md, &out->md)) {
        bdy = s_mem_slot(e, md, e->tmp_slot[1]);
        snprintf(what, sizeof(what), "reorder bwd-w dy %s", name);
        s_emit_reorder(e, &e->bwd, out->dmem, &out->md, bdy, md, what);
    }
    const dnnl_memory_desc_t *dw_md = s_q(pd, dnnl_query_diff_weights_md, 0);
    dnnl_memory_t dw_param = s_mem_param(e, &r->w_fwd_md, op->param, 1);
    dnnl_memory_t dw = s_md_eq(dw_md, &r->w_fwd_md) ? dw_param : s_mem_new(e, dw_md, NULL);
    snprintf(what, sizeof(what), "conv bwd-w %s", name);
    dnnl_primitive_t prim = s_prim(e, pd, what);
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, bsrc}, {DNNL_ARG_DIFF_DST, bdy},
                            {DNNL_ARG_DIFF_WEIGHTS, dw}};
    s_emit(e, &e->bwd, prim, 3, a);
    if (dw != dw_param) {
        snprintf(what, sizeof(what), "reorder dweights %s", name);
        s_emit_reorder(e, &e->bwd, dw, dw_md, dw_param, &r->w_fwd_md, what);
    }

    if (op->in0 == 0) return;  // the image needs no gradient

    // data gradient
    s_value_t *in = &e->vals[op->in0];
    snprintf(what, sizeof(what), "conv bwd-d %s", name);
    pd = s_conv_pd(e, i, S_CONV_BWD_D, &in->md, &w_any, &out->md, what);
    const dnnl_memory_desc_t *wb_md = s_q(pd, dnnl_query_weights_md, 0);
    dnnl_memory_t wb = r->w_fwd;
    if (!s_md_eq(wb_md, &r->w_fwd_md)) {
        wb = s_mem_new(e, wb_md, NULL);
        snprintf(what, sizeof(what), "reorder bwd weights %s", name);
        s_emit_reorder(e, &e->wprog, r->w_fwd, &r->w_fwd_md, wb, wb_md, what);
    }
    bdy = out->dmem;
    md = s_q(pd, dnnl_query_diff_dst_md, 0);
    if (!s_md_eq(md, &out->md)) {
        bdy = s_mem_slot(e, md, e->tmp_slot[1]);
        snprintf(what, sizeof(what), "reorder bwd-d dy %s", name);
        s_emit_reorder(e, &e->bwd, out->dmem, &out->md, bdy, md, what);
    }
    s_contrib_t c = s_contrib_begin(e, op->in0, i, s_q(pd, dnnl_query_diff_src_md, 0));
    snprintf(what, sizeof(what), "conv bwd-d %s", name);
    prim = s_prim(e, pd, what);
    dnnl_exec_arg_t b[3] = {{DNNL_ARG_DIFF_DST, bdy}, {DNNL_ARG_WEIGHTS, wb},
                            {DNNL_ARG_DIFF_SRC, c.target}};
    s_emit(e, &e->bwd, prim, 3, b);
    s_contrib_end(e, &e->bwd, &c, i, name);
}

static void s_plan_bn_bwd(exec_t *e, int i, const char *name)
{
    const xresnet_op_t *op = &e->net->ops[i];
    const xresnet_bn_t *bn = &e->net->bns[op->bn];
    s_op_t *r = &e->ops[i];
    s_value_t *in = &e->vals[op->in0], *out = &e->vals[op->out];
    unsigned flags = dnnl_use_scale | dnnl_use_shift | (op->relu ? dnnl_fuse_norm_relu : 0u);
    char what[64];
    snprintf(what, sizeof(what), "bn bwd %s", name);
    dnnl_batch_normalization_desc_t bd;
    S_DNNL(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &out->md, &in->md,
                                                       S_EPS, flags));
    dnnl_primitive_desc_t pd = s_pd(e, &bd, NULL, r->fwd_pd, what);
    dnnl_dim_t c[1] = {bn->c};
    dnnl_memory_desc_t vec = s_md(1, c, dnnl_a);
    dnnl_memory_t dscale = s_mem_param(e, &vec, op->param, 1);
    dnnl_memory_t dshift = s_mem_param(e, &vec, op->param + 1, 1);
    s_contrib_t ct = s_contrib_begin(e, op->in0, i, s_q(pd, dnnl_query_diff_src_md, 0));
    dnnl_primitive_t prim = s_prim(e, pd, what);
    dnnl_exec_arg_t a[S_MAX_ARGS] = {
        {DNNL_ARG_SRC, in->mem},        {DNNL_ARG_MEAN, r->mean},
        {DNNL_ARG_VARIANCE, r->var},    {DNNL_ARG_DIFF_DST, out->dmem},
        {DNNL_ARG_SCALE, r->scale},     {DNNL_ARG_SHIFT, r->shift},
        {DNNL_ARG_DIFF_SRC, ct.target}, {DNNL_ARG_DIFF_SCALE, dscale},
        {DNNL_ARG_DIFF_SHIFT, dshift},  {DNNL_ARG_WORKSPACE, r->ws}};
    s_emit(e, &e->bwd, prim, op->relu ? 10 : 9, a);
    s_contrib_end(e, &e->bwd, &ct, i, name);
}

static void s_plan_pool_bwd(exec_t *e, int i, const char *name)
{
    const xresnet_op_t *op = &e->net->ops[i];
    s_op_t *r = &e->ops[i];
    s_value_t *in = &e->vals[op->in0], *out = &e->vals[op->out];
    bool is_max = op->kind == XRESNET_OP_MAXPOOL, is_gap = op->kind == XRESNET_OP_GAP;
    dnnl_alg_kind_t alg = is_max ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
    dnnl_dims_t k, st, pl, pr;
    s_pool_geometry(e, op, k, st, pl, pr);
    char what[64];
    snprintf(what, sizeof(what), "%s bwd %s", is_max ? "maxpool" : is_gap ? "gap" : "avgpool",
             name);
    const dnnl_memory_desc_t *dst_md = is_gap ? &r->pooled_md : &out->md;
    dnnl_pooling_desc_t d;
    S_DNNL(dnnl_pooling_backward_desc_init(&d, alg, &in->md, dst_md, st, k, pl, pr));
    dnnl_primitive_desc_t pd = s_pd(e, &d, NULL, r->fwd_pd, what);
    dnnl_memory_t dy = out->dmem;
    if (is_gap) {
        // the flat (N, C) gradient is (N, C, 1, 1) nchw bytes: reorder a 4-D
        // view of its storage into oneDNN's (N, C, 1, 1) layout
        dnnl_dim_t d4[4] = {e->n, op->c_out, 1, 1};
        dnnl_memory_desc_t flat4 = s_md(4, d4, dnnl_nchw);
        dnnl_memory_t view = s_mem_slot(e, &flat4, out->slot);
        dy = s_mem_slot(e, &r->pooled_md, e->tmp_slot[1]);
        char rw[64];
        snprintf(rw, sizeof(rw), "reorder unflatten %s", name);
        s_emit_reorder(e, &e->bwd, view, &flat4, dy, &r->pooled_md, rw);
    }
    s_contrib_t c = s_contrib_begin(e, op->in0, i, s_q(pd, dnnl_query_diff_src_md, 0));
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, c.target}, {0, NULL}};
    int nargs = 2;
    if (is_max) a[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, r->ws};
    dnnl_primitive_t prim = s_prim(e, pd, what);
    s_emit(e, &e->bwd, prim, nargs, a);
    s_contrib_end(e, &e->bwd, &c, i, name);
}

static void s_plan_add_bwd(exec_t *e, int i, const char *name)
{
    const xresnet_op_t *op = &e->net->ops[i];
    s_value_t *out = &e->vals[op->out], *b = &e->vals[op->in1];
    char what[64];
    snprintf(what, sizeof(what), "relu bwd %s", name);
    // d(out)/d(sum) = [out > 0], in place on the output gradient, which the
    // branch input (and the shortcut, when the layouts agree) alias
    dnnl_eltwise_desc_t ed;
    S_DNNL(dnnl_eltwise_backward_desc_init(&ed, dnnl_eltwise_relu_use_dst_for_bwd, &out->md,
                                           &out->md, 0.0f, 0.0f));
    // an eltwise forward descriptor is the required hint
    dnnl_eltwise_desc_t fd;
    S_DNNL(dnnl_eltwise_forward_desc_init(&fd, dnnl_forward_training,
                                          dnnl_eltwise_relu_use_dst_for_bwd, &out->md, 0.0f,
                                          0.0f));
    dnnl_primitive_desc_t hint = s_pd(e, &fd, NULL, NULL, what);
    dnnl_primitive_desc_t pd = s_pd(e, &ed, NULL, hint, what);
    dnnl_primitive_t prim = s_prim(e, pd, what);
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_DST, out->mem}, {DNNL_ARG_DIFF_DST, out->dmem},
                            {DNNL_ARG_DIFF_SRC, out->dmem}};
    s_emit(e, &e->bwd, prim, 3, a);
    NF_CHECK(e->vals[op->in0].storage == out->storage, "branch gradient must alias");
    if (b->storage != out->storage) {
        NF_CHECK(b->first_consumer == i, "the join contributes first to its shortcut");
        snprintf(what, sizeof(what), "reorder shortcut grad %s", name);
        s_emit_reorder(e, &e->bwd, out->dmem, &out->md, b->dmem, &b->md, what);
    }
}

static void s_plan_dropout_bwd(exec_t *e, int i)
{
    const xresnet_op_t *op = &e->net->ops[i];
    NF_CHECK(e->vals[op->in0].first_consumer == i &&
                 s_md_eq(&e->vals[op->in0].md, &e->vals[op->out].md),
             "dropout writes its input gradient directly");
    s_emit_host(&e->bwd, s_host_dropout_bwd, i);
}

static void s_plan_linear_bwd(exec_t *e, int i, const char *name)
{
    const xresnet_op_t *op = &e->net->ops[i];
    s_op_t *r = &e->ops[i];
    s_value_t *in = &e->vals[op->in0], *out = &e->vals[op->out];
    dnnl_dim_t wd[2] = {op->c_out, op->c_in}, bd_[1] = {op->c_out};
    dnnl_memory_desc_t wmd = s_md(2, wd, dnnl_oi), bmd = s_md(1, bd_, dnnl_a);
    char what[64];
    dnnl_inner_product_desc_t d;
    S_DNNL(dnnl_inner_product_backward_weights_desc_init(&d, &in->md, &wmd, &bmd, &out->md));
    snprintf(what, sizeof(what), "linear bwd-w %s", name);
    dnnl_primitive_desc_t pd = s_pd(e, &d, NULL, r->fwd_pd, what);
    dnnl_memory_t dw = s_mem_param(e, &wmd, op->param, 1);
    dnnl_memory_t db = s_mem_param(e, &bmd, op->param + 1, 1);
    dnnl_primitive_t prim = s_prim(e, pd, what);
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, in->mem},
                            {DNNL_ARG_DIFF_DST, out->dmem},
                            {DNNL_ARG_DIFF_WEIGHTS, dw},
                            {DNNL_ARG_DIFF_BIAS, db}};
    s_emit(e, &e->bwd, prim, 4, a);

    S_DNNL(dnnl_inner_product_backward_data_desc_init(&d, &in->md, &wmd, &out->md));
    snprintf(what, sizeof(what), "linear bwd-d %s", name);
    pd = s_pd(e, &d, NULL, r->fwd_pd, what);
    s_contrib_t c = s_contrib_begin(e, op->in0, i, s_q(pd, dnnl_query_diff_src_md, 0));
    prim = s_prim(e, pd, what);
    dnnl_exec_arg_t b[3] = {{DNNL_ARG_DIFF_DST, out->dmem}, {DNNL_ARG_WEIGHTS, r->scale},
                            {DNNL_ARG_DIFF_SRC, c.target}};
    s_emit(e, &e->bwd, prim, 3, b);
    s_contrib_end(e, &e->bwd, &c, i, name);
}

// ---------------------------------------------------------------------------
// plan lifetime

static void s_plan_free(exec_t *e)
{
    for (int i = 0; i < e->n_prims; i++) dnnl_primitive_destroy(e->prims[i]);
    for (int i = 0; i < e->n_pds; i++) dnnl_primitive_desc_destroy(e->pds[i]);
    for (int i = 0; i < e->n_mems; i++) dnnl_memory_destroy(e->mems[i]);
    for (int i = 0; i < e->n_bufs; i++) free(e->bufs[i]);
    for (int i = 0; i < e->n_slots; i++) free(e->slots[i].ptr);
    e->n_prims = e->n_pds = e->n_mems = e->n_bufs = e->n_slots = 0;
    e->n_impls = e->n_deferred = 0;
    e->wprog.n = e->fwd_train.n = e->fwd_eval.n = e->bwd.n = 0;
    free(e->shapes);
    free(e->vals);
    free(e->ops);
    e->shapes = NULL;
    e->vals = NULL;
    e->ops = NULL;
    e->logits = NULL;
    e->n = e->h = e->w = 0;
}

// ---------------------------------------------------------------------------
// parameter layouts

// xresnet.h's layout of parameter t.
static dnnl_memory_desc_t s_canon_md(const exec_t *e, int t)
{
    const xresnet_param_t *p = &e->net->params[t];
    if (p->kind == XRESNET_PARAM_CONV_W) {
        dnnl_dim_t d[4] = {p->shape[0], p->shape[3], p->shape[1], p->shape[2]};  // O, I, KH, KW
        return s_md(4, d, dnnl_ohwi);
    }
    if (p->kind == XRESNET_PARAM_LINEAR_W) {
        dnnl_dim_t d[2] = {p->shape[0], p->shape[1]};
        return s_md(2, d, dnnl_oi);
    }
    dnnl_dim_t d[1] = {(dnnl_dim_t)p->numel};
    return s_md(1, d, dnnl_a);
}

// dst = src converted between layouts, now (set-up and state transfers only).
static void s_reorder_now(exec_t *e, const dnnl_memory_desc_t *src_md, const float *src,
                          const dnnl_memory_desc_t *dst_md, float *dst)
{
    if (s_md_eq(src_md, dst_md)) {
        memcpy(dst, src, dnnl_memory_desc_get_size(src_md));
        return;
    }
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t ms, md;
    S_DNNL(dnnl_reorder_primitive_desc_create(&pd, src_md, e->eng, dst_md, e->eng, NULL));
    S_DNNL(dnnl_primitive_create(&prim, pd));
    S_DNNL(dnnl_memory_create(&ms, src_md, e->eng, (void *)src));
    S_DNNL(dnnl_memory_create(&md, dst_md, e->eng, dst));
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md}};
    S_DNNL(dnnl_primitive_execute(prim, e->strm, 2, a));
    S_DNNL(dnnl_stream_wait(e->strm));
    S_DNNL(dnnl_memory_destroy(ms));
    S_DNNL(dnnl_memory_destroy(md));
    S_DNNL(dnnl_primitive_destroy(prim));
    S_DNNL(dnnl_primitive_desc_destroy(pd));
}

static size_t s_floats16(const dnnl_memory_desc_t *md)
{
    return (dnnl_memory_desc_get_size(md) / sizeof(float) + 15) / 16 * 16;
}

static float *s_zero_floats(size_t n)
{
    float *p = nf_xaligned((n ? n : 1) * sizeof(float));
    memset(p, 0, (n ? n : 1) * sizeof(float));
    return p;
}

// Moves the weights and Adam moments into the layouts the new plan binds
// (normally once, at the first plan; again only if a new batch shape makes
// oneDNN choose other weight layouts).
static void s_relayout(exec_t *e)
{
    const xresnet_t *net = e->net;
    bool same = true;
    for (int t = 0; t < net->n_params; t++) {
        NF_CHECK(e->want_set[t], "parameter %s is not bound by the plan", net->params[t].name);
        same = same && s_md_eq(&e->want[t], &e->pmd[t]);
    }
    if (same) return;
    size_t *off = nf_xmalloc((size_t)net->n_params * sizeof(size_t)), n = 0;
    for (int t = 0; t < net->n_params; t++) {
        off[t] = n;
        n += s_floats16(&e->want[t]);
    }
    exec_cpu_state_t *st = &e->st;
    float *params = s_zero_floats(n), *m = s_zero_floats(n), *v = s_zero_floats(n);
    uint8_t *do_wd = nf_xcalloc(n ? n : 1, 1);
    for (int t = 0; t < net->n_params; t++) {
        s_reorder_now(e, &e->pmd[t], st->params + e->poff[t], &e->want[t], params + off[t]);
        s_reorder_now(e, &e->pmd[t], st->adam_m + e->poff[t], &e->want[t], m + off[t]);
        s_reorder_now(e, &e->pmd[t], st->adam_v + e->poff[t], &e->want[t], v + off[t]);
        // padding elements of a blocked layout stay 0 under Adam whatever the mask
        if (net->params[t].do_wd) memset(do_wd + off[t], 1, s_floats16(&e->want[t]));
        e->pmd[t] = e->want[t];
    }
    free(st->params);
    free(st->adam_m);
    free(st->adam_v);
    free(st->grads);
    free(st->do_wd);
    free(e->poff);
    st->params = params;
    st->adam_m = m;
    st->adam_v = v;
    st->grads = s_zero_floats(n);
    st->do_wd = do_wd;
    st->n_floats = n;
    e->poff = off;
}

// Settles the parameter layout, allocates every slot and points the
// deferred memory objects at their buffers.
static void s_finalize(exec_t *e)
{
    s_relayout(e);
    for (int k = 0; k < e->n_slots; k++) {
        size_t bytes = e->slots[k].bytes ? e->slots[k].bytes : 64;
        e->slots[k].ptr = nf_xaligned(bytes);
        memset(e->slots[k].ptr, 0, bytes);
    }
    for (int i = 0; i < e->n_deferred; i++) {
        const s_deferred_t *d = &e->deferred[i];
        float *ptr = d->slot >= 0 ? e->slots[d->slot].ptr
                                  : (d->which ? e->st.grads : e->st.params) + e->poff[d->param];
        S_DNNL(dnnl_memory_set_data_handle(d->mem, ptr));
    }
}

// The module key of op i (fastai's names) for primitive descriptions.
static void s_op_name(const exec_t *e, int i, char *buf, size_t len)
{
    const xresnet_op_t *op = &e->net->ops[i];
    if (op->param >= 0) {
        const char *pn = e->net->params[op->param].name;
        const char *dot = strrchr(pn, '.');
        snprintf(buf, len, "%.*s", (int)(dot ? dot - pn : (long)strlen(pn)), pn);
    } else {
        snprintf(buf, len, "op%d", i);
    }
}

static int s_plan(exec_t *e, int n, int h, int w)
{
    if (e->n == n && e->h == h && e->w == w) return 0;
    const xresnet_t *net = e->net;
    xresnet_shape_t *shapes = nf_xmalloc((size_t)net->n_values * sizeof(*shapes));
    if (n < 1 || xresnet_shapes(net, h, w, shapes) != 0) {
        nf_log_error("onednn: cannot plan %s for %d images of %dx%d", net->arch, n, h, w);
        free(shapes);
        return -1;
    }
    s_plan_free(e);
    e->n = n, e->h = h, e->w = w;
    e->shapes = shapes;
    for (int t = 0; t < net->n_params; t++) e->want_set[t] = false;
    e->vals = nf_xcalloc((size_t)net->n_values, sizeof(*e->vals));
    e->ops = nf_xcalloc((size_t)net->n_ops, sizeof(*e->ops));
    for (int v = 0; v < net->n_values; v++) {
        e->vals[v].first_consumer = -1;
        e->vals[v].producer = -1;
    }
    for (int i = 0; i < net->n_ops; i++) {
        const xresnet_op_t *op = &net->ops[i];
        e->vals[op->out].producer = i;
        e->vals[op->in0].first_consumer = i;  // ops are in order: the last one wins
        if (op->in1 >= 0) e->vals[op->in1].first_consumer = i;
    }
    e->tmp_slot[0] = s_new_slot(e);
    e->tmp_slot[1] = s_new_slot(e);
    e->logits = s_buf(e, (size_t)n * net->cfg.n_out * sizeof(float));

    // value 0: the caller's NHWC images
    dnnl_dim_t xd[4] = {n, net->cfg.c_in, h, w};
    e->vals[0].md = s_md(4, xd, dnnl_nhwc);
    e->x_mem = e->vals[0].mem = s_mem(e, &e->vals[0].md, DNNL_MEMORY_NONE);

    char name[XRESNET_MAX_NAME];
    for (int i = 0; i < net->n_ops; i++) {
        s_op_name(e, i, name, sizeof(name));
        switch (net->ops[i].kind) {
        case XRESNET_OP_CONV:
            s_plan_conv_fwd(e, i, name);
            break;
        case XRESNET_OP_BN:
            s_plan_bn_fwd(e, i, name);
            break;
        case XRESNET_OP_MAXPOOL:
        case XRESNET_OP_AVGPOOL:
        case XRESNET_OP_GAP:
            s_plan_pool_fwd(e, i, name);
            break;
        case XRESNET_OP_ADD_RELU:
            s_plan_add_fwd(e, i, name);
            break;
        case XRESNET_OP_DROPOUT:
            s_plan_dropout_fwd(e, i);
            break;
        case XRESNET_OP_LINEAR:
            s_plan_linear_fwd(e, i, name);
            break;
        }
    }
    for (int i = 0; i < net->n_ops; i++) {
        if (net->ops[i].kind != XRESNET_OP_DROPOUT) continue;
        size_t count = s_count(e, net->ops[i].out);
        exec_cpu_dropout_mask(e->ops[i].mask, count, 0.0f, 0, 0);
    }
    s_plan_storages(e);
    for (int i = net->n_ops - 1; i >= 0; i--) {
        s_op_name(e, i, name, sizeof(name));
        switch (net->ops[i].kind) {
        case XRESNET_OP_CONV:
            s_plan_conv_bwd(e, i, name);
            break;
        case XRESNET_OP_BN:
            s_plan_bn_bwd(e, i, name);
            break;
        case XRESNET_OP_MAXPOOL:
        case XRESNET_OP_AVGPOOL:
        case XRESNET_OP_GAP:
            s_plan_pool_bwd(e, i, name);
            break;
        case XRESNET_OP_ADD_RELU:
            s_plan_add_bwd(e, i, name);
            break;
        case XRESNET_OP_DROPOUT:
            s_plan_dropout_bwd(e, i);
            break;
        case XRESNET_OP_LINEAR:
            s_plan_linear_bwd(e, i, name);
            break;
        }
    }
    s_finalize(e);
    e->w_dirty = true;
    size_t grad_bytes = 0, act_bytes = 0;
    for (int k = 2; k < e->n_slots; k++) grad_bytes += e->slots[k].bytes;
    for (int v = 1; v < net->n_values; v++) act_bytes += dnnl_memory_desc_get_size(&e->vals[v].md);
    nf_log_debug("onednn: planned %s for %dx%dx%d: %d primitives, activations %.1f MB, "
                 "gradient buffers %.1f MB in %d slots",
                 net->arch, n, h, w, e->n_prims, (double)act_bytes / 1e6,
                 (double)grad_bytes / 1e6, e->n_slots - 2);
    return 0;
}

// ---------------------------------------------------------------------------
// the backend table

static exec_t *s_create(const exec_config_t *cfg)
{
    exec_t *e = nf_xcalloc(1, sizeof(*e));
    e->cfg = *cfg;
    e->net = cfg->net;
    if (cfg->threads > 0) omp_set_num_threads(cfg->threads);
    exec_cpu_state_init(&e->st, cfg->net);
    S_DNNL(dnnl_engine_create(&e->eng, dnnl_cpu, 0));
    S_DNNL(dnnl_stream_create(&e->strm, e->eng, dnnl_stream_default_flags));
    int np = e->net->n_params;
    e->pmd = nf_xcalloc((size_t)np, sizeof(*e->pmd));
    e->poff = nf_xcalloc((size_t)np, sizeof(*e->poff));
    e->want = nf_xcalloc((size_t)np, sizeof(*e->want));
    e->want_set = nf_xcalloc((size_t)np, sizeof(*e->want_set));
    for (int t = 0; t < np; t++) {
        e->pmd[t] = s_canon_md(e, t);
        e->poff[t] = e->net->params[t].offset;
    }
    return e;
}

static void s_destroy(exec_t **self_p)
{
    if (!self_p || !*self_p) return;
    exec_t *e = *self_p;
    s_plan_free(e);
    free(e->prims);
    free(e->pds);
    free(e->mems);
    free(e->bufs);
    free(e->impls);
    free(e->slots);
    free(e->deferred);
    free(e->wprog.v);
    free(e->fwd_train.v);
    free(e->fwd_eval.v);
    free(e->bwd.v);
    dnnl_stream_destroy(e->strm);
    dnnl_engine_destroy(e->eng);
    exec_cpu_state_free(&e->st);
    free(e->pmd);
    free(e->poff);
    free(e->want);
    free(e->want_set);
    free(e);
    *self_p = NULL;
}

// Converts every parameter-shaped buffer between xresnet.h's layout (host)
// and ours (st); to_host picks the direction.
static void s_transfer(exec_t *e, float *host, float *ours, bool to_host)
{
    for (int t = 0; t < e->net->n_params; t++) {
        dnnl_memory_desc_t canon = s_canon_md(e, t);
        float *h = host + e->net->params[t].offset, *o = ours + e->poff[t];
        if (to_host)
            s_reorder_now(e, &e->pmd[t], o, &canon, h);
        else
            s_reorder_now(e, &canon, h, &e->pmd[t], o);
    }
}

static void s_state_write(exec_t *e, const exec_state_t *host)
{
    if (host->params) s_transfer(e, host->params, e->st.params, false);
    if (host->adam_m) s_transfer(e, host->adam_m, e->st.adam_m, false);
    if (host->adam_v) s_transfer(e, host->adam_v, e->st.adam_v, false);
    size_t nb = e->net->n_bn_floats * sizeof(float);
    if (host->run_mean) memcpy(e->st.run_mean, host->run_mean, nb);
    if (host->run_var) memcpy(e->st.run_var, host->run_var, nb);
    e->w_dirty = true;
}

static void s_state_read(exec_t *e, const exec_state_t *host)
{
    if (host->params) s_transfer(e, host->params, e->st.params, true);
    if (host->adam_m) s_transfer(e, host->adam_m, e->st.adam_m, true);
    if (host->adam_v) s_transfer(e, host->adam_v, e->st.adam_v, true);
    size_t nb = e->net->n_bn_floats * sizeof(float);
    if (host->run_mean) memcpy(host->run_mean, e->st.run_mean, nb);
    if (host->run_var) memcpy(host->run_var, e->st.run_var, nb);
}

static void s_forward(exec_t *e, const exec_forward_t *args, float *logits)
{
    NF_CHECK(e->n > 0, "onednn: forward before plan");
    if (e->w_dirty) {
        s_run(e, &e->wprog);
        e->w_dirty = false;
    }
    if (args->train && e->net->cfg.dropout > 0.0f)
        for (int i = 0; i < e->net->n_ops; i++)
            if (e->net->ops[i].kind == XRESNET_OP_DROPOUT)
                exec_cpu_dropout_mask(e->ops[i].mask, s_count(e, e->net->ops[i].out),
                                      e->net->cfg.dropout, args->dropout_seed,
                                      args->dropout_index);
    S_DNNL(dnnl_memory_set_data_handle(e->x_mem, (void *)args->x));
    s_run(e, args->train ? &e->fwd_train : &e->fwd_eval);
    memcpy(logits, e->logits, (size_t)e->n * e->net->cfg.n_out * sizeof(float));
}

static void s_backward(exec_t *e, const float *dlogits)
{
    NF_CHECK(e->n > 0, "onednn: backward before plan");
    int lv = e->net->ops[e->net->n_ops - 1].out;
    memcpy(s_dptr(e, lv), dlogits, (size_t)e->n * e->net->cfg.n_out * sizeof(float));
    s_run(e, &e->bwd);
}

static void s_grads_read(exec_t *e, float *grads)
{
    memset(grads, 0, e->net->n_param_floats * sizeof(float));  // alignment gaps
    s_transfer(e, grads, e->st.grads, true);
}

static void s_adam_step(exec_t *e, const adam_params_t *hp)
{
    exec_cpu_adam_step(&e->st, hp);
    e->w_dirty = true;
}

static void s_adam_reset(exec_t *e) { exec_cpu_adam_reset(&e->st); }

int exec_onednn_impls(const exec_t *e, exec_onednn_impl_t *out, int max, int *total)
{
    int n = e->n_impls < max ? e->n_impls : max;
    if (n > 0) memcpy(out, e->impls, (size_t)n * sizeof(*out));
    if (total) *total = e->n_impls;
    return n;
}

const exec_backend_t exec_onednn_backend = {
    .name = "onednn",
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
};
