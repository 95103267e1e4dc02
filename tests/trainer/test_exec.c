/*
 * test_exec.c: an executor against the ref executor (the kernels' plain-loop
 * ops) on small xresnet18 training steps. `test_exec` checks onednn (ctest
 * test_exec), `test_exec cuda` the CUDA executor (ctest test_exec_cuda,
 * label gpu; skipped with the reason when the build has no CUDA or there is
 * no usable GPU).
 *
 * Same weights (the golden pattern, so no BN weight is zero and every
 * gradient is non-trivial), same batch, head dropout 0.25 with the same
 * mask seed; asserts, per tensor, for: train
 * logits, the loss, every parameter gradient, the BN running statistics
 * after the step, eval logits, and the weights after one fastai Adam step.
 * Then a second batch shape (re-plan, as progressive resizing does) and back.
 *
 * onednn runs twice: with the direct convolution algorithm, and with
 * Winograd F(4x4, 3x3) for the 3x3 stride-1 convolutions (its default);
 * cuda twice: fp32 storage, and bf16 storage with fp32 master weights.
 *
 * Tolerance: max |got - ref| <= TOL * max |ref| per tensor. Both are fp32
 * with different summation orders (oneDNN blocks and vectorises its
 * reductions, differently per ISA; the ref sums in order or in double).
 * Forward values (logits, loss, running statistics): 1e-4 direct (observed
 * ~1e-6), 1e-3 Winograd (its transformed domain rounds on its own; observed
 * ~1e-5), 3e-2 bf16 (8 mantissa bits). Gradients: every tensor within
 * S_GRAD_MAX (3e-2), because BatchNorm over a tiny batch amplifies rounding
 * in a channel of small variance into every tensor upstream of it (seen up to
 * 1.2e-2 for one batch on AVX2 and with Winograd); and the median over the
 * tensors within 5e-4 direct / 5e-3 Winograd / 1e-1 bf16 (observed ~1e-5 and
 * ~1e-4), so a systematic error anywhere shows. A layer bug gives O(1).
 * Updated weights: see s_compare (Adam amplifies differences of tiny gradients).
 */
#include "exec.h"
#include "testlib.h"
#include "xent.h"
#include "xresnet.h"

#include "rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double fwd;          // logits, loss, running statistics, eval logits
    double grad;         // the MEDIAN over gradient tensors of max|diff| / max|ref|
    double update_mean;  // mean |difference| of the updated weights, in units of lr
} s_tol_t;
static const s_tol_t S_TOL_DIRECT = {1e-4, 5e-4, 2e-2}, S_TOL_WINOGRAD = {1e-3, 5e-3, 2e-2},
                     S_TOL_BF16 = {3e-2, 1e-1, 1e-1};

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}
// A small lr: Adam moves elements whose gradient is near eps by up to lr
// either way on rounding-level differences, and the eval forward after the
// step must still compare tightly.
#define S_LR 1e-5
// Every gradient tensor: a wrong layer gives O(1); rounding, amplified by a
// BatchNorm channel of tiny batch variance (4 images, small maps), reaches
// ~1e-2 in the tensors upstream of it for some batches and ISAs.
#define S_GRAD_MAX 3e-2

typedef struct {
    const exec_backend_t *be;
    exec_t *e;
    float *logits, *eval_logits, *grads, *params, *rm, *rv, *m, *v;
    float loss;
} s_run_t;

static double s_rel_err(const float *got, const float *want, size_t n)
{
    double maxd = 0, maxw = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= maxd)) maxd = d;  // NaN-propagating
        if (fabs(want[i]) > maxw) maxw = fabs(want[i]);
    }
    return maxw > 0 ? maxd / maxw : maxd;
}

static bool s_close(const char *what, const float *got, const float *want, size_t n, double tol,
                    double *worst)
{
    double r = s_rel_err(got, want, n);
    if (worst && r > *worst) *worst = r;
    return T_CHECK(r <= tol, "%s: max |got - ref| / max |ref| = %.3g > %.3g", what, r, tol);
}

