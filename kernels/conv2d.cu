/*
 * conv2d.cu: the CUDA twin of conv2d.h through cuDNN 9's legacy convolution
 * API (cudnnConvolutionForward / BackwardData / BackwardFilter).
 *
 * Why the legacy API and not the graph API: for plain NHWC convolutions with
 * a fixed algorithm per shape it is a third of the code, it is what
 * PyTorch's cuDNN path still uses for these layers, and every call returns a
 * status we check. The graph API becomes worth it for fused conv+BN+ReLU
 * graphs (a later, speed-focused issue).
 *
 * Per shape (conv2d_params_t, compared field by field) the plan holds the
 * descriptors and one algorithm per direction, chosen once with cuDNN's
 * heuristics (cudnnGet*Algorithm_v7): the first that succeeds, preferring
 * deterministic ones for the two backward directions, or, after
 * conv2d_autotune_cuda, the algorithms cudnnFind*AlgorithmEx timed fastest on
 * the caller's buffers (the training executor tunes every shape once when it
 * plans). f32 uses FMA math (no TF32) so that parity tests can be tight; bf16
 * uses tensor-op math with fp32 accumulation. Backward-data blends into dx
 * with beta = 1 when p->accumulate. The plans live in ctx (host memory only)
 * and are freed by cuda_ctx_destroy. Not here: groups, dilation, bias.
 */
#include "conv2d.h"
#include "cuda_util.cuh"

#include <stdlib.h>
#include <string.h>

typedef struct {
    conv2d_params_t key;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    cudnnMathType_t fwd_math, bwd_data_math, bwd_filter_math;
    size_t ws_fwd, ws_bwd_data, ws_bwd_filter;
    bool tuned;  // algorithms chosen by conv2d_autotune_cuda
} s_plan_t;

struct cuda_conv_cache_t {
    s_plan_t *plans;
    size_t count, cap;
};

static bool s_same(const conv2d_params_t *a, const conv2d_params_t *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c_in == b->c_in &&
           a->c_out == b->c_out && a->kh == b->kh && a->kw == b->kw && a->stride == b->stride &&
           a->pad == b->pad && a->dtype == b->dtype;
}

static cudnnDataType_t s_cudnn_type(kdtype_t t)
{
    return t == KDTYPE_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

// f32 must not run on TF32 tensor cores (parity would drift): FMA kernels only.
static bool s_math_ok(bool f32, cudnnMathType_t m)
{
    return !f32 || m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH;
}

static void s_plan_workspaces(s_plan_t *pl, cuda_ctx_t *ctx);

static void s_plan_build(s_plan_t *pl, const conv2d_params_t *p, cuda_ctx_t *ctx)
{
    const cudnnDataType_t dt = s_cudnn_type(p->dtype);
    const cudnnMathType_t math = p->dtype == KDTYPE_F32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
    pl->key = *p;
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&pl->x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&pl->y));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&pl->w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&pl->conv));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(pl->x, CUDNN_TENSOR_NHWC, dt, p->n, p->c_in, p->h, p->w));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(pl->y, CUDNN_TENSOR_NHWC, dt, p->n, p->c_out,
                                           conv2d_out_h(p), conv2d_out_w(p)));
    // NHWC filter = (K, R, S, C): our (C_out, KH, KW, C_in)
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(pl->w, dt, CUDNN_TENSOR_NHWC, p->c_out, p->c_in, p->kh,
                                           p->kw));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(pl->conv, p->pad, p->pad, p->stride, p->stride, 1,
                                                1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv, math));

    // output shape must agree with ours
    int on, oc, oh, ow;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(pl->conv, pl->x, pl->w, &on, &oc, &oh, &ow));
    NF_CHECK(on == p->n && oc == p->c_out && oh == conv2d_out_h(p) && ow == conv2d_out_w(p),
             "cuDNN output %dx%dx%dx%d disagrees", on, oc, oh, ow);

    // Candidates come sorted by expected speed. Acceptable: status success, and for f32
    // FMA math only (no TF32). Preferred: deterministic (forward always is).
    enum { MAX_ALGOS = 16 };
    const bool f32 = p->dtype == KDTYPE_F32;
    int got = 0, pick = -1;
    cudnnConvolutionFwdAlgoPerf_t fp[MAX_ALGOS];
    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(ctx->cudnn, pl->x, pl->w, pl->conv, pl->y,
                                                       MAX_ALGOS, &got, fp));
    for (int i = 0; i < got && pick < 0; i++)
        if (fp[i].status == CUDNN_STATUS_SUCCESS && s_math_ok(f32, fp[i].mathType)) pick = i;
    NF_CHECK(pick >= 0, "cuDNN has no forward algorithm for this convolution");
    pl->fwd = fp[pick].algo, pl->fwd_math = f32 ? CUDNN_FMA_MATH : fp[pick].mathType;

    cudnnConvolutionBwdDataAlgoPerf_t dp[MAX_ALGOS];
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx->cudnn, pl->w, pl->y, pl->conv,
                                                            pl->x, MAX_ALGOS, &got, dp));
    pick = -1;
    for (int pass = 0; pass < 2 && pick < 0; pass++)
        for (int i = 0; i < got && pick < 0; i++)
            if (dp[i].status == CUDNN_STATUS_SUCCESS && s_math_ok(f32, dp[i].mathType) &&
                (pass == 1 || dp[i].determinism == CUDNN_DETERMINISTIC))
                pick = i;
    NF_CHECK(pick >= 0, "cuDNN has no backward-data algorithm for this convolution");
    pl->bwd_data = dp[pick].algo, pl->bwd_data_math = f32 ? CUDNN_FMA_MATH : dp[pick].mathType;

    cudnnConvolutionBwdFilterAlgoPerf_t wp[MAX_ALGOS];
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(ctx->cudnn, pl->x, pl->y, pl->conv,
                                                              pl->w, MAX_ALGOS, &got, wp));
    pick = -1;
    for (int pass = 0; pass < 2 && pick < 0; pass++)
        for (int i = 0; i < got && pick < 0; i++)
            if (wp[i].status == CUDNN_STATUS_SUCCESS && s_math_ok(f32, wp[i].mathType) &&
                (pass == 1 || wp[i].determinism == CUDNN_DETERMINISTIC))
                pick = i;
    NF_CHECK(pick >= 0, "cuDNN has no backward-filter algorithm for this convolution");
    pl->bwd_filter = wp[pick].algo;
    pl->bwd_filter_math = f32 ? CUDNN_FMA_MATH : wp[pick].mathType;

    s_plan_workspaces(pl, ctx);
}

