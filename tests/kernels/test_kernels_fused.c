/*
 * test_kernels_fused.c: the CPU references of the GPU path's fused and
 * graph-friendly ops (label unit), each against the composition of the
 * existing references it replaces:
 *   - bnact (BatchNorm [+ residual] [+ ReLU]) = batchnorm2d then relu /
 *     relu_add, forward train and eval, and backward = relu_backward then
 *     batchnorm2d_backward (dr = the ReLU's gradient), bit for bit; the
 *     accumulate flags add exactly the overwritten result;
 *   - conv2d backward-data with `accumulate` = previous dx + the gradient;
 *   - adam_flat_step = adam_step bit for bit (fp32 gradients), and with bf16
 *     gradients = adam_step on the bf16 values; adam_scalars as adam_step;
 *   - dropout = the executors' Philox mask (the same sequence of draws),
 *     scale 1/(1-p), backward through the same mask; kept fraction ~ 1-p;
 *   - fill_uniform: range, determinism, mean.
 */
#include "adam.h"
#include "batchnorm2d.h"
#include "bnact.h"
#include "conv2d.h"
#include "dropout.h"
#include "fill.h"
#include "ktest.h"
#include "relu.h"
#include "rng.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool s_same(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof(float)) == 0;
}

// One bnact configuration against the composition of the older ops.
static void s_bnact_case(bool relu, bool residual)
{
    const int N = 3, H = 5, W = 4, C = 12;
    const size_t n = (size_t)N * H * W * C;
    bnact_params_t p = bnact_default_params(N, H, W, C);
    p.relu = relu;
    p.residual = residual;
    batchnorm2d_params_t bp = batchnorm2d_default_params(N, H, W, C);
    relu_params_t rp = {.count = n};
    float *x = kt_f32(n), *r = kt_f32(n), *dy = kt_f32(n), *g = kt_f32(C), *b = kt_f32(C);
    kt_fill(x, n, -2, 3, 1);
    kt_fill(r, n, -1, 1, 2);
    kt_fill(dy, n, -1, 1, 3);
    kt_fill(g, C, 0.5f, 1.5f, 4);
    kt_fill(b, C, -0.5f, 0.5f, 5);
    float *rm1 = kt_f32(C), *rv1 = kt_f32(C), *rm2 = kt_f32(C), *rv2 = kt_f32(C);
    kt_fill(rm1, C, -0.1f, 0.1f, 6);
    kt_fill(rv1, C, 0.5f, 2, 7);
    memcpy(rm2, rm1, C * 4);
    memcpy(rv2, rv1, C * 4);
    // reference: batchnorm2d, then relu / relu_add
    float *ybn = kt_f32(n), *yref = kt_f32(n), *sm1 = kt_f32(C), *si1 = kt_f32(C);
    batchnorm2d_forward_train_cpu(ybn, sm1, si1, rm1, rv1, x, g, b, &bp);
    if (residual && relu) relu_add_forward_cpu(yref, ybn, r, &rp);
    else if (residual)  // residual without ReLU: a plain add
        for (size_t i = 0; i < n; i++) yref[i] = ybn[i] + r[i];
    else if (relu) relu_forward_cpu(yref, ybn, &rp);
    else memcpy(yref, ybn, n * 4);
    float *y = kt_f32(n), *sm2 = kt_f32(C), *si2 = kt_f32(C);
    bnact_forward_train_cpu(y, sm2, si2, rm2, rv2, x, r, g, b, &p);
    char what[96];
    snprintf(what, sizeof what, "bnact relu=%d residual=%d", relu, residual);
    T_CHECK(s_same(y, yref, n), "%s: train y differs from the composition", what);
    T_CHECK(s_same(sm1, sm2, C) && s_same(si1, si2, C), "%s: saved statistics differ", what);
    T_CHECK(s_same(rm1, rm2, C) && s_same(rv1, rv2, C), "%s: running statistics differ", what);

    // eval on the updated running statistics
    float *ye = kt_f32(n), *yeref = kt_f32(n);
    batchnorm2d_forward_eval_cpu(ybn, x, g, b, rm1, rv1, &bp);
    if (residual) {
        for (size_t i = 0; i < n; i++) yeref[i] = ybn[i] + r[i];
        if (relu) relu_forward_cpu(yeref, yeref, &rp);
    } else if (relu) {
        relu_forward_cpu(yeref, ybn, &rp);
    } else {
        memcpy(yeref, ybn, n * 4);
    }
    bnact_forward_eval_cpu(ye, x, r, g, b, rm2, rv2, &p);
    T_CHECK(s_same(ye, yeref, n), "%s: eval y differs from the composition", what);

    // backward: dz = relu_backward(dy, y); then batchnorm2d_backward(dz)
    float *dz = kt_f32(n), *dxref = kt_f32(n), *dgref = kt_f32(C), *dbref = kt_f32(C);
    if (relu) relu_backward_cpu(dz, dy, y, &rp);
    else memcpy(dz, dy, n * 4);
    batchnorm2d_backward_cpu(dxref, dgref, dbref, dz, x, g, sm1, si1, &bp);
    float *dx = kt_f32(n), *dr = kt_f32(n), *dg = kt_f32(C), *db = kt_f32(C);
    bnact_backward_cpu(dx, residual ? dr : NULL, dg, db, dy, y, x, g, sm2, si2, &p);
    T_CHECK(s_same(dx, dxref, n), "%s: dx differs from the composition", what);
    T_CHECK(s_same(dg, dgref, C) && s_same(db, dbref, C), "%s: dgamma/dbeta differ", what);
    if (residual) T_CHECK(s_same(dr, dz, n), "%s: dr is not the ReLU's gradient", what);

    // accumulate: start from known values, expect old + gradient exactly
    bnact_params_t pa = p;
    pa.accumulate_dx = pa.accumulate_dr = true;
    float *dx2 = kt_f32(n), *dr2 = kt_f32(n), *old = kt_f32(n), *want = kt_f32(n);
    kt_fill(old, n, -1, 1, 8);
    memcpy(dx2, old, n * 4);
    memcpy(dr2, old, n * 4);
    bnact_backward_cpu(dx2, residual ? dr2 : NULL, dg, db, dy, y, x, g, sm2, si2, &pa);
    for (size_t i = 0; i < n; i++) want[i] = old[i] + dx[i];
    T_CHECK(s_same(dx2, want, n), "%s: accumulated dx != old + dx", what);
    if (residual) {
        for (size_t i = 0; i < n; i++) want[i] = old[i] + dr[i];
        T_CHECK(s_same(dr2, want, n), "%s: accumulated dr != old + dr", what);
    }
    // a ReLU really zeroes something, and the gradients are non-trivial
    if (relu) {
        size_t zeros = 0;
        for (size_t i = 0; i < n; i++) zeros += y[i] == 0.0f;
        T_CHECK(zeros > n / 10 && zeros < n, "%s: %zu of %zu outputs are 0", what, zeros, n);
    }
    double gsum = 0;
    for (size_t i = 0; i < n; i++) gsum += fabs(dx[i]);
    T_CHECK(gsum > 0, "%s: dx is all zero", what);
    free(x), free(r), free(dy), free(g), free(b), free(rm1), free(rv1), free(rm2), free(rv2);
    free(ybn), free(yref), free(sm1), free(si1), free(y), free(sm2), free(si2), free(ye);
    free(yeref), free(dz), free(dxref), free(dgref), free(dbref), free(dx), free(dr), free(dg);
    free(db), free(dx2), free(dr2), free(old), free(want);
}