static void s_step(s_run_t *r, const xresnet_t *net, const float *x, const int32_t *y, int n,
                   int h, int w)
{
    T_CHECK(r->be->plan(r->e, n, h, w) == 0, "%s plan", r->be->name);
    exec_forward_t fa = {.x = x, .train = true, .dropout_seed = 3, .dropout_index = 11};
    r->be->forward(r->e, &fa, r->logits);
    xent_params_t xp = {.n = n, .c = net->cfg.n_out, .smoothing = 0.0f};
    float *dl = nf_xmalloc((size_t)n * net->cfg.n_out * sizeof(float));
    xent_forward_cpu(&r->loss, NULL, r->logits, y, NULL, NULL, &xp);
    xent_backward_cpu(dl, r->logits, y, NULL, NULL, &xp);
    r->be->backward(r->e, dl);
    r->be->grads_read(r->e, r->grads);
    adam_params_t hp = adam_default_params(net->n_param_floats);
    hp.lr = S_LR;
    hp.mom = 0.95;
    hp.step = 1;
    r->be->adam_step(r->e, &hp);
    exec_state_t st = {r->params, r->rm, r->rv, r->m, r->v};
    r->be->state_read(r->e, &st);
    exec_forward_t ea = {.x = x, .train = false};
    r->be->forward(r->e, &ea, r->eval_logits);
    free(dl);
}

static void s_compare(const xresnet_t *net, s_run_t *a, s_run_t *b, int n, const char *label,
                      s_tol_t tol)
{
    size_t no = (size_t)n * net->cfg.n_out;
    double worst_g = 0, worst_p = 0;
    printf("%s: loss %s %.7f ref %.7f\n", label, a->be->name, (double)a->loss, (double)b->loss);
    s_close("train logits", a->logits, b->logits, no, tol.fwd, NULL);
    T_NEAR(a->loss, b->loss, tol.fwd * fabs((double)b->loss));
    int bad = 0;
    double *rel = nf_xmalloc((size_t)net->n_params * sizeof(double));
    for (int t = 0; t < net->n_params; t++) {
        const xresnet_param_t *p = &net->params[t];
        char what[96];
        snprintf(what, sizeof(what), "grad %s", p->name);
        rel[t] = s_rel_err(a->grads + p->offset, b->grads + p->offset, p->numel);
        if (!s_close(what, a->grads + p->offset, b->grads + p->offset, p->numel, S_GRAD_MAX,
                     &worst_g))
            bad++;
        // Adam's first steps are lr * g / (|g| + eps): elements whose gradient is
        // near eps can move by up to lr either way on tiny gradient
        // differences, so the updated weights are checked as: each within 2 lr
        // (Adam's largest step, both signs) and the mean difference under
        // tol.update_mean lr (2%; 10% bf16: a wrong update is off by ~lr)
        double maxd = 0, sumd = 0;
        for (size_t k = 0; k < p->numel; k++) {
            double d = fabs((double)a->params[p->offset + k] - b->params[p->offset + k]);
            if (!(d <= maxd)) maxd = d;
            sumd += d;
        }
        double meand = sumd / (double)p->numel;
        if (meand > worst_p) worst_p = meand;
        T_CHECK(maxd <= 2 * S_LR && meand <= tol.update_mean * S_LR,
                "updated %s: max diff %.3g, mean diff %.3g (lr %g)", p->name, maxd, meand, S_LR);
        snprintf(what, sizeof(what), "adam m %s", p->name);
        s_close(what, a->m + p->offset, b->m + p->offset, p->numel, S_GRAD_MAX, NULL);
    }
    qsort(rel, (size_t)net->n_params, sizeof(double), s_cmp_double);
    double median = rel[net->n_params / 2];
    T_CHECK(median <= tol.grad, "%s: median gradient error %.3g > %.3g", label, median, tol.grad);
    free(rel);
    double worst_bn = 0;
    for (int k = 0; k < net->n_bn; k++) {
        const xresnet_bn_t *bn = &net->bns[k];
        char what[96];
        snprintf(what, sizeof(what), "running mean %s", bn->prefix);
        s_close(what, a->rm + bn->offset, b->rm + bn->offset, (size_t)bn->c, tol.fwd, &worst_bn);
        snprintf(what, sizeof(what), "running var %s", bn->prefix);
        s_close(what, a->rv + bn->offset, b->rv + bn->offset, (size_t)bn->c, tol.fwd, &worst_bn);
    }
    s_close("eval logits", a->eval_logits, b->eval_logits, no, tol.fwd, NULL);
    printf("%s: relative error: gradients worst %.3g (%d tensors over), median %.3g; updated "
           "weights: worst mean |diff| %.3g; "
           "running stats %.3g\n",
           label, worst_g, bad, median, worst_p, worst_bn);
}

static void s_batch(float *x, int32_t *y, int n, int h, int w, uint32_t seed)
{
    nf_rng_t r = nf_rng_make(7, NF_RNG_STREAM_TEST, seed, 0);
    for (size_t i = 0; i < (size_t)n * h * w * 3; i++) x[i] = 2.0f * nf_rng_uniform(&r) - 1.0f;
    for (int i = 0; i < n; i++) y[i] = (int32_t)nf_rng_below(&r, 10);
}

