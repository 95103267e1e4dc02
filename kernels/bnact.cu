/*
 * bnact.cu: the CUDA twin of bnact.h: BatchNorm (+ residual add) (+ ReLU)
 * over NHWC with our own kernels.
 *
 * Layout of the work: an NHWC activation is M = N*H*W rows of C channels.
 * A thread owns V consecutive channels (V = 8 for bf16, 4 for f32: one
 * 16-byte access; 1 when C is not a multiple of V) and walks rows with a
 * stride; a block is `cols` channel vectors x `rows` row lanes (256 threads),
 * the grid is (channel blocks, row chunks). The geometry is a function of the
 * shape alone, so every reduction happens in the same order on every run.
 *
 *   train forward  1. partial sums per chunk of (x - K) and (x - K)^2, K = the
 *                     channel's value in row 0 (a shift that keeps the one-pass
 *                     variance from cancelling), reduced over the block's row
 *                     lanes in a fixed order
 *                  2. per channel: the chunks' partials summed in double ->
 *                     mean, biased variance, invstd, running statistics
 *                  3. y = act(x * scale + shift [+ r])
 *   backward       1. partial sums of dz and dz * (x - mean)
 *                  2. dbeta, dgamma per channel (double)
 *                  3. dx = a * (dz - b - (x - mean) * c) [+ dx], dr = dz [+ dr]
 *   eval           3 only, from the running statistics
 * No atomics; partials live in ctx->workspace (bnact_workspace_bytes_cuda).
 * Arithmetic is fp32 (double for the per-channel finalisation), storage f32
 * or bf16 rounded once at the store.
 */
#include "bnact.h"
#include "cuda_util.cuh"

#include <math.h>

enum { S_THREADS = 256 };

typedef struct {
    size_t M;        // rows (N*H*W)
    int C, V;        // channels; channels per thread
    int cv;          // channel vectors per row (C / V)
    int cols, rows;  // block = cols channel vectors x rows row lanes
    int gx;          // blocks along the channels
    int chunks;      // blocks along the rows
    size_t rpc;      // rows per chunk
} s_geom_t;

static int s_vec_width(const bnact_params_t *p)
{
    const int v = p->dtype == KDTYPE_BF16 ? 8 : 4;
    return p->c % v == 0 ? v : 1;
}

// The reduction passes use fewer, longer chunks (at least 16 rows per lane)
// so that the partials stay small against the data; the apply passes more
// blocks (at least 4 rows per lane) to keep enough loads in flight.
static s_geom_t s_geom(const bnact_params_t *p, int min_rows_per_lane, int max_blocks)
{
    s_geom_t g;
    g.M = (size_t)p->n * (size_t)p->h * (size_t)p->w;
    g.C = p->c;
    g.V = s_vec_width(p);
    g.cv = g.C / g.V;
    g.cols = g.cv < S_THREADS ? g.cv : S_THREADS;
    g.rows = S_THREADS / g.cols;
    g.gx = (g.cv + g.cols - 1) / g.cols;
    int chunks = max_blocks / g.gx;
    if (chunks < 1) chunks = 1;
    const size_t per_chunk = (size_t)g.rows * (size_t)min_rows_per_lane;
    const size_t most = (g.M + per_chunk - 1) / per_chunk;
    if ((size_t)chunks > most) chunks = (int)most;
    if (chunks < 1) chunks = 1;
    g.chunks = chunks;
    g.rpc = (g.M + (size_t)chunks - 1) / (size_t)chunks;
    return g;
}

static s_geom_t s_geom_reduce(const bnact_params_t *p) { return s_geom(p, 16, 1024); }
static s_geom_t s_geom_apply(const bnact_params_t *p) { return s_geom(p, 4, 4096); }

static void s_check(const bnact_params_t *p)
{
    NF_CHECK(p->n > 0 && p->h > 0 && p->w > 0 && p->c > 0, "bnact: bad shape %dx%dx%dx%d", p->n,
             p->h, p->w, p->c);
    NF_CHECK(p->eps > 0 && p->momentum >= 0 && p->momentum <= 1, "bnact: eps %g momentum %g",
             (double)p->eps, (double)p->momentum);
    NF_CHECK(p->dtype == KDTYPE_F32 || p->dtype == KDTYPE_BF16, "bnact: bad dtype %d",
             (int)p->dtype);
}

size_t bnact_workspace_bytes_cuda(const bnact_params_t *p)
{
    s_check(p);
    const s_geom_t g = s_geom_reduce(p);
    return 2 * (size_t)g.chunks * (size_t)g.C * sizeof(float);
}