static void test_bnact(void)
{
    s_bnact_case(false, false);
    s_bnact_case(true, false);
    s_bnact_case(true, true);
    s_bnact_case(false, true);
}

static void test_conv_accumulate(void)
{
    conv2d_params_t p = {.n = 2, .h = 7, .w = 6, .c_in = 5, .c_out = 8, .kh = 3, .kw = 3,
                         .stride = 2, .pad = 1};
    const size_t nx = conv2d_x_count(&p), ny = conv2d_y_count(&p), nw = conv2d_w_count(&p);
    float *dy = kt_f32(ny), *w = kt_f32(nw), *dx = kt_f32(nx), *acc = kt_f32(nx);
    float *want = kt_f32(nx);
    kt_fill(dy, ny, -1, 1, 20);
    kt_fill(w, nw, -0.3f, 0.3f, 21);
    kt_fill(acc, nx, -1, 1, 22);
    conv2d_backward_data_cpu(dx, dy, w, &p);
    for (size_t i = 0; i < nx; i++) want[i] = acc[i] + dx[i];
    p.accumulate = true;
    conv2d_backward_data_cpu(acc, dy, w, &p);
    t_close_f32("conv2d backward data accumulate = old + dx", acc, want, nx, 1e-6, 1e-6);
    free(dy), free(w), free(dx), free(acc), free(want);
}

