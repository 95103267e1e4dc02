/*
 * test_kernels_cuda.c: every CUDA op against its CPU twin on the same inputs
 * (label gpu; exits 77 with a message when no CUDA device is usable).
 *
 * Each op runs twice: with f32 storage (tight tolerances: only summation
 * order and cuDNN's algorithms differ) and with bf16 storage (inputs rounded
 * to bf16 first, so both sides see the same values; the CUDA result is
 * rounded to bf16 once, about 0.4 %, plus fp32 accumulation differences).
 * Comparisons: |got - want| <= tol * (max |want| of the tensor) + tol * |want|,
 * printed as OK / NOT OK with the max difference (testlib's t_close_f32).
 * Run all GPU checks with `ctest -L gpu` (NF_CUDA_DEBUG_SYNC=1 to localise
 * an asynchronous fault).
 */
#include "accuracy.h"
#include "adam.h"
#include "adaptive_avgpool.h"
#include "add.h"
#include "avgpool2d.h"
#include "batchnorm2d.h"
#include "cast.h"
#include "conv2d.h"
#include "cuda_check.h"
#include "cuda_ctx.h"
#include "ktest.h"
#include "linear.h"
#include "maxpool2d.h"
#include "relu.h"
#include "testlib.h"
#include "xent.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cuda_ctx_t *s_ctx;

// ---------------------------------------------------------------------------
// host <-> device in a given storage dtype

static void *s_dev(size_t bytes)
{
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 4));
    CUDA_CHECK(cudaMemset(p, 0, bytes ? bytes : 4));
    return p;
}

static void s_free(void *d) { CUDA_CHECK(cudaFree(d)); }

// Rounds host values to what `dt` can store (identity for f32).
static void s_round(float *x, size_t n, kdtype_t dt)
{
    if (dt == KDTYPE_BF16)
        for (size_t i = 0; i < n; i++) x[i] = kdtype_bf16_to_f32(kdtype_f32_to_bf16(x[i]));
}

static void *s_up(const float *h, size_t n, kdtype_t dt)
{
    void *d = s_dev(n * kdtype_size(dt));
    if (dt == KDTYPE_F32) {
        CUDA_CHECK(cudaMemcpy(d, h, n * 4, cudaMemcpyHostToDevice));
    } else {
        uint16_t *b = malloc(n * 2 + 2);
        for (size_t i = 0; i < n; i++) b[i] = kdtype_f32_to_bf16(h[i]);
        CUDA_CHECK(cudaMemcpy(d, b, n * 2, cudaMemcpyHostToDevice));
        free(b);
    }
    return d;
}

static void *s_up_raw(const void *h, size_t bytes)
{
    void *d = s_dev(bytes);
    CUDA_CHECK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
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

// Compares and frees got.
static void s_cmp(const char *op, const char *what, kdtype_t dt, float *got, const float *want,
                  size_t n, double tol)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(want[i]));
    char name[128];
    snprintf(name, sizeof name, "%s %s [%s]", op, what, kdtype_name(dt));
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

static void parity_conv2d(conv2d_params_t p, const char *name, kdtype_t dt)
{
    p.dtype = dt;
    conv2d_params_t pc = p;
    pc.dtype = KDTYPE_F32;
    const size_t nx = conv2d_x_count(&p), nw = conv2d_w_count(&p), ny = conv2d_y_count(&p);
    float *x = s_rand(nx, -1, 1, 1, dt), *w = s_rand(nw, -0.2f, 0.2f, 2, dt);
    float *dy = s_rand(ny, -1, 1, 3, dt);
    float *y = kt_f32(ny), *dx = kt_f32(nx), *dw = kt_f32(nw);
    conv2d_forward_cpu(y, x, w, &pc);
    conv2d_backward_data_cpu(dx, dy, w, &pc);
    conv2d_backward_weights_cpu(dw, dy, x, &pc);
    cuda_ctx_reserve_workspace(s_ctx, conv2d_workspace_bytes_cuda(&p, s_ctx));
    void *d_x = s_up(x, nx, dt), *d_w = s_up(w, nw, dt), *d_dy = s_up(dy, ny, dt);
    void *d_y = s_dev(ny * 4), *d_dx = s_dev(nx * 4), *d_dw = s_dev(nw * 4);
    conv2d_forward_cuda(d_y, d_x, d_w, &p, s_ctx);
    conv2d_backward_data_cuda(d_dx, d_dy, d_w, &p, s_ctx);
    conv2d_backward_weights_cuda(d_dw, d_dy, d_x, &p, s_ctx);
    const double tol = dt == KDTYPE_F32 ? 1e-5 : 1e-2;
    s_cmp(name, "y", dt, s_down(d_y, ny, dt), y, ny, tol);
    s_cmp(name, "dx", dt, s_down(d_dx, nx, dt), dx, nx, tol);
    s_cmp(name, "dw", dt, s_down(d_dw, nw, dt), dw, nw, dt == KDTYPE_F32 ? 1e-5 : 2e-2);
    s_free(d_x), s_free(d_w), s_free(d_dy), s_free(d_y), s_free(d_dx), s_free(d_dw);
    free(x), free(w), free(dy), free(y), free(dx), free(dw);
}

