/*
 * xresnet.c: builds the xresnet18/34/50 op list the way fastai v2's XResNet
 * constructs its modules (fastai-spec.md §5), names every parameter with its
 * fastai state_dict key, lays parameters out in one flat buffer, initialises
 * them as fastai's init_cnn does, infers shapes and prints learn.summary().
 *
 * It does not run the network: executors (trainer/exec_*.c) walk the ops.
 */
#include "xresnet.h"

#include "check.h"
#include "log.h"
#include "rng.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

// Parameter offsets are rounded up to this many floats (64 bytes).
#define S_ALIGN_FLOATS 16

typedef struct {
    xresnet_t *net;
    int cap_ops, cap_params, cap_bns;
} s_builder_t;

// ---------------------------------------------------------------------------
// builder helpers

// snprintf into a name buffer; a name that does not fit is a bug here.
NF_PRINTF(2, 3) static void s_name(char buf[XRESNET_MAX_NAME], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, XRESNET_MAX_NAME, fmt, ap);
    va_end(ap);
    NF_CHECK(n >= 0 && n < XRESNET_MAX_NAME, "module name too long");
}

static int s_new_value(s_builder_t *b) { return b->net->n_values++; }

static xresnet_op_t *s_push_op(s_builder_t *b, xresnet_op_kind_t kind, int in0, int in1)
{
    xresnet_t *n = b->net;
    if (n->n_ops == b->cap_ops) {
        b->cap_ops = b->cap_ops ? 2 * b->cap_ops : 64;
        n->ops = nf_xrealloc(n->ops, (size_t)b->cap_ops * sizeof(*n->ops));
    }
    xresnet_op_t *op = &n->ops[n->n_ops++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->in0 = in0;
    op->in1 = in1;
    op->out = s_new_value(b);
    op->param = -1;
    op->bn = -1;
    return op;
}

static int s_push_param(s_builder_t *b, const char *name, xresnet_param_kind_t kind, int ndim,
                        const int *shape, const int *torch_shape)
{
    xresnet_t *n = b->net;
    if (n->n_params == b->cap_params) {
        b->cap_params = b->cap_params ? 2 * b->cap_params : 128;
        n->params = nf_xrealloc(n->params, (size_t)b->cap_params * sizeof(*n->params));
    }
    xresnet_param_t *p = &n->params[n->n_params];
    memset(p, 0, sizeof(*p));
    NF_CHECK(strlen(name) < XRESNET_MAX_NAME, "parameter name too long: %s", name);
    strcpy(p->name, name);
    p->kind = kind;
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->torch_shape[i] = torch_shape[i];
        p->numel *= (size_t)shape[i];
    }
    p->offset = n->n_param_floats;
    n->n_param_floats += (p->numel + S_ALIGN_FLOATS - 1) / S_ALIGN_FLOATS * S_ALIGN_FLOATS;
    n->n_trainable += p->numel;
    p->do_wd = kind == XRESNET_PARAM_CONV_W || kind == XRESNET_PARAM_LINEAR_W;
    p->op = n->n_ops - 1;
    return n->n_params++;
}

// fastai ConvLayer(ni, nf, ks, stride, act): conv (key "<prefix>.0") -> BN
// ("<prefix>.1") [-> ReLU]. Returns the output value.
static int s_conv_layer(s_builder_t *b, const char *prefix, int in, int ni, int nf, int ks,
                        int stride, bool act, bool zero_bn)
{
    char name[XRESNET_MAX_NAME];
    xresnet_op_t *conv = s_push_op(b, XRESNET_OP_CONV, in, -1);
    conv->c_in = ni;
    conv->c_out = nf;
    conv->k = ks;
    conv->stride = stride;
    conv->pad = (ks - 1) / 2;
    s_name(name, "%s.0.weight", prefix);
    int shape[4] = {nf, ks, ks, ni}, tshape[4] = {nf, ni, ks, ks};
    conv->param = s_push_param(b, name, XRESNET_PARAM_CONV_W, 4, shape, tshape);
    int conv_out = conv->out;

    xresnet_op_t *bn = s_push_op(b, XRESNET_OP_BN, conv_out, -1);
    bn->c_in = bn->c_out = nf;
    bn->relu = act;
    bn->zero_bn = zero_bn;
    int c[1] = {nf};
    s_name(name, "%s.1.weight", prefix);
    bn->param = s_push_param(b, name, XRESNET_PARAM_BN_W, 1, c, c);
    s_name(name, "%s.1.bias", prefix);
    s_push_param(b, name, XRESNET_PARAM_BN_B, 1, c, c);

    xresnet_t *n = b->net;
    if (n->n_bn == b->cap_bns) {
        b->cap_bns = b->cap_bns ? 2 * b->cap_bns : 64;
        n->bns = nf_xrealloc(n->bns, (size_t)b->cap_bns * sizeof(*n->bns));
    }
    xresnet_bn_t *rec = &n->bns[n->n_bn];
    s_name(rec->prefix, "%s.1", prefix);
    rec->c = nf;
    rec->offset = n->n_bn_floats;
    n->n_bn_floats += (size_t)nf;
    bn->bn = n->n_bn++;
    return bn->out;
}