static void test_adam_flat(void)
{
    const size_t n = 1003;
    float *p1 = kt_f32(n), *m1 = kt_f32(n), *v1 = kt_f32(n), *g = kt_f32(n);
    float *p2 = kt_f32(n), *m2 = kt_f32(n), *v2 = kt_f32(n), *gb = kt_f32(n);
    uint8_t *wd = calloc(n, 1), *flags = calloc(n, 1);
    uint16_t *g16 = calloc(n, 2), *lp1 = calloc(n, 2), *lp2 = calloc(n, 2);
    kt_fill(p1, n, -1, 1, 30);
    kt_fill(g, n, -0.1f, 0.1f, 31);
    kt_fill(m1, n, -0.01f, 0.01f, 32);
    kt_fill(v1, n, 0, 0.001f, 33);
    for (size_t i = 0; i < n; i++) wd[i] = flags[i] = i % 3 != 0;
    memcpy(p2, p1, n * 4), memcpy(m2, m1, n * 4), memcpy(v2, v1, n * 4);
    const float first = p1[1];
    adam_params_t hp = adam_default_params(n);
    hp.lr = 3e-3, hp.mom = 0.93, hp.step = 7;
    adam_step_cpu(p1, m1, v1, lp1, g, wd, &hp);
    const adam_scalars_t s = adam_scalars(&hp);
    adam_flat_step_cpu(p2, m2, v2, lp2, g, NULL, flags, &s, n);
    T_CHECK(s_same(p1, p2, n) && s_same(m1, m2, n) && s_same(v1, v2, n) &&
                memcmp(lp1, lp2, n * 2) == 0,
            "adam_flat_step with fp32 gradients differs from adam_step");
    T_CHECK(p2[1] != first, "adam_flat_step moved the weights");

    // bf16 gradients for the flagged elements
    for (size_t i = 0; i < n; i++) {
        g16[i] = kdtype_f32_to_bf16(g[i]);
        flags[i] |= (uint8_t)(i % 2 ? ADAM_FLAG_GRAD_BF16 : 0);
        gb[i] = i % 2 ? kdtype_bf16_to_f32(g16[i]) : g[i];
    }
    adam_step_cpu(p1, m1, v1, NULL, gb, wd, &hp);
    adam_flat_step_cpu(p2, m2, v2, NULL, g, g16, flags, &s, n);
    T_CHECK(s_same(p1, p2, n) && s_same(m1, m2, n) && s_same(v1, v2, n),
            "adam_flat_step with bf16 gradients differs from adam_step on the bf16 values");
    free(p1), free(m1), free(v1), free(g), free(p2), free(m2), free(v2), free(gb);
    free(wd), free(flags), free(g16), free(lp1), free(lp2);
}

static void test_dropout(void)
{
    const size_t n = 4096;
    const float pr = 0.25f;
    const uint64_t seed = 42, index = (7ull << 32) | 11;
    float *x = kt_f32(n), *y = kt_f32(n), *dy = kt_f32(n), *dx = kt_f32(n);
    uint8_t *keep = calloc(n, 1);
    kt_fill(x, n, -1, 1, 40);
    kt_fill(dy, n, -1, 1, 41);
    dropout_params_t p = {.count = n, .p = pr, .seed = seed};
    dropout_forward_cpu(y, keep, x, &index, &p);
    dropout_backward_cpu(dx, dy, keep, &p);
    // the executors' mask: sequential draws of Philox(seed, DROPOUT, index >> 32, (u32)index)
    nf_rng_t r = nf_rng_make(seed, NF_RNG_STREAM_DROPOUT, 7, 11);
    const float scale = 1.0f / (1.0f - pr);
    size_t kept = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        const int k = !(nf_rng_uniform(&r) < pr);
        kept += (size_t)k;
        bad += keep[i] != k || y[i] != (k ? x[i] * scale : 0.0f) ||
               dx[i] != (k ? dy[i] * scale : 0.0f);
    }
    T_CHECK(bad == 0, "dropout: %zu elements differ from the Philox mask", bad);
    T_NEAR((double)kept / n, 1.0 - pr, 0.03);
    const uint64_t other = index + 1;
    uint8_t *keep2 = calloc(n, 1);
    dropout_forward_cpu(y, keep2, x, &other, &p);
    T_CHECK(memcmp(keep, keep2, n) != 0, "dropout: the next step draws another mask");
    p.p = 0.0f;
    dropout_forward_cpu(y, keep2, x, &index, &p);
    T_CHECK(s_same(y, x, n), "dropout p = 0 is the identity");
    free(x), free(y), free(dy), free(dx), free(keep), free(keep2);
}

static void test_fill(void)
{
    const size_t n = 100000;
    float *a = kt_f32(n), *b = kt_f32(n);
    fill_params_t p = {.count = n, .lo = -2, .hi = 1, .seed = 9};
    fill_uniform_cpu(a, &p);
    fill_uniform_cpu(b, &p);
    double sum = 0, lo = 1e9, hi = -1e9;
    for (size_t i = 0; i < n; i++) {
        sum += a[i];
        lo = fmin(lo, a[i]);
        hi = fmax(hi, a[i]);
    }
    T_CHECK(s_same(a, b, n), "fill is deterministic");
    T_CHECK(lo >= -2 && hi < 1 && lo < -1.99 && hi > 0.99, "fill range [%g, %g]", lo, hi);
    T_NEAR(sum / n, -0.5, 0.02);
    free(a), free(b);
}

int main(void)
{
    test_bnact();
    test_conv_accumulate();
    test_adam_flat();
    test_dropout();
    test_fill();
    return t_done();
}