// ---------------------------------------------------------------------------
// vector access: V elements of T, one 16-byte transaction when V*sizeof(T) = 16

template <typename T, int V> __device__ __forceinline__ void s_ld(const T *p, float (&v)[V])
{
    if constexpr (V * sizeof(T) == 16) {
        const uint4 raw = *reinterpret_cast<const uint4 *>(p);
        const T *e = reinterpret_cast<const T *>(&raw);
#pragma unroll
        for (int j = 0; j < V; j++) v[j] = nf_f32(e[j]);
    } else {
#pragma unroll
        for (int j = 0; j < V; j++) v[j] = nf_f32(p[j]);
    }
}

template <typename T, int V> __device__ __forceinline__ void s_st(T *p, const float (&v)[V])
{
    if constexpr (V * sizeof(T) == 16) {
        uint4 raw;
        T *e = reinterpret_cast<T *>(&raw);
#pragma unroll
        for (int j = 0; j < V; j++) e[j] = nf_store<T>(v[j]);
        *reinterpret_cast<uint4 *>(p) = raw;
    } else {
#pragma unroll
        for (int j = 0; j < V; j++) p[j] = nf_store<T>(v[j]);
    }
}

__device__ __forceinline__ float s_relu(float v) { return isnan(v) ? v : (v > 0.0f ? v : 0.0f); }

// Sums the block's row lanes in lane order and writes the chunk's partials
// part[0][chunk][c] and part[1][chunk][c].
template <int V>
__device__ __forceinline__ void s_block_partials(float *part, const float (&s1)[V],
                                                 const float (&s2)[V], const s_geom_t &g, int tx,
                                                 int ty, int cvi)
{
    extern __shared__ float sh[];  // (2, rows, cols, V)
    float *a = sh, *b = sh + (size_t)g.rows * g.cols * V;
#pragma unroll
    for (int j = 0; j < V; j++) {
        a[((size_t)ty * g.cols + tx) * V + j] = s1[j];
        b[((size_t)ty * g.cols + tx) * V + j] = s2[j];
    }
    __syncthreads();
    if (ty != 0 || cvi >= g.cv) return;
#pragma unroll
    for (int j = 0; j < V; j++) {
        float t1 = 0.0f, t2 = 0.0f;
        for (int r = 0; r < g.rows; r++) {
            t1 += a[((size_t)r * g.cols + tx) * V + j];
            t2 += b[((size_t)r * g.cols + tx) * V + j];
        }
        const size_t c = (size_t)cvi * V + j;
        part[(size_t)blockIdx.y * g.C + c] = t1;
        part[((size_t)g.chunks + blockIdx.y) * g.C + c] = t2;
    }
}

// ---------------------------------------------------------------------------
// train forward

template <typename T, int V>
static __global__ void __launch_bounds__(S_THREADS) s_fwd_stats(float *part, const T *x, s_geom_t g)
{
    const int tx = threadIdx.x % g.cols, ty = threadIdx.x / g.cols;
    const int cvi = blockIdx.x * g.cols + tx;
    float s1[V], s2[V];
#pragma unroll
    for (int j = 0; j < V; j++) s1[j] = s2[j] = 0.0f;
    if (cvi < g.cv) {
        float k[V], v[V];
        s_ld<T, V>(x + (size_t)cvi * V, k);
        const size_t m0 = (size_t)blockIdx.y * g.rpc;
        const size_t m1 = m0 + g.rpc < g.M ? m0 + g.rpc : g.M;
        for (size_t m = m0 + ty; m < m1; m += g.rows) {
            s_ld<T, V>(x + m * g.C + (size_t)cvi * V, v);
#pragma unroll
            for (int j = 0; j < V; j++) {
                const float d = v[j] - k[j];
                s1[j] += d;
                s2[j] = fmaf(d, d, s2[j]);
            }
        }
    }
    s_block_partials<V>(part, s1, s2, g, tx, ty, cvi);
}

