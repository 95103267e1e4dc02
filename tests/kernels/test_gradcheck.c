/*
 * test_gradcheck.c: a finite-difference gradient check for every backward
 * op of kernels/ (label unit).
 *
 * For an op f and a fixed random projection r, the scalar
 *     L(in) = sum_i r_i * f(in)_i          (accumulated in double)
 * has the gradient dL/d(in) = backward(dy = r). Each check perturbs sampled
 * input elements by +-h, takes the central difference (L(+h) - L(-h)) / 2h
 * and compares it with the analytic gradient:
 *     err = |analytic - numeric| / (|analytic| + |numeric| + 0.01 * scale)
 * where scale is the largest |analytic| of that tensor (so near-zero entries
 * are judged against the tensor's magnitude). Inputs of ReLU and max pool
 * are kept away from the kinks (|x| >= 0.05, distinct values 0.05 apart)
 * so the difference quotient never crosses one. The largest error per
 * tensor is printed; a check fails above 1e-2 (fp32 forward passes).
 */
#include "adaptive_avgpool.h"
#include "add.h"
#include "avgpool2d.h"
#include "batchnorm2d.h"
#include "conv2d.h"
#include "ktest.h"
#include "linear.h"
#include "maxpool2d.h"
#include "relu.h"
#include "rng.h"
#include "testlib.h"
#include "xent.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define GC_TOL 1e-2
#define GC_SAMPLES 48

typedef double (*s_loss_fn)(void *ud);

static double s_dot(const float *a, const float *r, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * r[i];
    return s;
}

// Central differences on up to GC_SAMPLES elements of in[0..n) (all when n is small).
static void s_gradcheck(const char *name, float *in, size_t n, const float *analytic,
                        s_loss_fn loss, void *ud, float h)
{
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(analytic[i]));
    const size_t step = n <= GC_SAMPLES ? 1 : n / GC_SAMPLES;
    double worst = 0;
    size_t worst_i = 0, checked = 0;
    double worst_a = 0, worst_fd = 0;
    for (size_t i = (n <= GC_SAMPLES ? 0 : step / 2); i < n; i += step) {
        const float v = in[i];
        in[i] = v + h;
        const double hp = (double)in[i] - v;  // the step actually taken in fp32
        const double lp = loss(ud);
        in[i] = v - h;
        const double hm = (double)v - in[i];
        const double lm = loss(ud);
        in[i] = v;
        const double fd = (lp - lm) / (hp + hm);
        const double err = fabs(analytic[i] - fd) / (fabs(analytic[i]) + fabs(fd) + 0.01 * scale + 1e-30);
        if (err > worst) worst = err, worst_i = i, worst_a = analytic[i], worst_fd = fd;
        checked++;
    }
    T_CHECK(worst <= GC_TOL, "%s: gradient mismatch at [%zu]: analytic %.7g numeric %.7g", name,
            worst_i, worst_a, worst_fd);
    fprintf(stderr, "%s gradcheck %s: %zu of %zu elements, max rel err %.2e (tol %.0e)\n",
            worst <= GC_TOL ? "OK" : "NOT OK", name, checked, n, worst, GC_TOL);
}

// ---------------------------------------------------------------------------
// conv2d

typedef struct {
    conv2d_params_t p;
    float *x, *w, *y, *r;
} s_conv_t;

static double s_conv_loss(void *ud)
{
    s_conv_t *c = ud;
    conv2d_forward_cpu(c->y, c->x, c->w, &c->p);
    return s_dot(c->y, c->r, conv2d_y_count(&c->p));
}

static void check_conv2d(const char *name, conv2d_params_t p, uint32_t seed)
{
    s_conv_t c = {.p = p};
    const size_t nx = conv2d_x_count(&p), nw = conv2d_w_count(&p), ny = conv2d_y_count(&p);
    c.x = kt_f32(nx), c.w = kt_f32(nw), c.y = kt_f32(ny), c.r = kt_f32(ny);
    float *dx = kt_f32(nx), *dw = kt_f32(nw);
    kt_fill(c.x, nx, -1, 1, seed);
    kt_fill(c.w, nw, -1, 1, seed + 1);
    kt_fill(c.r, ny, -1, 1, seed + 2);
    conv2d_backward_data_cpu(dx, c.r, c.w, &p);
    conv2d_backward_weights_cpu(dw, c.r, c.x, &p);
    char label[96];
    snprintf(label, sizeof label, "conv2d %s dx", name);
    s_gradcheck(label, c.x, nx, dx, s_conv_loss, &c, 0.1f);
    snprintf(label, sizeof label, "conv2d %s dw", name);
    s_gradcheck(label, c.w, nw, dw, s_conv_loss, &c, 0.1f);
    free(c.x), free(c.w), free(c.y), free(c.r), free(dx), free(dw);
}