// fastai ResBlock(expansion, ni, nf, stride) with ReLU and AvgPool shortcut.
static int s_res_block(s_builder_t *b, const char *prefix, int in, int e, int ni, int nf,
                       int stride)
{
    char name[XRESNET_MAX_NAME];
    int nh = nf;
    nf *= e;
    ni *= e;
    int x = in;
    if (e == 1) {
        s_name(name, "%s.convpath.0", prefix);
        x = s_conv_layer(b, name, x, ni, nh, 3, stride, true, false);
        s_name(name, "%s.convpath.1", prefix);
        x = s_conv_layer(b, name, x, nh, nf, 3, 1, false, true);
    } else {
        s_name(name, "%s.convpath.0", prefix);
        x = s_conv_layer(b, name, x, ni, nh, 1, 1, true, false);
        s_name(name, "%s.convpath.1", prefix);
        x = s_conv_layer(b, name, x, nh, nh, 3, stride, true, false);
        s_name(name, "%s.convpath.2", prefix);
        x = s_conv_layer(b, name, x, nh, nf, 1, 1, false, true);
    }
    int sc = in, idx = 0;
    if (stride != 1) {
        xresnet_op_t *pool = s_push_op(b, XRESNET_OP_AVGPOOL, sc, -1);
        pool->c_in = pool->c_out = ni;
        pool->k = 2;
        pool->stride = 2;
        sc = pool->out;
        idx++;
    }
    if (ni != nf) {
        s_name(name, "%s.idpath.%d", prefix, idx);
        sc = s_conv_layer(b, name, sc, ni, nf, 1, 1, false, false);
    }
    xresnet_op_t *add = s_push_op(b, XRESNET_OP_ADD_RELU, x, sc);
    add->c_in = add->c_out = nf;
    add->id_shortcut = sc == in;
    return add->out;
}

// ---------------------------------------------------------------------------
// construction

