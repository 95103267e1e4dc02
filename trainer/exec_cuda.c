/*
 * exec_cuda.c: the CUDA executor (HAVE_CUDA builds only), the network walk
 * of exec_ref.c on the kernels' `_cuda` twins: cuDNN convolution and
 * BatchNorm, cuBLAS linear, the kernels' own pooling, ReLU, add and Adam.
 *
 * Storage: activations, gradients of activations and the weights the
 * forward reads are in the executor's dtype (f32, or bf16 when the config
 * asks for it); master weights, their gradients, Adam's moments and every
 * BatchNorm vector are fp32 on the device. With bf16, Adam writes the bf16
 * weight copy as it updates (adam_step_cuda), and the bf16 weight gradients
 * of conv and linear layers are cast into the fp32 gradient buffer.
 *
 * What this is not (yet): the full-speed GPU trainer. Batches arrive as
 * host fp32 and logits leave as host fp32 through this interface; the head's
 * dropout (p > 0; fastai's default is 0) runs on the host over the (N, C)
 * features; nothing is fused or captured in a CUDA graph. Those belong to
 * the GPU full-speed issue. It compiles and links in every nvcc build; its
 * parity test against the ref executor (tests/trainer/test_exec_cuda.c,
 * label gpu) runs where a GPU is present.
 */
#include "exec.h"
#include "exec_cpu.h"

#include "adaptive_avgpool.h"
#include "add.h"
#include "avgpool2d.h"
#include "batchnorm2d.h"
#include "cast.h"
#include "check.h"
#include "conv2d.h"
#include "cuda_check.h"
#include "cuda_ctx.h"
#include "kdtype.h"
#include "linear.h"
#include "log.h"
#include "maxpool2d.h"
#include "relu.h"

#include <stdlib.h>
#include <string.h>

struct exec_t {
    exec_config_t cfg;
    const xresnet_t *net;
    cuda_ctx_t *ctx;
    kdtype_t dtype;
    size_t esz;  // bytes per element of dtype
    // device model state (xresnet.h layouts)
    float *params, *grads, *adam_m, *adam_v, *run_mean, *run_var;  // fp32
    uint8_t *do_wd;
    uint16_t *params_lp;  // bf16 copy of params (bf16 only)
    uint16_t *grads_lp;   // bf16 conv/linear weight gradients before the cast (bf16 only)
    // the plan (n == 0: none)
    int n, h, w;
    xresnet_shape_t *shapes;  // (n_values)
    void **data, **diff;      // (n_values) device, dtype; data[0] = the uploaded images
    int *first_consumer;      // (n_values)
    float **aux;              // (n_ops) BN: saved mean and invstd (2C) on the device
    int32_t **argmax;         // (n_ops) max pool, device
    float **mask;             // (n_ops) dropout, host (N, C)
    void *tmp;                // device, dtype: a gradient contribution being added
    float *stage;             // device fp32 staging for uploads (bf16 only)
    float *host_buf;          // host scratch: logits / dlogits / dropout features
    uint16_t *host_lp;        // host scratch for bf16 downloads
    size_t host_cap;          // elements of each
};

static void *s_dalloc(size_t bytes)
{
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 16));
    CUDA_CHECK(cudaMemset(p, 0, bytes ? bytes : 16));
    return p;
}

static void s_dfree(void *p)
{
    if (p) CUDA_CHECK(cudaFree(p));
}

static size_t s_count(const exec_t *e, int v)
{
    const xresnet_shape_t *s = &e->shapes[v];
    return (size_t)e->n * s->c * s->h * s->w;
}

// The weight a forward/backward op reads: the bf16 copy or the fp32 master.
static void *s_weight(const exec_t *e, int param)
{
    size_t off = e->net->params[param].offset;
    return e->params_lp ? (void *)(e->params_lp + off) : (void *)(e->params + off);
}

// ---------------------------------------------------------------------------
// plan

static void s_plan_free(exec_t *e)
{
    if (!e->shapes) return;
    cuda_ctx_sync(e->ctx);
    for (int v = 0; v < e->net->n_values; v++) {
        s_dfree(e->data[v]);
        s_dfree(e->diff[v]);
    }
    for (int i = 0; i < e->net->n_ops; i++) {
        s_dfree(e->aux[i]);
        s_dfree(e->argmax[i]);
        free(e->mask[i]);
    }
    s_dfree(e->tmp);
    s_dfree(e->stage);
    free(e->data);
    free(e->diff);
    free(e->first_consumer);
    free(e->aux);
    free(e->argmax);
    free(e->mask);
    free(e->shapes);
    e->shapes = NULL;
    e->stage = NULL;
    e->tmp = NULL;
    e->n = e->h = e->w = 0;
}