template <typename T>
static __global__ void s_fwd_finalize(float *save_mean, float *save_invstd, float *run_mean,
                                      float *run_var, const float *part, const T *x, s_geom_t g,
                                      float eps, float momentum)
{
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= g.C) return;
    double s1 = 0.0, s2 = 0.0;
    for (int k = 0; k < g.chunks; k++) {
        s1 += part[(size_t)k * g.C + c];
        s2 += part[((size_t)g.chunks + k) * g.C + c];
    }
    const double M = (double)g.M;
    const double dmean = s1 / M;  // mean - K
    double var = (s2 - s1 * dmean) / M;
    if (var < 0.0) var = 0.0;
    const double mean = (double)nf_f32(x[c]) + dmean;
    const double invstd = 1.0 / sqrt(var + (double)eps);
    save_mean[c] = (float)mean;
    save_invstd[c] = (float)invstd;
    const double unbiased = g.M > 1 ? var * M / (M - 1.0) : (double)NAN;
    const double mom = momentum;
    run_mean[c] = (float)((1.0 - mom) * run_mean[c] + mom * mean);
    run_var[c] = (float)((1.0 - mom) * run_var[c] + mom * unbiased);
}

// y = act(x * scale + shift [+ r]); scale and shift from (mean, invstd) or,
// in eval, from the running statistics.
template <typename T, int V>
static __global__ void __launch_bounds__(S_THREADS)
    s_fwd_apply(T *y, const T *x, const T *r, const float *mean, const float *invstd_or_var,
                const float *gamma, const float *beta, s_geom_t g, int eval, float eps, int relu)
{
    const int tx = threadIdx.x % g.cols, ty = threadIdx.x / g.cols;
    const int cvi = blockIdx.x * g.cols + tx;
    if (cvi >= g.cv) return;
    float sc[V], sf[V];
#pragma unroll
    for (int j = 0; j < V; j++) {
        const int c = cvi * V + j;
        const double inv = eval ? 1.0 / sqrt((double)invstd_or_var[c] + (double)eps)
                                : (double)invstd_or_var[c];
        sc[j] = (float)((double)gamma[c] * inv);
        sf[j] = (float)((double)beta[c] - (double)mean[c] * (double)gamma[c] * inv);
    }
    const size_t m0 = (size_t)blockIdx.y * g.rpc;
    const size_t m1 = m0 + g.rpc < g.M ? m0 + g.rpc : g.M;
    for (size_t m = m0 + ty; m < m1; m += g.rows) {
        const size_t off = m * g.C + (size_t)cvi * V;
        float v[V], rv[V];
        s_ld<T, V>(x + off, v);
        if (r) s_ld<T, V>(r + off, rv);
#pragma unroll
        for (int j = 0; j < V; j++) {
            float o = fmaf(v[j], sc[j], sf[j]);
            if (r) o += rv[j];
            v[j] = relu ? s_relu(o) : o;
        }
        s_st<T, V>(y + off, v);
    }
}

// ---------------------------------------------------------------------------
// backward

template <typename T, int V>
__device__ __forceinline__ void s_dz(float (&dz)[V], const T *dy, const T *y, size_t off, int relu)
{
    s_ld<T, V>(dy + off, dz);
    if (relu) {
        float yv[V];
        s_ld<T, V>(y + off, yv);
#pragma unroll
        for (int j = 0; j < V; j++)
            if (!(yv[j] > 0.0f)) dz[j] = 0.0f;
    }
}

template <typename T, int V>
static __global__ void __launch_bounds__(S_THREADS)
    s_bwd_stats(float *part, const T *dy, const T *y, const T *x, const float *mean, s_geom_t g,
                int relu)
{
    const int tx = threadIdx.x % g.cols, ty = threadIdx.x / g.cols;
    const int cvi = blockIdx.x * g.cols + tx;
    float s1[V], s2[V];
#pragma unroll
    for (int j = 0; j < V; j++) s1[j] = s2[j] = 0.0f;
    if (cvi < g.cv) {
        float mu[V];
#pragma unroll
        for (int j = 0; j < V; j++) mu[j] = mean[cvi * V + j];
        const size_t m0 = (size_t)blockIdx.y * g.rpc;
        const size_t m1 = m0 + g.rpc < g.M ? m0 + g.rpc : g.M;
        for (size_t m = m0 + ty; m < m1; m += g.rows) {
            const size_t off = m * g.C + (size_t)cvi * V;
            float dz[V], xv[V];
            s_dz<T, V>(dz, dy, y, off, relu);
            s_ld<T, V>(x + off, xv);
#pragma unroll
            for (int j = 0; j < V; j++) {
                s1[j] += dz[j];
                s2[j] = fmaf(dz[j], xv[j] - mu[j], s2[j]);
            }
        }
    }
    s_block_partials<V>(part, s1, s2, g, tx, ty, cvi);
}

static __global__ void s_bwd_finalize(float *dgamma, float *dbeta, const float *part,
                                      const float *invstd, s_geom_t g)
{
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= g.C) return;
    double s1 = 0.0, s2 = 0.0;
    for (int k = 0; k < g.chunks; k++) {
        s1 += part[(size_t)k * g.C + c];
        s2 += part[((size_t)g.chunks + k) * g.C + c];
    }
    dbeta[c] = (float)s1;
    dgamma[c] = (float)(s2 * (double)invstd[c]);
}

