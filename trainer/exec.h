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
 * (N, H, W, C_in), logits and dlogits (N, n_out).
 */
#ifndef NF_EXEC_H
#define NF_EXEC_H

#include "adam.h"
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
} exec_config_t;

// Host views of the model state, each in xresnet.h's flat layout. NULL
// members are skipped by exec state transfers.
typedef struct {
    float *params;    // (n_param_floats)
    float *run_mean;  // (n_bn_floats)
    float *run_var;   // (n_bn_floats)
    float *adam_m;    // (n_param_floats) Adam's first moment (fastai grad_avg)
    float *adam_v;    // (n_param_floats) Adam's second moment (fastai sqr_avg)
} exec_state_t;

typedef struct {
    const float *x;          // (N, H, W, C_in) host fp32 images
    bool train;              // batch statistics + running-stat update, dropout active
    uint64_t dropout_seed;   // dropout mask = Philox(seed, NF_RNG_STREAM_DROPOUT, index)
    uint64_t dropout_index;  // the step number
} exec_forward_t;

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
