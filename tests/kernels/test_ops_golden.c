/*
 * test_ops_golden.c: every CPU op against PyTorch / fastai fixtures in
 * tests/fixtures/ops/ (written by tests/reference/gen_ops.py; label golden).
 *
 * The fixtures hold the exact (float64) PyTorch result of fp32 inputs,
 * rounded once to fp32, so each tolerance below only has to cover our own
 * fp32 arithmetic: a few ulps times the length of the longest sum. The
 * tables are the single source of names and tolerances: fixture_expect()
 * reads each expected tensor by the table's name, and fixture_close() fails
 * if the fixture holds an "out." tensor the test never compared.
 */
#include "accuracy.h"
#include "adam.h"
#include "adaptive_avgpool.h"
#include "add.h"
#include "avgpool2d.h"
#include "batchnorm2d.h"
#include "conv2d.h"
#include "fixture.h"
#include "ktest.h"
#include "linear.h"
#include "maxpool2d.h"
#include "relu.h"
#include "testlib.h"
#include "xent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_OF(t) (sizeof(t) / sizeof((t)[0]))

// conv: sums of up to 72 products of O(1) values; outputs O(1)
static const fixture_tol_t s_conv_tol[] = {
    {"out.y", 1e-5, 1e-5}, {"out.dx", 1e-5, 1e-5}, {"out.dw", 2e-5, 1e-5}};
// batchnorm: double accumulation; y is O(3)
static const fixture_tol_t s_bn_tol[] = {
    {"out.y", 2e-6, 1e-6},          {"out.save_mean", 1e-6, 1e-6},
    {"out.save_invstd", 1e-6, 1e-6}, {"out.running_mean", 1e-7, 1e-6},
    {"out.running_var", 1e-7, 1e-6}, {"out.dx", 2e-6, 1e-5},
    {"out.dgamma", 1e-5, 1e-6},      {"out.dbeta", 1e-5, 1e-6},
    {"out.y_eval", 2e-6, 1e-6}};
// elementwise: exact up to one rounding of a + b
static const fixture_tol_t s_elt_tol[] = {
    {"out.relu_y", 0, 0},           {"out.relu_dx", 0, 0},         {"out.relu_add_y", 0, 0},
    {"out.relu_add_da", 0, 0},      {"out.relu_add_db", 0, 0},     {"out.add_y", 0, 0}};
// pools: max is exact; averages of at most 4 values, one division
static const fixture_tol_t s_pool_tol[] = {{"out.y", 1e-7, 1e-6}, {"out.dx", 1e-7, 1e-6}};
static const fixture_tol_t s_lin_tol[] = {
    {"out.y", 1e-5, 1e-5}, {"out.dx", 1e-6, 1e-5}, {"out.dw", 1e-6, 1e-5}, {"out.db", 1e-6, 1e-5}};
// losses: double inside, one rounding out
static const fixture_tol_t s_xent_tol[] = {
    {"out.loss_ce", 1e-6, 1e-6},          {"out.per_sample_ce", 1e-6, 1e-6},
    {"out.dlogits_ce", 1e-8, 1e-6},       {"out.loss_ls", 1e-6, 1e-6},
    {"out.per_sample_ls", 1e-6, 1e-6},    {"out.dlogits_ls", 1e-8, 1e-6},
    {"out.loss_mix_ce", 1e-6, 1e-6},      {"out.per_sample_mix_ce", 1e-6, 1e-6},
    {"out.dlogits_mix_ce", 1e-8, 1e-6},   {"out.loss_mix_ls", 1e-6, 1e-6},
    {"out.per_sample_mix_ls", 1e-6, 1e-6}, {"out.dlogits_mix_ls", 1e-8, 1e-6},
    {"out.probs", 1e-7, 1e-6}};
static const fixture_tol_t s_acc_tol[] = {{"out.correct", 0, 0}};
// Adam: fastai runs it in fp32 too; the scalar factors may round differently by an ulp
static const fixture_tol_t s_adam_tol[] = {
    {"out.param_1", 1e-7, 1e-6}, {"out.param_2", 1e-7, 1e-6}, {"out.param_3", 1e-7, 1e-6},
    {"out.grad_avg", 1e-8, 1e-6}, {"out.sqr_avg", 1e-9, 1e-6}};