static conv2d_params_t s_conv_params(const exec_t *e, const xresnet_op_t *op)
{
    const xresnet_shape_t *si = &e->shapes[op->in0];
    return (conv2d_params_t){.n = e->n, .h = si->h, .w = si->w, .c_in = op->c_in,
                             .c_out = op->c_out, .kh = op->k, .kw = op->k,
                             .stride = op->stride, .pad = op->pad, .dtype = e->dtype};
}

static pool2d_params_t s_pool_params(const exec_t *e, const xresnet_op_t *op)
{
    const xresnet_shape_t *si = &e->shapes[op->in0];
    return (pool2d_params_t){.n = e->n, .h = si->h, .w = si->w, .c = si->c, .kh = op->k,
                             .kw = op->k, .stride = op->stride, .pad = op->pad,
                             .ceil_mode = op->kind == XRESNET_OP_AVGPOOL,
                             .count_include_pad = true, .dtype = e->dtype};
}

static batchnorm2d_params_t s_bn_params(const exec_t *e, const xresnet_op_t *op)
{
    const xresnet_shape_t *si = &e->shapes[op->in0];
    batchnorm2d_params_t p = batchnorm2d_default_params(e->n, si->h, si->w, si->c);
    p.dtype = e->dtype;
    return p;
}

static int s_plan(exec_t *e, int n, int h, int w)
{
    if (e->n == n && e->h == h && e->w == w) return 0;
    const xresnet_t *net = e->net;
    xresnet_shape_t *shapes = nf_xmalloc((size_t)net->n_values * sizeof(*shapes));
    if (n < 1 || xresnet_shapes(net, h, w, shapes) != 0) {
        nf_log_error("cuda: cannot plan %s for %d images of %dx%d", net->arch, n, h, w);
        free(shapes);
        return -1;
    }
    s_plan_free(e);
    e->n = n, e->h = h, e->w = w;
    e->shapes = shapes;
    int nv = net->n_values, no = net->n_ops;
    e->data = nf_xcalloc((size_t)nv, sizeof(*e->data));
    e->diff = nf_xcalloc((size_t)nv, sizeof(*e->diff));
    e->first_consumer = nf_xcalloc((size_t)nv, sizeof(int));
    e->aux = nf_xcalloc((size_t)no, sizeof(*e->aux));
    e->argmax = nf_xcalloc((size_t)no, sizeof(*e->argmax));
    e->mask = nf_xcalloc((size_t)no, sizeof(*e->mask));
    size_t biggest = 0, ws = 0;
    for (int v = 0; v < nv; v++) {
        size_t c = s_count(e, v);
        e->data[v] = s_dalloc(c * e->esz);
        if (v > 0) e->diff[v] = s_dalloc(c * e->esz);
        if (c > biggest) biggest = c;
        e->first_consumer[v] = -1;
    }
    e->tmp = s_dalloc(biggest * e->esz);
    size_t host_need = (size_t)n * net->cfg.n_out;
    for (int i = 0; i < no; i++) {
        const xresnet_op_t *op = &net->ops[i];
        e->first_consumer[op->in0] = i;
        if (op->in1 >= 0) e->first_consumer[op->in1] = i;
        if (op->kind == XRESNET_OP_BN) e->aux[i] = s_dalloc(2 * (size_t)op->c_out * sizeof(float));
        if (op->kind == XRESNET_OP_MAXPOOL)
            e->argmax[i] = s_dalloc(s_count(e, op->out) * sizeof(int32_t));
        if (op->kind == XRESNET_OP_DROPOUT) {
            e->mask[i] = nf_xmalloc(s_count(e, op->out) * sizeof(float));
            exec_cpu_dropout_mask(e->mask[i], s_count(e, op->out), 0.0f, 0, 0);
            if (2 * s_count(e, op->out) > host_need) host_need = 2 * s_count(e, op->out);
        }
        if (op->kind == XRESNET_OP_CONV) {
            conv2d_params_t p = s_conv_params(e, op);
            size_t need = conv2d_workspace_bytes_cuda(&p, e->ctx);
            if (need > ws) ws = need;
        }
    }
    cuda_ctx_reserve_workspace(e->ctx, ws);
    if (e->dtype == KDTYPE_BF16) {
        size_t stage = s_count(e, 0) > host_need ? s_count(e, 0) : host_need;
        e->stage = s_dalloc(stage * sizeof(float));
    }
    if (host_need > e->host_cap) {
        free(e->host_buf);
        free(e->host_lp);
        e->host_cap = host_need;
        e->host_buf = nf_xmalloc(host_need * sizeof(float));
        e->host_lp = nf_xmalloc(host_need * sizeof(uint16_t));
    }
    return 0;
}