static void parity_batchnorm2d(kdtype_t dt)
{
    batchnorm2d_params_t p = batchnorm2d_default_params(4, 9, 7, 64), pc = p;
    p.dtype = dt;
    const size_t n = 4 * 9 * 7 * 64, C = 64;
    float *x = s_rand(n, -2, 3, 10, dt), *dy = s_rand(n, -1, 1, 11, dt);
    float *g = s_rand(C, 0.5f, 1.5f, 12, KDTYPE_F32), *b = s_rand(C, -0.5f, 0.5f, 13, KDTYPE_F32);
    float *rm = s_rand(C, -0.1f, 0.1f, 14, KDTYPE_F32), *rv = s_rand(C, 0.5f, 2, 15, KDTYPE_F32);
    void *d_x = s_up(x, n, dt), *d_dy = s_up(dy, n, dt), *d_y = s_dev(n * 4), *d_dx = s_dev(n * 4);
    float *d_g = s_up_raw(g, C * 4), *d_b = s_up_raw(b, C * 4), *d_rm = s_up_raw(rm, C * 4);
    float *d_rv = s_up_raw(rv, C * 4), *d_sm = s_dev(C * 4), *d_si = s_dev(C * 4);
    float *d_dg = s_dev(C * 4), *d_db = s_dev(C * 4);
    float *y = kt_f32(n), *dx = kt_f32(n), *sm = kt_f32(C), *si = kt_f32(C), *dg = kt_f32(C),
          *db = kt_f32(C), *ye = kt_f32(n);
    // eval first, on the initial running statistics
    batchnorm2d_forward_eval_cpu(ye, x, g, b, rm, rv, &pc);
    batchnorm2d_forward_eval_cuda(d_y, d_x, d_g, d_b, d_rm, d_rv, &p, s_ctx);
    s_cmp("batchnorm2d", "eval y", dt, s_down(d_y, n, dt), ye, n, dt == KDTYPE_F32 ? 1e-5 : 1e-2);
    batchnorm2d_forward_train_cpu(y, sm, si, rm, rv, x, g, b, &pc);
    batchnorm2d_backward_cpu(dx, dg, db, dy, x, g, sm, si, &pc);
    batchnorm2d_forward_train_cuda(d_y, d_sm, d_si, d_rm, d_rv, d_x, d_g, d_b, &p, s_ctx);
    batchnorm2d_backward_cuda(d_dx, d_dg, d_db, d_dy, d_x, d_g, d_sm, d_si, &p, s_ctx);
    const double t = dt == KDTYPE_F32 ? 1e-4 : 1e-2;
    s_cmp("batchnorm2d", "train y", dt, s_down(d_y, n, dt), y, n, t);
    s_cmp("batchnorm2d", "save_mean", dt, s_down(d_sm, C, KDTYPE_F32), sm, C, 1e-5);
    s_cmp("batchnorm2d", "save_invstd", dt, s_down(d_si, C, KDTYPE_F32), si, C, 1e-5);
    s_cmp("batchnorm2d", "running_mean", dt, s_down(d_rm, C, KDTYPE_F32), rm, C, 1e-5);
    s_cmp("batchnorm2d", "running_var", dt, s_down(d_rv, C, KDTYPE_F32), rv, C, 1e-5);
    s_cmp("batchnorm2d", "dx", dt, s_down(d_dx, n, dt), dx, n, dt == KDTYPE_F32 ? 1e-4 : 2e-2);
    s_cmp("batchnorm2d", "dgamma", dt, s_down(d_dg, C, KDTYPE_F32), dg, C, 1e-4);
    s_cmp("batchnorm2d", "dbeta", dt, s_down(d_db, C, KDTYPE_F32), db, C, 1e-4);
    s_free(d_x), s_free(d_dy), s_free(d_y), s_free(d_dx), s_free(d_g), s_free(d_b);
    s_free(d_rm), s_free(d_rv), s_free(d_sm), s_free(d_si), s_free(d_dg), s_free(d_db);
    free(x), free(dy), free(g), free(b), free(rm), free(rv), free(y), free(dx), free(sm);
    free(si), free(dg), free(db), free(ye);
}

