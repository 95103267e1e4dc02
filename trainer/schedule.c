/*
 * schedule.c: fastai's schedules (see schedule.h for the exact semantics kept).
 * Pure functions of the schedule and the batch position; no state.
 */
#include "schedule.h"

#include "check.h"

#include <math.h>
#include <stdlib.h>

sched_t sched_one_cycle(int n_epoch, int n_iter, double lr_max)
{
    return (sched_t){.kind = SCHED_ONE_CYCLE,
                     .n_epoch = n_epoch,
                     .n_iter = n_iter,
                     .lr_max = lr_max,
                     .div = 25.0,
                     .div_final = 1e5,
                     .pct_start = 0.25,
                     .moms = {0.95, 0.85, 0.95},
                     .mom = 0.95};
}

sched_t sched_flat_cos(int n_epoch, int n_iter, double lr, double mom)
{
    return (sched_t){.kind = SCHED_FLAT_COS,
                     .n_epoch = n_epoch,
                     .n_iter = n_iter,
                     .lr_max = lr,
                     .div_final = 1e5,
                     .pct_start = 0.75,
                     .mom = mom};
}

int sched_fine_tune(int epochs, int n_iter, double base_lr, int freeze_epochs, sched_t phase[2])
{
    int n = 0;
    if (freeze_epochs > 0) {
        phase[n] = sched_one_cycle(freeze_epochs, n_iter, base_lr);
        phase[n].pct_start = 0.99;
        phase[n].reset_opt = true;
        n++;
    }
    // base_lr /= 2; slice(base_lr/lr_mult, base_lr) collapses to base_lr for
    // one parameter group
    phase[n] = sched_one_cycle(epochs, n_iter, base_lr / 2.0);
    phase[n].pct_start = 0.3;
    phase[n].div = 5.0;
    phase[n].reset_opt = true;
    return n + 1;
}

sched_t sched_lr_find(double start_lr, double end_lr, int num_it, double mom)
{
    if (num_it < 6) num_it = 6;  // fastai's LRFinder minimum
    return (sched_t){.kind = SCHED_EXP,
                     .n_epoch = 1,
                     .n_iter = num_it,
                     .lr_max = start_lr,
                     .lr_end = end_lr,
                     .mom = mom};
}

int sched_total_steps(const sched_t *s) { return s->n_epoch * s->n_iter; }

double sched_pos(const sched_t *s, int epoch, int iter)
{
    if (s->kind == SCHED_EXP) return (double)(epoch * s->n_iter + iter) / (double)s->n_iter;
    // TrainEvalCallback: before_train sets epoch/n_epoch; after_batch adds
    // 1/(n_iter*n_epoch). Accumulated the same way to get the same bits.
    double pos = (double)epoch / (double)s->n_epoch;
    double step = 1.0 / (double)(s->n_iter * s->n_epoch);
    for (int i = 0; i < iter; i++) pos += step;
    return pos;
}

double sched_cos(double start, double end, double pos)
{
    return start + (1.0 + cos(M_PI * (1.0 - pos))) * (end - start) / 2.0;
}

double sched_combined_cos(double pct, double start, double middle, double end, double pos)
{
    // combine_scheds: pcts = cumsum(tensor([0, pct, 1 - pct])) in float32
    float p1 = (float)pct;
    float p2 = (float)((double)p1 + (double)(float)(1.0 - pct));
    float posf = (float)pos;
    int idx = posf >= p1 ? 1 : 0;  // min(last index with pos >= pcts, 1)
    float lo = idx ? p1 : 0.0f, hi = idx ? p2 : p1;
    float t = (posf - lo) / (hi - lo);
    return idx ? sched_cos(middle, end, (double)t) : sched_cos(start, middle, (double)t);
}

double sched_lr(const sched_t *s, int epoch, int iter)
{
    double pos = sched_pos(s, epoch, iter);
    switch (s->kind) {
    case SCHED_ONE_CYCLE:
        return sched_combined_cos(s->pct_start, s->lr_max / s->div, s->lr_max,
                                  s->lr_max / s->div_final, pos);
    case SCHED_FLAT_COS:
        return sched_combined_cos(s->pct_start, s->lr_max, s->lr_max, s->lr_max / s->div_final,
                                  pos);
    case SCHED_CONSTANT:
        return s->lr_max;
    case SCHED_EXP:
        return s->lr_max * pow(s->lr_end / s->lr_max, pos);
    }
    NF_CHECK(0, "bad schedule kind %d", (int)s->kind);
}

double sched_mom(const sched_t *s, int epoch, int iter)
{
    if (s->kind != SCHED_ONE_CYCLE) return s->mom;
    return sched_combined_cos(s->pct_start, s->moms[0], s->moms[1], s->moms[2],
                              sched_pos(s, epoch, iter));
}

double sched_lr_at(const sched_t *s, int step)
{
    return sched_lr(s, step / s->n_iter, step % s->n_iter);
}

double sched_mom_at(const sched_t *s, int step)
{
    return sched_mom(s, step / s->n_iter, step % s->n_iter);
}

// ---------------------------------------------------------------------------
// lr_find

bool sched_lr_find_stop(float smooth_loss, float *best, int batches_done, int num_it,
                        bool stop_div)
{
    if (smooth_loss < *best) *best = smooth_loss;
    if (smooth_loss > 4.0f * *best && stop_div) return true;
    return batches_done >= num_it;
}

int sched_lr_find_valley(const double *lrs, const float *losses, int n, int num_it,
                         double *lr_out)
{
    // lrs[num_it//10:-5], losses likewise, then cut at the first NaN
    int from = num_it / 10, to = n - 5;
    if (to > n) to = n;
    for (int i = from; i < to; i++)
        if (isnan(losses[i])) {
            to = i;
            break;
        }
    int m = to - from;
    if (m < 1) return -1;
    const float *l = losses + from;
    // longest decreasing subsequence ending at each point (fastai's valley)
    int *lds = malloc((size_t)m * sizeof(int));
    NF_CHECK(lds, "out of memory");
    for (int i = 0; i < m; i++) lds[i] = 1;
    int max_start = 0, max_end = 0;
    for (int i = 1; i < m; i++) {
        for (int j = 0; j < i; j++) {
            if (l[i] < l[j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
            if (lds[max_end] < lds[i]) {
                max_end = i;
                max_start = max_end - lds[max_end];
            }
        }
    }
    free(lds);
    double sections = (double)(max_end - max_start) / 3.0;
    int idx = max_start + (int)sections + (int)(sections / 2.0);
    if (idx < 0) idx += m;  // max_start can be -1; Python then indexes from the end
    *lr_out = (double)(float)lrs[from + idx];  // fastai holds the lrs in a float32 tensor
    return 0;
}
