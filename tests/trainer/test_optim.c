/*
 * test_optim.c: the learner's optimizer semantics (fastai-spec.md §6.2, §7).
 *
 * Against an independent double-precision rendering of fastai's Adam in this
 * file: after real training steps of a small xresnet18 (ref executor), every
 * weight must equal
 *   w *= 1 - lr*wd (conv and linear weights only: wd_bn_bias=False)
 *   m = mom*m + (1-mom)*g;  v = 0.99*v + 0.01*g^2;  step += 1
 *   w -= lr/(1 - mom^step) * m / (sqrt(v/(1 - 0.99^step)) + 1e-5)
 * with the hand-set or scheduled lr/mom of that step; Adam state clears on
 * learner_reset_opt and at every fine_tune phase; a schedule drives lr/mom
 * batch by batch and ends after its last batch; bad batches (labels out of
 * range, Mixup weights outside [0, 1], empty, images too small) are refused;
 * evaluation gives probabilities, and a partial last batch (run padded to
 * the planned size) gives the same logits as in a full batch.
 */
#include "learner.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t np;
    float *w0, *w1, *g, *m, *v;
    double *em, *ev;  // expected moments (double)
} s_state_t;

static float *s_batch(int n, int size, uint32_t seed)
{
    size_t count = (size_t)n * size * size * 3;
    float *x = nf_xmalloc(count * sizeof(float));
    for (size_t e = 0; e < count; e++)
        x[e] = 2.0f * xresnet_pattern_u(seed, (uint32_t)e) - 1.0f;
    return x;
}

// One step and its check against the reference Adam. Returns the worst
// relative error.
static double s_step_and_check(learner_t *l, s_state_t *s, const learner_batch_t *b,
                               int64_t step)
{
    const xresnet_t *net = learner_net(l);
    const learner_config_t *cfg = learner_config(l);
    exec_state_t rd0 = {.params = s->w0};
    learner_state_read(l, &rd0);
    float loss;
    T_CHECK(learner_train_step(l, b, &loss) == 0, "train step");
    learner_progress_t p = learner_progress(l);
    T_CHECK(p.adam_step == step, "adam step %lld, want %lld", (long long)p.adam_step,
            (long long)step);
    learner_grads_read(l, s->g);
    exec_state_t rd1 = {.params = s->w1, .adam_m = s->m, .adam_v = s->v};
    learner_state_read(l, &rd1);
    double lr = p.lr, mom = p.mom, worst = 0;
    double db1 = 1.0 - pow(mom, (double)step), db2 = 1.0 - pow(cfg->sqr_mom, (double)step);
    for (int t = 0; t < net->n_params; t++) {
        const xresnet_param_t *pp = &net->params[t];
        for (size_t k = 0; k < pp->numel; k++) {
            size_t i = pp->offset + k;
            double w = s->w0[i], g = s->g[i];
            if (pp->do_wd) w *= 1.0 - lr * cfg->wd;
            s->em[i] = mom * s->em[i] + (1.0 - mom) * g;
            s->ev[i] = cfg->sqr_mom * s->ev[i] + (1.0 - cfg->sqr_mom) * g * g;
            w -= lr / db1 * s->em[i] / (sqrt(s->ev[i] / db2) + cfg->eps);
            // relative to the operands' scale (w can cancel to ~0)
            double err = fabs(w - s->w1[i]) / (fabs((double)s->w0[i]) + lr);
            if (err > worst) {
                worst = err;
                if (getenv("DEBUG_OPTIM"))
                    printf("%s[%zu]: w0 %.9g g %.9g m %.9g v %.9g -> got %.9g want %.9g\n",
                           pp->name, k, s->w0[i], g, s->em[i], s->ev[i], s->w1[i], w);
            }
        }
    }
    return worst;
}

