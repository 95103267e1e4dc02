/*
 * schedule.h: fastai's hyper-parameter schedules (fastai-spec.md §7), value for
 * value: fit_one_cycle, fit_flat_cos, fine_tune's two phases, lr_find's
 * exponential ramp with its divergence rule and "valley" suggestion.
 *
 * Semantics reproduced from fastai 2.7/2.8 (callback/schedule.py,
 * callback/core.py), including its number formats, so the C values equal
 * fastai's to the last bit on the same libm:
 *  - the training position pos is fastai's pct_train: epoch/n_epoch at the
 *    start of each epoch, then += 1/(n_iter*n_epoch) (double) after each
 *    training batch; the scheduler reads it BEFORE each batch;
 *  - combine_scheds keeps its breakpoints in a float32 tensor: pos is
 *    compared and the local position computed in float32, then the cosine
 *    piece start + (1 + cos(pi*(1 - t)))*(end - start)/2 runs in double.
 *
 * Not here: applying the values (the learner sets lr/mom before each step),
 * discriminative learning rates over several parameter groups (the chapter's
 * models have one group, where slice(lo, hi) collapses to hi).
 */
#ifndef NF_SCHED_H
#define NF_SCHED_H

#include <stdbool.h>

typedef enum {
    SCHED_ONE_CYCLE,  // combined_cos lr and mom
    SCHED_FLAT_COS,   // flat lr then cosine; momentum not scheduled
    SCHED_CONSTANT,   // plain fit(): lr and mom as given
    SCHED_EXP         // lr_find: lr = lr_start * (lr_end/lr_start)^(iter/num_it)
} sched_kind_t;

typedef struct {
    sched_kind_t kind;
    int n_epoch;        // epochs of this fit call
    int n_iter;         // training batches per epoch (len(dls.train))
    double lr_max;      // one-cycle peak / flat lr / constant lr / lr_find start
    double lr_end;      // lr_find only: end lr (10)
    double div;         // one-cycle: start lr = lr_max/div (25)
    double div_final;   // one-cycle and flat-cos: final lr = lr_max/div_final (1e5)
    double pct_start;   // one-cycle 0.25, flat-cos 0.75
    double moms[3];     // one-cycle momentum start, middle, end (0.95, 0.85, 0.95)
    double mom;         // flat-cos/constant/exp: the unscheduled momentum
    bool reset_opt;     // clear Adam's state (m, v, step) before this fit (fine_tune)
} sched_t;

// fit_one_cycle(n_epoch, lr_max) with fastai's defaults (div 25, div_final
// 1e5, pct_start 0.25, moms 0.95/0.85/0.95).
sched_t sched_one_cycle(int n_epoch, int n_iter, double lr_max);
// fit_flat_cos(n_epoch, lr) with div_final 1e5 and pct_start 0.75; mom is
// the optimizer's current momentum (fastai leaves it alone).
sched_t sched_flat_cos(int n_epoch, int n_iter, double lr, double mom);
// fine_tune(epochs, base_lr, freeze_epochs, lr_mult=100, pct_start=0.3,
// div=5) on a one-group model: phase[0] = fit_one_cycle(freeze_epochs,
// base_lr, pct_start 0.99), phase[1] = fit_one_cycle(epochs, base_lr/2,
// pct_start 0.3, div 5); both clear the optimizer state first (freeze() and
// unfreeze() each call clear_state). Returns the number of phases (2, or 1
// when freeze_epochs is 0).
int sched_fine_tune(int epochs, int n_iter, double base_lr, int freeze_epochs, sched_t phase[2]);
// lr_find(start_lr 1e-7, end_lr 10, num_it 100): one "epoch" of num_it
// batches (fastai runs num_it//n_train + 1 epochs and stops at num_it).
sched_t sched_lr_find(double start_lr, double end_lr, int num_it, double mom);

// Total training steps of the fit (n_epoch * n_iter).
int sched_total_steps(const sched_t *s);
// fastai's pct_train before training batch `iter` of epoch `epoch`.
double sched_pos(const sched_t *s, int epoch, int iter);
// Learning rate and momentum for the batch at (epoch, iter).
double sched_lr(const sched_t *s, int epoch, int iter);
double sched_mom(const sched_t *s, int epoch, int iter);
// The same from a global step index (0 .. total-1).
double sched_lr_at(const sched_t *s, int step);
double sched_mom_at(const sched_t *s, int step);

// fastai's cosine piece and its float32-breakpoint combination of two pieces.
double sched_cos(double start, double end, double pos);
double sched_combined_cos(double pct, double start, double middle, double end, double pos);

// ---------------------------------------------------------------------------
// lr_find bookkeeping (fastai's LRFinder + Recorder + lr_find()).

// true when lr_find must stop after recording this batch: the smoothed loss
// exceeded 4x the best so far (stop_div), or num_it batches were run.
// *best is the running best smoothed loss (start at +inf).
bool sched_lr_find_stop(float smooth_loss, float *best, int batches_done, int num_it,
                        bool stop_div);
// The "valley" suggestion over the recorded (lr, smoothed loss) pairs of one
// lr_find run, after fastai's trimming: drop the first num_it/10 and the last
// 5 records, cut at the first NaN loss. The lr comes back rounded to float32
// as fastai's (it holds the lrs in a float32 tensor). Returns 0 and it, or
// -1 when too few records remain.
int sched_lr_find_valley(const double *lrs, const float *losses, int n, int num_it,
                         double *lr_out);

#endif
