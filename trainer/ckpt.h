/*
 * ckpt.h: learner checkpoints as safetensors files (common/safetensors.h:
 * 8-byte header length, JSON header, raw data; written atomically: temp
 * file, fsync, rename).
 *
 * A checkpoint holds everything inference and an exact resume need:
 *   tensors   "<key>"                 every parameter, F32, keys = fastai's
 *                                     state_dict keys of the same xresnet
 *             "<bn>.running_mean/var"  F32; "<bn>.num_batches_tracked" I64 []
 *             "opt.grad_avg.<key>", "opt.sqr_avg.<key>"  Adam's moments, F32
 *   metadata  format "netteflow-checkpoint", format_version "1", arch, n_out,
 *             c_in, dropout, class_names (JSON array), norm_mean / norm_std
 *             (JSON arrays), config (the run configuration JSON, when given),
 *             layout (how to convert to PyTorch), progress (JSON: step and
 *             BN-batch counters, Adam step, lr/mom, the active schedule and
 *             its position and epoch, fastai's smoothed loss, loss eps,
 *             optimizer hyper-parameters, the run seed). Exact values
 *             (doubles) are stored as strings with 17 significant digits,
 *             so they round-trip bit for bit.
 * Conv weights are in our layout (C_out, KH, KW, C_in); for PyTorch/fastai,
 * permute(0, 3, 1, 2) each 4-D tensor (docs/trainer.md,
 * tests/reference/check_ckpt.py). Everything else is PyTorch's layout.
 *
 * Loading is all-or-nothing: every tensor and field is validated (names,
 * dtypes, shapes, the architecture) before the learner is touched; a bad
 * file gives -1 with a one-line reason and leaves the learner as it was.
 * Resuming from a checkpoint continues training bit-identically on the CPU
 * executors (tests/trainer/test_ckpt.c).
 */
#ifndef NF_CKPT_H
#define NF_CKPT_H

#include "learner.h"

#include <stdint.h>

#define CKPT_FORMAT "netteflow-checkpoint"
#define CKPT_FORMAT_VERSION "1"

// Writes the learner's whole state to path. Returns 0, or -1 (logged; an
// existing file at path is untouched).
int ckpt_save(learner_t *l, const char *path);
// Restores the learner's state from path (same arch and n_out). Returns 0,
// or -1 (logged; the learner unchanged).
int ckpt_load(learner_t *l, const char *path);

// What a checkpoint says about its model, to build a matching learner
// (the evaluator, predictions).
typedef struct {
    char arch[16];
    int n_out;
    float dropout;
    int n_classes;
    char (*class_names)[LEARNER_MAX_CLASS_NAME];  // (n_classes)
    float norm_mean[3], norm_std[3];
    char *config_json;  // NULL when the run stored none
    int64_t step;
} ckpt_info_t;

// Reads the metadata of a checkpoint. Returns 0, or -1 (logged).
int ckpt_info_read(const char *path, ckpt_info_t *info);
void ckpt_info_free(ckpt_info_t *info);
// A learner config matching the checkpoint (backend and threads from base).
learner_config_t ckpt_info_config(const ckpt_info_t *info, const learner_config_t *base);

// "<dir>/ckpt-<step, 10 digits>.safetensors" into buf.
void ckpt_path(const char *dir, int64_t step, char *buf, size_t len);
// Retention: deletes all but the newest `keep` files named
// "ckpt-<digits>.safetensors" in dir (other files, e.g. the final
// checkpoint, are never touched). Returns the number deleted, or -1.
int ckpt_retain(const char *dir, int keep);

#endif
