/*
 * exec.h: network executors behind one backend table.
 *
 * An executor runs a whole xresnet (trainer/xresnet.h) on one backend:
 * forward (train or eval), backward, and the fastai Adam step over the
 * network's flat parameter buffer. It owns the model state on its device:
 * weights, gradients, BatchNorm running statistics and Adam's moments, all
 * in the flat layouts of xresnet.h. Host code moves state in and out through
 * exec_state_t views (checkpoints, tests, backend changes).
 *
 * Backends (one table each, picked at one dispatch point, exec_backend()):
 *   ref     the kernels' plain-loop `_cpu` ops in NHWC: the oracle
 *   onednn  oneDNN 2.6 primitives on layouts oneDNN chooses (the fast CPU path)
 *   cuda    the kernels' `_cuda` ops (cuDNN/cuBLAS), only in HAVE_CUDA builds
 *
 * Contract shared by every backend:
 *  - plan(n, h, w) sizes and allocates everything for one batch shape; a new
 *    shape (progressive resizing, a last partial batch) re-plans once; the
 *    same shape again is free. forward/backward never allocate.
 *  - forward(train) uses batch statistics and updates the running ones
 *    (momentum 0.1, unbiased variance); forward(eval) uses running stats.
 *  - backward() needs the preceding train forward of the same batch and
 *    OVERWRITES every gradient (fastai zeroes grads after every step, so a
 *    separate zero-grad is never needed; gradient accumulation over several
 *    batches is not part of the chapter and not provided).
 *  - adam_step() applies one fastai Adam update (kernels/adam.h) to all
 *    parameters with the do_wd mask (conv and linear weights only).
 * Inputs and outputs at this interface are host fp32: images NHWC
 * (N, H, W, C_in), logits and dlogits (N, n_out); the cuda backend also
 * takes images already on its device (x_dev).
 *
 * Queued steps (cuda only; NULL members elsewhere): step_submit() queues a
 * whole training step (forward, loss, backward, Adam) and returns at once;
 * step_wait() gives its loss. Nothing inside a step waits for the host, so
 * the host prepares the next batch while the device computes; the learner
 * keeps at most EXEC_MAX_INFLIGHT steps queued (trainer/learner.h).
 */
#ifndef NF_EXEC_H
#define NF_EXEC_H

#include "adam.h"
#include "kdtype.h"
#include "xresnet.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum { EXEC_REF = 0, EXEC_ONEDNN = 1, EXEC_CUDA = 2 } exec_kind_t;

typedef struct exec_t exec_t;  // one backend's executor, opaque

typedef struct {
    const xresnet_t *net;  // borrowed: must outlive the executor
    int threads;           // CPU threads for OpenMP/oneDNN (0 = leave the OpenMP default)
    int device;            // CUDA device ordinal
    bool winograd;         // onednn: Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions
    bool bf16;             // cuda: bf16 activations and weight copies (fp32 master weights)
    bool no_graphs;        // cuda: run every step eagerly (no CUDA graph capture)
    bool no_autotune;      // cuda: cuDNN heuristics instead of timing algorithms per shape
} exec_config_t;

// Steps a backend with step_submit may have queued and not yet waited for.
#define EXEC_MAX_INFLIGHT 3

// Host views of the model state, each in xresnet.h's flat layout. NULL
// members are skipped by exec state transfers.
typedef struct {
    float *params;    // (n_param_floats)
    float *run_mean;  // (n_bn_floats)
    float *run_var;   // (n_bn_floats)
    float *adam_m;    // (n_param_floats) Adam's first moment (fastai grad_avg)
    float *adam_v;    // (n_param_floats) Adam's second moment (fastai sqr_avg)
} exec_state_t;

// Images of a batch already on the cuda executor's device (e.g. a slot of
// the augment stage's device ring, common/devring.h).
typedef struct {
    const void *x;     // (N, H, W, C_in) device images of `dtype`, or NULL (host images)
    kdtype_t dtype;    // KDTYPE_F32 or KDTYPE_BF16
    void *ready;       // cudaEvent_t to wait for before reading x, or NULL
    void *done;        // cudaEvent_t recorded once x has been read (the buffer may be
                       // reused from then on), or NULL
} exec_dev_images_t;

typedef struct {
    const float *x;          // (N, H, W, C_in) host fp32 images (NULL with dev.x)
    bool train;              // batch statistics + running-stat update, dropout active
    uint64_t dropout_seed;   // dropout mask = Philox(seed, NF_RNG_STREAM_DROPOUT, index)
    uint64_t dropout_index;  // the step number
    exec_dev_images_t dev;   // cuda only: device images instead of x
} exec_forward_t;