static void parity_eltwise(kdtype_t dt)
{
    const size_t n = 100003;  // odd: exercises the tail
    relu_params_t rp = {.count = n, .dtype = dt}, rc = {.count = n};
    add_params_t ap = {.count = n, .dtype = dt}, ac = {.count = n};
    float *a = s_rand(n, -1, 1, 20, dt), *b = s_rand(n, -1, 1, 21, dt), *dy = s_rand(n, -1, 1, 22, dt);
    float *y = kt_f32(n), *dx = kt_f32(n);
    void *d_a = s_up(a, n, dt), *d_b = s_up(b, n, dt), *d_dy = s_up(dy, n, dt);
    void *d_y = s_dev(n * 4), *d_dx = s_dev(n * 4);
    const double tol = dt == KDTYPE_F32 ? 0 : 4e-3;
    relu_forward_cpu(y, a, &rc);
    relu_backward_cpu(dx, dy, y, &rc);
    relu_forward_cuda(d_y, d_a, &rp, s_ctx);
    relu_backward_cuda(d_dx, d_dy, d_y, &rp, s_ctx);
    s_cmp("relu", "y", dt, s_down(d_y, n, dt), y, n, 0);
    s_cmp("relu", "dx", dt, s_down(d_dx, n, dt), dx, n, 0);
    relu_add_forward_cpu(y, a, b, &rc);
    relu_add_forward_cuda(d_y, d_a, d_b, &rp, s_ctx);
    s_cmp("relu_add", "y", dt, s_down(d_y, n, dt), y, n, tol);
    add_forward_cpu(y, a, b, &ac);
    add_forward_cuda(d_y, d_a, d_b, &ap, s_ctx);
    s_cmp("add", "y", dt, s_down(d_y, n, dt), y, n, tol);
    s_free(d_a), s_free(d_b), s_free(d_dy), s_free(d_y), s_free(d_dx);
    free(a), free(b), free(dy), free(y), free(dx);
}

static void parity_pool(pool2d_params_t p, bool is_max, const char *name, kdtype_t dt)
{
    pool2d_params_t pc = p;
    p.dtype = dt;
    const size_t nx = pool2d_x_count(&p), ny = pool2d_y_count(&p);
    float *x = s_rand(nx, -1, 1, 30, dt), *dy = s_rand(ny, -1, 1, 31, dt);
    float *y = kt_f32(ny), *dx = kt_f32(nx);
    int32_t *am = kt_i32(ny), *am_gpu = kt_i32(ny);
    void *d_x = s_up(x, nx, dt), *d_dy = s_up(dy, ny, dt), *d_y = s_dev(ny * 4), *d_dx = s_dev(nx * 4);
    int32_t *d_am = s_dev(ny * 4);
    if (is_max) {
        maxpool2d_forward_cpu(y, am, x, &pc);
        maxpool2d_backward_cpu(dx, dy, am, &pc);
        maxpool2d_forward_cuda(d_y, d_am, d_x, &p, s_ctx);
        maxpool2d_backward_cuda(d_dx, d_dy, d_am, &p, s_ctx);
        cuda_ctx_sync(s_ctx);
        CUDA_CHECK(cudaMemcpy(am_gpu, d_am, ny * 4, cudaMemcpyDeviceToHost));
        T_CHECK(memcmp(am, am_gpu, ny * 4) == 0, "%s argmax differs [%s]", name, kdtype_name(dt));
    } else {
        avgpool2d_forward_cpu(y, x, &pc);
        avgpool2d_backward_cpu(dx, dy, &pc);
        avgpool2d_forward_cuda(d_y, d_x, &p, s_ctx);
        avgpool2d_backward_cuda(d_dx, d_dy, &p, s_ctx);
    }
    const double tol = dt == KDTYPE_F32 ? 1e-6 : 8e-3;
    s_cmp(name, "y", dt, s_down(d_y, ny, dt), y, ny, tol);
    s_cmp(name, "dx", dt, s_down(d_dx, nx, dt), dx, nx, tol);
    s_free(d_x), s_free(d_dy), s_free(d_y), s_free(d_dx), s_free(d_am);
    free(x), free(dy), free(y), free(dx), free(am), free(am_gpu);
}

