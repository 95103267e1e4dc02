/*
 * add.h: elementwise y = a + b over any tensor (count elements).
 *
 * Uses: the residual join when no ReLU follows it, and summing two gradient
 * contributions (a ResBlock's input gradient = branch dx + shortcut dx).
 * Its backward is the identity for both inputs (da = db = dy), so there is
 * no add_backward: the caller passes dy on.
 * In place is allowed: y may equal a or b.
 */
#ifndef NF_ADD_H
#define NF_ADD_H

#include "kdtype.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    size_t count;    // number of elements
    kdtype_t dtype;  // storage of every tensor here (CPU: F32 only)
} add_params_t;

void add_forward_cpu(float *y,        // (count)
                     const float *a,  // (count)
                     const float *b,  // (count)
                     const add_params_t *p);

// CUDA twin: the same shapes as the CPU function(s) above, device pointers
// (data tensors of `dtype`, the rest as documented there).
#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;
void add_forward_cuda(void *y, const void *a, const void *b, const add_params_t *p,
                      cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
