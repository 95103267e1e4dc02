/*
 * exec_ref.c: the reference executor. It walks the xresnet op list and runs
 * the kernels' plain-loop `_cpu` ops on NHWC buffers, one buffer per
 * activation and one per gradient, nothing fused or shared. It is the
 * oracle the onednn and cuda executors are tested against, and the
 * executor of the golden full-step test; it is not meant to be fast.
 *
 * Gradient flow: backward runs the ops in reverse; the first contribution
 * to a value's gradient (from its last consumer) is written, later ones
 * (the residual block's input feeds two paths) are added with add_forward_cpu.
 */
#include "exec.h"
#include "exec_cpu.h"

#include "adaptive_avgpool.h"
#include "add.h"
#include "avgpool2d.h"
#include "batchnorm2d.h"
#include "check.h"
#include "conv2d.h"
#include "linear.h"
#include "log.h"
#include "maxpool2d.h"
#include "relu.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct exec_t {
    exec_config_t cfg;
    const xresnet_t *net;
    exec_cpu_state_t st;
    // the plan (n == 0: none)
    int n, h, w;
    xresnet_shape_t *shapes;  // (n_values)
    float **data;             // (n_values) activations, NHWC; data[0] = the caller's images
    float **diff;             // (n_values) gradients (NULL for the image)
    int *first_consumer;      // (n_values)
    float **aux;              // (n_ops) BN: saved mean then invstd (2C); dropout: mask
    int32_t **argmax;         // (n_ops) max pool
    float *tmp;               // largest activation: a gradient contribution being added
};

static size_t s_count(const exec_t *e, int v)
{
    const xresnet_shape_t *s = &e->shapes[v];
    return (size_t)e->n * s->c * s->h * s->w;
}

static float *s_zalloc(size_t n)
{
    float *p = nf_xaligned((n ? n : 1) * sizeof(float));
    memset(p, 0, (n ? n : 1) * sizeof(float));
    return p;
}

static void s_plan_free(exec_t *e)
{
    if (!e->shapes) return;
    for (int v = 1; v < e->net->n_values; v++) {
        free(e->data[v]);
        free(e->diff[v]);
    }
    for (int i = 0; i < e->net->n_ops; i++) {
        free(e->aux[i]);
        free(e->argmax[i]);
    }
    free(e->data);
    free(e->diff);
    free(e->first_consumer);
    free(e->aux);
    free(e->argmax);
    free(e->tmp);
    free(e->shapes);
    e->shapes = NULL;
    e->n = e->h = e->w = 0;
}

