/*
 * test_kernels_fused_cuda.c: the CUDA twins of the GPU path's ops against
 * their CPU references (label gpu; exits 77 with a message when no CUDA
 * device is usable):
 *   - bnact, all four (ReLU, residual) combinations, train forward (y, saved
 *     and running statistics), eval, backward (dx, dr, dgamma, dbeta), the
 *     accumulate flags; f32 and bf16; channel counts that take the 16-byte
 *     vector path and ones that do not; a large shape with many row chunks;
 *   - conv2d after autotuning (cudnnFind*), with backward-data accumulate;
 *   - adam_flat_step with hyper-parameters read from device memory, mixed
 *     fp32 / bf16 gradients;
 *   - dropout (mask bit for bit), fill (bit for bit in f32).
 * Inputs are random (never zeros) and outputs are poisoned with NaN before
 * each op, so an unwritten element fails.
 */
#include "adam.h"
#include "bnact.h"
#include "conv2d.h"
#include "cuda_check.h"
#include "cuda_ctx.h"
#include "dropout.h"
#include "fill.h"
#include "ktest.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cuda_ctx_t *s_ctx;

// ---------------------------------------------------------------------------
// device buffers in a storage dtype

static void *s_dev(size_t bytes)
{
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 4));
    CUDA_CHECK(cudaMemset(p, 0xff, bytes ? bytes : 4));  // NaN in f32 and bf16
    return p;
}

static void s_free(void *d) { CUDA_CHECK(cudaFree(d)); }

static void s_round(float *x, size_t n, kdtype_t dt)
{
    if (dt == KDTYPE_BF16)
        for (size_t i = 0; i < n; i++) x[i] = kdtype_bf16_to_f32(kdtype_f32_to_bf16(x[i]));
}

static void s_put(void *d, const float *h, size_t n, kdtype_t dt)
{
    if (dt == KDTYPE_F32) {
        CUDA_CHECK(cudaMemcpy(d, h, n * 4, cudaMemcpyHostToDevice));
        return;
    }
    uint16_t *b = malloc(n * 2 + 2);
    for (size_t i = 0; i < n; i++) b[i] = kdtype_f32_to_bf16(h[i]);
    CUDA_CHECK(cudaMemcpy(d, b, n * 2, cudaMemcpyHostToDevice));
    free(b);
}

static void *s_up(const float *h, size_t n, kdtype_t dt)
{
    void *d = s_dev(n * kdtype_size(dt));
    s_put(d, h, n, dt);
    return d;
}

static float *s_down(const void *d, size_t n, kdtype_t dt)
{
    cuda_ctx_sync(s_ctx);
    float *h = kt_f32(n);
    if (dt == KDTYPE_F32) {
        CUDA_CHECK(cudaMemcpy(h, d, n * 4, cudaMemcpyDeviceToHost));
    } else {
        uint16_t *b = malloc(n * 2 + 2);
        CUDA_CHECK(cudaMemcpy(b, d, n * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < n; i++) h[i] = kdtype_bf16_to_f32(b[i]);
        free(b);
    }
    return h;
}

// |got - want| <= tol * max|want| + tol * |want|; frees got.
static void s_cmp(const char *what, kdtype_t dt, float *got, const float *want, size_t n,
                  double tol)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(want[i]));
    char name[160];
    snprintf(name, sizeof name, "%s [%s]", what, kdtype_name(dt));
    t_close_f32(name, got, want, n, tol * (mx > 0 ? mx : 1), tol);
    free(got);
}

static float *s_rand(size_t n, float lo, float hi, uint32_t seed, kdtype_t dt)
{
    float *x = kt_f32(n);
    kt_fill(x, n, lo, hi, seed);
    s_round(x, n, dt);
    return x;
}

// ---------------------------------------------------------------------------

