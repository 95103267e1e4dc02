/*
 * test_kernels_cpu.c: every CPU reference op against small cases worked out
 * by hand (label unit): shapes and output-size rules, values, tie and NaN
 * rules, the ceil-mode partial window, running statistics, the loss
 * formulas, fastai's Adam step, and bf16 rounding. Also that results do not
 * depend on the OpenMP thread count.
 */
#include "accuracy.h"
#include "adam.h"
#include "adaptive_avgpool.h"
#include "add.h"
#include "avgpool2d.h"
#include "batchnorm2d.h"
#include "cast.h"
#include "conv2d.h"
#include "ktest.h"
#include "linear.h"
#include "maxpool2d.h"
#include "relu.h"
#include "testlib.h"
#include "xent.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static void test_conv2d(void)
{
    // x = 1..9 as a 3x3 image, 2x2 kernel of ones, stride 1, no pad
    float x[9], w[4] = {1, 1, 1, 1}, y[4], dx[9], dw[4], dy[4] = {1, 1, 1, 1};
    for (int i = 0; i < 9; i++) x[i] = (float)(i + 1);
    conv2d_params_t p = {.n = 1, .h = 3, .w = 3, .c_in = 1, .c_out = 1, .kh = 2, .kw = 2,
                         .stride = 1, .pad = 0};
    T_CHECK(conv2d_out_h(&p) == 2 && conv2d_out_w(&p) == 2, "out size");
    conv2d_forward_cpu(y, x, w, &p);
    const float y_want[4] = {12, 16, 24, 28};
    t_close_f32("conv2d 2x2 forward", y, y_want, 4, 0, 0);
    conv2d_backward_data_cpu(dx, dy, w, &p);
    const float dx_want[9] = {1, 2, 1, 2, 4, 2, 1, 2, 1};
    t_close_f32("conv2d 2x2 backward data", dx, dx_want, 9, 0, 0);
    conv2d_backward_weights_cpu(dw, dy, x, &p);
    t_close_f32("conv2d 2x2 backward weights", dw, y_want, 4, 0, 0);

    // 3x3 kernel, stride 2, pad 1 on the same image: outputs at (0,0),(0,2),(2,0),(2,2)
    // each the sum of the in-bounds 3x3 neighbourhood.
    float w3[9], y3[4];
    for (int i = 0; i < 9; i++) w3[i] = 1;
    conv2d_params_t p3 = {.n = 1, .h = 3, .w = 3, .c_in = 1, .c_out = 1, .kh = 3, .kw = 3,
                          .stride = 2, .pad = 1};
    T_CHECK(conv2d_out_h(&p3) == 2, "stride-2 out size %d", conv2d_out_h(&p3));
    conv2d_forward_cpu(y3, x, w3, &p3);
    const float y3_want[4] = {1 + 2 + 4 + 5, 2 + 3 + 5 + 6, 4 + 5 + 7 + 8, 5 + 6 + 8 + 9};
    t_close_f32("conv2d 3x3 s2 p1 forward", y3, y3_want, 4, 0, 0);

    // channels: C_in 2, C_out 3, 1x1: y[co] = sum_ci w[co, ci] * x[ci]
    float xc[2] = {2, 3}, wc[6] = {1, 0, 0, 1, 1, -1}, yc[3];
    conv2d_params_t pc = {.n = 1, .h = 1, .w = 1, .c_in = 2, .c_out = 3, .kh = 1, .kw = 1,
                          .stride = 1, .pad = 0};
    conv2d_forward_cpu(yc, xc, wc, &pc);
    const float yc_want[3] = {2, 3, -1};
    t_close_f32("conv2d 1x1 channels", yc, yc_want, 3, 0, 0);

    // the stem: 224 -> 112 with 3x3 s2 p1; 1x1 s2 on 7 -> 4
    conv2d_params_t stem = {.n = 1, .h = 224, .w = 224, .c_in = 3, .c_out = 32, .kh = 3,
                            .kw = 3, .stride = 2, .pad = 1};
    T_CHECK(conv2d_out_h(&stem) == 112, "stem %d", conv2d_out_h(&stem));
    conv2d_params_t odd = {.n = 1, .h = 7, .w = 7, .c_in = 1, .c_out = 1, .kh = 1, .kw = 1,
                           .stride = 2, .pad = 0};
    T_CHECK(conv2d_out_w(&odd) == 4, "1x1 s2 on 7: %d", conv2d_out_w(&odd));
}