// The exact workspace of each chosen algorithm, with its math type set.
static void s_plan_workspaces(s_plan_t *pl, cuda_ctx_t *ctx)
{
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv, pl->fwd_math));
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(ctx->cudnn, pl->x, pl->w, pl->conv, pl->y,
                                                        pl->fwd, &pl->ws_fwd));
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv, pl->bwd_data_math));
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(ctx->cudnn, pl->w, pl->y, pl->conv,
                                                             pl->x, pl->bwd_data, &pl->ws_bwd_data));
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv, pl->bwd_filter_math));
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
        ctx->cudnn, pl->x, pl->y, pl->conv, pl->w, pl->bwd_filter, &pl->ws_bwd_filter));
}

static s_plan_t *s_plan(const conv2d_params_t *p, cuda_ctx_t *ctx)
{
    conv2d_check_params(p);
    if (!ctx->conv_cache) ctx->conv_cache = (cuda_conv_cache_t *)nf_xcalloc(1, sizeof(cuda_conv_cache_t));
    cuda_conv_cache_t *c = ctx->conv_cache;
    for (size_t i = 0; i < c->count; i++)
        if (s_same(&c->plans[i].key, p)) return &c->plans[i];
    if (c->count == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 32;
        c->plans = (s_plan_t *)nf_xrealloc(c->plans, c->cap * sizeof *c->plans);
    }
    s_plan_t *pl = &c->plans[c->count];
    memset(pl, 0, sizeof *pl);
    s_plan_build(pl, p, ctx);
    c->count++;
    return pl;
}

void cuda_conv_cache_destroy(cuda_conv_cache_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->count; i++) {
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(c->plans[i].x));
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(c->plans[i].y));
        CUDNN_CHECK(cudnnDestroyFilterDescriptor(c->plans[i].w));
        CUDNN_CHECK(cudnnDestroyConvolutionDescriptor(c->plans[i].conv));
    }
    free(c->plans);
    free(c);
}

// ---------------------------------------------------------------------------
// autotuning

// Of n perf results sorted by time: the fastest usable one or, when
// `prefer_det`, a deterministic one within 5 % of it. -1 when none is usable.
template <typename P>
static int s_pick(const P *r, int n, bool f32, size_t max_ws, bool prefer_det)
{
    int fast = -1, det = -1;
    for (int i = 0; i < n; i++) {
        if (r[i].status != CUDNN_STATUS_SUCCESS || r[i].time < 0 || r[i].memory > max_ws ||
            !s_math_ok(f32, r[i].mathType))
            continue;
        if (fast < 0) fast = i;
        if (det < 0 && r[i].determinism == CUDNN_DETERMINISTIC) det = i;
    }
    if (prefer_det && fast >= 0 && det >= 0 && r[det].time <= 1.05f * r[fast].time) return det;
    return fast;
}