static void parity_bnact(int N, int H, int W, int C, bool relu, bool residual, kdtype_t dt)
{
    const size_t n = (size_t)N * H * W * C;
    bnact_params_t pc = bnact_default_params(N, H, W, C), p;
    pc.relu = relu;
    pc.residual = residual;
    p = pc;
    p.dtype = dt;
    char tag[96];
    snprintf(tag, sizeof tag, "bnact %dx%dx%dx%d relu=%d res=%d", N, H, W, C, relu, residual);
    cuda_ctx_reserve_workspace(s_ctx, bnact_workspace_bytes_cuda(&p));
    // an offset mean makes the one-pass variance work for its shift
    float *x = s_rand(n, 2, 5, 60, dt), *r = s_rand(n, -1, 1, 61, dt), *dy = s_rand(n, -1, 1, 62, dt);
    float *g = s_rand(C, 0.5f, 1.5f, 63, KDTYPE_F32), *b = s_rand(C, -0.5f, 0.5f, 64, KDTYPE_F32);
    float *rm = s_rand(C, -0.1f, 0.1f, 65, KDTYPE_F32), *rv = s_rand(C, 0.5f, 2, 66, KDTYPE_F32);
    float *old = s_rand(n, -1, 1, 67, dt);
    void *d_x = s_up(x, n, dt), *d_r = s_up(r, n, dt), *d_dy = s_up(dy, n, dt);
    void *d_y = s_dev(n * 4), *d_dx = s_dev(n * 4), *d_dr = s_dev(n * 4);
    float *d_g = s_up(g, C, KDTYPE_F32), *d_b = s_up(b, C, KDTYPE_F32);
    float *d_rm = s_up(rm, C, KDTYPE_F32), *d_rv = s_up(rv, C, KDTYPE_F32);
    float *d_sm = s_dev(C * 4), *d_si = s_dev(C * 4), *d_dg = s_dev(C * 4), *d_db = s_dev(C * 4);
    float *y = kt_f32(n), *sm = kt_f32(C), *si = kt_f32(C), *dx = kt_f32(n), *dr = kt_f32(n);
    float *dg = kt_f32(C), *db = kt_f32(C), *ye = kt_f32(n);
    const double ty = dt == KDTYPE_F32 ? 1e-5 : 1e-2, tg = dt == KDTYPE_F32 ? 1e-4 : 2e-2;
    char what[200];

    // eval on the initial running statistics
    bnact_forward_eval_cpu(ye, x, r, g, b, rm, rv, &pc);
    bnact_forward_eval_cuda(d_y, d_x, d_r, d_g, d_b, d_rm, d_rv, &p, s_ctx);
    snprintf(what, sizeof what, "%s eval y", tag);
    s_cmp(what, dt, s_down(d_y, n, dt), ye, n, ty);

    bnact_forward_train_cpu(y, sm, si, rm, rv, x, r, g, b, &pc);
    bnact_forward_train_cuda(d_y, d_sm, d_si, d_rm, d_rv, d_x, d_r, d_g, d_b, &p, s_ctx);
    snprintf(what, sizeof what, "%s train y", tag);
    s_cmp(what, dt, s_down(d_y, n, dt), y, n, ty);
    snprintf(what, sizeof what, "%s save_mean", tag);
    s_cmp(what, dt, s_down(d_sm, C, KDTYPE_F32), sm, C, 1e-5);
    snprintf(what, sizeof what, "%s save_invstd", tag);
    s_cmp(what, dt, s_down(d_si, C, KDTYPE_F32), si, C, 1e-4);
    snprintf(what, sizeof what, "%s running_mean", tag);
    s_cmp(what, dt, s_down(d_rm, C, KDTYPE_F32), rm, C, 1e-5);
    snprintf(what, sizeof what, "%s running_var", tag);
    s_cmp(what, dt, s_down(d_rv, C, KDTYPE_F32), rv, C, 1e-4);

    // backward on the CPU's forward output rounded to dt (the ReLU mask must agree)
    float *yd = s_down(d_y, n, dt);
    bnact_backward_cpu(dx, residual ? dr : NULL, dg, db, dy, yd, x, g, sm, si, &pc);
    bnact_backward_cuda(d_dx, residual ? d_dr : NULL, d_dg, d_db, d_dy, d_y, d_x, d_g, d_sm, d_si,
                        &p, s_ctx);
    snprintf(what, sizeof what, "%s dx", tag);
    s_cmp(what, dt, s_down(d_dx, n, dt), dx, n, tg);
    snprintf(what, sizeof what, "%s dgamma", tag);
    s_cmp(what, dt, s_down(d_dg, C, KDTYPE_F32), dg, C, dt == KDTYPE_F32 ? 1e-4 : 1e-3);
    snprintf(what, sizeof what, "%s dbeta", tag);
    s_cmp(what, dt, s_down(d_db, C, KDTYPE_F32), db, C, dt == KDTYPE_F32 ? 1e-4 : 1e-3);
    if (residual) {
        snprintf(what, sizeof what, "%s dr", tag);
        s_cmp(what, dt, s_down(d_dr, n, dt), dr, n, 0);
    }

    // accumulate into known contents
    bnact_params_t pa = p, pca = pc;
    pa.accumulate_dx = pa.accumulate_dr = pca.accumulate_dx = pca.accumulate_dr = true;
    memcpy(dx, old, n * 4);
    memcpy(dr, old, n * 4);
    s_put(d_dx, old, n, dt);
    s_put(d_dr, old, n, dt);
    bnact_backward_cpu(dx, residual ? dr : NULL, dg, db, dy, yd, x, g, sm, si, &pca);
    bnact_backward_cuda(d_dx, residual ? d_dr : NULL, d_dg, d_db, d_dy, d_y, d_x, d_g, d_sm, d_si,
                        &pa, s_ctx);
    snprintf(what, sizeof what, "%s dx accumulated", tag);
    s_cmp(what, dt, s_down(d_dx, n, dt), dx, n, tg);
    if (residual) {
        snprintf(what, sizeof what, "%s dr accumulated", tag);
        s_cmp(what, dt, s_down(d_dr, n, dt), dr, n, dt == KDTYPE_F32 ? 1e-6 : 8e-3);
    }
    void *bufs[] = {d_x, d_r, d_dy, d_y, d_dx, d_dr, d_g, d_b, d_rm, d_rv, d_sm, d_si, d_dg, d_db};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) s_free(bufs[i]);
    free(x), free(r), free(dy), free(g), free(b), free(rm), free(rv), free(old), free(y);
    free(sm), free(si), free(dx), free(dr), free(dg), free(db), free(ye), free(yd);
}