static void golden_conv2d(const char *file)
{
    fixture_t *f = fixture_open(file);
    if (!f) return;
    conv2d_params_t p = {.n = (int)fixture_meta_int(f, "n"), .h = (int)fixture_meta_int(f, "h"),
                         .w = (int)fixture_meta_int(f, "w"), .c_in = (int)fixture_meta_int(f, "c_in"),
                         .c_out = (int)fixture_meta_int(f, "c_out"), .kh = (int)fixture_meta_int(f, "k"),
                         .kw = (int)fixture_meta_int(f, "k"), .stride = (int)fixture_meta_int(f, "stride"),
                         .pad = (int)fixture_meta_int(f, "pad")};
    const size_t nx = conv2d_x_count(&p), nw = conv2d_w_count(&p), ny = conv2d_y_count(&p);
    const float *x = fixture_f32(f, "in.x", nx), *w = fixture_f32(f, "in.w", nw);
    const float *dy = fixture_f32(f, "in.dy", ny);
    if (x && w && dy) {
        float *y = kt_f32(ny), *dx = kt_f32(nx), *dw = kt_f32(nw);
        conv2d_forward_cpu(y, x, w, &p);
        conv2d_backward_data_cpu(dx, dy, w, &p);
        conv2d_backward_weights_cpu(dw, dy, x, &p);
        fixture_expect(f, s_conv_tol, N_OF(s_conv_tol), "out.y", y, ny);
        fixture_expect(f, s_conv_tol, N_OF(s_conv_tol), "out.dx", dx, nx);
        fixture_expect(f, s_conv_tol, N_OF(s_conv_tol), "out.dw", dw, nw);
        free(y), free(dx), free(dw);
    }
    fixture_close(&f);
}

static void golden_batchnorm2d(void)
{
    fixture_t *f = fixture_open("ops/batchnorm2d.safetensors");
    if (!f) return;
    batchnorm2d_params_t p = batchnorm2d_default_params(
        (int)fixture_meta_int(f, "n"), (int)fixture_meta_int(f, "h"),
        (int)fixture_meta_int(f, "w"), (int)fixture_meta_int(f, "c"));
    const size_t n = (size_t)p.n * p.h * p.w * p.c, C = (size_t)p.c;
    const float *x = fixture_f32(f, "in.x", n), *gamma = fixture_f32(f, "in.gamma", C);
    const float *beta = fixture_f32(f, "in.beta", C), *dy = fixture_f32(f, "in.dy", n);
    const float *rm0 = fixture_f32(f, "in.running_mean", C);
    const float *rv0 = fixture_f32(f, "in.running_var", C);
    if (x && gamma && beta && dy && rm0 && rv0) {
        float *y = kt_f32(n), *dx = kt_f32(n), *sm = kt_f32(C), *si = kt_f32(C);
        float *rm = kt_f32(C), *rv = kt_f32(C), *dg = kt_f32(C), *db = kt_f32(C), *ye = kt_f32(n);
        memcpy(rm, rm0, C * 4), memcpy(rv, rv0, C * 4);
        batchnorm2d_forward_train_cpu(y, sm, si, rm, rv, x, gamma, beta, &p);
        batchnorm2d_backward_cpu(dx, dg, db, dy, x, gamma, sm, si, &p);
        batchnorm2d_forward_eval_cpu(ye, x, gamma, beta, rm0, rv0, &p);
        const fixture_tol_t *t = s_bn_tol;
        const size_t nt = N_OF(s_bn_tol);
        fixture_expect(f, t, nt, "out.y", y, n);
        fixture_expect(f, t, nt, "out.save_mean", sm, C);
        fixture_expect(f, t, nt, "out.save_invstd", si, C);
        fixture_expect(f, t, nt, "out.running_mean", rm, C);
        fixture_expect(f, t, nt, "out.running_var", rv, C);
        fixture_expect(f, t, nt, "out.dx", dx, n);
        fixture_expect(f, t, nt, "out.dgamma", dg, C);
        fixture_expect(f, t, nt, "out.dbeta", db, C);
        fixture_expect(f, t, nt, "out.y_eval", ye, n);
        free(y), free(dx), free(sm), free(si), free(rm), free(rv), free(dg), free(db), free(ye);
    }
    fixture_close(&f);
}