template <typename T, int V>
static __global__ void __launch_bounds__(S_THREADS)
    s_bwd_apply(T *dx, T *dr, const T *dy, const T *y, const T *x, const float *gamma,
                const float *mean, const float *invstd, const float *dgamma, const float *dbeta,
                s_geom_t g, int relu, int acc_dx, int acc_dr)
{
    const int tx = threadIdx.x % g.cols, ty = threadIdx.x / g.cols;
    const int cvi = blockIdx.x * g.cols + tx;
    if (cvi >= g.cv) return;
    // dx = a * (dz - b - (x - mean) * cc), a = gamma*invstd, b = dbeta/M,
    // cc = dgamma*invstd/M
    float a[V], b[V], cc[V], mu[V];
    const double M = (double)g.M;
#pragma unroll
    for (int j = 0; j < V; j++) {
        const int c = cvi * V + j;
        const double inv = invstd[c];
        a[j] = (float)((double)gamma[c] * inv);
        b[j] = (float)((double)dbeta[c] / M);
        cc[j] = (float)((double)dgamma[c] * inv / M);
        mu[j] = mean[c];
    }
    const size_t m0 = (size_t)blockIdx.y * g.rpc;
    const size_t m1 = m0 + g.rpc < g.M ? m0 + g.rpc : g.M;
    for (size_t m = m0 + ty; m < m1; m += g.rows) {
        const size_t off = m * g.C + (size_t)cvi * V;
        float dz[V], xv[V], o[V];
        s_dz<T, V>(dz, dy, y, off, relu);
        s_ld<T, V>(x + off, xv);
        if (acc_dx) s_ld<T, V>(dx + off, o);
#pragma unroll
        for (int j = 0; j < V; j++) {
            const float gdx = a[j] * (dz[j] - b[j] - (xv[j] - mu[j]) * cc[j]);
            o[j] = acc_dx ? o[j] + gdx : gdx;
        }
        s_st<T, V>(dx + off, o);
        if (dr) {
            if (acc_dr) {
                float old[V];
                s_ld<T, V>(dr + off, old);
#pragma unroll
                for (int j = 0; j < V; j++) dz[j] += old[j];
            }
            s_st<T, V>(dr + off, dz);
        }
    }
}

// ---------------------------------------------------------------------------
// launchers

static size_t s_shmem(const s_geom_t &g) { return 2 * (size_t)g.rows * g.cols * g.V * sizeof(float); }

static void s_need_ws(const bnact_params_t *p, const cuda_ctx_t *ctx)
{
    const size_t need = bnact_workspace_bytes_cuda(p);
    NF_CHECK(need <= ctx->workspace_bytes,
             "bnact needs %zu workspace bytes, ctx has %zu (reserve bnact_workspace_bytes_cuda)",
             need, ctx->workspace_bytes);
}

template <typename T, int V>
static void s_train(T *y, float *sm, float *si, float *rm, float *rv, const T *x, const T *r,
                    const float *gamma, const float *beta, const bnact_params_t *p,
                    cuda_ctx_t *ctx)
{
    float *part = (float *)ctx->workspace;
    const s_geom_t gr = s_geom_reduce(p), ga = s_geom_apply(p);
    s_fwd_stats<T, V><<<dim3(gr.gx, gr.chunks), gr.cols * gr.rows, s_shmem(gr), ctx->stream>>>(
        part, x, gr);
    CUDA_LAUNCH_CHECK(ctx);
    s_fwd_finalize<T><<<(gr.C + 255) / 256, 256, 0, ctx->stream>>>(sm, si, rm, rv, part, x, gr,
                                                                  p->eps, p->momentum);
    CUDA_LAUNCH_CHECK(ctx);
    s_fwd_apply<T, V><<<dim3(ga.gx, ga.chunks), ga.cols * ga.rows, 0, ctx->stream>>>(
        y, x, r, sm, si, gamma, beta, ga, 0, p->eps, p->relu);
    CUDA_LAUNCH_CHECK(ctx);
}