static void parity_adaptive(kdtype_t dt)
{
    adaptive_avgpool_params_t p = {.n = 4, .h = 7, .w = 7, .c = 64, .dtype = dt}, pc = p;
    pc.dtype = KDTYPE_F32;
    const size_t nx = 4 * 7 * 7 * 64, ny = 4 * 64;
    float *x = s_rand(nx, -1, 1, 40, dt), *dy = s_rand(ny, -1, 1, 41, dt);
    float *y = kt_f32(ny), *dx = kt_f32(nx);
    void *d_x = s_up(x, nx, dt), *d_dy = s_up(dy, ny, dt), *d_y = s_dev(ny * 4), *d_dx = s_dev(nx * 4);
    adaptive_avgpool_forward_cpu(y, x, &pc);
    adaptive_avgpool_backward_cpu(dx, dy, &pc);
    adaptive_avgpool_forward_cuda(d_y, d_x, &p, s_ctx);
    adaptive_avgpool_backward_cuda(d_dx, d_dy, &p, s_ctx);
    const double tol = dt == KDTYPE_F32 ? 1e-6 : 8e-3;
    s_cmp("adaptive_avgpool", "y", dt, s_down(d_y, ny, dt), y, ny, tol);
    s_cmp("adaptive_avgpool", "dx", dt, s_down(d_dx, nx, dt), dx, nx, tol);
    s_free(d_x), s_free(d_dy), s_free(d_y), s_free(d_dx);
    free(x), free(dy), free(y), free(dx);
}

static void parity_linear(kdtype_t dt)
{
    linear_params_t p = {.n = 32, .in = 512, .out = 10, .dtype = dt}, pc = p;
    pc.dtype = KDTYPE_F32;
    const size_t nx = 32 * 512, nw = 10 * 512, ny = 32 * 10;
    float *x = s_rand(nx, -1, 1, 50, dt), *w = s_rand(nw, -0.05f, 0.05f, 51, dt);
    float *b = s_rand(10, -1, 1, 52, KDTYPE_F32), *dy = s_rand(ny, -1, 1, 53, dt);
    float *y = kt_f32(ny), *dx = kt_f32(nx), *dw = kt_f32(nw), *db = kt_f32(10);
    linear_forward_cpu(y, x, w, b, &pc);
    linear_backward_cpu(dx, dw, db, dy, x, w, &pc);
    void *d_x = s_up(x, nx, dt), *d_w = s_up(w, nw, dt), *d_dy = s_up(dy, ny, dt);
    float *d_b = s_up_raw(b, 40), *d_db = s_dev(40);
    void *d_y = s_dev(ny * 4), *d_dx = s_dev(nx * 4), *d_dw = s_dev(nw * 4);
    linear_forward_cuda(d_y, d_x, d_w, d_b, &p, s_ctx);
    linear_backward_cuda(d_dx, d_dw, d_db, d_dy, d_x, d_w, &p, s_ctx);
    const double tol = dt == KDTYPE_F32 ? 1e-5 : 1e-2;
    s_cmp("linear", "y", dt, s_down(d_y, ny, dt), y, ny, tol);
    s_cmp("linear", "dx", dt, s_down(d_dx, nx, dt), dx, nx, tol);
    s_cmp("linear", "dw", dt, s_down(d_dw, nw, dt), dw, nw, dt == KDTYPE_F32 ? 1e-5 : 2e-2);
    s_cmp("linear", "db", dt, s_down(d_db, 10, KDTYPE_F32), db, 10, 1e-5);
    s_free(d_x), s_free(d_w), s_free(d_dy), s_free(d_b), s_free(d_db), s_free(d_y);
    s_free(d_dx), s_free(d_dw);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
}