static void golden_eltwise(void)
{
    fixture_t *f = fixture_open("ops/eltwise.safetensors");
    if (!f) return;
    const size_t n = (size_t)fixture_meta_int(f, "count");
    const float *x = fixture_f32(f, "in.x", n), *a = fixture_f32(f, "in.a", n);
    const float *b = fixture_f32(f, "in.b", n), *dy = fixture_f32(f, "in.dy", n);
    if (x && a && b && dy) {
        float *y = kt_f32(n), *d = kt_f32(n);
        relu_params_t rp = {.count = n};
        add_params_t ap = {.count = n};
        const fixture_tol_t *t = s_elt_tol;
        const size_t nt = N_OF(s_elt_tol);
        relu_forward_cpu(y, x, &rp);
        relu_backward_cpu(d, dy, y, &rp);
        fixture_expect(f, t, nt, "out.relu_y", y, n);
        fixture_expect(f, t, nt, "out.relu_dx", d, n);
        relu_add_forward_cpu(y, a, b, &rp);
        relu_backward_cpu(d, dy, y, &rp);
        fixture_expect(f, t, nt, "out.relu_add_y", y, n);
        fixture_expect(f, t, nt, "out.relu_add_da", d, n);
        fixture_expect(f, t, nt, "out.relu_add_db", d, n);
        add_forward_cpu(y, a, b, &ap);
        fixture_expect(f, t, nt, "out.add_y", y, n);
        free(y), free(d);
    }
    fixture_close(&f);
}

static void golden_pool(const char *file, bool is_max)
{
    fixture_t *f = fixture_open(file);
    if (!f) return;
    pool2d_params_t p = {.n = (int)fixture_meta_int(f, "n"), .h = (int)fixture_meta_int(f, "h"),
                         .w = (int)fixture_meta_int(f, "w"), .c = (int)fixture_meta_int(f, "c"),
                         .kh = (int)fixture_meta_int(f, "k"), .kw = (int)fixture_meta_int(f, "k"),
                         .stride = (int)fixture_meta_int(f, "stride"),
                         .pad = (int)fixture_meta_int(f, "pad"),
                         .ceil_mode = fixture_meta_int(f, "ceil_mode") != 0,
                         .count_include_pad = true};
    const size_t nx = pool2d_x_count(&p), ny = pool2d_y_count(&p);
    const float *x = fixture_f32(f, "in.x", nx), *dy = fixture_f32(f, "in.dy", ny);
    if (x && dy) {
        float *y = kt_f32(ny), *dx = kt_f32(nx);
        int32_t *am = kt_i32(ny);
        if (is_max) {
            maxpool2d_forward_cpu(y, am, x, &p);
            maxpool2d_backward_cpu(dx, dy, am, &p);
        } else {
            avgpool2d_forward_cpu(y, x, &p);
            avgpool2d_backward_cpu(dx, dy, &p);
        }
        fixture_expect(f, s_pool_tol, N_OF(s_pool_tol), "out.y", y, ny);
        fixture_expect(f, s_pool_tol, N_OF(s_pool_tol), "out.dx", dx, nx);
        free(y), free(dx), free(am);
    }
    fixture_close(&f);
}

