/*
 * test_sched.c: schedules, loss smoothing and the epoch table against fastai.
 *
 * Golden (fixtures/trainer/sched.safetensors from gen_sched.py, recorded from
 * real fastai fits): the lr and mom fastai used for every training batch of
 * fit_one_cycle (two settings), fine_tune (both phases), fit_flat_cos and
 * lr_find must equal ours to within 4 ulp (same formulas and number formats:
 * in practice bit-identical on glibc); AvgSmoothLoss over lr_find's raw
 * losses must reproduce fastai's smoothed losses; lr_find's divergence stop
 * must stop after the same batch; the valley suggestion must pick the same
 * lr. fixtures/trainer/table.txt: fastprogress's console table, byte for byte.
 * Unit: spot values of fastai-spec.md §7.2/§7.5 and edge cases.
 */
#include "fixture.h"
#include "fsutil.h"
#include "recorder.h"
#include "schedule.h"
#include "testlib.h"
#include "timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ulp distance between two doubles of the same sign
static double s_ulps(double a, double b)
{
    if (a == b) return 0.0;
    double m = fmax(fabs(a), fabs(b));
    return fabs(a - b) / (nextafter(m, INFINITY) - m);
}

static double *s_f64(fixture_t *f, const char *name, size_t *n)
{
    const safetensors_tensor_t *t = safetensors_find(fixture_file(f), name);
    if (!T_CHECK(t && t->dtype == SAFETENSORS_F64, "fixture tensor %s (F64) missing", name))
        return NULL;
    double *v = nf_xmalloc(t->nbytes ? t->nbytes : 8);
    NF_CHECK(safetensors_copy(t, SAFETENSORS_F64, t->numel, v) == 0, "copy %s", name);
    *n = t->numel;
    return v;
}

static float *s_f32(fixture_t *f, const char *name, size_t *n)
{
    const safetensors_tensor_t *t = safetensors_find(fixture_file(f), name);
    if (!T_CHECK(t && t->dtype == SAFETENSORS_F32, "fixture tensor %s (F32) missing", name))
        return NULL;
    float *v = nf_xmalloc(t->nbytes ? t->nbytes : 4);
    NF_CHECK(safetensors_copy(t, SAFETENSORS_F32, t->numel, v) == 0, "copy %s", name);
    *n = t->numel;
    return v;
}

// Compares a sequence of phases (each a sched_t run to the end) with the
// recorded per-batch lr/mom of a case.
static void s_check_case(fixture_t *f, const char *c, const sched_t *phases, int n_phases)
{
    char name[64];
    size_t n_lr = 0, n_mom = 0;
    snprintf(name, sizeof(name), "%s.lr", c);
    double *lr = s_f64(f, name, &n_lr);
    snprintf(name, sizeof(name), "%s.mom", c);
    double *mom = s_f64(f, name, &n_mom);
    if (!lr || !mom) return;
    size_t total = 0;
    for (int p = 0; p < n_phases; p++) total += (size_t)sched_total_steps(&phases[p]);
    T_CHECK(n_lr == total && n_mom == total, "%s: %zu recorded batches, we plan %zu", c, n_lr,
            total);
    double worst_lr = 0, worst_mom = 0;
    size_t k = 0, at = 0;
    for (int p = 0; p < n_phases; p++)
        for (int s = 0; s < sched_total_steps(&phases[p]) && k < n_lr; s++, k++) {
            double ul = s_ulps(sched_lr_at(&phases[p], s), lr[k]);
            double um = s_ulps(sched_mom_at(&phases[p], s), mom[k]);
            if (ul > worst_lr) at = k;
            worst_lr = fmax(worst_lr, ul);
            worst_mom = fmax(worst_mom, um);
        }
    printf("%-12s %4zu batches: max %g ulp lr (batch %zu), %g ulp mom\n", c, k, worst_lr, at,
           worst_mom);
    T_CHECK(worst_lr <= 4 && worst_mom <= 4, "%s differs from fastai: %g ulp lr, %g ulp mom", c,
            worst_lr, worst_mom);
    free(lr);
    free(mom);
}