// ---------------------------------------------------------------------------
// host <-> device in the executor's dtype

static void s_upload(exec_t *e, void *dst, const float *src, size_t count)
{
    float *stage = e->stage;
    if (e->dtype == KDTYPE_F32) {
        CUDA_CHECK(cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyHostToDevice,
                                   e->ctx->stream));
        return;
    }
    CUDA_CHECK(cudaMemcpyAsync(stage, src, count * sizeof(float), cudaMemcpyHostToDevice,
                               e->ctx->stream));
    cast_params_t cp = {.count = count};
    cast_f32_to_bf16_cuda(dst, stage, &cp, e->ctx);
}

static void s_download(exec_t *e, float *dst, const void *src, size_t count)
{
    if (e->dtype == KDTYPE_F32) {
        CUDA_CHECK(cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyDeviceToHost,
                                   e->ctx->stream));
        cuda_ctx_sync(e->ctx);
        return;
    }
    NF_CHECK(count <= e->host_cap, "cuda: download of %zu elements", count);
    CUDA_CHECK(cudaMemcpyAsync(e->host_lp, src, count * sizeof(uint16_t), cudaMemcpyDeviceToHost,
                               e->ctx->stream));
    cuda_ctx_sync(e->ctx);
    for (size_t i = 0; i < count; i++) dst[i] = kdtype_bf16_to_f32(e->host_lp[i]);
}

// The head's dropout on the host: y = x * mask over the (N, C) features.
static void s_dropout_host(exec_t *e, void *y, const void *x, const float *mask, size_t count)
{
    float *buf = e->host_buf;
    s_download(e, buf, x, count);
    for (size_t k = 0; k < count; k++) buf[k] *= mask[k];
    s_upload(e, y, buf, count);
    cuda_ctx_sync(e->ctx);
}

// ---------------------------------------------------------------------------
// forward / backward

static void s_forward(exec_t *e, const exec_forward_t *args, float *logits)
{
    NF_CHECK(e->n > 0, "cuda: forward before plan");
    const xresnet_t *net = e->net;
    cuda_ctx_t *ctx = e->ctx;
    s_upload(e, e->data[0], args->x, s_count(e, 0));
    for (int i = 0; i < net->n_ops; i++) {
        const xresnet_op_t *op = &net->ops[i];
        const void *x = e->data[op->in0];
        void *y = e->data[op->out];
        relu_params_t rp = {.count = s_count(e, op->out), .dtype = e->dtype};
        switch (op->kind) {
        case XRESNET_OP_CONV: {
            conv2d_params_t p = s_conv_params(e, op);
            conv2d_forward_cuda(y, x, s_weight(e, op->param), &p, ctx);
            break;
        }
        case XRESNET_OP_BN: {
            batchnorm2d_params_t p = s_bn_params(e, op);
            const float *g = e->params + net->params[op->param].offset;
            const float *b = e->params + net->params[op->param + 1].offset;
            const xresnet_bn_t *bn = &net->bns[op->bn];
            if (args->train)
                batchnorm2d_forward_train_cuda(y, e->aux[i], e->aux[i] + op->c_out,
                                               e->run_mean + bn->offset, e->run_var + bn->offset,
                                               x, g, b, &p, ctx);
            else
                batchnorm2d_forward_eval_cuda(y, x, g, b, e->run_mean + bn->offset,
                                              e->run_var + bn->offset, &p, ctx);
            if (op->relu) relu_forward_cuda(y, y, &rp, ctx);
            break;
        }
        case XRESNET_OP_MAXPOOL: {
            pool2d_params_t p = s_pool_params(e, op);
            maxpool2d_forward_cuda(y, e->argmax[i], x, &p, ctx);
            break;
        }
        case XRESNET_OP_AVGPOOL: {
            pool2d_params_t p = s_pool_params(e, op);
            avgpool2d_forward_cuda(y, x, &p, ctx);
            break;
        }
        case XRESNET_OP_ADD_RELU:
            relu_add_forward_cuda(y, x, e->data[op->in1], &rp, ctx);
            break;
        case XRESNET_OP_GAP: {
            const xresnet_shape_t *si = &e->shapes[op->in0];
            adaptive_avgpool_params_t p = {.n = e->n, .h = si->h, .w = si->w, .c = si->c,
                                           .dtype = e->dtype};
            adaptive_avgpool_forward_cuda(y, x, &p, ctx);
            break;
        }
        case XRESNET_OP_DROPOUT: {
            size_t c = s_count(e, op->out);
            bool active = args->train && net->cfg.dropout > 0.0f;
            if (active) {
                exec_cpu_dropout_mask(e->mask[i], c, net->cfg.dropout, args->dropout_seed,
                                      args->dropout_index);
                s_dropout_host(e, y, x, e->mask[i], c);
            } else {
                CUDA_CHECK(cudaMemcpyAsync(y, x, c * e->esz, cudaMemcpyDeviceToDevice,
                                           ctx->stream));
            }
            break;
        }
        case XRESNET_OP_LINEAR: {
            linear_params_t p = {.n = e->n, .in = op->c_in, .out = op->c_out, .dtype = e->dtype};
            linear_forward_cuda(y, x, s_weight(e, op->param),
                                e->params + net->params[op->param + 1].offset, &p, ctx);
            break;
        }
        }
    }
    s_download(e, logits, e->data[net->ops[net->n_ops - 1].out],
               (size_t)e->n * net->cfg.n_out);
}