xresnet_t *xresnet_new(const xresnet_config_t *cfg)
{
    static const struct {
        const char *name;
        int expansion;
        int layers[4];
    } archs[] = {
        {"xresnet18", 1, {2, 2, 2, 2}},
        {"xresnet34", 1, {3, 4, 6, 3}},
        {"xresnet50", 4, {3, 4, 6, 3}},
    };
    int a = -1;
    for (int i = 0; i < (int)NF_ARRAY_LEN(archs); i++)
        if (cfg->arch && strcmp(cfg->arch, archs[i].name) == 0) a = i;
    if (a < 0) {
        nf_log_error("unknown arch '%s' (xresnet18, xresnet34, xresnet50)",
                     cfg->arch ? cfg->arch : "(null)");
        return NULL;
    }
    if (cfg->n_out <= 0 || cfg->c_in <= 0 || !(cfg->dropout >= 0.0f && cfg->dropout < 1.0f)) {
        nf_log_error("bad xresnet config: n_out %d, c_in %d, dropout %g", cfg->n_out, cfg->c_in,
                     (double)cfg->dropout);
        return NULL;
    }
    xresnet_t *net = nf_xcalloc(1, sizeof(*net));
    net->cfg = *cfg;
    snprintf(net->arch, sizeof(net->arch), "%s", archs[a].name);
    net->cfg.arch = net->arch;
    net->expansion = archs[a].expansion;
    memcpy(net->layers, archs[a].layers, sizeof(net->layers));
    s_builder_t b = {.net = net};

    int x = s_new_value(&b);  // value 0: the image
    // stem: ConvLayer(3->32, s2), ConvLayer(32->32), ConvLayer(32->64), MaxPool(3, 2, 1)
    static const int stem[4] = {0, 32, 32, 64};
    char name[XRESNET_MAX_NAME];
    for (int i = 0; i < 3; i++) {
        s_name(name, "%d", i);
        int ni = i == 0 ? cfg->c_in : stem[i];
        x = s_conv_layer(&b, name, x, ni, stem[i + 1], 3, i == 0 ? 2 : 1, true, false);
    }
    xresnet_op_t *mp = s_push_op(&b, XRESNET_OP_MAXPOOL, x, -1);
    mp->c_in = mp->c_out = 64;
    mp->k = 3;
    mp->stride = 2;
    mp->pad = 1;
    x = mp->out;

    // stages: block_szs = [64/e, 64, 128, 256, 512]
    int e = net->expansion;
    int szs[5] = {64 / e, 64, 128, 256, 512};
    for (int s = 0; s < 4; s++) {
        for (int j = 0; j < net->layers[s]; j++) {
            s_name(name, "%d.%d", 4 + s, j);
            int ni = j == 0 ? szs[s] : szs[s + 1];
            int stride = (j == 0 && s > 0) ? 2 : 1;
            x = s_res_block(&b, name, x, e, ni, szs[s + 1], stride);
        }
    }

    // head: AdaptiveAvgPool2d(1) (8), Flatten (9), Dropout (10), Linear (11)
    int nf = 512 * e;
    xresnet_op_t *gap = s_push_op(&b, XRESNET_OP_GAP, x, -1);
    gap->c_in = gap->c_out = nf;
    xresnet_op_t *drop = s_push_op(&b, XRESNET_OP_DROPOUT, gap->out, -1);
    drop->c_in = drop->c_out = nf;
    xresnet_op_t *lin = s_push_op(&b, XRESNET_OP_LINEAR, drop->out, -1);
    lin->c_in = nf;
    lin->c_out = cfg->n_out;
    int wshape[2] = {cfg->n_out, nf}, bshape[1] = {cfg->n_out};
    lin->param = s_push_param(&b, "11.weight", XRESNET_PARAM_LINEAR_W, 2, wshape, wshape);
    s_push_param(&b, "11.bias", XRESNET_PARAM_LINEAR_B, 1, bshape, bshape);
    return net;
}

void xresnet_destroy(xresnet_t **self_p)
{
    if (!self_p || !*self_p) return;
    xresnet_t *net = *self_p;
    free(net->ops);
    free(net->params);
    free(net->bns);
    free(net);
    *self_p = NULL;
}

// ---------------------------------------------------------------------------
// shapes

// PyTorch pooling output size (dilation 1), with ceil_mode's rule that the
// last window must start inside the input or left padding.
static int s_pool_out(int in, int k, int s, int p, bool ceil_mode)
{
    int num = in + 2 * p - k;
    int out = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + p) out--;
    return out;
}

int xresnet_shapes(const xresnet_t *net, int h, int w, xresnet_shape_t *shapes)
{
    if (h < 1 || w < 1) return -1;
    shapes[0] = (xresnet_shape_t){net->cfg.c_in, h, w};
    for (int i = 0; i < net->n_ops; i++) {
        const xresnet_op_t *op = &net->ops[i];
        xresnet_shape_t s = shapes[op->in0];
        switch (op->kind) {
        case XRESNET_OP_CONV:
            if (s.h + 2 * op->pad < op->k || s.w + 2 * op->pad < op->k) return -1;
            s.h = (s.h + 2 * op->pad - op->k) / op->stride + 1;
            s.w = (s.w + 2 * op->pad - op->k) / op->stride + 1;
            break;
        case XRESNET_OP_MAXPOOL:
        case XRESNET_OP_AVGPOOL: {
            bool ceil_mode = op->kind == XRESNET_OP_AVGPOOL;
            // PyTorch also pools a 1x1 input with the 2x2 ceil-mode window; the
            // kernels' pool2d requires the window to fit the padded input, so
            // such tiny images (under ~17 px for xresnet) are refused here
            if (s.h + 2 * op->pad < op->k || s.w + 2 * op->pad < op->k) return -1;
            s.h = s_pool_out(s.h, op->k, op->stride, op->pad, ceil_mode);
            s.w = s_pool_out(s.w, op->k, op->stride, op->pad, ceil_mode);
            break;
        }
        case XRESNET_OP_ADD_RELU: {
            xresnet_shape_t t = shapes[op->in1];
            NF_CHECK(t.c == s.c && t.h == s.h && t.w == s.w,
                     "residual shapes differ at op %d: %dx%dx%d vs %dx%dx%d", i, s.c, s.h, s.w,
                     t.c, t.h, t.w);
            break;
        }
        case XRESNET_OP_GAP:
            s.h = s.w = 1;
            break;
        case XRESNET_OP_BN:
        case XRESNET_OP_DROPOUT:
            break;
        case XRESNET_OP_LINEAR:
            s.c = op->c_out;
            break;
        }
        if (op->kind == XRESNET_OP_CONV) s.c = op->c_out;
        if (s.h < 1 || s.w < 1) return -1;
        shapes[op->out] = s;
    }
    return 0;
}