static void parity_xent(kdtype_t dt)
{
    const int n = 300, c = 10;  // more rows than the reduction block has threads
    const size_t nl = (size_t)n * c;
    float *o = s_rand(nl, -4, 4, 60, dt), *lam = s_rand((size_t)n, 0.5f, 1, 61, KDTYPE_F32);
    int32_t *t = kt_i32((size_t)n), *t2 = kt_i32((size_t)n);
    kt_fill_int(t, (size_t)n, (uint32_t)c, 62);
    kt_fill_int(t2, (size_t)n, (uint32_t)c, 63);
    void *d_o = s_up(o, nl, dt), *d_d = s_dev(nl * 4);
    float *d_lam = s_up_raw(lam, (size_t)n * 4), *d_loss = s_dev(4), *d_per = s_dev((size_t)n * 4);
    int32_t *d_t = s_up_raw(t, (size_t)n * 4), *d_t2 = s_up_raw(t2, (size_t)n * 4);
    float loss, *per = kt_f32((size_t)n), *d = kt_f32(nl);
    for (int k = 0; k < 4; k++) {
        const bool mix = k >= 2;
        xent_params_t p = {.n = n, .c = c, .smoothing = (k % 2) ? 0.1f : 0.0f, .dtype = dt}, pc = p;
        pc.dtype = KDTYPE_F32;
        char name[48];
        snprintf(name, sizeof name, "xent %s%s", mix ? "Mixup " : "", (k % 2) ? "LS" : "CE");
        xent_forward_cpu(&loss, per, o, t, mix ? t2 : NULL, mix ? lam : NULL, &pc);
        xent_backward_cpu(d, o, t, mix ? t2 : NULL, mix ? lam : NULL, &pc);
        xent_forward_cuda(d_loss, d_per, d_o, d_t, mix ? d_t2 : NULL, mix ? d_lam : NULL, &p, s_ctx);
        xent_backward_cuda(d_d, d_o, d_t, mix ? d_t2 : NULL, mix ? d_lam : NULL, &p, s_ctx);
        s_cmp(name, "loss", dt, s_down(d_loss, 1, KDTYPE_F32), &loss, 1, 1e-5);
        s_cmp(name, "per-sample", dt, s_down(d_per, (size_t)n, KDTYPE_F32), per, (size_t)n, 1e-5);
        s_cmp(name, "dlogits", dt, s_down(d_d, nl, dt), d, nl, dt == KDTYPE_F32 ? 1e-5 : 1e-2);
    }
    xent_params_t p = {.n = n, .c = c, .dtype = dt}, pc = {.n = n, .c = c};
    xent_softmax_cpu(d, o, &pc);
    float *d_probs = s_dev(nl * 4);
    xent_softmax_cuda(d_probs, d_o, &p, s_ctx);
    s_cmp("xent", "softmax", dt, s_down(d_probs, nl, KDTYPE_F32), d, nl, 1e-5);
    // a bad target gives a NaN loss, never an out-of-bounds read
    const int32_t bad = c + 5;
    CUDA_CHECK(cudaMemcpy(d_t, &bad, 4, cudaMemcpyHostToDevice));
    xent_forward_cuda(d_loss, NULL, d_o, d_t, NULL, NULL, &p, s_ctx);
    float *l = s_down(d_loss, 1, KDTYPE_F32);
    T_CHECK(isnan(l[0]), "bad target: loss %g, expected NaN", l[0]);
    free(l);
    s_free(d_o), s_free(d_d), s_free(d_lam), s_free(d_loss), s_free(d_per), s_free(d_t);
    s_free(d_t2), s_free(d_probs);
    free(o), free(lam), free(t), free(t2), free(per), free(d);
}