size_t conv2d_autotune_cuda(const conv2d_params_t *p, const conv2d_tune_buffers_t *b,
                            size_t max_workspace, cuda_ctx_t *ctx)
{
    s_plan_t *pl = s_plan(p, ctx);
    if (!pl->tuned) {
        NF_CHECK(max_workspace <= ctx->workspace_bytes,
                 "conv2d autotune: %zu workspace bytes asked, ctx has %zu", max_workspace,
                 ctx->workspace_bytes);
        CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
        enum { MAX_ALGOS = 16 };
        const bool f32 = p->dtype == KDTYPE_F32;
        const cudnnMathType_t math = f32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
        int got = 0, pick;

        cudnnConvolutionFwdAlgoPerf_t fp[MAX_ALGOS];
        CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv, math));
        CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(ctx->cudnn, pl->x, b->x, pl->w, b->w,
                                                           pl->conv, pl->y, b->y, MAX_ALGOS, &got,
                                                           fp, ctx->workspace, max_workspace));
        pick = s_pick(fp, got, f32, max_workspace, false);
        NF_CHECK(pick >= 0, "cuDNN found no forward algorithm for this convolution");
        pl->fwd = fp[pick].algo;
        pl->fwd_math = f32 ? CUDNN_FMA_MATH : fp[pick].mathType;

        cudnnConvolutionBwdDataAlgoPerf_t dp[MAX_ALGOS];
        CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv, math));
        CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
            ctx->cudnn, pl->w, b->w, pl->y, b->dy, pl->conv, pl->x, b->dx, MAX_ALGOS, &got, dp,
            ctx->workspace, max_workspace));
        pick = s_pick(dp, got, f32, max_workspace, true);
        NF_CHECK(pick >= 0, "cuDNN found no backward-data algorithm for this convolution");
        pl->bwd_data = dp[pick].algo;
        pl->bwd_data_math = f32 ? CUDNN_FMA_MATH : dp[pick].mathType;

        cudnnConvolutionBwdFilterAlgoPerf_t wp[MAX_ALGOS];
        CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv, math));
        CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
            ctx->cudnn, pl->x, b->x, pl->y, b->dy, pl->conv, pl->w, b->dw, MAX_ALGOS, &got, wp,
            ctx->workspace, max_workspace));
        pick = s_pick(wp, got, f32, max_workspace, true);
        NF_CHECK(pick >= 0, "cuDNN found no backward-filter algorithm for this convolution");
        pl->bwd_filter = wp[pick].algo;
        pl->bwd_filter_math = f32 ? CUDNN_FMA_MATH : wp[pick].mathType;

        s_plan_workspaces(pl, ctx);
        pl->tuned = true;
    }
    size_t m = pl->ws_fwd;
    if (pl->ws_bwd_data > m) m = pl->ws_bwd_data;
    if (pl->ws_bwd_filter > m) m = pl->ws_bwd_filter;
    return m;
}

size_t conv2d_workspace_bytes_cuda(const conv2d_params_t *p, cuda_ctx_t *ctx)
{
    const s_plan_t *pl = s_plan(p, ctx);
    size_t m = pl->ws_fwd;
    if (pl->ws_bwd_data > m) m = pl->ws_bwd_data;
    if (pl->ws_bwd_filter > m) m = pl->ws_bwd_filter;
    return m;
}

static void s_need_ws(size_t need, const cuda_ctx_t *ctx)
{
    NF_CHECK(need <= ctx->workspace_bytes,
             "conv2d needs %zu workspace bytes, ctx has %zu (reserve conv2d_workspace_bytes_cuda)",
             need, ctx->workspace_bytes);
}

void conv2d_forward_cuda(void *y, const void *x, const void *w, const conv2d_params_t *p,
                         cuda_ctx_t *ctx)
{
    s_plan_t *pl = s_plan(p, ctx);
    s_need_ws(pl->ws_fwd, ctx);
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv, pl->fwd_math));
    CUDNN_CHECK(cudnnConvolutionForward(ctx->cudnn, &one, pl->x, x, pl->w, w, pl->conv, pl->fwd,
                                        ctx->workspace, pl->ws_fwd, &zero, pl->y, y));
    if (ctx->debug_sync) CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
}

void conv2d_backward_data_cuda(void *dx, const void *dy, const void *w, const conv2d_params_t *p,
                               cuda_ctx_t *ctx)
{
    s_plan_t *pl = s_plan(p, ctx);
    s_need_ws(pl->ws_bwd_data, ctx);
    const float one = 1.0f, beta = p->accumulate ? 1.0f : 0.0f;
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv, pl->bwd_data_math));
    CUDNN_CHECK(cudnnConvolutionBackwardData(ctx->cudnn, &one, pl->w, w, pl->y, dy, pl->conv,
                                             pl->bwd_data, ctx->workspace, pl->ws_bwd_data, &beta,
                                             pl->x, dx));
    if (ctx->debug_sync) CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
}

void conv2d_backward_weights_cuda(void *dw, const void *dy, const void *x,
                                  const conv2d_params_t *p, cuda_ctx_t *ctx)
{
    s_plan_t *pl = s_plan(p, ctx);
    s_need_ws(pl->ws_bwd_filter, ctx);
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv, pl->bwd_filter_math));
    CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx->cudnn, &one, pl->x, x, pl->y, dy, pl->conv,
                                               pl->bwd_filter, ctx->workspace, pl->ws_bwd_filter,
                                               &zero, pl->w, dw));
    if (ctx->debug_sync) CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
}
