/*
 * adam.cu: the CUDA twin of adam.h: one elementwise kernel over the flat
 * fp32 buffers. The scalar factors are computed on the host exactly as the
 * CPU reference computes them (double, rounded once to fp32).
 */
#include "adam.h"
#include "cuda_util.cuh"

#include <math.h>

typedef struct {
    float decay, mom, damp1, sqr_mom, damp2, debias2, step_size, eps;
    int wd_on;
} s_scalars_t;

static __global__ void s_adam(float *param, float *m_buf, float *v_buf, __nv_bfloat16 *param_bf16,
                              const float *grad, const uint8_t *do_wd, s_scalars_t s, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float w = param[i];
        const float g = grad[i];
        if (s.wd_on && (!do_wd || do_wd[i])) w = __fmul_rn(w, s.decay);
        // the same operation order as the CPU reference, without FMA contraction
        const float m = __fadd_rn(__fmul_rn(m_buf[i], s.mom), __fmul_rn(s.damp1, g));
        const float v = __fadd_rn(__fmul_rn(v_buf[i], s.sqr_mom), __fmul_rn(__fmul_rn(s.damp2, g), g));
        const float denom = __fadd_rn(__fsqrt_rn(__fdiv_rn(v, s.debias2)), s.eps);
        w = __fadd_rn(w, __fdiv_rn(__fmul_rn(s.step_size, m), denom));
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
    NF_CHECK(p->step >= 1, "adam: step %lld must be >= 1", (long long)p->step);
    NF_CHECK(p->mom >= 0 && p->mom < 1 && p->sqr_mom >= 0 && p->sqr_mom < 1,
             "adam: mom %g sqr_mom %g", p->mom, p->sqr_mom);
    if (!p->count) return;
    s_scalars_t s;
    s.decay = (float)(1.0 - p->lr * p->wd);
    s.mom = (float)p->mom, s.damp1 = (float)(1.0 - p->mom);
    s.sqr_mom = (float)p->sqr_mom, s.damp2 = (float)(1.0 - p->sqr_mom);
    s.debias2 = (float)(1.0 - pow(p->sqr_mom, (double)p->step));
    s.step_size = (float)(-p->lr / (1.0 - pow(p->mom, (double)p->step)));
    s.eps = (float)p->eps;
    s.wd_on = p->wd != 0.0;
    s_adam<<<nf_blocks(p->count, 256), 256, 0, ctx->stream>>>(
        param, grad_avg, sqr_avg, (__nv_bfloat16 *)param_bf16, grad, do_wd, s, p->count);
    CUDA_LAUNCH_CHECK(ctx);
}