static void *s_contrib_target(exec_t *e, int v, int i)
{
    return e->first_consumer[v] == i ? e->diff[v] : e->tmp;
}

static void s_contrib_finish(exec_t *e, int v, int i)
{
    if (e->first_consumer[v] == i) return;
    add_params_t p = {.count = s_count(e, v), .dtype = e->dtype};
    add_forward_cuda(e->diff[v], e->diff[v], e->tmp, &p, e->ctx);
}

// The gradient of a conv/linear weight: into the fp32 buffer directly, or
// through the bf16 buffer and a cast.
static void *s_wgrad(exec_t *e, int param)
{
    size_t off = e->net->params[param].offset;
    return e->grads_lp ? (void *)(e->grads_lp + off) : (void *)(e->grads + off);
}

static void s_wgrad_finish(exec_t *e, int param)
{
    if (!e->grads_lp) return;
    const xresnet_param_t *p = &e->net->params[param];
    cast_params_t cp = {.count = p->numel};
    cast_bf16_to_f32_cuda(e->grads + p->offset, e->grads_lp + p->offset, &cp, e->ctx);
}

static void s_backward(exec_t *e, const float *dlogits)
{
    NF_CHECK(e->n > 0, "cuda: backward before plan");
    const xresnet_t *net = e->net;
    cuda_ctx_t *ctx = e->ctx;
    s_upload(e, e->diff[net->ops[net->n_ops - 1].out], dlogits, (size_t)e->n * net->cfg.n_out);
    for (int i = net->n_ops - 1; i >= 0; i--) {
        const xresnet_op_t *op = &net->ops[i];
        void *dy = e->diff[op->out];
        const void *x = e->data[op->in0];
        relu_params_t rp = {.count = s_count(e, op->out), .dtype = e->dtype};
        switch (op->kind) {
        case XRESNET_OP_CONV: {
            conv2d_params_t p = s_conv_params(e, op);
            conv2d_backward_weights_cuda(s_wgrad(e, op->param), dy, x, &p, ctx);
            s_wgrad_finish(e, op->param);
            if (op->in0 == 0) break;
            conv2d_backward_data_cuda(s_contrib_target(e, op->in0, i), dy,
                                      s_weight(e, op->param), &p, ctx);
            s_contrib_finish(e, op->in0, i);
            break;
        }
        case XRESNET_OP_BN: {
            batchnorm2d_params_t p = s_bn_params(e, op);
            if (op->relu) relu_backward_cuda(dy, dy, e->data[op->out], &rp, ctx);
            batchnorm2d_backward_cuda(s_contrib_target(e, op->in0, i),
                                      e->grads + net->params[op->param].offset,
                                      e->grads + net->params[op->param + 1].offset, dy, x,
                                      e->params + net->params[op->param].offset, e->aux[i],
                                      e->aux[i] + op->c_out, &p, ctx);
            s_contrib_finish(e, op->in0, i);
            break;
        }
        case XRESNET_OP_MAXPOOL: {
            pool2d_params_t p = s_pool_params(e, op);
            maxpool2d_backward_cuda(s_contrib_target(e, op->in0, i), dy, e->argmax[i], &p, ctx);
            s_contrib_finish(e, op->in0, i);
            break;
        }
        case XRESNET_OP_AVGPOOL: {
            pool2d_params_t p = s_pool_params(e, op);
            avgpool2d_backward_cuda(s_contrib_target(e, op->in0, i), dy, &p, ctx);
            s_contrib_finish(e, op->in0, i);
            break;
        }
        case XRESNET_OP_ADD_RELU: {
            relu_backward_cuda(dy, dy, e->data[op->out], &rp, ctx);
            int ins[2] = {op->in0, op->in1};
            for (int k = 0; k < 2; k++) {
                CUDA_CHECK(cudaMemcpyAsync(s_contrib_target(e, ins[k], i), dy,
                                           s_count(e, ins[k]) * e->esz, cudaMemcpyDeviceToDevice,
                                           ctx->stream));
                s_contrib_finish(e, ins[k], i);
            }
            break;
        }
        case XRESNET_OP_GAP: {
            const xresnet_shape_t *si = &e->shapes[op->in0];
            adaptive_avgpool_params_t p = {.n = e->n, .h = si->h, .w = si->w, .c = si->c,
                                           .dtype = e->dtype};
            adaptive_avgpool_backward_cuda(s_contrib_target(e, op->in0, i), dy, &p, ctx);
            s_contrib_finish(e, op->in0, i);
            break;
        }
        case XRESNET_OP_DROPOUT:
            s_dropout_host(e, s_contrib_target(e, op->in0, i), dy, e->mask[i],
                           s_count(e, op->out));
            s_contrib_finish(e, op->in0, i);
            break;
        case XRESNET_OP_LINEAR: {
            linear_params_t p = {.n = e->n, .in = op->c_in, .out = op->c_out, .dtype = e->dtype};
            linear_backward_cuda(s_contrib_target(e, op->in0, i), s_wgrad(e, op->param),
                                 e->grads + net->params[op->param + 1].offset, dy, x,
                                 s_weight(e, op->param), &p, ctx);
            s_wgrad_finish(e, op->param);
            s_contrib_finish(e, op->in0, i);
            break;
        }
        }
    }
}

