/*
 * conv2d.h: 2-D convolution (cross-correlation, as PyTorch's Conv2d), NHWC,
 * groups = 1, no bias, dilation 1, square stride and zero padding.
 *
 *   y[n, oh, ow, co] = sum_{i < KH, j < KW, ci} x[n, oh*s - p + i, ow*s - p + j, ci]
 *                                               * w[co, i, j, ci]
 *   (x outside the image is 0)
 *
 * Layouts: x (N, H, W, C_in); y (N, OH, OW, C_out); w (C_out, KH, KW, C_in),
 * which is cuDNN's NHWC filter layout ("KRSC"). A PyTorch weight
 * (C_out, C_in, KH, KW) becomes ours with permute(0, 2, 3, 1).
 *
 * Argument order everywhere in kernels/: outputs first, then inputs, then the
 * parameter struct; the CUDA twin adds a trailing cuda_ctx_t *.
 * Backward functions OVERWRITE their outputs (they never accumulate).
 * Nothing here allocates: the caller owns every buffer.
 *
 * Not here: bias (xresnet convs have none), groups, dilation (not used by
 * xresnet); the fast CPU path is oneDNN in trainer/, not this file.
 */
#ifndef NF_CONV2D_H
#define NF_CONV2D_H

#include "kdtype.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n, h, w, c_in;  // input (N, H, W, C_in)
    int c_out;          // output channels
    int kh, kw;         // kernel size
    int stride;         // stride, both axes (>= 1)
    int pad;            // zero padding, both axes, both sides (>= 0)
    kdtype_t dtype;     // storage of x, y, w and their gradients (CPU: F32 only)
    bool accumulate;    // backward_data only: dx += gradient (a value with two
                        // consumers gets its second contribution in place)
} conv2d_params_t;

// Output size: OH = (H + 2*pad - KH) / stride + 1 (floor), same for OW.
int conv2d_out_h(const conv2d_params_t *p);
int conv2d_out_w(const conv2d_params_t *p);
// Element counts of x (N*H*W*C_in), y (N*OH*OW*C_out) and w (C_out*KH*KW*C_in).
size_t conv2d_x_count(const conv2d_params_t *p);
size_t conv2d_y_count(const conv2d_params_t *p);
size_t conv2d_w_count(const conv2d_params_t *p);
// Aborts (NF_CHECK) on a shape that is not valid: non-positive sizes,
// stride < 1, pad < 0, OH or OW < 1.
void conv2d_check_params(const conv2d_params_t *p);

// ---------------------------------------------------------------------------
// CPU reference (fp32, plain loops; OpenMP over independent outputs only, so
// results are bitwise identical for any thread count).

// y = conv(x, w).
void conv2d_forward_cpu(float *y,        // (N, OH, OW, C_out)
                        const float *x,  // (N, H, W, C_in)
                        const float *w,  // (C_out, KH, KW, C_in)
                        const conv2d_params_t *p);

// dx = d(loss)/dx given dy = d(loss)/dy (the transposed convolution of dy);
// dx += that when p->accumulate.
void conv2d_backward_data_cpu(float *dx,        // (N, H, W, C_in), overwritten or accumulated
                              const float *dy,  // (N, OH, OW, C_out)
                              const float *w,   // (C_out, KH, KW, C_in)
                              const conv2d_params_t *p);

// dw = d(loss)/dw = sum over n, oh, ow of dy (x) x-window.
void conv2d_backward_weights_cpu(float *dw,        // (C_out, KH, KW, C_in), overwritten
                                 const float *dy,  // (N, OH, OW, C_out)
                                 const float *x,   // (N, H, W, C_in)
                                 const conv2d_params_t *p);

// ---------------------------------------------------------------------------
// CUDA twin: cuDNN 9 (legacy convolution API, NHWC descriptors, fp32 compute;
// f32 runs with FMA math (no TF32), bf16 with tensor-op math). Pointers are
// device pointers of `dtype`. The cuDNN descriptors and algorithm choice of a
// shape are built on first use and cached in ctx (host memory only); the
// workspace is ctx's and must be at least conv2d_workspace_bytes_cuda().
#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;

// Largest workspace the three conv2d_*_cuda calls need for this shape (builds
// and caches the shape's plan). Reserve it with cuda_ctx_reserve_workspace().
size_t conv2d_workspace_bytes_cuda(const conv2d_params_t *p, cuda_ctx_t *ctx);

// Buffers of the shape to time algorithms on (device, dtype): x, w and dy are
// read; y, dx and dw are overwritten (garbage afterwards).
typedef struct {
    void *y;         // (N, OH, OW, C_out)
    const void *x;   // (N, H, W, C_in)
    const void *w;   // (C_out, KH, KW, C_in)
    const void *dy;  // (N, OH, OW, C_out)
    void *dx;        // (N, H, W, C_in)
    void *dw;        // (C_out, KH, KW, C_in)
} conv2d_tune_buffers_t;

// Autotunes the shape: times every algorithm of the three directions on the
// given buffers (cudnnFind*AlgorithmEx, in ctx->workspace, using at most
// max_workspace bytes of it) and caches the fastest for the shape, replacing
// the heuristic choice (a backward algorithm that is deterministic is taken
// when it is within 5 % of the fastest). f32 considers FMA-math algorithms
// only. Once per shape per context: a tuned shape returns at once. Returns
// the workspace the chosen algorithms need. Set-up time only (it
// synchronises the stream): never inside a captured graph.
size_t conv2d_autotune_cuda(const conv2d_params_t *p, const conv2d_tune_buffers_t *b,
                            size_t max_workspace, cuda_ctx_t *ctx);

void conv2d_forward_cuda(void *y,        // (N, OH, OW, C_out) dtype
                         const void *x,  // (N, H, W, C_in) dtype
                         const void *w,  // (C_out, KH, KW, C_in) dtype
                         const conv2d_params_t *p, cuda_ctx_t *ctx);
void conv2d_backward_data_cuda(void *dx,        // (N, H, W, C_in) dtype (p->accumulate: +=)
                               const void *dy,  // (N, OH, OW, C_out) dtype
                               const void *w,   // (C_out, KH, KW, C_in) dtype
                               const conv2d_params_t *p, cuda_ctx_t *ctx);
void conv2d_backward_weights_cuda(void *dw,        // (C_out, KH, KW, C_in) dtype, overwritten
                                  const void *dy,  // (N, OH, OW, C_out) dtype
                                  const void *x,   // (N, H, W, C_in) dtype
                                  const conv2d_params_t *p, cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