static void golden_adaptive(void)
{
    fixture_t *f = fixture_open("ops/adaptive_avgpool.safetensors");
    if (!f) return;
    adaptive_avgpool_params_t p = {.n = (int)fixture_meta_int(f, "n"),
                                   .h = (int)fixture_meta_int(f, "h"),
                                   .w = (int)fixture_meta_int(f, "w"),
                                   .c = (int)fixture_meta_int(f, "c")};
    const size_t nx = (size_t)p.n * p.h * p.w * p.c, ny = (size_t)p.n * p.c;
    const float *x = fixture_f32(f, "in.x", nx), *dy = fixture_f32(f, "in.dy", ny);
    if (x && dy) {
        float *y = kt_f32(ny), *dx = kt_f32(nx);
        adaptive_avgpool_forward_cpu(y, x, &p);
        adaptive_avgpool_backward_cpu(dx, dy, &p);
        fixture_expect(f, s_pool_tol, N_OF(s_pool_tol), "out.y", y, ny);
        fixture_expect(f, s_pool_tol, N_OF(s_pool_tol), "out.dx", dx, nx);
        free(y), free(dx);
    }
    fixture_close(&f);
}

static void golden_linear(void)
{
    fixture_t *f = fixture_open("ops/linear.safetensors");
    if (!f) return;
    linear_params_t p = {.n = (int)fixture_meta_int(f, "n"), .in = (int)fixture_meta_int(f, "in"),
                         .out = (int)fixture_meta_int(f, "out")};
    const size_t nx = (size_t)p.n * p.in, nw = (size_t)p.out * p.in, ny = (size_t)p.n * p.out;
    const float *x = fixture_f32(f, "in.x", nx), *w = fixture_f32(f, "in.w", nw);
    const float *b = fixture_f32(f, "in.b", (size_t)p.out), *dy = fixture_f32(f, "in.dy", ny);
    if (x && w && b && dy) {
        float *y = kt_f32(ny), *dx = kt_f32(nx), *dw = kt_f32(nw), *db = kt_f32((size_t)p.out);
        linear_forward_cpu(y, x, w, b, &p);
        linear_backward_cpu(dx, dw, db, dy, x, w, &p);
        fixture_expect(f, s_lin_tol, N_OF(s_lin_tol), "out.y", y, ny);
        fixture_expect(f, s_lin_tol, N_OF(s_lin_tol), "out.dx", dx, nx);
        fixture_expect(f, s_lin_tol, N_OF(s_lin_tol), "out.dw", dw, nw);
        fixture_expect(f, s_lin_tol, N_OF(s_lin_tol), "out.db", db, (size_t)p.out);
        free(y), free(dx), free(dw), free(db);
    }
    fixture_close(&f);
}

static void golden_xent(void)
{
    fixture_t *f = fixture_open("ops/xent.safetensors");
    if (!f) return;
    const int n = (int)fixture_meta_int(f, "n"), c = (int)fixture_meta_int(f, "c");
    const float eps = (float)fixture_meta_double(f, "smoothing");
    const size_t nl = (size_t)n * c;
    const float *logits = fixture_f32(f, "in.logits", nl), *lam = fixture_f32(f, "in.lam", (size_t)n);
    const int32_t *t = fixture_i32(f, "in.target", (size_t)n);
    const int32_t *t2 = fixture_i32(f, "in.target_mix", (size_t)n);
    if (logits && lam && t && t2) {
        float loss, *per = kt_f32((size_t)n), *d = kt_f32(nl);
        const char *tags[4] = {"ce", "ls", "mix_ce", "mix_ls"};
        for (int k = 0; k < 4; k++) {
            const bool mix = k >= 2;
            xent_params_t p = {.n = n, .c = c, .smoothing = (k % 2) ? eps : 0.0f};
            xent_forward_cpu(&loss, per, logits, t, mix ? t2 : NULL, mix ? lam : NULL, &p);
            xent_backward_cpu(d, logits, t, mix ? t2 : NULL, mix ? lam : NULL, &p);
            char name[64];
            snprintf(name, sizeof name, "out.loss_%s", tags[k]);
            fixture_expect(f, s_xent_tol, N_OF(s_xent_tol), name, &loss, 1);
            snprintf(name, sizeof name, "out.per_sample_%s", tags[k]);
            fixture_expect(f, s_xent_tol, N_OF(s_xent_tol), name, per, (size_t)n);
            snprintf(name, sizeof name, "out.dlogits_%s", tags[k]);
            fixture_expect(f, s_xent_tol, N_OF(s_xent_tol), name, d, nl);
        }
        xent_params_t p = {.n = n, .c = c};
        xent_softmax_cpu(d, logits, &p);
        fixture_expect(f, s_xent_tol, N_OF(s_xent_tol), "out.probs", d, nl);
        free(per), free(d);
    }
    fixture_close(&f);
}