// ---------------------------------------------------------------------------
// state

static void s_refresh_lp(exec_t *e)
{
    if (!e->params_lp) return;
    cast_params_t cp = {.count = e->net->n_param_floats};
    cast_f32_to_bf16_cuda(e->params_lp, e->params, &cp, e->ctx);
}

static void s_copy(exec_t *e, void *dst, const void *src, size_t floats, enum cudaMemcpyKind kind)
{
    CUDA_CHECK(cudaMemcpyAsync(dst, src, floats * sizeof(float), kind, e->ctx->stream));
}

static void s_state_write(exec_t *e, const exec_state_t *host)
{
    size_t np = e->net->n_param_floats, nb = e->net->n_bn_floats;
    if (host->params) s_copy(e, e->params, host->params, np, cudaMemcpyHostToDevice);
    if (host->adam_m) s_copy(e, e->adam_m, host->adam_m, np, cudaMemcpyHostToDevice);
    if (host->adam_v) s_copy(e, e->adam_v, host->adam_v, np, cudaMemcpyHostToDevice);
    if (host->run_mean) s_copy(e, e->run_mean, host->run_mean, nb, cudaMemcpyHostToDevice);
    if (host->run_var) s_copy(e, e->run_var, host->run_var, nb, cudaMemcpyHostToDevice);
    if (host->params) s_refresh_lp(e);
    cuda_ctx_sync(e->ctx);
}

static void s_state_read(exec_t *e, const exec_state_t *host)
{
    size_t np = e->net->n_param_floats, nb = e->net->n_bn_floats;
    if (host->params) s_copy(e, host->params, e->params, np, cudaMemcpyDeviceToHost);
    if (host->adam_m) s_copy(e, host->adam_m, e->adam_m, np, cudaMemcpyDeviceToHost);
    if (host->adam_v) s_copy(e, host->adam_v, e->adam_v, np, cudaMemcpyDeviceToHost);
    if (host->run_mean) s_copy(e, host->run_mean, e->run_mean, nb, cudaMemcpyDeviceToHost);
    if (host->run_var) s_copy(e, host->run_var, e->run_var, nb, cudaMemcpyDeviceToHost);
    cuda_ctx_sync(e->ctx);
}

