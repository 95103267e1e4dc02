/*
 * learner.h: the training engine's API, what the trainer and evaluator
 * processes drive (fastai's Learner without the data loaders and sockets).
 *
 * A learner holds an xresnet, an executor (ref / onednn / cuda, exec.h) with
 * the model state, fastai's Adam (one parameter group; wd 0.01 decoupled on
 * conv and linear weights only; sqr_mom 0.99; eps 1e-5), the loss (cross-
 * entropy or label smoothing, with Mixup's per-sample weights and partner
 * labels when the augment stage supplies them), the counters, the current
 * fit's schedule position and fastai's smoothed training loss.
 *
 * A training step: plan for the batch shape (free when unchanged; a new size
 * or batch size re-plans once, so progressive resizing just works), set lr
 * and mom from the active schedule (or keep the ones set by hand), forward,
 * loss, backward, Adam, advance the counters. Everything is deterministic:
 * two learners fed the same batches produce bit-identical weights on the CPU
 * backends, and a learner restored from a checkpoint continues exactly where
 * the saved one was (trainer/ckpt.h).
 *
 * External input (batches from the wire) is validated: a bad shape, a label
 * outside [0, n_out) or a Mixup weight outside [0, 1] is refused with -1 and
 * a one-line log, never an abort.
 *
 * Queued steps: learner_train_submit() starts a step and returns; the
 * learner_train_collect() that follows gives its loss. On the cuda backend
 * the step runs on the device while the host prepares the next batch (at
 * most LEARNER_MAX_INFLIGHT steps are queued); on the CPU backends submit
 * runs the step at once. The loop of a trainer process is
 *     submit(batch k+1); collect() -> loss of batch k; release batch k.
 * Batches may also come as device images (learner_batch_t.dev, cuda only),
 * e.g. from the augment stage's device ring (common/devring.h).
 */
#ifndef NF_LEARNER_H
#define NF_LEARNER_H

#include "exec.h"
#include "recorder.h"
#include "schedule.h"
#include "xresnet.h"

#include <stdbool.h>
#include <stdint.h>

#define LEARNER_MAX_CLASSES 1000
#define LEARNER_MAX_CLASS_NAME 64

typedef struct {
    // model
    const char *arch;   // "xresnet18" | "xresnet34" | "xresnet50"
    int n_out;          // classes
    float dropout;      // head dropout (fastai default 0)
    // execution
    exec_kind_t backend;
    int threads;        // CPU threads (0 = OpenMP default)
    int device;         // CUDA device
    int bs, size;       // first plan (batch size, square image size); 0 = plan on first batch
    bool winograd;      // onednn: Winograd for 3x3 stride-1 convolutions (default on)
    bool bf16;          // cuda: bf16 activations (fp32 master weights, BN and loss)
    bool no_graphs;     // cuda: no CUDA graph capture (every step eager)
    bool no_autotune;   // cuda: cuDNN heuristics instead of timing algorithms per shape
    uint64_t seed;      // weight init and dropout masks
    // loss: label-smoothing eps (0 = CrossEntropyLossFlat, 0.1 = fastai's LS default)
    float ls_eps;
    // fastai Adam
    double lr, mom;     // hand-set values used when no schedule is active (1e-3, 0.9)
    double sqr_mom;     // 0.99
    double eps;         // 1e-5
    double wd;          // 0.01 (decoupled; none on BN and biases)
    // carried into checkpoints (what inference needs)
    int n_classes;                    // 0 or n_out
    const char *const *class_names;   // (n_classes) or NULL
    float norm_mean[3], norm_std[3];  // Normalize statistics of the input
    const char *run_config_json;      // the whole run configuration, or NULL
} learner_config_t;

// fastai's defaults for arch/n_out: onednn with Winograd, CE, Adam(1e-3, 0.9,
// 0.99, 1e-5, wd 0.01), ImageNet normalisation stats, seed 42.
learner_config_t learner_default_config(const char *arch, int n_out);

typedef struct {
    const float *x;        // (N, H, W, C_in) fp32, normalised (NULL with dev.x)
    const int32_t *y;      // (N) labels in [0, n_out)
    const int32_t *y_mix;  // (N) Mixup partner labels, or NULL
    const float *lam;      // (N) Mixup weight of y (of the original image), or NULL
    int n, h, w;
    exec_dev_images_t dev; // cuda: the images on the device instead of x
} learner_batch_t;