static void parity_accuracy(kdtype_t dt)
{
    const int n = 1000, c = 10;
    float *o = s_rand((size_t)n * c, -1, 1, 70, dt);
    int32_t *t = kt_i32((size_t)n), want = -1, got = -2;
    kt_fill_int(t, (size_t)n, (uint32_t)c, 71);
    accuracy_params_t p = {.n = n, .c = c, .dtype = dt}, pc = {.n = n, .c = c};
    accuracy_cpu(&want, o, t, &pc);
    void *d_o = s_up(o, (size_t)n * c, dt);
    int32_t *d_t = s_up_raw(t, (size_t)n * 4), *d_c = s_dev(4);
    accuracy_cuda(d_c, d_o, d_t, &p, s_ctx);
    cuda_ctx_sync(s_ctx);
    CUDA_CHECK(cudaMemcpy(&got, d_c, 4, cudaMemcpyDeviceToHost));
    T_CHECK(got == want, "accuracy [%s]: cuda %d cpu %d", kdtype_name(dt), got, want);
    fprintf(stderr, "%s accuracy [%s]: cuda %d cpu %d of %d\n", got == want ? "OK" : "NOT OK",
            kdtype_name(dt), got, want, n);
    s_free(d_o), s_free(d_t), s_free(d_c);
    free(o), free(t);
}

static void parity_adam(void)
{
    const size_t n = 100003;
    float *w = s_rand(n, -1, 1, 80, KDTYPE_F32), *m = kt_f32(n), *v = kt_f32(n);
    uint8_t *mask = malloc(n);
    for (size_t i = 0; i < n; i++) mask[i] = (uint8_t)(i % 3 != 0);
    float *d_w = s_up_raw(w, n * 4), *d_m = s_dev(n * 4), *d_v = s_dev(n * 4), *d_g = s_dev(n * 4);
    uint8_t *d_mask = s_up_raw(mask, n);
    uint16_t *d_wb = s_dev(n * 2), *wb = malloc(n * 2), *wb_gpu = malloc(n * 2);
    adam_params_t p = adam_default_params(n);
    for (int s = 1; s <= 3; s++) {
        float *g = s_rand(n, -0.5f, 0.5f, 80 + (uint32_t)s, KDTYPE_F32);
        CUDA_CHECK(cudaMemcpy(d_g, g, n * 4, cudaMemcpyHostToDevice));
        p.step = s, p.lr = 3e-3 * s, p.mom = 0.95 - 0.05 * s;
        adam_step_cpu(w, m, v, wb, g, mask, &p);
        adam_step_cuda(d_w, d_m, d_v, d_wb, d_g, d_mask, &p, s_ctx);
        free(g);
    }
    s_cmp("adam", "param", KDTYPE_F32, s_down(d_w, n, KDTYPE_F32), w, n, 1e-7);
    s_cmp("adam", "grad_avg", KDTYPE_F32, s_down(d_m, n, KDTYPE_F32), m, n, 1e-7);
    s_cmp("adam", "sqr_avg", KDTYPE_F32, s_down(d_v, n, KDTYPE_F32), v, n, 1e-7);
    CUDA_CHECK(cudaMemcpy(wb_gpu, d_wb, n * 2, cudaMemcpyDeviceToHost));
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += wb[i] != wb_gpu[i];
    T_CHECK(diff <= n / 10000, "adam bf16 copy: %zu of %zu differ", diff, n);
    s_free(d_w), s_free(d_m), s_free(d_v), s_free(d_g), s_free(d_mask), s_free(d_wb);
    free(w), free(m), free(v), free(mask), free(wb), free(wb_gpu);
}