static void test_batchnorm2d(void)
{
    // one channel, M = 4 values 1..4: mean 2.5, biased var 1.25, unbiased 5/3
    float x[4] = {1, 2, 3, 4}, y[4], gamma = 2, beta = 0.5f, sm, si, rm = 0, rv = 1;
    batchnorm2d_params_t p = batchnorm2d_default_params(4, 1, 1, 1);
    batchnorm2d_forward_train_cpu(y, &sm, &si, &rm, &rv, x, &gamma, &beta, &p);
    const double invstd = 1.0 / sqrt(1.25 + 1e-5);
    float y_want[4];
    for (int i = 0; i < 4; i++) y_want[i] = (float)(2 * (x[i] - 2.5) * invstd + 0.5);
    t_close_f32("bn train y", y, y_want, 4, 1e-6, 1e-6);
    T_NEAR(sm, 2.5, 1e-7);
    T_NEAR(si, invstd, 1e-6);
    T_NEAR(rm, 0.25, 1e-7);                        // 0.9*0 + 0.1*2.5
    T_NEAR(rv, 0.9 + 0.1 * (5.0 / 3.0), 1e-6);   // unbiased batch variance
    // eval uses the running statistics
    float ye[4];
    batchnorm2d_forward_eval_cpu(ye, x, &gamma, &beta, &rm, &rv, &p);
    for (int i = 0; i < 4; i++) y_want[i] = (float)(2 * (x[i] - rm) / sqrt(rv + 1e-5) + 0.5);
    t_close_f32("bn eval y", ye, y_want, 4, 1e-6, 1e-6);
    // backward with dy = (1, 0, 0, 0): dbeta = 1, dgamma = xhat[0]
    float dy[4] = {1, 0, 0, 0}, dx[4], dg, db;
    batchnorm2d_backward_cpu(dx, &dg, &db, dy, x, &gamma, &sm, &si, &p);
    T_NEAR(db, 1.0, 1e-7);
    T_NEAR(dg, -1.5 * invstd, 1e-6);
    // the normalisation removes the mean: dx sums to zero
    T_NEAR(dx[0] + dx[1] + dx[2] + dx[3], 0.0, 1e-6);
    // channels are independent: channel 1 constant -> y = beta, var 0
    float x2[4] = {1, 7, 2, 7}, y2[4], g2[2] = {1, 1}, b2[2] = {0, 3}, sm2[2], si2[2],
          rm2[2] = {0, 0}, rv2[2] = {1, 1};
    batchnorm2d_params_t p2 = batchnorm2d_default_params(2, 1, 1, 2);
    batchnorm2d_forward_train_cpu(y2, sm2, si2, rm2, rv2, x2, g2, b2, &p2);
    T_NEAR(y2[1], 3.0, 1e-6);
    T_NEAR(y2[3], 3.0, 1e-6);
    T_NEAR(y2[0], -1.0 / sqrt(0.25 + 1e-5) * 0.5, 1e-5);
}

static void test_relu_add(void)
{
    float x[4] = {-1, 0, 2, NAN}, y[4];
    relu_params_t p = {.count = 4};
    relu_forward_cpu(y, x, &p);
    T_CHECK(y[0] == 0 && y[1] == 0 && y[2] == 2 && isnan(y[3]), "relu %g %g %g %g", y[0], y[1],
            y[2], y[3]);
    float dy[4] = {5, 5, 5, 5}, dx[4];
    relu_backward_cpu(dx, dy, y, &p);
    T_CHECK(dx[0] == 0 && dx[1] == 0 && dx[2] == 5 && dx[3] == 0, "relu backward");
    float a[4] = {1, -3, 0.5f, 2}, b[4] = {-2, 1, 0.25f, 2}, s[4];
    relu_add_forward_cpu(s, a, b, &p);
    const float s_want[4] = {0, 0, 0.75f, 4};
    t_close_f32("relu(a + b)", s, s_want, 4, 0, 0);
    add_params_t ap = {.count = 4};
    add_forward_cpu(a, a, b, &ap);  // in place
    const float a_want[4] = {-1, -2, 0.75f, 4};
    t_close_f32("a += b", a, a_want, 4, 0, 0);
}