static void parity_conv_tuned(kdtype_t dt)
{
    conv2d_params_t p = {.n = 8, .h = 14, .w = 14, .c_in = 32, .c_out = 64, .kh = 3, .kw = 3,
                         .stride = 1, .pad = 1, .dtype = dt};
    conv2d_params_t pc = p;
    pc.dtype = KDTYPE_F32;
    const size_t nx = conv2d_x_count(&p), nw = conv2d_w_count(&p), ny = conv2d_y_count(&p);
    float *x = s_rand(nx, -1, 1, 70, dt), *w = s_rand(nw, -0.2f, 0.2f, 71, dt);
    float *dy = s_rand(ny, -1, 1, 72, dt), *old = s_rand(nx, -1, 1, 73, dt);
    float *y = kt_f32(ny), *dx = kt_f32(nx), *dw = kt_f32(nw);
    void *d_x = s_up(x, nx, dt), *d_w = s_up(w, nw, dt), *d_dy = s_up(dy, ny, dt);
    void *d_y = s_dev(ny * 4), *d_dx = s_dev(nx * 4), *d_dw = s_dev(nw * 4);
    const size_t max_ws = (size_t)256 << 20;
    cuda_ctx_reserve_workspace(s_ctx, max_ws);
    conv2d_tune_buffers_t tb = {.y = d_y, .x = d_x, .w = d_w, .dy = d_dy, .dx = d_dx, .dw = d_dw};
    const size_t ws = conv2d_autotune_cuda(&p, &tb, max_ws, s_ctx);
    T_CHECK(ws <= max_ws, "autotune picked %zu workspace bytes", ws);
    T_CHECK(conv2d_autotune_cuda(&p, &tb, max_ws, s_ctx) == ws, "a tuned shape keeps its choice");
    T_CHECK(conv2d_workspace_bytes_cuda(&p, s_ctx) == ws, "the workspace query sees the tuned plan");
    conv2d_forward_cpu(y, x, w, &pc);
    conv2d_backward_weights_cpu(dw, dy, x, &pc);
    memcpy(dx, old, nx * 4);
    pc.accumulate = true;
    conv2d_backward_data_cpu(dx, dy, w, &pc);
    s_put(d_dx, old, nx, dt);
    p.accumulate = true;
    conv2d_forward_cuda(d_y, d_x, d_w, &p, s_ctx);
    conv2d_backward_data_cuda(d_dx, d_dy, d_w, &p, s_ctx);
    conv2d_backward_weights_cuda(d_dw, d_dy, d_x, &p, s_ctx);
    const double tol = dt == KDTYPE_F32 ? 1e-5 : 1e-2;
    s_cmp("conv2d tuned y", dt, s_down(d_y, ny, dt), y, ny, tol);
    s_cmp("conv2d tuned dx accumulated", dt, s_down(d_dx, nx, dt), dx, nx, tol);
    s_cmp("conv2d tuned dw", dt, s_down(d_dw, nw, dt), dw, nw, dt == KDTYPE_F32 ? 1e-5 : 2e-2);
    s_free(d_x), s_free(d_w), s_free(d_dy);
    s_free(d_y), s_free(d_dx), s_free(d_dw);
    free(x), free(w), free(dy), free(old), free(y), free(dx), free(dw);
}