void bnact_forward_train_cuda(void *y, float *save_mean, float *save_invstd, float *running_mean,
                              float *running_var, const void *x, const void *r, const float *gamma,
                              const float *beta, const bnact_params_t *p, cuda_ctx_t *ctx)
{
    s_check(p);
    NF_CHECK(!p->residual || r, "bnact: residual without r");
    NF_CHECK((size_t)p->n * p->h * p->w > 1, "bnact: training needs more than one value per channel");
    s_need_ws(p, ctx);
    const void *res = p->residual ? r : NULL;
    const bool vec = s_vec_width(p) > 1;
    NF_DISPATCH(p->dtype, T, {
        if (vec)
            s_train<T, 16 / sizeof(T)>((T *)y, save_mean, save_invstd, running_mean, running_var,
                                       (const T *)x, (const T *)res, gamma, beta, p, ctx);
        else
            s_train<T, 1>((T *)y, save_mean, save_invstd, running_mean, running_var, (const T *)x,
                          (const T *)res, gamma, beta, p, ctx);
    });
}

template <typename T, int V>
static void s_eval(T *y, const T *x, const T *r, const float *gamma, const float *beta,
                   const float *rm, const float *rv, const bnact_params_t *p, cuda_ctx_t *ctx)
{
    const s_geom_t ga = s_geom_apply(p);
    s_fwd_apply<T, V><<<dim3(ga.gx, ga.chunks), ga.cols * ga.rows, 0, ctx->stream>>>(
        y, x, r, rm, rv, gamma, beta, ga, 1, p->eps, p->relu);
    CUDA_LAUNCH_CHECK(ctx);
}

void bnact_forward_eval_cuda(void *y, const void *x, const void *r, const float *gamma,
                             const float *beta, const float *running_mean,
                             const float *running_var, const bnact_params_t *p, cuda_ctx_t *ctx)
{
    s_check(p);
    NF_CHECK(!p->residual || r, "bnact: residual without r");
    const void *res = p->residual ? r : NULL;
    const bool vec = s_vec_width(p) > 1;
    NF_DISPATCH(p->dtype, T, {
        if (vec)
            s_eval<T, 16 / sizeof(T)>((T *)y, (const T *)x, (const T *)res, gamma, beta,
                                      running_mean, running_var, p, ctx);
        else
            s_eval<T, 1>((T *)y, (const T *)x, (const T *)res, gamma, beta, running_mean,
                         running_var, p, ctx);
    });
}

template <typename T, int V>
static void s_backward(T *dx, T *dr, float *dgamma, float *dbeta, const T *dy, const T *y,
                       const T *x, const float *gamma, const float *sm, const float *si,
                       const bnact_params_t *p, cuda_ctx_t *ctx)
{
    float *part = (float *)ctx->workspace;
    const s_geom_t gr = s_geom_reduce(p), ga = s_geom_apply(p);
    s_bwd_stats<T, V><<<dim3(gr.gx, gr.chunks), gr.cols * gr.rows, s_shmem(gr), ctx->stream>>>(
        part, dy, y, x, sm, gr, p->relu);
    CUDA_LAUNCH_CHECK(ctx);
    s_bwd_finalize<<<(gr.C + 255) / 256, 256, 0, ctx->stream>>>(dgamma, dbeta, part, si, gr);
    CUDA_LAUNCH_CHECK(ctx);
    s_bwd_apply<T, V><<<dim3(ga.gx, ga.chunks), ga.cols * ga.rows, 0, ctx->stream>>>(
        dx, dr, dy, y, x, gamma, sm, si, dgamma, dbeta, ga, p->relu, p->accumulate_dx,
        p->accumulate_dr);
    CUDA_LAUNCH_CHECK(ctx);
}

void bnact_backward_cuda(void *dx, void *dr, float *dgamma, float *dbeta, const void *dy,
                         const void *y, const void *x, const float *gamma, const float *save_mean,
                         const float *save_invstd, const bnact_params_t *p, cuda_ctx_t *ctx)
{
    s_check(p);
    NF_CHECK(!p->relu || y, "bnact: ReLU backward needs the forward output");
    NF_CHECK(!p->residual || dr, "bnact: residual backward needs dr");
    s_need_ws(p, ctx);
    void *res = p->residual ? dr : NULL;
    const bool vec = s_vec_width(p) > 1;
    NF_DISPATCH(p->dtype, T, {
        if (vec)
            s_backward<T, 16 / sizeof(T)>((T *)dx, (T *)res, dgamma, dbeta, (const T *)dy,
                                          (const T *)y, (const T *)x, gamma, save_mean,
                                          save_invstd, p, ctx);
        else
            s_backward<T, 1>((T *)dx, (T *)res, dgamma, dbeta, (const T *)dy, (const T *)y,
                             (const T *)x, gamma, save_mean, save_invstd, p, ctx);
    });
}