static void s_check_lr_find(fixture_t *f, const char *c, double end_lr)
{
    char name[64];
    size_t n_lr, n_raw, n_smooth, n_v;
    snprintf(name, sizeof(name), "%s.lr", c);
    double *lr = s_f64(f, name, &n_lr);
    snprintf(name, sizeof(name), "%s.raw_loss", c);
    float *raw = s_f32(f, name, &n_raw);
    snprintf(name, sizeof(name), "%s.smooth_loss", c);
    float *smooth = s_f32(f, name, &n_smooth);
    snprintf(name, sizeof(name), "%s.valley", c);
    double *valley = s_f64(f, name, &n_v);
    if (!lr || !raw || !smooth || !valley) return;
    T_CHECK(n_lr == n_raw && n_raw == n_smooth, "%s: record lengths differ", c);

    // lr ramp, the smoother and the stop rule, batch by batch
    sched_t s = sched_lr_find(1e-7, end_lr, 100, 0.9);
    recorder_smooth_t sm = recorder_smooth_make(0.98);
    float best = INFINITY;
    double worst_lr = 0;
    int smooth_bad = 0, stopped_at = -1;
    double *our_lr = nf_xmalloc(n_lr * sizeof(double));
    float *our_smooth = nf_xmalloc(n_lr * sizeof(float));
    for (int i = 0; i < (int)n_lr; i++) {
        our_lr[i] = sched_lr_at(&s, i);
        worst_lr = fmax(worst_lr, s_ulps(our_lr[i], lr[i]));
        our_smooth[i] = recorder_smooth_add(&sm, raw[i]);
        if (our_smooth[i] != smooth[i] && smooth_bad++ < 3)
            printf("  batch %d: smoothed %.9g, fastai %.9g\n", i, (double)our_smooth[i],
                   (double)smooth[i]);
        if (sched_lr_find_stop(our_smooth[i], &best, i + 1, 100, true)) {
            stopped_at = i + 1;
            break;
        }
    }
    printf("%-12s %4zu batches: max %g ulp lr, %d smoothed losses differ, stop after %d\n", c,
           n_lr, worst_lr, smooth_bad, stopped_at);
    T_CHECK(worst_lr <= 4, "%s lr ramp differs from fastai (%g ulp)", c, worst_lr);
    T_CHECK(smooth_bad == 0, "%s: %d smoothed losses differ from AvgSmoothLoss", c, smooth_bad);
    T_CHECK(stopped_at == (int)n_lr, "%s: we stop after %d batches, fastai after %zu", c,
            stopped_at, n_lr);
    double sugg = 0;
    T_CHECK(sched_lr_find_valley(lr, smooth, (int)n_lr, 100, &sugg) == 0, "%s valley", c);
    T_CHECK(sugg == valley[0], "%s valley %.9g, fastai %.9g", c, sugg, valley[0]);
    free(our_lr);
    free(our_smooth);
    free(lr);
    free(raw);
    free(smooth);
    free(valley);
}

static void test_golden(void)
{
    fixture_t *f = fixture_open("trainer/sched.safetensors");
    if (!f) return;
    sched_t one = sched_one_cycle(5, 167, 3e-3);
    s_check_case(f, "one_cycle", &one, 1);
    sched_t one_b = sched_one_cycle(4, 83, 3e-3);
    s_check_case(f, "one_cycle_b", &one_b, 1);
    sched_t ft[2];
    T_CHECK(sched_fine_tune(5, 167, 1e-3, 1, ft) == 2, "fine_tune has two phases");
    s_check_case(f, "fine_tune", ft, 2);
    sched_t flat = sched_flat_cos(3, 10, 8e-3, 0.9);
    s_check_case(f, "flat_cos", &flat, 1);
    s_check_lr_find(f, "lrfind", 10.0);
    s_check_lr_find(f, "lrfind_div", 1e4);
    fixture_close(&f);
}