static void parity_adam_flat(void)
{
    const size_t n = 100003;
    float *p = s_rand(n, -1, 1, 80, KDTYPE_F32), *m = s_rand(n, -0.01f, 0.01f, 81, KDTYPE_F32);
    float *v = s_rand(n, 0, 0.001f, 82, KDTYPE_F32), *g = s_rand(n, -0.1f, 0.1f, 83, KDTYPE_F32);
    uint8_t *flags = malloc(n);
    uint16_t *g16 = malloc(n * 2), *lp = malloc(n * 2), *lp_gpu = malloc(n * 2);
    for (size_t i = 0; i < n; i++) {
        flags[i] = (uint8_t)((i % 3 ? ADAM_FLAG_WD : 0) | (i % 5 ? ADAM_FLAG_GRAD_BF16 : 0));
        g16[i] = kdtype_f32_to_bf16(g[i] * 1.7f);
    }
    float *d_p = s_up(p, n, KDTYPE_F32), *d_m = s_up(m, n, KDTYPE_F32), *d_v = s_up(v, n, KDTYPE_F32);
    float *d_g = s_up(g, n, KDTYPE_F32);
    uint8_t *d_f = s_dev(n);
    uint16_t *d_g16 = s_dev(n * 2), *d_lp = s_dev(n * 2);
    adam_scalars_t *d_s = s_dev(sizeof(adam_scalars_t));
    CUDA_CHECK(cudaMemcpy(d_f, flags, n, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_g16, g16, n * 2, cudaMemcpyHostToDevice));
    for (int step = 1; step <= 3; step++) {
        adam_params_t hp = adam_default_params(n);
        hp.lr = 1e-3 * step, hp.mom = 0.95 - 0.03 * step, hp.step = step;
        const adam_scalars_t s = adam_scalars(&hp);
        CUDA_CHECK(cudaMemcpy(d_s, &s, sizeof s, cudaMemcpyHostToDevice));
        adam_flat_step_cpu(p, m, v, lp, g, g16, flags, &s, n);
        adam_flat_step_cuda(d_p, d_m, d_v, d_lp, d_g, d_g16, d_f, d_s, n, s_ctx);
    }
    s_cmp("adam_flat param", KDTYPE_F32, s_down(d_p, n, KDTYPE_F32), p, n, 1e-7);
    s_cmp("adam_flat grad_avg", KDTYPE_F32, s_down(d_m, n, KDTYPE_F32), m, n, 1e-7);
    s_cmp("adam_flat sqr_avg", KDTYPE_F32, s_down(d_v, n, KDTYPE_F32), v, n, 1e-7);
    CUDA_CHECK(cudaMemcpy(lp_gpu, d_lp, n * 2, cudaMemcpyDeviceToHost));
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += lp[i] != lp_gpu[i];
    T_CHECK(diff <= n / 1000, "adam_flat bf16 copy: %zu of %zu differ", diff, n);
    s_free(d_p), s_free(d_m), s_free(d_v);
    s_free(d_g), s_free(d_f), s_free(d_g16);
    s_free(d_lp), s_free(d_s);
    free(p), free(m), free(v), free(g), free(flags), free(g16), free(lp), free(lp_gpu);
}