static void golden_accuracy(void)
{
    fixture_t *f = fixture_open("ops/accuracy.safetensors");
    if (!f) return;
    accuracy_params_t p = {.n = (int)fixture_meta_int(f, "n"), .c = (int)fixture_meta_int(f, "c")};
    const float *logits = fixture_f32(f, "in.logits", (size_t)p.n * p.c);
    const int32_t *t = fixture_i32(f, "in.target", (size_t)p.n);
    if (logits && t) {
        int32_t correct = -1;
        accuracy_cpu(&correct, logits, t, &p);
        const float got = (float)correct;
        fixture_expect(f, s_acc_tol, N_OF(s_acc_tol), "out.correct", &got, 1);
    }
    fixture_close(&f);
}

static void golden_adam(void)
{
    fixture_t *f = fixture_open("ops/adam.safetensors");
    if (!f) return;
    const size_t n = (size_t)fixture_meta_int(f, "count");
    const int steps = (int)fixture_meta_int(f, "steps");
    const float *p0 = fixture_f32(f, "in.param", n);
    const int32_t *wd32 = fixture_i32(f, "in.do_wd", n);
    if (p0 && wd32 && steps == 3) {
        float *w = kt_f32(n), *m = kt_f32(n), *v = kt_f32(n);
        uint8_t *do_wd = calloc(n, 1);
        memcpy(w, p0, n * 4);
        for (size_t i = 0; i < n; i++) do_wd[i] = (uint8_t)(wd32[i] != 0);
        adam_params_t p = adam_default_params(n);
        p.sqr_mom = fixture_meta_double(f, "sqr_mom");
        p.eps = fixture_meta_double(f, "eps");
        p.wd = fixture_meta_double(f, "wd");
        for (int s = 1; s <= steps; s++) {
            char key[32];
            snprintf(key, sizeof key, "in.grad_%d", s);
            const float *g = fixture_f32(f, key, n);
            if (!g) break;
            snprintf(key, sizeof key, "lr_%d", s);
            p.lr = fixture_meta_double(f, key);
            snprintf(key, sizeof key, "mom_%d", s);
            p.mom = fixture_meta_double(f, key);
            p.step = s;
            adam_step_cpu(w, m, v, NULL, g, do_wd, &p);
            snprintf(key, sizeof key, "out.param_%d", s);
            fixture_expect(f, s_adam_tol, N_OF(s_adam_tol), key, w, n);
        }
        fixture_expect(f, s_adam_tol, N_OF(s_adam_tol), "out.grad_avg", m, n);
        fixture_expect(f, s_adam_tol, N_OF(s_adam_tol), "out.sqr_avg", v, n);
        free(w), free(m), free(v), free(do_wd);
    }
    fixture_close(&f);
}

int main(void)
{
    golden_conv2d("ops/conv2d_stem.safetensors");
    golden_conv2d("ops/conv2d_3x3_s1.safetensors");
    golden_conv2d("ops/conv2d_3x3_s2.safetensors");
    golden_conv2d("ops/conv2d_1x1.safetensors");
    golden_conv2d("ops/conv2d_1x1_s2.safetensors");
    golden_batchnorm2d();
    golden_eltwise();
    golden_pool("ops/maxpool2d.safetensors", true);
    golden_pool("ops/avgpool2d_ceil.safetensors", false);
    golden_pool("ops/avgpool2d_even.safetensors", false);
    golden_adaptive();
    golden_linear();
    golden_xent();
    golden_accuracy();
    golden_adam();
    return t_done();
}