static void parity_cast(void)
{
    const size_t n = 4099;
    float *x = s_rand(n, -1e4f, 1e4f, 90, KDTYPE_F32);
    x[0] = NAN, x[1] = INFINITY, x[2] = -0.0f, x[3] = 1e-40f;  // NaN, inf, -0, subnormal
    uint16_t *want = malloc(n * 2), *got = malloc(n * 2);
    cast_params_t p = {.count = n};
    cast_f32_to_bf16_cpu(want, x, &p);
    float *d_x = s_up_raw(x, n * 4), *d_back = s_dev(n * 4);
    uint16_t *d_b = s_dev(n * 2);
    cast_f32_to_bf16_cuda(d_b, d_x, &p, s_ctx);
    cast_bf16_to_f32_cuda(d_back, d_b, &p, s_ctx);
    cuda_ctx_sync(s_ctx);
    CUDA_CHECK(cudaMemcpy(got, d_b, n * 2, cudaMemcpyDeviceToHost));
    size_t diff = 0;
    for (size_t i = 1; i < n; i++) diff += got[i] != want[i];  // [0] is NaN: payload may differ
    T_CHECK(diff == 0 && (got[0] & 0x7fff) > 0x7f80, "cast f32->bf16: %zu differ", diff);
    float *back = s_down(d_back, n, KDTYPE_F32), *back_cpu = kt_f32(n);
    cast_bf16_to_f32_cpu(back_cpu, want, &p);
    T_CHECK(memcmp(back + 1, back_cpu + 1, (n - 1) * 4) == 0, "cast bf16->f32 differs");
    fprintf(stderr, "%s cast: %zu of %zu bf16 values differ\n", diff ? "NOT OK" : "OK", diff, n);
    s_free(d_x), s_free(d_back), s_free(d_b);
    free(x), free(want), free(got), free(back), free(back_cpu);
}

int main(void)
{
    const int count = cuda_device_count();
    if (count == 0) t_skip("no usable CUDA device (cudaGetDeviceCount found none): GPU parity not run");
    s_ctx = cuda_ctx_new(&(cuda_ctx_config_t){.device = 0});
    if (!s_ctx) t_skip("CUDA device 0 could not be initialised");
    const kdtype_t dts[2] = {KDTYPE_F32, KDTYPE_BF16};
    for (int k = 0; k < 2; k++) {
        const kdtype_t dt = dts[k];
        parity_conv2d((conv2d_params_t){.n = 4, .h = 33, .w = 33, .c_in = 3, .c_out = 32, .kh = 3,
                                        .kw = 3, .stride = 2, .pad = 1}, "conv2d stem", dt);
        parity_conv2d((conv2d_params_t){.n = 4, .h = 16, .w = 16, .c_in = 32, .c_out = 32,
                                        .kh = 3, .kw = 3, .stride = 1, .pad = 1}, "conv2d 3x3 s1", dt);
        parity_conv2d((conv2d_params_t){.n = 4, .h = 15, .w = 15, .c_in = 64, .c_out = 64,
                                        .kh = 3, .kw = 3, .stride = 2, .pad = 1}, "conv2d 3x3 s2", dt);
        parity_conv2d((conv2d_params_t){.n = 4, .h = 8, .w = 8, .c_in = 64, .c_out = 256, .kh = 1,
                                        .kw = 1, .stride = 1, .pad = 0}, "conv2d 1x1", dt);
        parity_batchnorm2d(dt);
        parity_eltwise(dt);
        parity_pool((pool2d_params_t){.n = 4, .h = 17, .w = 16, .c = 32, .kh = 3, .kw = 3,
                                      .stride = 2, .pad = 1}, true, "maxpool2d", dt);
        parity_pool((pool2d_params_t){.n = 4, .h = 17, .w = 15, .c = 32, .kh = 2, .kw = 2,
                                      .stride = 2, .ceil_mode = true, .count_include_pad = true},
                    false, "avgpool2d ceil", dt);
        parity_pool((pool2d_params_t){.n = 2, .h = 9, .w = 8, .c = 16, .kh = 3, .kw = 3,
                                      .stride = 2, .pad = 1, .ceil_mode = true},
                    false, "avgpool2d pad exclude", dt);
        parity_adaptive(dt);
        parity_linear(dt);
        parity_xent(dt);
        parity_accuracy(dt);
    }
    parity_adam();
    parity_cast();
    cuda_ctx_destroy(&s_ctx);
    return t_done();
}