// ---------------------------------------------------------------------------
// batchnorm2d (train mode: the batch statistics depend on x)

typedef struct {
    batchnorm2d_params_t p;
    float *x, *y, *r, *gamma, *beta, *sm, *si, *rm, *rv;
} s_bn_t;

static double s_bn_loss(void *ud)
{
    s_bn_t *b = ud;
    batchnorm2d_forward_train_cpu(b->y, b->sm, b->si, b->rm, b->rv, b->x, b->gamma, b->beta,
                                  &b->p);
    return s_dot(b->y, b->r, (size_t)b->p.n * b->p.h * b->p.w * b->p.c);
}

static void check_batchnorm2d(void)
{
    s_bn_t b = {.p = batchnorm2d_default_params(2, 3, 5, 4)};
    const size_t n = 2 * 3 * 5 * 4, C = 4;
    b.x = kt_f32(n), b.y = kt_f32(n), b.r = kt_f32(n);
    b.gamma = kt_f32(C), b.beta = kt_f32(C), b.sm = kt_f32(C), b.si = kt_f32(C);
    b.rm = kt_f32(C), b.rv = kt_f32(C);
    float *dx = kt_f32(n), *dg = kt_f32(C), *db = kt_f32(C);
    kt_fill(b.x, n, -2, 3, 10);
    kt_fill(b.r, n, -1, 1, 11);
    kt_fill(b.gamma, C, 0.5f, 1.5f, 12);
    kt_fill(b.beta, C, -0.5f, 0.5f, 13);
    s_bn_loss(&b);  // saved statistics of the unperturbed input
    batchnorm2d_backward_cpu(dx, dg, db, b.r, b.x, b.gamma, b.sm, b.si, &b.p);
    s_gradcheck("batchnorm2d dx", b.x, n, dx, s_bn_loss, &b, 1e-2f);
    s_gradcheck("batchnorm2d dgamma", b.gamma, C, dg, s_bn_loss, &b, 1e-2f);
    s_gradcheck("batchnorm2d dbeta", b.beta, C, db, s_bn_loss, &b, 1e-2f);
    free(b.x), free(b.y), free(b.r), free(b.gamma), free(b.beta), free(b.sm), free(b.si);
    free(b.rm), free(b.rv), free(dx), free(dg), free(db);
}

// ---------------------------------------------------------------------------
// relu, relu(a + b), add

typedef struct {
    size_t n;
    float *a, *b, *y, *r;
    int which;  // 0 relu(a), 1 relu(a + b), 2 a + b
} s_elt_t;

static double s_elt_loss(void *ud)
{
    s_elt_t *e = ud;
    relu_params_t rp = {.count = e->n};
    add_params_t ap = {.count = e->n};
    if (e->which == 0) relu_forward_cpu(e->y, e->a, &rp);
    if (e->which == 1) relu_add_forward_cpu(e->y, e->a, e->b, &rp);
    if (e->which == 2) add_forward_cpu(e->y, e->a, e->b, &ap);
    return s_dot(e->y, e->r, e->n);
}

static void check_eltwise(void)
{
    s_elt_t e = {.n = 64};
    e.a = kt_f32(e.n), e.b = kt_f32(e.n), e.y = kt_f32(e.n), e.r = kt_f32(e.n);
    float *d = kt_f32(e.n);
    kt_fill_away_from_zero(e.a, e.n, 0.05f, 1, 20);
    kt_fill(e.r, e.n, -1, 1, 21);
    relu_params_t rp = {.count = e.n};
    e.which = 0;
    s_elt_loss(&e);
    relu_backward_cpu(d, e.r, e.y, &rp);
    s_gradcheck("relu dx", e.a, e.n, d, s_elt_loss, &e, 1e-3f);
    // relu(a + b) with a + b away from 0: b = s - a for s away from 0
    float *s = kt_f32(e.n);
    kt_fill_away_from_zero(s, e.n, 0.05f, 1, 22);
    kt_fill(e.a, e.n, -1, 1, 23);
    for (size_t i = 0; i < e.n; i++) e.b[i] = s[i] - e.a[i];
    e.which = 1;
    s_elt_loss(&e);
    relu_backward_cpu(d, e.r, e.y, &rp);  // gradient of both a and b
    s_gradcheck("relu_add da", e.a, e.n, d, s_elt_loss, &e, 1e-3f);
    s_gradcheck("relu_add db", e.b, e.n, d, s_elt_loss, &e, 1e-3f);
    e.which = 2;  // add: da = db = dy
    s_gradcheck("add da", e.a, e.n, e.r, s_elt_loss, &e, 1e-2f);
    s_gradcheck("add db", e.b, e.n, e.r, s_elt_loss, &e, 1e-2f);
    free(e.a), free(e.b), free(e.y), free(e.r), free(d), free(s);
}

