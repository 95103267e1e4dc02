/*
 * xresnet.h: the xresnet18/34/50 network description, exactly as fastai v2
 * builds it (fastai-spec.md §5), as a flat list of ops over numbered
 * activation values, plus its parameter tensors and BatchNorm buffers.
 *
 * What it is: the one description every executor (ref, onednn, cuda) walks,
 * the naming of parameters (fastai/PyTorch state_dict keys of
 * `xresnet50(n_out=10)`, e.g. "4.0.convpath.0.0.weight"), the flat parameter
 * layout, fastai's initialisation (kaiming-normal fan_in from common/rng.h,
 * BN weight 0 on the last BN of every residual branch, every bias 0), shape
 * inference for a given input size, and fastai's `learn.summary()` table.
 *
 * What it is not: it computes nothing and owns no activations; executors do
 * that (trainer/exec.h).
 *
 * Layouts (ours, NHWC world; see docs/trainer.md for the PyTorch conversion):
 *   conv weight   (C_out, KH, KW, C_in)   PyTorch: (C_out, C_in, KH, KW)
 *   linear weight (n_out, C_in)           same as PyTorch
 *   BN weight/bias, running mean/var (C)
 * All parameters live in one flat fp32 buffer in op order (each tensor's
 * offset is a multiple of 16 floats so SIMD loops and oneDNN handles stay
 * 64-byte aligned); running means and running variances in two flat buffers.
 */
#ifndef NF_XRESNET_H
#define NF_XRESNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define XRESNET_MAX_NAME 48

typedef struct {
    const char *arch;  // "xresnet18", "xresnet34" or "xresnet50"
    int n_out;         // number of classes (> 0)
    int c_in;          // input channels (3 for RGB)
    float dropout;     // head dropout probability (fastai default 0)
} xresnet_config_t;

typedef enum {
    XRESNET_OP_CONV,      // conv, no bias: out = conv(in0)
    XRESNET_OP_BN,        // BatchNorm2d (eps 1e-5, momentum 0.1), then ReLU if .relu
    XRESNET_OP_MAXPOOL,   // MaxPool2d(3, stride 2, padding 1)
    XRESNET_OP_AVGPOOL,   // AvgPool2d(2, stride 2, ceil_mode=True), in-bounds count
    XRESNET_OP_ADD_RELU,  // out = ReLU(in0 + in1): in0 = conv path, in1 = shortcut
    XRESNET_OP_GAP,       // AdaptiveAvgPool2d(1) + Flatten: (C, H, W) -> (C)
    XRESNET_OP_DROPOUT,   // Dropout(p) on the flattened features
    XRESNET_OP_LINEAR     // Linear with bias: (C) -> (n_out)
} xresnet_op_kind_t;

typedef enum {
    XRESNET_PARAM_CONV_W,
    XRESNET_PARAM_BN_W,
    XRESNET_PARAM_BN_B,
    XRESNET_PARAM_LINEAR_W,
    XRESNET_PARAM_LINEAR_B
} xresnet_param_kind_t;

typedef struct {
    char name[XRESNET_MAX_NAME];  // fastai state_dict key
    xresnet_param_kind_t kind;
    int ndim;
    int shape[4];       // in OUR layout (see the top of this file)
    int torch_shape[4]; // in PyTorch's layout
    size_t numel;
    size_t offset;      // first element in the flat parameter buffer
    bool do_wd;         // fastai wd_bn_bias=False: only conv and linear weights decay
    int op;             // the op that owns it
} xresnet_param_t;

typedef struct {
    char prefix[XRESNET_MAX_NAME];  // module key, e.g. "4.0.convpath.1.1"
    int c;
    size_t offset;  // into the running-mean and running-var buffers
} xresnet_bn_t;

typedef struct {
    xresnet_op_kind_t kind;
    int in0, in1, out;  // value ids; in1 = -1 for unary ops; value 0 is the image
    int c_in, c_out;    // channels in and out
    int k, stride, pad; // conv and pool geometry
    bool relu;          // BN: a ReLU follows (fused by executors that can)
    bool zero_bn;       // BN: weight initialised to 0 (last BN of a residual branch)
    bool id_shortcut;   // ADD_RELU: the shortcut is the identity (fastai prints "Sequential")
    int param;          // first parameter index (conv: w; BN: w, b; linear: w, b); -1 if none
    int bn;             // BN: index into bns; -1 otherwise
} xresnet_op_t;

typedef struct {
    int c, h, w;  // per-sample shape of a value; flattened values have h = w = 1
} xresnet_shape_t;

typedef struct {
    xresnet_config_t cfg;
    char arch[16];
    int expansion;     // 1 (basic blocks) or 4 (bottlenecks)
    int layers[4];     // blocks per stage
    xresnet_op_t *ops; // (n_ops)
    int n_ops;
    int n_values;      // activation values including the image (value 0)
    xresnet_param_t *params;  // (n_params)
    int n_params;
    xresnet_bn_t *bns;        // (n_bn)
    int n_bn;
    size_t n_param_floats;    // size of the flat parameter buffer (with alignment gaps)
    size_t n_trainable;       // sum of numel (the count fastai prints)
    size_t n_bn_floats;       // size of each running-stat buffer
} xresnet_t;

// Builds the description. NULL (logged) for an unknown arch or bad sizes.
xresnet_t *xresnet_new(const xresnet_config_t *cfg);
// Frees it and nulls *self_p. Accepts NULL.
void xresnet_destroy(xresnet_t **self_p);

// Per-sample shapes of every value for an input of h x w pixels.
// shapes has n_values entries. Returns 0, or -1 when the image is too small.
int xresnet_shapes(const xresnet_t *net, int h, int w, xresnet_shape_t *shapes);

// Index of the parameter with this fastai name, or -1.
int xresnet_param_find(const xresnet_t *net, const char *name);

// fastai's init_cnn: conv/linear weights ~ N(0, 2/fan_in) from Philox
// (seed, NF_RNG_STREAM_INIT, index = parameter index), all biases 0, BN
// weight 1 (0 on the last BN of each residual branch), running mean 0 and
// running var 1. Alignment gaps in params are zeroed.
void xresnet_init_fastai(const xresnet_t *net, uint64_t seed, float *params, float *run_mean,
                         float *run_var);

// The deterministic pattern the golden test shares with tests/reference/
// gen_step.py (no weights stored in fixtures): element e (PyTorch order) of
// parameter t gets u = xresnet_pattern_u(t, e) in [0, 1) and
//   conv/linear weight  sqrt(3) * std * (2u - 1),  std = sqrt(2 / fan_in)
//   BN weight           0.8 + 0.4u        BN bias, linear bias  0.2u - 0.1
// Running mean 0, running var 1.
void xresnet_init_pattern(const xresnet_t *net, float *params, float *run_mean, float *run_var);
float xresnet_pattern_u(uint32_t t, uint32_t e);

// Converts one parameter between our layout and PyTorch's (identity except
// for conv weights: (O, KH, KW, I) <-> (O, I, KH, KW)).
void xresnet_param_to_torch(const xresnet_param_t *p, const float *ours, float *torch_out);
void xresnet_param_from_torch(const xresnet_param_t *p, const float *torch_in, float *ours_out);

// Multiply-accumulates of conv and linear layers for one image of h x w.
double xresnet_macs(const xresnet_t *net, int h, int w);

// Writes fastai's learn.summary() table (module list with output shapes and
// parameter counts, totals) for a batch of bs images of h x w. Returns 0, or
// -1 when the input is too small for the network.
int xresnet_summary(const xresnet_t *net, int bs, int h, int w, FILE *out);

#endif