int main(void)
{
    learner_config_t cfg = learner_default_config("xresnet18", 10);
    cfg.backend = EXEC_REF;
    learner_t *l = learner_new(&cfg);
    NF_CHECK(l, "learner");
    const xresnet_t *net = learner_net(l);
    s_state_t s = {.np = net->n_param_floats};
    s.w0 = nf_xmalloc(s.np * sizeof(float));
    s.w1 = nf_xmalloc(s.np * sizeof(float));
    s.g = nf_xmalloc(s.np * sizeof(float));
    s.m = nf_xmalloc(s.np * sizeof(float));
    s.v = nf_xmalloc(s.np * sizeof(float));
    s.em = nf_xcalloc(s.np, sizeof(double));
    s.ev = nf_xcalloc(s.np, sizeof(double));
    float *rm = nf_xmalloc(net->n_bn_floats * sizeof(float));
    float *rv = nf_xmalloc(net->n_bn_floats * sizeof(float));
    xresnet_init_pattern(net, s.w0, rm, rv);
    exec_state_t st = {.params = s.w0, .run_mean = rm, .run_var = rv};
    learner_state_write(l, &st);

    const int n = 3, size = 32;
    float *x = s_batch(n, size, 7);
    int32_t y[3] = {1, 4, 9};
    learner_batch_t b = {.x = x, .y = y, .n = n, .h = size, .w = size};
    // fp32 arithmetic against a double reference: 1e-5 relative (~100 ulp)
    const double tol = 1e-5;

    // hand-set hyper-parameters, steps 1 and 2 (bias corrections)
    learner_set_hypers(l, 1e-2, 0.9);
    T_CHECK(s_step_and_check(l, &s, &b, 1) <= tol, "step 1 differs from fastai's Adam");
    learner_set_hypers(l, 5e-3, 0.85);
    double e2 = s_step_and_check(l, &s, &b, 2);
    T_CHECK(e2 <= tol, "step 2 differs from fastai's Adam (%g)", e2);

    // weight decay reaches conv and linear weights only: with g = 0 the only
    // change would be the decay, so check the mask directly
    for (int t = 0; t < net->n_params; t++) {
        const xresnet_param_t *p = &net->params[t];
        bool want = p->kind == XRESNET_PARAM_CONV_W || p->kind == XRESNET_PARAM_LINEAR_W;
        T_CHECK(p->do_wd == want, "%s do_wd %d", p->name, p->do_wd);
    }

    // clear_state: the next step is a first step again
    learner_reset_opt(l);
    memset(s.em, 0, s.np * sizeof(double));
    memset(s.ev, 0, s.np * sizeof(double));
    learner_set_hypers(l, 2e-3, 0.95);
    double e3 = s_step_and_check(l, &s, &b, 1);
    T_CHECK(e3 <= tol, "after reset differs (%g)", e3);

    // a schedule drives lr/mom batch by batch, then ends
    sched_t one = sched_one_cycle(1, 3, 1e-2);
    learner_fit_begin(l, &one);
    for (int i = 0; i < 3; i++) {
        double e = s_step_and_check(l, &s, &b, 2 + i);
        learner_progress_t p = learner_progress(l);
        T_CHECK(p.lr == sched_lr_at(&one, i) && p.mom == sched_mom_at(&one, i),
                "batch %d used lr %g mom %g, schedule says %g %g", i, p.lr, p.mom,
                sched_lr_at(&one, i), sched_mom_at(&one, i));
        T_CHECK(e <= tol, "scheduled step %d differs (%g)", i, e);
    }
    learner_progress_t p = learner_progress(l);
    T_CHECK(!p.fit_active && p.fit_pos == 3, "the fit ends after its last batch");
    T_CHECK(p.smooth.count == 3, "smoothed loss counts this fit's batches (%d)", p.smooth.count);

    // fine_tune: each phase clears Adam's state
    sched_t ft[2];
    sched_fine_tune(1, 2, 2e-3, 1, ft);
    for (int ph = 0; ph < 2; ph++) {
        learner_fit_begin(l, &ft[ph]);
        memset(s.em, 0, s.np * sizeof(double));
        memset(s.ev, 0, s.np * sizeof(double));
        T_CHECK(learner_progress(l).adam_step == 0, "fine_tune phase %d clears Adam", ph);
        double e = s_step_and_check(l, &s, &b, 1);
        T_CHECK(e <= tol, "fine_tune phase %d step differs (%g)", ph, e);
    }
    T_CHECK(learner_progress(l).step == 8, "8 training steps counted (%lld)",
            (long long)learner_progress(l).step);

    // bad batches are refused, nothing changes
    int32_t bad_y[3] = {1, 10, 2};
    learner_batch_t bad = b;
    bad.y = bad_y;
    float loss;
    int64_t before = learner_progress(l).step;
    T_CHECK(learner_train_step(l, &bad, &loss) == -1, "label 10 with n_out 10 is refused");
    int32_t ym[3] = {0, 0, 0};
    float lam[3] = {0.5f, 1.5f, 0.7f};
    learner_batch_t badmix = b;
    badmix.y_mix = ym;
    badmix.lam = lam;
    T_CHECK(learner_train_step(l, &badmix, &loss) == -1, "Mixup weight 1.5 is refused");
    badmix.lam = NULL;
    T_CHECK(learner_train_step(l, &badmix, &loss) == -1, "partner labels without weights");
    learner_batch_t empty = b;
    empty.n = 0;
    T_CHECK(learner_train_step(l, &empty, &loss) == -1, "an empty batch is refused");
    learner_batch_t tiny = b;
    tiny.h = tiny.w = 8;
    T_CHECK(learner_train_step(l, &tiny, &loss) == -1, "8 px images are too small");
    T_CHECK(learner_progress(l).step == before, "refused batches change nothing");

    // evaluation: plain loss, accuracy, probabilities that sum to 1
    float probs[3 * 10];
    learner_eval_t ev = {.probs = probs};
    T_CHECK(learner_eval_batch(l, &b, &ev) == 0, "eval");
    T_CHECK(ev.correct >= 0 && ev.correct <= 3 && isfinite(ev.loss), "eval results");
    for (int i = 0; i < 3; i++) {
        double sum = 0;
        for (int k = 0; k < 10; k++) sum += probs[i * 10 + k];
        T_NEAR(sum, 1.0, 1e-5);
    }
    // a smaller batch of the planned size runs padded (no re-plan) and gives
    // the same rows
    float full[3 * 10], part[2 * 10];
    memcpy(full, learner_logits(l), sizeof(full));
    learner_batch_t two = b;
    two.n = 2;
    learner_eval_t ev2 = {0};
    T_CHECK(learner_eval_batch(l, &two, &ev2) == 0, "eval of a partial batch");
    memcpy(part, learner_logits(l), sizeof(part));
    T_CHECK(t_close_f32("partial-batch eval logits", part, full, 20, 1e-6, 1e-6), "padded eval");

    free(x);
    free(s.w0);
    free(s.w1);
    free(s.g);
    free(s.m);
    free(s.v);
    free(s.em);
    free(s.ev);
    free(rm);
    free(rv);
    learner_destroy(&l);
    T_CHECK(l == NULL, "destroy nulls");
    return t_done();
}