// Training steps that may be submitted and not yet collected.
#define LEARNER_MAX_INFLIGHT 2

typedef struct {
    float loss;        // mean loss over the batch (plain loss: no Mixup in evaluation)
    int32_t correct;   // argmax == label count
    float *probs;      // (N, n_out) softmax, filled when not NULL (TTA, prediction)
} learner_eval_t;

// Everything about a learner that is not a tensor; saved in checkpoints.
typedef struct {
    uint64_t seed;          // the run seed (weights were initialised from it; dropout masks)
    int64_t step;           // training steps ever taken
    int64_t bn_batches;     // BN num_batches_tracked (train forwards)
    int64_t adam_step;      // Adam's step count since the last state reset
    double lr, mom;         // values used by the last step (or set by hand)
    bool fit_active;        // a schedule drives lr/mom
    sched_t fit;            // the active schedule
    int fit_index;          // fit calls started (fine_tune counts two)
    int64_t fit_pos;        // training batches done in the active fit
    recorder_smooth_t smooth;  // fastai AvgSmoothLoss of the active fit
} learner_progress_t;

typedef struct learner_t learner_t;

// Builds the net, the executor and fastai-initialised weights
// (xresnet_init_fastai with cfg->seed). NULL (logged) on a bad config or a
// backend that cannot start.
learner_t *learner_new(const learner_config_t *cfg);
void learner_destroy(learner_t **self_p);

// One training step on a batch; *loss_out = the batch loss (Mixup-weighted
// when y_mix/lam are given). Returns 0, or -1 for a bad batch (nothing done).
// Collects every step queued before it.
int learner_train_step(learner_t *l, const learner_batch_t *b, float *loss_out);
// Starts a training step (the schedule, counters and Adam's step count
// advance now). Host inputs may be reused on return; device images once
// b->dev.done has fired. Returns 0, or -1 for a bad batch (nothing done).
// At most LEARNER_MAX_INFLIGHT steps may be waiting to be collected.
int learner_train_submit(learner_t *l, const learner_batch_t *b);
// Waits for the oldest submitted step: its loss (also fed to the smoothed
// loss) and, from now on, its logits in learner_logits(). Returns 1, or 0
// when nothing is pending.
int learner_train_collect(learner_t *l, float *loss_out);
// Steps submitted and not yet collected.
int learner_train_pending(const learner_t *l);
// Collects every pending step (their losses only feed the smoothed loss).
// State transfers, evaluation and checkpoints do this first.
void learner_sync(learner_t *l);
// Evaluation forward (running BN stats, no dropout, plain loss). Returns 0 or -1.
int learner_eval_batch(learner_t *l, const learner_batch_t *b, learner_eval_t *out);

// Sets lr/mom for the next steps (ends an active schedule).
void learner_set_hypers(learner_t *l, double lr, double mom);
// Starts a fit: lr/mom come from s for the next sched_total_steps(s) steps,
// the smoothed loss restarts, and Adam's state is cleared when s->reset_opt.
void learner_fit_begin(learner_t *l, const sched_t *s);
// fastai's clear_state(): zero Adam's moments and step.
void learner_reset_opt(learner_t *l);
// Replaces the run configuration JSON carried into checkpoints (the trainer
// process updates it with the current size and epoch before each save).
void learner_set_run_config(learner_t *l, const char *json);
// Changes the label-smoothing eps of the loss (0 = cross-entropy).
void learner_set_ls_eps(learner_t *l, float ls_eps);
// The (N, n_out) logits of the last train or eval forward (valid until the next).
const float *learner_logits(const learner_t *l);

// Accessors.
const xresnet_t *learner_net(const learner_t *l);
const learner_config_t *learner_config(const learner_t *l);
learner_progress_t learner_progress(const learner_t *l);
void learner_set_progress(learner_t *l, const learner_progress_t *p);
// Model state transfer (host views; NULL members skipped).
void learner_state_read(learner_t *l, const exec_state_t *host);
void learner_state_write(learner_t *l, const exec_state_t *host);
// Gradients of the last step (n_param_floats), for tests.
void learner_grads_read(learner_t *l, float *grads);
// The executor (tests and diagnostics).
exec_t *learner_exec(learner_t *l);
// The backend's counters (graphs, eager runs, planning time; zeros on CPU).
exec_stats_t learner_exec_stats(learner_t *l);

#endif