static void parity_dropout(kdtype_t dt)
{
    const size_t n = 64 * 2048 + 3;
    dropout_params_t p = {.count = n, .p = 0.3f, .seed = 77, .dtype = dt}, pc = p;
    pc.dtype = KDTYPE_F32;
    const uint64_t index = (3ull << 32) | 123;
    float *x = s_rand(n, -1, 1, 90, dt), *dy = s_rand(n, -1, 1, 91, dt);
    float *y = kt_f32(n), *dx = kt_f32(n);
    uint8_t *keep = malloc(n), *keep_gpu = malloc(n);
    dropout_forward_cpu(y, keep, x, &index, &pc);
    dropout_backward_cpu(dx, dy, keep, &pc);
    void *d_x = s_up(x, n, dt), *d_dy = s_up(dy, n, dt), *d_y = s_dev(n * 4), *d_dx = s_dev(n * 4);
    uint8_t *d_keep = s_dev(n);
    uint64_t *d_index = s_dev(8);
    CUDA_CHECK(cudaMemcpy(d_index, &index, 8, cudaMemcpyHostToDevice));
    dropout_forward_cuda(d_y, d_keep, d_x, d_index, &p, s_ctx);
    dropout_backward_cuda(d_dx, d_dy, d_keep, &p, s_ctx);
    cuda_ctx_sync(s_ctx);
    CUDA_CHECK(cudaMemcpy(keep_gpu, d_keep, n, cudaMemcpyDeviceToHost));
    T_CHECK(memcmp(keep, keep_gpu, n) == 0, "dropout mask differs from the CPU's [%s]",
            kdtype_name(dt));
    const double tol = dt == KDTYPE_F32 ? 0 : 8e-3;
    s_cmp("dropout y", dt, s_down(d_y, n, dt), y, n, tol);
    s_cmp("dropout dx", dt, s_down(d_dx, n, dt), dx, n, tol);
    s_free(d_x), s_free(d_dy), s_free(d_y);
    s_free(d_dx), s_free(d_keep), s_free(d_index);
    free(x), free(dy), free(y), free(dx), free(keep), free(keep_gpu);
}

static void parity_fill(void)
{
    const size_t n = 1000003;
    fill_params_t p = {.count = n, .lo = -3, .hi = 2, .seed = 5};
    float *want = kt_f32(n);
    fill_uniform_cpu(want, &p);
    float *d = s_dev(n * 4);
    fill_uniform_cuda(d, &p, s_ctx);
    s_cmp("fill_uniform", KDTYPE_F32, s_down(d, n, KDTYPE_F32), want, n, 0);
    s_free(d);
    free(want);
}

int main(void)
{
    const int ndev = cuda_device_count();
    if (ndev < 1) t_skip("no usable CUDA device (cudaGetDeviceCount reports %d)", ndev);
    cuda_ctx_config_t cc = {.device = 0};
    s_ctx = cuda_ctx_new(&cc);
    if (!s_ctx) t_skip("CUDA device 0 could not be initialised");
    const kdtype_t dts[2] = {KDTYPE_F32, KDTYPE_BF16};
    for (int d = 0; d < 2; d++) {
        for (int k = 0; k < 4; k++) {
            const bool relu = k & 1, residual = k & 2;
            parity_bnact(4, 9, 7, 64, relu, residual, dts[d]);  // vector path
            parity_bnact(3, 5, 5, 12, relu, residual, dts[d]);  // bf16: scalar path
        }
        parity_bnact(2, 3, 3, 3, true, false, dts[d]);        // C = 3: scalar path
        parity_bnact(32, 28, 28, 256, true, true, dts[d]);    // many row chunks
        parity_bnact(16, 7, 7, 2048, true, false, dts[d]);    // wide (f32: two channel blocks)
        parity_conv_tuned(dts[d]);
        parity_dropout(dts[d]);
    }
    parity_adam_flat();
    parity_fill();
    cuda_ctx_destroy(&s_ctx);
    return t_done();
}