static void test_pools(void)
{
    // maxpool 3x3 s2 p1 on 4x4 = 1..16
    float x[16], y[4], dx[16];
    int32_t am[4];
    for (int i = 0; i < 16; i++) x[i] = (float)(i + 1);
    pool2d_params_t mp = {.n = 1, .h = 4, .w = 4, .c = 1, .kh = 3, .kw = 3, .stride = 2, .pad = 1};
    T_CHECK(pool2d_out_h(&mp) == 2, "maxpool out %d", pool2d_out_h(&mp));
    maxpool2d_forward_cpu(y, am, x, &mp);
    const float y_want[4] = {6, 8, 14, 16};
    t_close_f32("maxpool forward", y, y_want, 4, 0, 0);
    T_CHECK(am[0] == 5 && am[1] == 7 && am[2] == 13 && am[3] == 15, "argmax %d %d %d %d", am[0],
            am[1], am[2], am[3]);
    const float dy[4] = {1, 2, 3, 4};
    maxpool2d_backward_cpu(dx, dy, am, &mp);
    float dx_want[16] = {0};
    dx_want[5] = 1, dx_want[7] = 2, dx_want[13] = 3, dx_want[15] = 4;
    t_close_f32("maxpool backward", dx, dx_want, 16, 0, 0);
    // ties: the first maximum in row-major window order; overlapping windows sum
    float flat[16];
    for (int i = 0; i < 16; i++) flat[i] = 1;
    maxpool2d_forward_cpu(y, am, flat, &mp);
    T_CHECK(am[0] == 0 && am[1] == 1 && am[2] == 4 && am[3] == 5, "tie argmax %d %d %d %d",
            am[0], am[1], am[2], am[3]);
    maxpool2d_backward_cpu(dx, dy, am, &mp);
    T_CHECK(dx[0] == 1 && dx[1] == 2 && dx[4] == 3 && dx[5] == 4, "tie backward");
    // NaN wins
    flat[6] = NAN;
    maxpool2d_forward_cpu(y, am, flat, &mp);
    T_CHECK(isnan(y[1]) && am[1] == 6, "NaN propagates: %g at %d", y[1], am[1]);

    // avgpool 2x2 s2 ceil_mode on 3x3 = 1..9: partial windows divide by in-bounds count
    float x3[9], y3[4], dx3[9];
    for (int i = 0; i < 9; i++) x3[i] = (float)(i + 1);
    pool2d_params_t ap = {.n = 1, .h = 3, .w = 3, .c = 1, .kh = 2, .kw = 2, .stride = 2,
                          .ceil_mode = true, .count_include_pad = true};
    T_CHECK(pool2d_out_h(&ap) == 2, "ceil out %d", pool2d_out_h(&ap));
    avgpool2d_forward_cpu(y3, x3, &ap);
    const float y3_want[4] = {3, 4.5f, 7.5f, 9};
    t_close_f32("avgpool ceil forward", y3, y3_want, 4, 0, 0);
    const float dy3[4] = {4, 2, 2, 1};
    avgpool2d_backward_cpu(dx3, dy3, &ap);
    const float dx3_want[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    t_close_f32("avgpool ceil backward", dx3, dx3_want, 9, 0, 0);
    // output sizes: floor vs ceil, and the "last window starts in the padding" rule
    pool2d_params_t g = {.n = 1, .h = 7, .w = 8, .c = 1, .kh = 2, .kw = 2, .stride = 2};
    T_CHECK(pool2d_out_h(&g) == 3 && pool2d_out_w(&g) == 4, "floor sizes");
    g.ceil_mode = true;
    T_CHECK(pool2d_out_h(&g) == 4 && pool2d_out_w(&g) == 4, "ceil sizes");
    pool2d_params_t r = {.n = 1, .h = 5, .w = 5, .c = 1, .kh = 2, .kw = 2, .stride = 2, .pad = 1,
                         .ceil_mode = true};
    T_CHECK(pool2d_out_h(&r) == 3, "ceil window in padding dropped: %d", pool2d_out_h(&r));
    // count_include_pad with padding: corner window (pad 1, k 3) covers 4 pixels of 9
    float ones[9], yp[4];
    for (int i = 0; i < 9; i++) ones[i] = 1;
    pool2d_params_t cp = {.n = 1, .h = 3, .w = 3, .c = 1, .kh = 3, .kw = 3, .stride = 2, .pad = 1,
                          .count_include_pad = true};
    avgpool2d_forward_cpu(yp, ones, &cp);
    T_NEAR(yp[0], 4.0 / 9.0, 1e-7);
    cp.count_include_pad = false;
    avgpool2d_forward_cpu(yp, ones, &cp);
    T_NEAR(yp[0], 1.0, 1e-7);

    // adaptive average pool to 1x1
    float xa[8] = {1, 10, 2, 20, 3, 30, 4, 40}, ya[2], dxa[8];  // (1, 2, 2, 2)
    adaptive_avgpool_params_t aa = {.n = 1, .h = 2, .w = 2, .c = 2};
    adaptive_avgpool_forward_cpu(ya, xa, &aa);
    T_CHECK(ya[0] == 2.5f && ya[1] == 25.0f, "adaptive %g %g", ya[0], ya[1]);
    const float dya[2] = {4, 8};
    adaptive_avgpool_backward_cpu(dxa, dya, &aa);
    T_CHECK(dxa[0] == 1 && dxa[1] == 2 && dxa[6] == 1 && dxa[7] == 2, "adaptive backward");
}

static void test_linear(void)
{
    float x[2] = {1, 2}, w[6] = {1, 0, 0, 1, 1, 1}, b[3] = {0.5f, 0, -1}, y[3];
    linear_params_t p = {.n = 1, .in = 2, .out = 3};
    linear_forward_cpu(y, x, w, b, &p);
    const float y_want[3] = {1.5f, 2, 2};
    t_close_f32("linear forward", y, y_want, 3, 0, 0);
    float dy[3] = {1, 2, 3}, dx[2], dw[6], db[3];
    linear_backward_cpu(dx, dw, db, dy, x, w, &p);
    const float dx_want[2] = {1 + 3, 2 + 3}, dw_want[6] = {1, 2, 2, 4, 3, 6};
    t_close_f32("linear dx", dx, dx_want, 2, 0, 0);
    t_close_f32("linear dw", dw, dw_want, 6, 0, 0);
    t_close_f32("linear db", db, dy, 3, 0, 0);
    linear_forward_cpu(y, x, w, NULL, &p);  // no bias
    T_CHECK(y[0] == 1 && y[2] == 3, "no bias");
}

static void test_xent(void)
{
    // softmax of (0, 0, ln 2) = (1/4, 1/4, 1/2)
    const float o[3] = {0, 0, (float)log(2.0)};
    const int32_t y2[1] = {2}, y0[1] = {0};
    float loss, per[1], d[3];
    xent_params_t p = {.n = 1, .c = 3};
    xent_forward_cpu(&loss, per, o, y2, NULL, NULL, &p);
    T_NEAR(loss, log(2.0), 1e-6);
    T_NEAR(per[0], log(2.0), 1e-6);
    xent_backward_cpu(d, o, y2, NULL, NULL, &p);
    const float d_want[3] = {0.25f, 0.25f, -0.5f};
    t_close_f32("CE dlogits", d, d_want, 3, 1e-7, 0);
    // label smoothing eps 0.1: (0.1/3)(-sum lp) + 0.9 (-lp[y]), -sum lp = 5 ln 2
    p.smoothing = 0.1f;
    xent_forward_cpu(&loss, NULL, o, y2, NULL, NULL, &p);
    T_NEAR(loss, log(2.0) * (0.1 / 3 * 5 + 0.9), 1e-6);
    // Mixup with lam 0.7 and partner 0 (plain CE): 0.7 ln 2 + 0.3 ln 4
    const float lam[1] = {0.7f};
    p.smoothing = 0;
    xent_forward_cpu(&loss, NULL, o, y2, y0, lam, &p);
    T_NEAR(loss, log(2.0) * (0.7 + 0.6), 1e-6);
    xent_backward_cpu(d, o, y2, y0, lam, &p);
    const float dm_want[3] = {0.25f - 0.3f, 0.25f, 0.5f - 0.7f};
    t_close_f32("Mixup CE dlogits", d, dm_want, 3, 1e-7, 0);
    // Mixup + smoothing: the smoothing term is shared, the NLL term is mixed
    p.smoothing = 0.1f;
    xent_forward_cpu(&loss, NULL, o, y2, y0, lam, &p);
    T_NEAR(loss, log(2.0) * (0.1 / 3 * 5 + 0.9 * 1.3), 1e-6);
    // fastai's statement: with 10 classes, eps 0.1 is CE against q = 0.91 / 0.01
    float o10[10], q_loss = 0, lp_sum = 0;
    kt_fill(o10, 10, -2, 2, 7);
    const int32_t y3[1] = {3};
    xent_params_t p10 = {.n = 1, .c = 10, .smoothing = 0.1f};
    xent_forward_cpu(&loss, NULL, o10, y3, NULL, NULL, &p10);
    float probs[10];
    xent_softmax_cpu(probs, o10, &p10);
    for (int k = 0; k < 10; k++) {
        lp_sum += probs[k];
        q_loss -= (k == 3 ? 0.91f : 0.01f) * logf(probs[k]);
    }
    T_NEAR(lp_sum, 1.0, 1e-6);
    T_NEAR(loss, q_loss, 1e-5);
    // mean over the batch
    const float o2[6] = {0, 0, (float)log(2.0), 0, 0, 0};
    const int32_t t2[2] = {2, 1};
    xent_params_t pb = {.n = 2, .c = 3};
    xent_forward_cpu(&loss, NULL, o2, t2, NULL, NULL, &pb);
    T_NEAR(loss, (log(2.0) + log(3.0)) / 2, 1e-6);
}

static void test_accuracy(void)
{
    const float o[12] = {1, 3, 2, /**/ 5, 5, 0, /**/ 0, NAN, 1, /**/ -1, -2, -3};
    const int32_t t[4] = {1, 1, 1, 0};  // right, tie (first max 0: wrong), NaN wins (right), right
    int32_t correct = -1;
    accuracy_params_t p = {.n = 4, .c = 3};
    accuracy_cpu(&correct, o, t, &p);
    T_CHECK(correct == 3, "accuracy %d", correct);
}

static void test_adam(void)
{
    // p = 1, g = 0.5, lr 0.1, mom 0.9, sqr_mom 0.99, eps 1e-5, wd 0.01, step 1:
    // p = 0.999 (decay); m = 0.05; v = 0.0025; debias 0.1, 0.01;
    // p = 0.999 - 1 * 0.05 / (sqrt(0.25) + 1e-5)
    float w[2] = {1, 1}, m[2] = {0, 0}, v[2] = {0, 0}, g[2] = {0.5f, 0.5f};
    uint8_t wd[2] = {1, 0};
    uint16_t wb[2];
    adam_params_t p = adam_default_params(2);
    p.lr = 0.1;
    adam_step_cpu(w, m, v, wb, g, wd, &p);
    T_NEAR(w[0], 0.999 - 0.05 / (0.5 + 1e-5), 1e-6);
    T_NEAR(w[1], 1.0 - 0.05 / (0.5 + 1e-5), 1e-6);  // no decay where the mask is 0
    T_NEAR(m[0], 0.05, 1e-8);
    T_NEAR(v[0], 0.0025, 1e-9);
    T_CHECK(wb[0] == kdtype_f32_to_bf16(w[0]), "bf16 copy");
    // step 2 with a new momentum (0.85) uses the current mom for m and debias1
    const double m1 = 0.05, v1 = 0.0025, w1 = w[0];
    p.mom = 0.85, p.step = 2;
    g[0] = -1;
    adam_step_cpu(w, m, v, NULL, g, wd, &p);
    const double m2 = 0.85 * m1 + 0.15 * -1.0, v2 = 0.99 * v1 + 0.01;
    const double want = w1 * (1 - 0.1 * 0.01) -
                        0.1 / (1 - 0.85 * 0.85) * m2 / (sqrt(v2 / (1 - 0.99 * 0.99)) + 1e-5);
    T_NEAR(w[0], want, 1e-6);
    // do_wd NULL = decay everything; wd 0 = no decay
    float a = 2, am = 0, av = 0, ag = 0;
    adam_params_t pz = adam_default_params(1);
    pz.lr = 0.5;
    adam_step_cpu(&a, &am, &av, NULL, &ag, NULL, &pz);
    T_NEAR(a, 2 * (1 - 0.5 * 0.01), 1e-7);  // zero grad: only the decay moves it
    pz.wd = 0;
    adam_step_cpu(&a, &am, &av, NULL, &ag, NULL, &pz);
    T_NEAR(a, 2 * (1 - 0.5 * 0.01), 1e-7);
}

static float s_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_cast(void)
{
    // round to nearest, ties to even, on the dropped 16 bits
    const float x[6] = {1.0f, s_bits(0x3f808000u), s_bits(0x3f818000u), s_bits(0x3f808001u),
                        INFINITY, NAN};
    const uint16_t want[5] = {0x3f80, 0x3f80, 0x3f82, 0x3f81, 0x7f80};
    uint16_t y[6];
    cast_params_t p = {.count = 6};
    cast_f32_to_bf16_cpu(y, x, &p);
    for (int i = 0; i < 5; i++) T_CHECK(y[i] == want[i], "bf16[%d] = %04x want %04x", i, y[i], want[i]);
    T_CHECK((y[5] & 0x7f80) == 0x7f80 && (y[5] & 0x7f), "NaN stays NaN: %04x", y[5]);
    float back[6];
    cast_bf16_to_f32_cpu(back, y, &p);
    T_CHECK(back[0] == 1.0f && back[2] == s_bits(0x3f820000u) && isinf(back[4]) && isnan(back[5]),
            "bf16 -> f32");
}

// The same conv/BN/pool results with 1 and 2 threads, bit for bit.
static void test_thread_independence(void)
{
    conv2d_params_t p = {.n = 2, .h = 9, .w = 7, .c_in = 5, .c_out = 6, .kh = 3, .kw = 3,
                         .stride = 2, .pad = 1};
    float *x = kt_f32(conv2d_x_count(&p)), *w = kt_f32(conv2d_w_count(&p));
    float *y1 = kt_f32(conv2d_y_count(&p)), *y2 = kt_f32(conv2d_y_count(&p));
    float *dx1 = kt_f32(conv2d_x_count(&p)), *dx2 = kt_f32(conv2d_x_count(&p));
    float *dw1 = kt_f32(conv2d_w_count(&p)), *dw2 = kt_f32(conv2d_w_count(&p));
    kt_fill(x, conv2d_x_count(&p), -1, 1, 1);
    kt_fill(w, conv2d_w_count(&p), -1, 1, 2);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    conv2d_forward_cpu(y1, x, w, &p);
    conv2d_backward_data_cpu(dx1, y1, w, &p);
    conv2d_backward_weights_cpu(dw1, y1, x, &p);
    omp_set_num_threads(saved > 1 ? saved : 2);
    conv2d_forward_cpu(y2, x, w, &p);
    conv2d_backward_data_cpu(dx2, y2, w, &p);
    conv2d_backward_weights_cpu(dw2, y2, x, &p);
    omp_set_num_threads(saved);
    T_CHECK(memcmp(y1, y2, conv2d_y_count(&p) * 4) == 0, "conv forward differs by threads");
    T_CHECK(memcmp(dx1, dx2, conv2d_x_count(&p) * 4) == 0, "conv dx differs by threads");
    T_CHECK(memcmp(dw1, dw2, conv2d_w_count(&p) * 4) == 0, "conv dw differs by threads");
    free(x), free(w), free(y1), free(y2), free(dx1), free(dx2), free(dw1), free(dw2);
}

int main(void)
{
    test_conv2d();
    test_batchnorm2d();
    test_relu_add();
    test_pools();
    test_linear();
    test_xent();
    test_accuracy();
    test_adam();
    test_cast();
    test_thread_independence();
    return t_done();
}