int xresnet_param_find(const xresnet_t *net, const char *name)
{
    for (int i = 0; i < net->n_params; i++)
        if (strcmp(net->params[i].name, name) == 0) return i;
    return -1;
}

// ---------------------------------------------------------------------------
// initialisation

static size_t s_fan_in(const xresnet_param_t *p)
{
    return p->kind == XRESNET_PARAM_CONV_W
               ? (size_t)p->shape[1] * (size_t)p->shape[2] * (size_t)p->shape[3]
               : (size_t)p->shape[1];
}

// Standard normal by Box-Muller from two 53-bit uniforms.
static double s_normal(nf_rng_t *r)
{
    double u1 = nf_rng_uniform_f64(r), u2 = nf_rng_uniform_f64(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

void xresnet_init_fastai(const xresnet_t *net, uint64_t seed, float *params, float *run_mean,
                         float *run_var)
{
    memset(params, 0, net->n_param_floats * sizeof(float));
    for (int t = 0; t < net->n_params; t++) {
        const xresnet_param_t *p = &net->params[t];
        float *dst = params + p->offset;
        switch (p->kind) {
        case XRESNET_PARAM_CONV_W:
        case XRESNET_PARAM_LINEAR_W: {
            double std = sqrt(2.0 / (double)s_fan_in(p));
            nf_rng_t r = nf_rng_make(seed, NF_RNG_STREAM_INIT, 0, (uint32_t)t);
            for (size_t i = 0; i < p->numel; i++) dst[i] = (float)(std * s_normal(&r));
            break;
        }
        case XRESNET_PARAM_BN_W: {
            float v = net->ops[p->op].zero_bn ? 0.0f : 1.0f;
            for (size_t i = 0; i < p->numel; i++) dst[i] = v;
            break;
        }
        case XRESNET_PARAM_BN_B:
        case XRESNET_PARAM_LINEAR_B:
            break;  // zeroed above: init_cnn sets every bias to 0
        }
    }
    for (size_t i = 0; i < net->n_bn_floats; i++) {
        run_mean[i] = 0.0f;
        run_var[i] = 1.0f;
    }
}

float xresnet_pattern_u(uint32_t t, uint32_t e)
{
    // A 32-bit integer hash (murmur3-style finaliser) of (t, e); numpy
    // reproduces it with uint32 arithmetic in tests/reference/gen_step.py.
    uint32_t x = e * 0x9E3779B1u + (t + 1u) * 0x85EBCA77u;
    x ^= x >> 15;
    x *= 0x2C1B3C6Du;
    x ^= x >> 12;
    x *= 0x297A2D39u;
    x ^= x >> 15;
    return (float)(x >> 8) * (1.0f / 16777216.0f);
}

void xresnet_init_pattern(const xresnet_t *net, float *params, float *run_mean, float *run_var)
{
    memset(params, 0, net->n_param_floats * sizeof(float));
    float *tmp = nf_xmalloc(sizeof(float) * 1);
    size_t tmp_cap = 1;
    for (int t = 0; t < net->n_params; t++) {
        const xresnet_param_t *p = &net->params[t];
        if (p->numel > tmp_cap) {
            tmp_cap = p->numel;
            tmp = nf_xrealloc(tmp, tmp_cap * sizeof(float));
        }
        float scale = 0.0f;
        if (p->kind == XRESNET_PARAM_CONV_W || p->kind == XRESNET_PARAM_LINEAR_W)
            scale = (float)(sqrt(3.0) * sqrt(2.0 / (double)s_fan_in(p)));
        for (size_t e = 0; e < p->numel; e++) {
            float u = xresnet_pattern_u((uint32_t)t, (uint32_t)e);
            switch (p->kind) {
            case XRESNET_PARAM_CONV_W:
            case XRESNET_PARAM_LINEAR_W:
                tmp[e] = scale * (2.0f * u - 1.0f);
                break;
            case XRESNET_PARAM_BN_W:
                tmp[e] = 0.8f + 0.4f * u;
                break;
            case XRESNET_PARAM_BN_B:
            case XRESNET_PARAM_LINEAR_B:
                tmp[e] = 0.2f * u - 0.1f;
                break;
            }
        }
        xresnet_param_from_torch(p, tmp, params + p->offset);
    }
    free(tmp);
    for (size_t i = 0; i < net->n_bn_floats; i++) {
        run_mean[i] = 0.0f;
        run_var[i] = 1.0f;
    }
}

void xresnet_param_to_torch(const xresnet_param_t *p, const float *ours, float *torch_out)
{
    if (p->kind != XRESNET_PARAM_CONV_W) {
        memcpy(torch_out, ours, p->numel * sizeof(float));
        return;
    }
    int O = p->shape[0], KH = p->shape[1], KW = p->shape[2], I = p->shape[3];
    for (int o = 0; o < O; o++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++)
                for (int i = 0; i < I; i++)
                    torch_out[(((size_t)o * I + i) * KH + kh) * KW + kw] =
                        ours[(((size_t)o * KH + kh) * KW + kw) * I + i];
}

void xresnet_param_from_torch(const xresnet_param_t *p, const float *torch_in, float *ours_out)
{
    if (p->kind != XRESNET_PARAM_CONV_W) {
        memcpy(ours_out, torch_in, p->numel * sizeof(float));
        return;
    }
    int O = p->shape[0], KH = p->shape[1], KW = p->shape[2], I = p->shape[3];
    for (int o = 0; o < O; o++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++)
                for (int i = 0; i < I; i++)
                    ours_out[(((size_t)o * KH + kh) * KW + kw) * I + i] =
                        torch_in[(((size_t)o * I + i) * KH + kh) * KW + kw];
}

double xresnet_macs(const xresnet_t *net, int h, int w)
{
    xresnet_shape_t *shapes = nf_xmalloc((size_t)net->n_values * sizeof(*shapes));
    double macs = 0.0;
    if (xresnet_shapes(net, h, w, shapes) == 0) {
        for (int i = 0; i < net->n_ops; i++) {
            const xresnet_op_t *op = &net->ops[i];
            const xresnet_shape_t *o = &shapes[op->out];
            if (op->kind == XRESNET_OP_CONV)
                macs += (double)o->h * o->w * op->c_out * op->k * op->k * op->c_in;
            else if (op->kind == XRESNET_OP_LINEAR)
                macs += (double)op->c_out * op->c_in;
        }
    }
    free(shapes);
    return macs;
}

// ---------------------------------------------------------------------------
// learn.summary()

typedef struct {
    FILE *out;
    int bs;
    int j;               // rows printed so far (fastai's j flag)
    char prev[40];       // previous row's shape string
} s_summary_t;

static void s_shape_str(int bs, const xresnet_shape_t *s, bool flat, char buf[40])
{
    if (flat)
        snprintf(buf, 40, "%d x %d", bs, s->c);
    else
        snprintf(buf, 40, "%d x %d x %d x %d", bs, s->c, s->h, s->w);
}

// One module row. `same` = the module's output shape equals its input shape
// (fastai prints a new shape line only when it does not and the shape differs
// from the previous row's).
static void s_row(s_summary_t *S, const char *type, const char *shape, bool same, size_t params)
{
    const int n = 76;
    char sz[20];
    snprintf(sz, sizeof(sz), "%.19s", shape);
    if (S->j == 0) fprintf(S->out, "\n%-20s %-20s", "", sz);
    if (!same && strcmp(S->prev, shape) != 0 && S->j > 0) {
        fputc('\n', S->out);
        for (int i = 0; i < n; i++) fputc('_', S->out);
        fprintf(S->out, "\n%-20s %-20s", "", sz);
    }
    S->j = 1;
    if (params > 0)
        fprintf(S->out, "\n%-20s %-20s %-10zu %-10s", type, "", params, "True");
    else
        fprintf(S->out, "\n%-20s %-20s %-10s %-10s", type, "", "", "");
    snprintf(S->prev, sizeof(S->prev), "%s", shape);
}

static void s_print_count(FILE *out, const char *label, size_t v)
{
    // fastai formats with Python's "{:,}"
    char digits[32], grouped[48];
    snprintf(digits, sizeof(digits), "%zu", v);
    int len = (int)strlen(digits), k = 0;
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0) grouped[k++] = ',';
        grouped[k++] = digits[i];
    }
    grouped[k] = '\0';
    fprintf(out, "%s%s\n", label, grouped);
}

