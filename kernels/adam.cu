/*
 * adam.cu: the CUDA twin of adam.h: one elementwise kernel over the flat
 * fp32 buffers. The scalar factors are computed on the host exactly as the
 * CPU reference computes them (adam_scalars: double, rounded once to fp32);
 * adam_step_cuda passes them by value, adam_flat_step_cuda reads them from
 * device memory (graph replay).
 */
#include "adam.h"
#include "cuda_util.cuh"

#include <math.h>

// One element, the same operation order as the CPU reference, without FMA
// contraction.
__device__ __forceinline__ float s_update(float w, float g, float *m_io, float *v_io, bool decay,
                                          const adam_scalars_t &s)
{
    if (decay) w = __fmul_rn(w, s.decay);
    const float m = __fadd_rn(__fmul_rn(*m_io, s.mom), __fmul_rn(s.damp1, g));
    const float v = __fadd_rn(__fmul_rn(*v_io, s.sqr_mom), __fmul_rn(__fmul_rn(s.damp2, g), g));
    const float denom = __fadd_rn(__fsqrt_rn(__fdiv_rn(v, s.debias2)), s.eps);
    w = __fadd_rn(w, __fdiv_rn(__fmul_rn(s.step_size, m), denom));
    *m_io = m;
    *v_io = v;
    return w;
}

static __global__ void s_adam(float *param, float *m_buf, float *v_buf, __nv_bfloat16 *param_bf16,
                              const float *grad, const uint8_t *do_wd, adam_scalars_t s, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float m = m_buf[i], v = v_buf[i];
        const float w = s_update(param[i], grad[i], &m, &v, s.wd_on && (!do_wd || do_wd[i]), s);
        m_buf[i] = m;
        v_buf[i] = v;
        param[i] = w;
        if (param_bf16) param_bf16[i] = __float2bfloat16_rn(w);
    }
}

static __global__ void s_adam_flat(float *param, float *m_buf, float *v_buf,
                                   __nv_bfloat16 *param_bf16, const float *grad,
                                   const __nv_bfloat16 *grad_bf16, const uint8_t *flags,
                                   const adam_scalars_t *sp, size_t n)
{
    const adam_scalars_t s = *sp;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const uint8_t f = flags[i];
        const float g = f & ADAM_FLAG_GRAD_BF16 ? __bfloat162float(grad_bf16[i]) : grad[i];
        float m = m_buf[i], v = v_buf[i];
        const float w = s_update(param[i], g, &m, &v, s.wd_on && (f & ADAM_FLAG_WD), s);
        m_buf[i] = m;
        v_buf[i] = v;
        param[i] = w;
        if (param_bf16) param_bf16[i] = __float2bfloat16_rn(w);
    }
}

void adam_step_cuda(float *param, float *grad_avg, float *sqr_avg, uint16_t *param_bf16,
                    const float *grad, const uint8_t *do_wd, const adam_params_t *p,
                    cuda_ctx_t *ctx)
{
    const adam_scalars_t s = adam_scalars(p);
    if (!p->count) return;
    s_adam<<<nf_blocks(p->count, 256), 256, 0, ctx->stream>>>(
        param, grad_avg, sqr_avg, (__nv_bfloat16 *)param_bf16, grad, do_wd, s, p->count);
    CUDA_LAUNCH_CHECK(ctx);
}

void adam_flat_step_cuda(float *param, float *grad_avg, float *sqr_avg, uint16_t *param_bf16,
                         const float *grad, const uint16_t *grad_bf16, const uint8_t *flags,
                         const adam_scalars_t *s, size_t count, cuda_ctx_t *ctx)
{
    if (!count) return;
    // enough blocks to fill the device several times over, each thread a few elements
    s_adam_flat<<<nf_blocks(count, 256), 256, 0, ctx->stream>>>(
        param, grad_avg, sqr_avg, (__nv_bfloat16 *)param_bf16, grad,
        (const __nv_bfloat16 *)grad_bf16, flags, s, count);
    CUDA_LAUNCH_CHECK(ctx);
}