// ---------------------------------------------------------------------------
// pools

typedef struct {
    pool2d_params_t p;
    adaptive_avgpool_params_t ap;
    float *x, *y, *r;
    int32_t *am;
    int which;  // 0 max, 1 avg, 2 adaptive
} s_pool_t;

static double s_pool_loss(void *ud)
{
    s_pool_t *q = ud;
    if (q->which == 0) maxpool2d_forward_cpu(q->y, q->am, q->x, &q->p);
    if (q->which == 1) avgpool2d_forward_cpu(q->y, q->x, &q->p);
    if (q->which == 2) {
        adaptive_avgpool_forward_cpu(q->y, q->x, &q->ap);
        return s_dot(q->y, q->r, (size_t)q->ap.n * q->ap.c);
    }
    return s_dot(q->y, q->r, pool2d_y_count(&q->p));
}

static void check_pools(void)
{
    s_pool_t q = {0};
    // max pool 3x3 s2 p1 (the stem's) on an odd 7x5 input with overlapping windows;
    // inputs are a shuffle of distinct values 0.05 apart so h = 1e-3 never flips a max
    q.p = (pool2d_params_t){.n = 2, .h = 7, .w = 5, .c = 3, .kh = 3, .kw = 3, .stride = 2, .pad = 1};
    size_t nx = pool2d_x_count(&q.p), ny = pool2d_y_count(&q.p);
    q.x = kt_f32(nx), q.y = kt_f32(ny), q.r = kt_f32(ny), q.am = kt_i32(ny);
    float *dx = kt_f32(nx);
    nf_rng_t rng = nf_rng_make(99, NF_RNG_STREAM_TEST, 0, 30);
    for (size_t i = 0; i < nx; i++) q.x[i] = 0.05f * (float)i - 3.0f;
    for (size_t i = nx - 1; i > 0; i--) {
        const size_t j = nf_rng_below(&rng, (uint32_t)(i + 1));
        const float t = q.x[i];
        q.x[i] = q.x[j], q.x[j] = t;
    }
    kt_fill(q.r, ny, -1, 1, 31);
    q.which = 0;
    s_pool_loss(&q);
    maxpool2d_backward_cpu(dx, q.r, q.am, &q.p);
    s_gradcheck("maxpool2d dx", q.x, nx, dx, s_pool_loss, &q, 1e-3f);
    free(q.x), free(q.y), free(q.r), free(q.am), free(dx);

    // avg pool 2x2 s2 ceil_mode (the ResNet-D shortcut) on 5x7: partial windows
    q.p = (pool2d_params_t){.n = 2, .h = 5, .w = 7, .c = 3, .kh = 2, .kw = 2, .stride = 2,
                            .ceil_mode = true, .count_include_pad = true};
    nx = pool2d_x_count(&q.p), ny = pool2d_y_count(&q.p);
    q.x = kt_f32(nx), q.y = kt_f32(ny), q.r = kt_f32(ny), q.am = NULL;
    dx = kt_f32(nx);
    kt_fill(q.x, nx, -1, 1, 32);
    kt_fill(q.r, ny, -1, 1, 33);
    avgpool2d_backward_cpu(dx, q.r, &q.p);
    q.which = 1;
    s_gradcheck("avgpool2d ceil dx", q.x, nx, dx, s_pool_loss, &q, 0.1f);
    // and with padding, both divisor rules
    pool2d_params_t pp = {.n = 1, .h = 6, .w = 5, .c = 2, .kh = 3, .kw = 3, .stride = 2, .pad = 1,
                          .ceil_mode = true, .count_include_pad = true};
    for (int inc = 0; inc < 2; inc++) {
        pp.count_include_pad = inc;
        free(q.x), free(q.y), free(q.r), free(dx);
        q.p = pp;
        nx = pool2d_x_count(&q.p), ny = pool2d_y_count(&q.p);
        q.x = kt_f32(nx), q.y = kt_f32(ny), q.r = kt_f32(ny), dx = kt_f32(nx);
        kt_fill(q.x, nx, -1, 1, 34);
        kt_fill(q.r, ny, -1, 1, 35);
        avgpool2d_backward_cpu(dx, q.r, &q.p);
        s_gradcheck(inc ? "avgpool2d pad include dx" : "avgpool2d pad exclude dx", q.x, nx, dx,
                    s_pool_loss, &q, 0.1f);
    }
    free(q.x), free(q.y), free(q.r), free(dx);

    // adaptive average pool to 1x1
    q.ap = (adaptive_avgpool_params_t){.n = 2, .h = 3, .w = 5, .c = 4};
    nx = 2 * 3 * 5 * 4, ny = 2 * 4;
    q.x = kt_f32(nx), q.y = kt_f32(ny), q.r = kt_f32(ny), dx = kt_f32(nx);
    kt_fill(q.x, nx, -1, 1, 36);
    kt_fill(q.r, ny, -1, 1, 37);
    adaptive_avgpool_backward_cpu(dx, q.r, &q.ap);
    q.which = 2;
    s_gradcheck("adaptive_avgpool dx", q.x, nx, dx, s_pool_loss, &q, 0.1f);
    free(q.x), free(q.y), free(q.r), free(dx);
}