int xresnet_summary(const xresnet_t *net, int bs, int h, int w, FILE *out)
{
    xresnet_shape_t *shapes = nf_xmalloc((size_t)net->n_values * sizeof(*shapes));
    if (xresnet_shapes(net, h, w, shapes) != 0) {
        free(shapes);
        return -1;
    }
    const int n = 76;
    fprintf(out, "XResNet (Input shape: %d x %d x %d x %d)\n", bs, net->cfg.c_in, h, w);
    for (int i = 0; i < n; i++) fputc('=', out);
    fprintf(out, "\n%-20s %-20s %-10s %-10s\n", "Layer (type)", "Output Shape", "Param #",
            "Trainable");
    for (int i = 0; i < n; i++) fputc('=', out);

    s_summary_t S = {.out = out, .bs = bs};
    size_t total = 0;
    char in_s[40], out_s[40];
    for (int i = 0; i < net->n_ops; i++) {
        const xresnet_op_t *op = &net->ops[i];
        const xresnet_shape_t *si = &shapes[op->in0], *so = &shapes[op->out];
        bool flat_in = op->kind == XRESNET_OP_DROPOUT || op->kind == XRESNET_OP_LINEAR;
        s_shape_str(bs, si, flat_in, in_s);
        s_shape_str(bs, so, flat_in, out_s);
        bool same = strcmp(in_s, out_s) == 0;
        size_t np = 0;
        if (op->param >= 0) {
            np = net->params[op->param].numel;
            if (op->kind != XRESNET_OP_CONV) np += net->params[op->param + 1].numel;
        }
        total += np;
        switch (op->kind) {
        case XRESNET_OP_CONV:
            s_row(&S, "Conv2d", out_s, same, np);
            break;
        case XRESNET_OP_BN:
            s_row(&S, "BatchNorm2d", out_s, true, np);
            if (op->relu) s_row(&S, "ReLU", out_s, true, 0);
            break;
        case XRESNET_OP_MAXPOOL:
            s_row(&S, "MaxPool2d", out_s, same, 0);
            break;
        case XRESNET_OP_AVGPOOL:
            s_row(&S, "AvgPool2d", out_s, same, 0);
            break;
        case XRESNET_OP_ADD_RELU:
            if (op->id_shortcut) s_row(&S, "Sequential", out_s, true, 0);
            s_row(&S, "ReLU", out_s, true, 0);
            break;
        case XRESNET_OP_GAP: {
            char flat[40];
            s_row(&S, "AdaptiveAvgPool2d", out_s, same, 0);
            s_shape_str(bs, so, true, flat);
            s_row(&S, "Flatten", flat, false, 0);
            break;
        }
        case XRESNET_OP_DROPOUT:
            s_row(&S, "Dropout", out_s, true, 0);
            break;
        case XRESNET_OP_LINEAR:
            s_row(&S, "Linear", out_s, same, np);
            break;
        }
    }
    fputc('\n', out);
    for (int i = 0; i < n; i++) fputc('_', out);
    fputs("\n\n", out);
    s_print_count(out, "Total params: ", total);
    s_print_count(out, "Total trainable params: ", total);
    s_print_count(out, "Total non-trainable params: ", 0);
    free(shapes);
    return 0;
}