// mode: onednn 0 direct / 1 Winograd; cuda 0 fp32 / 1 bf16.
static void s_run_all(exec_kind_t kind, int mode)
{
    // head dropout on: both executors must draw the same Philox mask
    xresnet_config_t cfg = {.arch = "xresnet18", .n_out = 10, .c_in = 3, .dropout = 0.25f};
    xresnet_t *net = xresnet_new(&cfg);
    NF_CHECK(net, "net");
    size_t np = net->n_param_floats, nb = net->n_bn_floats;
    float *p0 = nf_xmalloc(np * sizeof(float)), *rm0 = nf_xmalloc(nb * sizeof(float)),
          *rv0 = nf_xmalloc(nb * sizeof(float));
    xresnet_init_pattern(net, p0, rm0, rv0);

    s_run_t runs[2] = {{.be = exec_backend(kind)}, {.be = exec_backend(EXEC_REF)}};
    for (int k = 0; k < 2; k++) {
        s_run_t *r = &runs[k];
        bool tested = k == 0;
        exec_config_t ec = {.net = net, .threads = 0, .winograd = tested && mode == 1,
                            .bf16 = tested && mode == 1};
        r->e = r->be->create(&ec);
        if (!r->e && kind == EXEC_CUDA) t_skip("no usable CUDA device for the cuda executor");
        NF_CHECK(r->e, "create %s", r->be->name);
        exec_state_t st = {p0, rm0, rv0, NULL, NULL};
        r->be->state_write(r->e, &st);
        r->logits = nf_xmalloc(64 * 10 * sizeof(float));
        r->eval_logits = nf_xmalloc(64 * 10 * sizeof(float));
        r->grads = nf_xmalloc(np * sizeof(float));
        r->params = nf_xmalloc(np * sizeof(float));
        r->m = nf_xmalloc(np * sizeof(float));
        r->v = nf_xmalloc(np * sizeof(float));
        r->rm = nf_xmalloc(nb * sizeof(float));
        r->rv = nf_xmalloc(nb * sizeof(float));
    }

    static const struct {
        int n, h, w;
    } shapes[] = {{4, 40, 40}, {3, 32, 48}, {4, 40, 40}};
    for (size_t s = 0; s < NF_ARRAY_LEN(shapes); s++) {
        int n = shapes[s].n, h = shapes[s].h, w = shapes[s].w;
        float *x = nf_xmalloc((size_t)n * h * w * 3 * sizeof(float));
        int32_t y[64];
        s_batch(x, y, n, h, w, (uint32_t)s);
        for (int k = 0; k < 2; k++) s_step(&runs[k], net, x, y, n, h, w);
        char label[64];
        const char *mode_name = kind == EXEC_CUDA ? (mode ? "cuda bf16" : "cuda fp32")
                                                  : (mode ? "onednn winograd" : "onednn direct");
        snprintf(label, sizeof(label), "%s step %zu (%d x %dx%d)", mode_name, s, n, h, w);
        s_tol_t tol = mode == 0 ? S_TOL_DIRECT : kind == EXEC_CUDA ? S_TOL_BF16 : S_TOL_WINOGRAD;
        s_compare(net, &runs[0], &runs[1], n, label, tol);
        // continue both from the same (ref) state so errors do not compound
        exec_state_t st = {runs[1].params, runs[1].rm, runs[1].rv, runs[1].m, runs[1].v};
        runs[0].be->state_write(runs[0].e, &st);
        free(x);
    }
    for (int k = 0; k < 2; k++) {
        s_run_t *r = &runs[k];
        r->be->destroy(&r->e);
        T_CHECK(r->e == NULL, "destroy nulls");
        free(r->logits);
        free(r->eval_logits);
        free(r->grads);
        free(r->params);
        free(r->m);
        free(r->v);
        free(r->rm);
        free(r->rv);
    }
    free(p0);
    free(rm0);
    free(rv0);
    xresnet_destroy(&net);
}

int main(int argc, char **argv)
{
    exec_kind_t kind = EXEC_ONEDNN;
    if (argc > 1 && exec_kind_parse(argv[1], &kind) != 0) {
        fprintf(stderr, "usage: test_exec [onednn|cuda]\n");
        return 2;
    }
    if (!exec_backend(kind)) t_skip("this build has no %s executor (built without nvcc)", argv[1]);
    s_run_all(kind, 0);
    s_run_all(kind, 1);
    return t_done();
}