static int s_plan(exec_t *e, int n, int h, int w)
{
    if (e->n == n && e->h == h && e->w == w) return 0;
    const xresnet_t *net = e->net;
    xresnet_shape_t *shapes = nf_xmalloc((size_t)net->n_values * sizeof(*shapes));
    if (n < 1 || xresnet_shapes(net, h, w, shapes) != 0) {
        nf_log_error("ref: cannot plan %s for %d images of %dx%d", net->arch, n, h, w);
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
    size_t biggest = 0;
    for (int v = 1; v < nv; v++) {
        size_t c = s_count(e, v);
        e->data[v] = s_zalloc(c);
        e->diff[v] = s_zalloc(c);
        if (c > biggest) biggest = c;
    }
    e->tmp = s_zalloc(biggest);
    for (int v = 0; v < nv; v++) e->first_consumer[v] = -1;
    for (int i = 0; i < no; i++) {
        const xresnet_op_t *op = &net->ops[i];
        e->first_consumer[op->in0] = i;
        if (op->in1 >= 0) e->first_consumer[op->in1] = i;
        if (op->kind == XRESNET_OP_BN) e->aux[i] = s_zalloc(2 * (size_t)op->c_out);
        if (op->kind == XRESNET_OP_DROPOUT) {
            e->aux[i] = s_zalloc(s_count(e, op->out));
            exec_cpu_dropout_mask(e->aux[i], s_count(e, op->out), 0.0f, 0, 0);
        }
        if (op->kind == XRESNET_OP_MAXPOOL) {
            size_t c = s_count(e, op->out);
            e->argmax[i] = nf_xaligned((c ? c : 1) * sizeof(int32_t));
        }
    }
    return 0;
}

// ---------------------------------------------------------------------------
// op parameter structs

static conv2d_params_t s_conv_params(const exec_t *e, const xresnet_op_t *op)
{
    const xresnet_shape_t *si = &e->shapes[op->in0];
    return (conv2d_params_t){.n = e->n, .h = si->h, .w = si->w, .c_in = op->c_in,
                             .c_out = op->c_out, .kh = op->k, .kw = op->k,
                             .stride = op->stride, .pad = op->pad, .dtype = KDTYPE_F32};
}

static pool2d_params_t s_pool_params(const exec_t *e, const xresnet_op_t *op)
{
    const xresnet_shape_t *si = &e->shapes[op->in0];
    return (pool2d_params_t){.n = e->n, .h = si->h, .w = si->w, .c = si->c, .kh = op->k,
                             .kw = op->k, .stride = op->stride, .pad = op->pad,
                             .ceil_mode = op->kind == XRESNET_OP_AVGPOOL,
                             .count_include_pad = true, .dtype = KDTYPE_F32};
}

static batchnorm2d_params_t s_bn_params(const exec_t *e, const xresnet_op_t *op)
{
    const xresnet_shape_t *si = &e->shapes[op->in0];
    return batchnorm2d_default_params(e->n, si->h, si->w, si->c);
}

// ---------------------------------------------------------------------------
// forward

static void s_forward(exec_t *e, const exec_forward_t *args, float *logits)
{
    NF_CHECK(e->n > 0, "ref: forward before plan");
    const xresnet_t *net = e->net;
    exec_cpu_state_t *st = &e->st;
    e->data[0] = (float *)args->x;
    for (int i = 0; i < net->n_ops; i++) {
        const xresnet_op_t *op = &net->ops[i];
        const float *x = e->data[op->in0];
        float *y = e->data[op->out];
        const float *w = op->param >= 0 ? st->params + net->params[op->param].offset : NULL;
        relu_params_t rp = {.count = s_count(e, op->out), .dtype = KDTYPE_F32};
        switch (op->kind) {
        case XRESNET_OP_CONV: {
            conv2d_params_t p = s_conv_params(e, op);
            conv2d_forward_cpu(y, x, w, &p);
            break;
        }
        case XRESNET_OP_BN: {
            batchnorm2d_params_t p = s_bn_params(e, op);
            const float *b = st->params + net->params[op->param + 1].offset;
            const xresnet_bn_t *bn = &net->bns[op->bn];
            if (args->train)
                batchnorm2d_forward_train_cpu(y, e->aux[i], e->aux[i] + op->c_out,
                                              st->run_mean + bn->offset, st->run_var + bn->offset,
                                              x, w, b, &p);
            else
                batchnorm2d_forward_eval_cpu(y, x, w, b, st->run_mean + bn->offset,
                                             st->run_var + bn->offset, &p);
            if (op->relu) relu_forward_cpu(y, y, &rp);
            break;
        }
        case XRESNET_OP_MAXPOOL: {
            pool2d_params_t p = s_pool_params(e, op);
            maxpool2d_forward_cpu(y, e->argmax[i], x, &p);
            break;
        }
        case XRESNET_OP_AVGPOOL: {
            pool2d_params_t p = s_pool_params(e, op);
            avgpool2d_forward_cpu(y, x, &p);
            break;
        }
        case XRESNET_OP_ADD_RELU:
            relu_add_forward_cpu(y, x, e->data[op->in1], &rp);
            break;
        case XRESNET_OP_GAP: {
            const xresnet_shape_t *si = &e->shapes[op->in0];
            adaptive_avgpool_params_t p = {.n = e->n, .h = si->h, .w = si->w, .c = si->c};
            adaptive_avgpool_forward_cpu(y, x, &p);
            break;
        }
        case XRESNET_OP_DROPOUT: {
            size_t c = s_count(e, op->out);
            float *mask = e->aux[i];
            if (args->train && net->cfg.dropout > 0.0f)
                exec_cpu_dropout_mask(mask, c, net->cfg.dropout, args->dropout_seed,
                                      args->dropout_index);
            for (size_t k = 0; k < c; k++) y[k] = args->train ? x[k] * mask[k] : x[k];
            break;
        }
        case XRESNET_OP_LINEAR: {
            linear_params_t p = {.n = e->n, .in = op->c_in, .out = op->c_out};
            linear_forward_cpu(y, x, w, st->params + net->params[op->param + 1].offset, &p);
            break;
        }
        }
    }
    memcpy(logits, e->data[net->ops[net->n_ops - 1].out],
           (size_t)e->n * net->cfg.n_out * sizeof(float));
}

// ---------------------------------------------------------------------------
// backward

// Where op i writes its contribution to d(loss)/d(value v): the gradient
// itself for the first contribution, else the scratch buffer (then added).
static float *s_contrib_target(exec_t *e, int v, int i)
{
    return e->first_consumer[v] == i ? e->diff[v] : e->tmp;
}

static void s_contrib_finish(exec_t *e, int v, int i)
{
    if (e->first_consumer[v] == i) return;
    add_params_t p = {.count = s_count(e, v), .dtype = KDTYPE_F32};
    add_forward_cpu(e->diff[v], e->diff[v], e->tmp, &p);
}

static void s_backward(exec_t *e, const float *dlogits)
{
    NF_CHECK(e->n > 0, "ref: backward before plan");
    const xresnet_t *net = e->net;
    exec_cpu_state_t *st = &e->st;
    memcpy(e->diff[net->ops[net->n_ops - 1].out], dlogits,
           (size_t)e->n * net->cfg.n_out * sizeof(float));
    for (int i = net->n_ops - 1; i >= 0; i--) {
        const xresnet_op_t *op = &net->ops[i];
        float *dy = e->diff[op->out];
        const float *x = e->data[op->in0];
        const float *w = op->param >= 0 ? st->params + net->params[op->param].offset : NULL;
        float *dw = op->param >= 0 ? st->grads + net->params[op->param].offset : NULL;
        relu_params_t rp = {.count = s_count(e, op->out), .dtype = KDTYPE_F32};
        switch (op->kind) {
        case XRESNET_OP_CONV: {
            conv2d_params_t p = s_conv_params(e, op);
            conv2d_backward_weights_cpu(dw, dy, x, &p);
            if (op->in0 == 0) break;  // the image needs no gradient
            conv2d_backward_data_cpu(s_contrib_target(e, op->in0, i), dy, w, &p);
            s_contrib_finish(e, op->in0, i);
            break;
        }
        case XRESNET_OP_BN: {
            batchnorm2d_params_t p = s_bn_params(e, op);
            if (op->relu) relu_backward_cpu(dy, dy, e->data[op->out], &rp);
            batchnorm2d_backward_cpu(s_contrib_target(e, op->in0, i), dw,
                                     st->grads + net->params[op->param + 1].offset, dy, x, w,
                                     e->aux[i], e->aux[i] + op->c_out, &p);
            s_contrib_finish(e, op->in0, i);
            break;
        }
        case XRESNET_OP_MAXPOOL: {
            pool2d_params_t p = s_pool_params(e, op);
            maxpool2d_backward_cpu(s_contrib_target(e, op->in0, i), dy, e->argmax[i], &p);
            s_contrib_finish(e, op->in0, i);
            break;
        }
        case XRESNET_OP_AVGPOOL: {
            pool2d_params_t p = s_pool_params(e, op);
            avgpool2d_backward_cpu(s_contrib_target(e, op->in0, i), dy, &p);
            s_contrib_finish(e, op->in0, i);
            break;
        }
        case XRESNET_OP_ADD_RELU: {
            relu_backward_cpu(dy, dy, e->data[op->out], &rp);
            int ins[2] = {op->in0, op->in1};
            for (int k = 0; k < 2; k++) {
                memcpy(s_contrib_target(e, ins[k], i), dy, s_count(e, ins[k]) * sizeof(float));
                s_contrib_finish(e, ins[k], i);
            }
            break;
        }
        case XRESNET_OP_GAP: {
            const xresnet_shape_t *si = &e->shapes[op->in0];
            adaptive_avgpool_params_t p = {.n = e->n, .h = si->h, .w = si->w, .c = si->c};
            adaptive_avgpool_backward_cpu(s_contrib_target(e, op->in0, i), dy, &p);
            s_contrib_finish(e, op->in0, i);
            break;
        }
        case XRESNET_OP_DROPOUT: {
            float *dx = s_contrib_target(e, op->in0, i);
            const float *mask = e->aux[i];
            for (size_t k = 0; k < s_count(e, op->out); k++) dx[k] = dy[k] * mask[k];
            s_contrib_finish(e, op->in0, i);
            break;
        }
        case XRESNET_OP_LINEAR: {
            linear_params_t p = {.n = e->n, .in = op->c_in, .out = op->c_out};
            linear_backward_cpu(s_contrib_target(e, op->in0, i), dw,
                                st->grads + net->params[op->param + 1].offset, dy, x, w, &p);
            s_contrib_finish(e, op->in0, i);
            break;
        }
        }
    }
}

// ---------------------------------------------------------------------------
// the backend table

static exec_t *s_create(const exec_config_t *cfg)
{
    exec_t *e = nf_xcalloc(1, sizeof(*e));
    e->cfg = *cfg;
    e->net = cfg->net;
    if (cfg->threads > 0) omp_set_num_threads(cfg->threads);
    exec_cpu_state_init(&e->st, cfg->net);
    return e;
}

static void s_destroy(exec_t **self_p)
{
    if (!self_p || !*self_p) return;
    exec_t *e = *self_p;
    s_plan_free(e);
    exec_cpu_state_free(&e->st);
    free(e);
    *self_p = NULL;
}

static void s_state_write(exec_t *e, const exec_state_t *host)
{
    exec_cpu_state_write(&e->st, host);
}
static void s_state_read(exec_t *e, const exec_state_t *host) { exec_cpu_state_read(&e->st, host); }

static void s_grads_read(exec_t *e, float *grads)
{
    memcpy(grads, e->st.grads, e->net->n_param_floats * sizeof(float));
}

static void s_adam_step(exec_t *e, const adam_params_t *hp) { exec_cpu_adam_step(&e->st, hp); }
static void s_adam_reset(exec_t *e) { exec_cpu_adam_reset(&e->st); }

const exec_backend_t exec_ref_backend = {
    .name = "ref",
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