// ---------------------------------------------------------------------------
// linear

typedef struct {
    linear_params_t p;
    float *x, *w, *b, *y, *r;
} s_lin_t;

static double s_lin_loss(void *ud)
{
    s_lin_t *l = ud;
    linear_forward_cpu(l->y, l->x, l->w, l->b, &l->p);
    return s_dot(l->y, l->r, (size_t)l->p.n * l->p.out);
}

static void check_linear(void)
{
    s_lin_t l = {.p = {.n = 3, .in = 17, .out = 5}};
    const size_t nx = 3 * 17, nw = 5 * 17, ny = 3 * 5;
    l.x = kt_f32(nx), l.w = kt_f32(nw), l.b = kt_f32(5), l.y = kt_f32(ny), l.r = kt_f32(ny);
    float *dx = kt_f32(nx), *dw = kt_f32(nw), *db = kt_f32(5);
    kt_fill(l.x, nx, -1, 1, 40);
    kt_fill(l.w, nw, -1, 1, 41);
    kt_fill(l.b, 5, -1, 1, 42);
    kt_fill(l.r, ny, -1, 1, 43);
    linear_backward_cpu(dx, dw, db, l.r, l.x, l.w, &l.p);
    s_gradcheck("linear dx", l.x, nx, dx, s_lin_loss, &l, 0.1f);
    s_gradcheck("linear dw", l.w, nw, dw, s_lin_loss, &l, 0.1f);
    s_gradcheck("linear db", l.b, 5, db, s_lin_loss, &l, 0.1f);
    free(l.x), free(l.w), free(l.b), free(l.y), free(l.r), free(dx), free(dw), free(db);
}

// ---------------------------------------------------------------------------
// losses: L is the loss itself (dy = 1)

typedef struct {
    xent_params_t p;
    float *logits, *lam;
    int32_t *t, *t2;
} s_xent_t;

static double s_xent_loss(void *ud)
{
    s_xent_t *x = ud;
    float loss;
    xent_forward_cpu(&loss, NULL, x->logits, x->t, x->t2, x->lam, &x->p);
    return loss;
}

static void check_xent(void)
{
    s_xent_t x = {.p = {.n = 6, .c = 10}};
    const size_t n = 60;
    x.logits = kt_f32(n), x.lam = kt_f32(6), x.t = kt_i32(6), x.t2 = kt_i32(6);
    float *d = kt_f32(n);
    int32_t *t2 = x.t2;
    float *lam = x.lam;
    kt_fill(x.logits, n, -3, 3, 50);
    kt_fill_int(x.t, 6, 10, 51);
    kt_fill_int(t2, 6, 10, 52);
    kt_fill(lam, 6, 0.5f, 1, 53);
    const struct {
        const char *name;
        float eps;
        bool mix;
    } cases[] = {{"cross-entropy", 0, false},
                 {"label smoothing 0.1", 0.1f, false},
                 {"Mixup cross-entropy", 0, true},
                 {"Mixup label smoothing", 0.1f, true}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        x.p.smoothing = cases[k].eps;
        x.t2 = cases[k].mix ? t2 : NULL;
        x.lam = cases[k].mix ? lam : NULL;
        xent_backward_cpu(d, x.logits, x.t, x.t2, x.lam, &x.p);
        char label[64];
        snprintf(label, sizeof label, "xent %s dlogits", cases[k].name);
        s_gradcheck(label, x.logits, n, d, s_xent_loss, &x, 5e-2f);
    }
    free(x.logits), free(lam), free(x.t), free(t2), free(d);
}

int main(void)
{
    check_conv2d("3x3 s2 p1", (conv2d_params_t){.n = 2, .h = 7, .w = 5, .c_in = 3, .c_out = 4,
                                                .kh = 3, .kw = 3, .stride = 2, .pad = 1}, 1);
    check_conv2d("3x3 s1 p1", (conv2d_params_t){.n = 1, .h = 6, .w = 6, .c_in = 4, .c_out = 3,
                                                .kh = 3, .kw = 3, .stride = 1, .pad = 1}, 4);
    check_conv2d("1x1 s2", (conv2d_params_t){.n = 2, .h = 5, .w = 5, .c_in = 6, .c_out = 5,
                                             .kh = 1, .kw = 1, .stride = 2, .pad = 0}, 7);
    check_batchnorm2d();
    check_eltwise();
    check_pools();
    check_linear();
    check_xent();
    return t_done();
}