static void s_grads_read(exec_t *e, float *grads)
{
    s_copy(e, grads, e->grads, e->net->n_param_floats, cudaMemcpyDeviceToHost);
    cuda_ctx_sync(e->ctx);
}

static void s_adam_step(exec_t *e, const adam_params_t *hp)
{
    adam_params_t p = *hp;
    p.count = e->net->n_param_floats;
    adam_step_cuda(e->params, e->adam_m, e->adam_v, e->params_lp, e->grads, e->do_wd, &p, e->ctx);
}

static void s_adam_reset(exec_t *e)
{
    size_t bytes = e->net->n_param_floats * sizeof(float);
    CUDA_CHECK(cudaMemsetAsync(e->adam_m, 0, bytes, e->ctx->stream));
    CUDA_CHECK(cudaMemsetAsync(e->adam_v, 0, bytes, e->ctx->stream));
}

// ---------------------------------------------------------------------------
// lifetime

static exec_t *s_create(const exec_config_t *cfg)
{
    if (cuda_device_count() < 1) {
        nf_log_error("cuda: no usable CUDA device");
        return NULL;
    }
    cuda_ctx_config_t cc = {.device = cfg->device};
    cuda_ctx_t *ctx = cuda_ctx_new(&cc);
    if (!ctx) return NULL;
    exec_t *e = nf_xcalloc(1, sizeof(*e));
    e->cfg = *cfg;
    e->net = cfg->net;
    e->ctx = ctx;
    e->dtype = cfg->bf16 ? KDTYPE_BF16 : KDTYPE_F32;
    e->esz = kdtype_size(e->dtype);
    const xresnet_t *net = cfg->net;
    size_t np = net->n_param_floats, nb = net->n_bn_floats;
    e->params = s_dalloc(np * sizeof(float));
    e->grads = s_dalloc(np * sizeof(float));
    e->adam_m = s_dalloc(np * sizeof(float));
    e->adam_v = s_dalloc(np * sizeof(float));
    e->run_mean = s_dalloc(nb * sizeof(float));
    e->run_var = s_dalloc(nb * sizeof(float));
    e->do_wd = s_dalloc(np);
    if (cfg->bf16) {
        e->params_lp = s_dalloc(np * sizeof(uint16_t));
        e->grads_lp = s_dalloc(np * sizeof(uint16_t));
    }
    // the mask of decayed elements (conv and linear weights), and running
    // var 1 (PyTorch's init)
    uint8_t *mask = nf_xcalloc(np ? np : 1, 1);
    for (int t = 0; t < net->n_params; t++)
        if (net->params[t].do_wd) memset(mask + net->params[t].offset, 1, net->params[t].numel);
    float *ones = nf_xmalloc((nb ? nb : 1) * sizeof(float));
    for (size_t i = 0; i < nb; i++) ones[i] = 1.0f;
    CUDA_CHECK(cudaMemcpy(e->do_wd, mask, np, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(e->run_var, ones, nb * sizeof(float), cudaMemcpyHostToDevice));
    free(mask);
    free(ones);
    return e;
}

static void s_destroy(exec_t **self_p)
{
    if (!self_p || !*self_p) return;
    exec_t *e = *self_p;
    s_plan_free(e);
    s_dfree(e->params);
    s_dfree(e->grads);
    s_dfree(e->adam_m);
    s_dfree(e->adam_v);
    s_dfree(e->run_mean);
    s_dfree(e->run_var);
    s_dfree(e->do_wd);
    s_dfree(e->params_lp);
    s_dfree(e->grads_lp);
    free(e->host_buf);
    free(e->host_lp);
    cuda_ctx_destroy(&e->ctx);
    free(e);
    *self_p = NULL;
}

const exec_backend_t exec_cuda_backend = {
    .name = "cuda",
    .create = s_create,
    .destroy = s_destroy,
    .plan = s_plan,
    .state_write = s_state_write,
    .state_read = s_state_read,
    .forward = s_forward,
    .backward = s_backward,
    .grads_read = s_grads_read,
    .adam_step = s_adam_step,
    .adam_reset = s_adam_reset,
};

const exec_backend_t *exec_cuda_table(void) { return &exec_cuda_backend; }
