/*
 * eval.h: evaluating checkpoints on the augment stage's validation streams:
 * valid loss and accuracy (exact counts over every validation image, no
 * padding), and fastai's test-time augmentation (fastai-spec.md 10): n passes
 * of the validation images through the training transforms (mode tta: random
 * presize crop, flip/rotate/zoom/warp, one random crop per batch, lighting;
 * no Mixup), softmax probabilities averaged, then lerp'ed with the plain pass:
 * (1 - beta) * mean(aug) + beta * plain, argmax against the labels. Samples
 * are matched across passes by their dataset index, so a bad file dropped
 * from a batch changes nothing.
 *
 * A checkpoint carries what evaluation needs (trainer/ckpt.h): the arch, the
 * class names, the Normalize statistics, the loss (label smoothing), and the
 * run configuration with the size, presize and batch size it was trained at
 * (trainer/recipe.h). One learner is kept and reloaded for each checkpoint
 * of the same architecture.
 *
 * Also here: predictions for image files (no sockets: the loader's decode and
 * centre presize, the augment stage's validation transform, the checkpoint's
 * statistics and class names).
 */
#ifndef NF_EVAL_H
#define NF_EVAL_H

#include "client.h"
#include "exec.h"
#include "recipe.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    augment_client_t *client;  // borrowed; NULL for predictions only
    exec_kind_t backend;
    int threads;
    uint32_t credits;          // tensor batches in flight per stream; 0 = 4
    int stop_fd;               // readable = stop between batches; -1 = none
} eval_config_t;

// How to evaluate one checkpoint. Zero fields come from the checkpoint's run
// configuration (its size, presize and batch size when it was saved; its
// recipe's TTA settings).
typedef struct {
    const char *checkpoint;
    uint32_t size, presize, batch_size;
    int tta;                   // -1 = as the recipe says, 0 = no, 1 = yes
    int tta_n;                 // 0 = the recipe's (4)
    float tta_beta;            // < 0 = the recipe's (0.25)
} eval_job_t;

typedef struct {
    double valid_loss, accuracy;
    uint32_t n_samples, bad_files;
    bool has_tta;
    int tta_n;
    double tta_beta, tta_accuracy, tta_loss;
    double plain_s, tta_s;     // wall seconds of the plain pass and of the TTA passes
    uint32_t epochs_done;      // from the checkpoint (0 when unknown)
} eval_result_t;

typedef struct eval_t eval_t;

// The recipe a checkpoint was trained with (its run configuration), e.g. to
// start a loader on the same data and split. Returns 0, or -1 (logged).
int eval_checkpoint_recipe(const char *path, recipe_t *out);

eval_t *eval_new(const eval_config_t *cfg);
void eval_destroy(eval_t **self_p);

// Evaluates a checkpoint. on_plain (may be NULL) is called with the plain
// result before the TTA passes start (so a trainer can print its row early).
// Returns 0, or -1 (logged: unreadable checkpoint, stream failure, stopped).
int eval_run(eval_t *self, const eval_job_t *job, eval_result_t *out,
             void (*on_plain)(const eval_result_t *plain, void *arg), void *arg);

// fastai's TTA combination (Learner.tta, fastai-spec.md 10) for n samples of
// c classes: p = (1 - beta) * aug_sum / n_pass + beta * plain, per sample;
// *accuracy = fraction with argmax(p) == label, *loss = mean -log p[label].
void eval_tta_combine(const float *aug_sum,  // (n, c) sum of n_pass softmax passes
                      const float *plain,    // (n, c) softmax of the plain pass
                      const int32_t *labels, // (n)
                      int n, int c, int n_pass, double beta, double *accuracy, double *loss);

typedef struct {
    const char *checkpoint;
    const char *const *files;
    int n_files;
    uint32_t size, presize;    // 0 = the checkpoint's
    int top;                   // classes listed per file (0 = 3)
    bool json;                 // one JSON object per line instead of text
} eval_predict_t;

// Prints, for each file, the predicted class and the top probabilities.
// A file that cannot be decoded is reported on its line and counted.
// Returns 0 when every file was predicted, 1 when some failed, -1 on a
// checkpoint error.
int eval_predict(eval_t *self, const eval_predict_t *p);

#endif