static void test_spot_values(void)
{
    // fastai-spec.md §7.2: fit_one_cycle(5, 3e-3), N = 835
    sched_t s = sched_one_cycle(5, 167, 3e-3);
    T_NEAR(sched_lr_at(&s, 0), 1.2e-4, 1e-12);
    T_NEAR(sched_mom_at(&s, 0), 0.95, 1e-12);
    T_NEAR(sched_lr_at(&s, 209), 3.0e-3, 1e-7);
    T_NEAR(sched_mom_at(&s, 209), 0.85, 1e-4);
    T_NEAR(sched_lr_at(&s, 417), 2.25e-3, 5e-6);  // the spec's figure is rounded
    T_NEAR(sched_lr_at(&s, 600), 9.27e-4, 1e-6);
    T_NEAR(sched_lr_at(&s, 834), 4.9e-8, 1e-9);
    T_CHECK(sched_lr_at(&s, 834) > 3e-3 / 1e5, "final lr slightly above lr_max/div_final");
    // §7.5: fine_tune(5, 1e-3): phase 1 starts at 4e-5, phase 2 at 1e-4, peaks 5e-4 at 251
    sched_t ft[2];
    sched_fine_tune(5, 167, 1e-3, 1, ft);
    T_NEAR(sched_lr_at(&ft[0], 0), 4e-5, 1e-12);
    T_NEAR(sched_lr_at(&ft[1], 0), 1e-4, 1e-12);
    T_NEAR(sched_lr_at(&ft[1], 251), 5e-4, 1e-8);
    T_CHECK(ft[0].reset_opt && ft[1].reset_opt, "both fine_tune phases clear Adam's state");
    T_CHECK(sched_fine_tune(5, 167, 1e-3, 0, ft) == 1, "freeze_epochs 0: one phase");
    // positions: pos(e, 0) = e/n_epoch exactly
    T_CHECK(sched_pos(&s, 3, 0) == 0.6, "pos at an epoch start");
    // constant schedule
    sched_t c = {.kind = SCHED_CONSTANT, .n_epoch = 1, .n_iter = 4, .lr_max = 0.1, .mom = 0.9};
    T_CHECK(sched_lr_at(&c, 3) == 0.1 && sched_mom_at(&c, 3) == 0.9, "constant");
    // lr_find minimum of 6 iterations, valley with too few records
    T_CHECK(sched_lr_find(1e-7, 10, 3, 0.9).n_iter == 6, "num_it raised to 6");
    double lrs[5] = {1, 2, 3, 4, 5}, out = 0;
    float losses[5] = {5, 4, 3, 2, 1};
    T_CHECK(sched_lr_find_valley(lrs, losses, 5, 100, &out) == -1, "too few records");
    float nan_losses[12] = {9, 8, 7, 6, NAN, 4, 3, 2, 1, 0, 0, 0};
    double lrs12[12];
    for (int i = 0; i < 12; i++) lrs12[i] = i;
    T_CHECK(sched_lr_find_valley(lrs12, nan_losses, 12, 10, &out) == 0 && out < 4,
            "records from the first NaN on are dropped (%g)", out);
}

static void test_smooth(void)
{
    recorder_smooth_t s = recorder_smooth_make(0.98);
    T_CHECK(isnan(recorder_smooth_value(&s)), "NaN before the first batch");
    // debiased: a constant loss gives itself back (up to float32 rounding of 1 - beta)
    T_NEAR(recorder_smooth_add(&s, 2.0f), 2.0, 4e-6);
    T_NEAR(recorder_smooth_add(&s, 2.0f), 2.0, 4e-6);
    recorder_smooth_reset(&s);
    T_CHECK(s.count == 0, "reset");
    T_NEAR(recorder_smooth_add(&s, 5.0f), 5.0, 1e-5);
}

static void test_table(void)
{
    const char *src = getenv("NF_SOURCE_DIR");
    NF_CHECK(src, "NF_SOURCE_DIR not set (run through ctest)");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fixtures/trainer/table.txt", src);
    size_t len;
    char *want = nf_read_file(path, 1 << 16, &len);
    if (!T_CHECK(want, "cannot read %s (re-run tests/reference/gen_sched.py)", path)) return;

    static const char *names[5] = {"epoch", "train_loss", "valid_loss", "accuracy", "time"};
    recorder_table_t t;
    T_CHECK(recorder_table_init(&t, names, 5) == 0, "table init");
    const double rows[3][5] = {{0, 1.583403, 2.064317, 0.401792, 63.7},
                               {4, 0.585707, 0.541810, 0.825243, 63.2},
                               {10, 12345.6789, NAN, 1.0, 3725.9}};
    char got[2048], line[256];
    int k = recorder_table_header(&t, line, sizeof(line));
    k = snprintf(got, sizeof(got), "%s\n", line);
    for (int r = 0; r < 3; r++) {
        char c0[16], c1[48], c2[48], c3[48], c4[16];
        snprintf(c0, sizeof(c0), "%d", (int)rows[r][0]);
        const char *cells[5] = {c0, recorder_format_float(rows[r][1], c1),
                                recorder_format_float(rows[r][2], c2),
                                recorder_format_float(rows[r][3], c3),
                                nf_format_time(rows[r][4], c4)};
        recorder_table_row(&t, cells, line, sizeof(line));
        k += snprintf(got + k, sizeof(got) - (size_t)k, "%s\n", line);
    }
    T_CHECK(strcmp(got, want) == 0, "table differs from fastprogress's:\n%s---\n%s", got, want);
    free(want);
    const char *too_many[RECORDER_MAX_COLS + 1] = {0};
    T_CHECK(recorder_table_init(&t, too_many, RECORDER_MAX_COLS + 1) == -1, "too many columns");
}

int main(void)
{
    test_golden();
    test_spot_values();
    test_smooth();
    test_table();
    return t_done();
}