// One queued training step (step_submit).
typedef struct {
    const float *x;          // (N, H, W, C_in) host fp32 images of the planned shape (or NULL)
    exec_dev_images_t dev;   // or device images
    const int32_t *y;        // (N) host labels in [0, n_out)
    const int32_t *y_mix;    // (N) host Mixup partner labels, or NULL
    const float *lam;        // (N) host Mixup weights of y, or NULL
    float smoothing;         // label-smoothing eps (0 = cross-entropy)
    adam_params_t adam;      // this step's fastai Adam update (count is ignored)
    uint64_t dropout_seed;   // as exec_forward_t
    uint64_t dropout_index;
} exec_step_t;

// What a backend reports about its work (cuda; others leave it zeroed).
typedef struct {
    int plans;               // batch shapes planned so far
    int graphs;              // CUDA graphs captured
    int64_t graph_launches;  // steps and eval batches replayed from a graph
    int64_t eager_runs;      // steps and eval batches run op by op
    int tuned_convs;         // convolution shapes autotuned
    double plan_s;           // seconds spent planning (allocation, autotuning)
    size_t device_bytes;     // device memory held by the plans and the model state
} exec_stats_t;

typedef struct {
    const char *name;  // "ref", "onednn", "cuda"
    // Creates the executor with zeroed state; NULL (logged) when the backend
    // cannot start (no device).
    exec_t *(*create)(const exec_config_t *cfg);
    void (*destroy)(exec_t **self_p);
    // Plans for batches of n images of h x w. Returns 0, or -1 (logged) when
    // the image is too small for the network.
    int (*plan)(exec_t *e, int n, int h, int w);
    void (*state_write)(exec_t *e, const exec_state_t *host);
    void (*state_read)(exec_t *e, const exec_state_t *host);
    // logits: (N, n_out) host.
    void (*forward)(exec_t *e, const exec_forward_t *args, float *logits);
    // dlogits: (N, n_out) host, d(loss)/d(logits) of the last train forward.
    void (*backward)(exec_t *e, const float *dlogits);
    // Copies the gradients of the last backward into grads (n_param_floats).
    void (*grads_read)(exec_t *e, float *grads);
    void (*adam_step)(exec_t *e, const adam_params_t *hp);
    // Zeroes Adam's moments (fastai's clear_state; the step count is the caller's).
    void (*adam_reset)(exec_t *e);
    // Optional (NULL when steps run synchronously): queues one training step
    // of the planned shape and returns a ticket (>= 0) at once. Host inputs
    // may be reused on return; device images once s->dev.done has fired.
    int64_t (*step_submit)(exec_t *e, const exec_step_t *s);
    // Waits for step `ticket` (submitted, not yet waited for); its mean loss,
    // and its (N, n_out) logits when logits is not NULL.
    void (*step_wait)(exec_t *e, int64_t ticket, float *loss, float *logits);
    // Optional: counters about the backend's work.
    void (*stats)(exec_t *e, exec_stats_t *out);
} exec_backend_t;

// The table of a backend, or NULL when it is not built in (cuda without
// HAVE_CUDA). The one dispatch point.
const exec_backend_t *exec_backend(exec_kind_t kind);
// Parses "ref" | "onednn" | "cuda"; returns 0 or -1.
int exec_kind_parse(const char *name, exec_kind_t *out);

// ---------------------------------------------------------------------------
// Backend tables (defined in exec_ref.c, exec_onednn.c; the CUDA table comes
// from exec_cuda.c in HAVE_CUDA builds and is NULL from exec_nocuda.c else).
extern const exec_backend_t exec_ref_backend;
extern const exec_backend_t exec_onednn_backend;
const exec_backend_t *exec_cuda_table(void);

// ---------------------------------------------------------------------------
// oneDNN specifics (tests and diagnostics).

typedef struct {
    char what[64];  // "conv fwd 4.0.convpath.0.0", "reorder src ...", ...
    char impl[64];  // dnnl_query_impl_info_str, e.g. "jit:avx512_core"
} exec_onednn_impl_t;

// The implementation chosen for every primitive of the current plan (all
// of forward, eval forward and backward). Returns the number written (at
// most max); *total gets the full count.
int exec_onednn_impls(const exec_t *e, exec_onednn_impl_t *out, int max, int *total);

#endif
