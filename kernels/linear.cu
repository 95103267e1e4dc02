/*
 * linear.cu: the CUDA twin of linear.h. The three products go through
 * cublasGemmEx with fp32 accumulation (f32: CUBLAS_COMPUTE_32F_PEDANTIC, no
 * TF32; bf16: CUBLAS_COMPUTE_32F on tensor cores); our own kernels add the
 * bias and reduce its gradient (one thread per output feature, summing the
 * batch in order: deterministic).
 *
 * Row-major to cuBLAS's column-major: a row-major (R, C) matrix is a
 * column-major (C, R) one, so
 *   y (N,O)  = x W^T     ->  y^T  = op_T(W^T) x^T :  gemm(T, N, O, N, I, w, I, x, I, y, O)
 *   dx (N,I) = dy W      ->  dx^T = W^T dy^T      :  gemm(N, N, I, N, O, w, I, dy, O, dx, I)
 *   dW (O,I) = dy^T x    ->  dW^T = x^T dy        :  gemm(N, T, I, O, N, x, I, dy, O, dw, I)
 */
#include "cuda_util.cuh"
#include "linear.h"

template <typename T> static __global__ void s_add_bias(T *y, const float *b, int n, int out)
{
    const size_t total = (size_t)n * out;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        y[i] = nf_store<T>(nf_f32(y[i]) + b[i % out]);
}

template <typename T> static __global__ void s_bias_grad(float *db, const T *dy, int n, int out)
{
    for (int o = blockIdx.x * blockDim.x + threadIdx.x; o < out; o += gridDim.x * blockDim.x) {
        float s = 0.0f;
        for (int r = 0; r < n; r++) s += nf_f32(dy[(size_t)r * out + o]);
        db[o] = s;
    }
}

static void s_gemm(cuda_ctx_t *ctx, const linear_params_t *p, cublasOperation_t ta,
                   cublasOperation_t tb, int m, int n, int k, const void *a, int lda, const void *b,
                   int ldb, void *c, int ldc)
{
    const cudaDataType_t dt = p->dtype == KDTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    const cublasComputeType_t ct =
        p->dtype == KDTYPE_BF16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_PEDANTIC;
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasGemmEx(ctx->cublas, ta, tb, m, n, k, &one, a, dt, lda, b, dt, ldb, &zero, c,
                              dt, ldc, ct, CUBLAS_GEMM_DEFAULT));
    if (ctx->debug_sync) CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
}

static void s_check(const linear_params_t *p)
{
    NF_CHECK(p->n > 0 && p->in > 0 && p->out > 0, "linear: bad shape n=%d in=%d out=%d", p->n,
             p->in, p->out);
    NF_CHECK(p->dtype == KDTYPE_F32 || p->dtype == KDTYPE_BF16, "linear: bad dtype");
}

void linear_forward_cuda(void *y, const void *x, const void *w, const float *b,
                         const linear_params_t *p, cuda_ctx_t *ctx)
{
    s_check(p);
    s_gemm(ctx, p, CUBLAS_OP_T, CUBLAS_OP_N, p->out, p->n, p->in, w, p->in, x, p->in, y, p->out);
    if (!b) return;
    const size_t total = (size_t)p->n * p->out;
    NF_DISPATCH(p->dtype, T, s_add_bias<T><<<nf_blocks(total, 256), 256, 0, ctx->stream>>>(
                                 (T *)y, b, p->n, p->out));
    CUDA_LAUNCH_CHECK(ctx);
}

void linear_backward_cuda(void *dx, void *dw, float *db, const void *dy, const void *x,
                          const void *w, const linear_params_t *p, cuda_ctx_t *ctx)
{
    s_check(p);
    if (dx)
        s_gemm(ctx, p, CUBLAS_OP_N, CUBLAS_OP_N, p->in, p->n, p->out, w, p->in, dy, p->out, dx,
               p->in);
    s_gemm(ctx, p, CUBLAS_OP_N, CUBLAS_OP_T, p->in, p->out, p->n, x, p->in, dy, p->out, dw, p->in);
    if (!db) return;
    NF_DISPATCH(p->dtype, T, s_bias_grad<T><<<nf_blocks((size_t)p->out, 128), 128, 0, ctx->stream>>>(
                                 db, (const T *)dy, p->n, p->out));
    CUDA_LAUNCH_CHECK(ctx);
}
