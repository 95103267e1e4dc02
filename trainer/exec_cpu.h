/*
 * exec_cpu.h: what the two CPU executors (ref, onednn) share: the host model
 * state in xresnet.h's flat layouts (weights, gradients, Adam moments, the
 * do_wd mask, BatchNorm running statistics), the Adam step over it through
 * the kernels' adam_step_cpu, the BatchNorm running-stat update from batch
 * statistics, and dropout masks.
 *
 * Internal to trainer/: the executors' common part, not a public API.
 */
#ifndef NF_EXEC_CPU_H
#define NF_EXEC_CPU_H

#include "exec.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const xresnet_t *net;
    size_t n_floats;  // size of the flat buffers: n_param_floats in xresnet.h's layout;
                      // an executor may lay its parameters out its own way (onednn)
    float *params;    // (n_floats) 64-byte aligned
    float *grads;     // (n_floats)
    float *adam_m;    // (n_floats)
    float *adam_v;    // (n_floats)
    uint8_t *do_wd;   // (n_floats) 1 on conv and linear weights
    float *run_mean;  // (n_bn_floats)
    float *run_var;   // (n_bn_floats)
} exec_cpu_state_t;

// Allocates zeroed state for net in xresnet.h's layout (running var 1, as
// PyTorch initialises it).
void exec_cpu_state_init(exec_cpu_state_t *s, const xresnet_t *net);
void exec_cpu_state_free(exec_cpu_state_t *s);
// Copies in/out; only for state in xresnet.h's layout.
void exec_cpu_state_write(exec_cpu_state_t *s, const exec_state_t *host);
void exec_cpu_state_read(const exec_cpu_state_t *s, const exec_state_t *host);
void exec_cpu_adam_step(exec_cpu_state_t *s, const adam_params_t *hp);
void exec_cpu_adam_reset(exec_cpu_state_t *s);

// PyTorch's running-stat update from a batch's mean and BIASED variance over
// m = N*H*W values (momentum 0.1, unbiased variance var*m/(m-1)), with the
// kernels' batchnorm2d arithmetic.
void exec_cpu_bn_running_update(float *run_mean,     // (c) in/out
                                float *run_var,      // (c) in/out
                                const float *mean,   // (c)
                                const float *var_b,  // (c) biased
                                int c, double m);

// Dropout mask for one step: mask[i] = 1/(1-p) with probability 1-p, else 0,
// from Philox(seed, NF_RNG_STREAM_DROPOUT, 0, index), one draw per element
// in order. p = 0 gives all ones.
void exec_cpu_dropout_mask(float *mask, size_t count, float p, uint64_t seed, uint64_t index);

#endif
