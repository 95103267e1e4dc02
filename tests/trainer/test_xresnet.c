/*
 * test_xresnet.c: the xresnet description against fastai.
 *
 * Asserts: parameter counts of xresnet18/34/50 (fastai-spec.md §5.3), BN and
 * weight-decay counts, conv MACs; every state_dict key and PyTorch shape in
 * fastai's order (fixtures/trainer/state_dict_*.txt from gen_model.py);
 * `learn.summary()` text byte for byte (fixtures/trainer/summary_*.txt);
 * fastai's init (kaiming std, zero-init of the last BN of each branch, zero
 * biases, determinism by seed); the layout conversion round trip.
 */
#include "fsutil.h"
#include "testlib.h"
#include "xresnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static xresnet_t *s_net(const char *arch, int n_out)
{
    xresnet_config_t cfg = {.arch = arch, .n_out = n_out, .c_in = 3, .dropout = 0.0f};
    xresnet_t *net = xresnet_new(&cfg);
    NF_CHECK(net, "xresnet_new(%s)", arch);
    return net;
}

static char *s_fixture(const char *name)
{
    const char *src = getenv("NF_SOURCE_DIR");
    NF_CHECK(src, "NF_SOURCE_DIR not set (run through ctest)");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fixtures/trainer/%s", src, name);
    size_t len;
    char *text = nf_read_file(path, 1 << 20, &len);
    NF_CHECK(text, "cannot read fixture %s (re-run tests/reference/gen_model.py)", path);
    return text;
}

static void test_counts(void)
{
    static const struct {
        const char *arch;
        int n_out;
        size_t params, bn_affine, wd;
        int n_bn;
        double macs224, macs128;
    } cases[] = {
        {"xresnet18", 10, 11200874, 9728, 0, 22, 2.053e9, 0.670e9},
        {"xresnet34", 10, 21309034, 17152, 0, 38, 3.903e9, 1.274e9},
        {"xresnet50", 10, 23547754, 53248, 23494496, 55, 4.327e9, 1.413e9},
        {"xresnet50", 1000, 25576264, 53248, 0, 55, 4.329e9, 1.415e9},
    };
    for (size_t c = 0; c < NF_ARRAY_LEN(cases); c++) {
        xresnet_t *net = s_net(cases[c].arch, cases[c].n_out);
        T_CHECK(net->n_trainable == cases[c].params, "%s n_out %d: %zu params, want %zu",
                cases[c].arch, cases[c].n_out, net->n_trainable, cases[c].params);
        size_t bn = 0, wd = 0, sum = 0;
        for (int i = 0; i < net->n_params; i++) {
            const xresnet_param_t *p = &net->params[i];
            if (p->kind == XRESNET_PARAM_BN_W || p->kind == XRESNET_PARAM_BN_B) bn += p->numel;
            if (p->do_wd) wd += p->numel;
            sum += p->numel;
            T_CHECK(p->offset % 16 == 0, "%s offset %zu not 64-byte aligned", p->name, p->offset);
        }
        T_CHECK(sum == net->n_trainable, "numel sum %zu", sum);
        T_CHECK(bn == cases[c].bn_affine, "%s BN affine %zu want %zu", cases[c].arch, bn,
                cases[c].bn_affine);
        T_CHECK(net->n_bn == cases[c].n_bn, "%s %d BN layers", cases[c].arch, net->n_bn);
        T_CHECK(net->n_bn_floats * 2 == cases[c].bn_affine, "running stats %zu",
                net->n_bn_floats);
        if (cases[c].wd) T_CHECK(wd == cases[c].wd, "%s wd params %zu", cases[c].arch, wd);
        T_NEAR(xresnet_macs(net, 224, 224) / 1e9, cases[c].macs224 / 1e9, 0.0006);
        T_NEAR(xresnet_macs(net, 128, 128) / 1e9, cases[c].macs128 / 1e9, 0.0006);
        xresnet_destroy(&net);
        T_CHECK(net == NULL, "destroy nulls the pointer");
    }
    xresnet_destroy(NULL);
    xresnet_config_t bad = {.arch = "xresnet19", .n_out = 10, .c_in = 3};
    T_CHECK(xresnet_new(&bad) == NULL, "unknown arch is refused");
    bad.arch = "xresnet18";
    bad.n_out = 0;
    T_CHECK(xresnet_new(&bad) == NULL, "n_out 0 is refused");
}

// Rebuilds the state_dict listing (key + PyTorch shape, fastai's order) from
// the description and compares it with fastai's.
static void test_state_dict(const char *arch)
{
    xresnet_t *net = s_net(arch, 10);
    char fname[64];
    snprintf(fname, sizeof(fname), "state_dict_%s.txt", arch);
    char *want = s_fixture(fname);
    size_t cap = 1 << 16, len = 0;
    char *got = nf_xmalloc(cap);
    got[0] = '\0';
    for (int i = 0; i < net->n_params; i++) {
        const xresnet_param_t *p = &net->params[i];
        len += (size_t)snprintf(got + len, cap - len, "%s ", p->name);
        for (int d = 0; d < p->ndim; d++)
            len += (size_t)snprintf(got + len, cap - len, "%s%d", d ? "," : "", p->torch_shape[d]);
        len += (size_t)snprintf(got + len, cap - len, "\n");
        if (p->kind == XRESNET_PARAM_BN_B) {
            const xresnet_bn_t *bn = &net->bns[net->ops[p->op].bn];
            len += (size_t)snprintf(got + len, cap - len,
                                    "%s.running_mean %d\n%s.running_var %d\n"
                                    "%s.num_batches_tracked \n",
                                    bn->prefix, bn->c, bn->prefix, bn->c, bn->prefix);
        }
        NF_CHECK(len < cap - 256, "listing buffer too small");
    }
    bool same = strcmp(got, want) == 0;
    T_CHECK(same, "%s state_dict keys/shapes differ from fastai's", arch);
    if (!same) {
        size_t i = 0;
        while (got[i] && got[i] == want[i]) i++;
        size_t from = i > 60 ? i - 60 : 0;
        fprintf(stderr, "first difference at byte %zu:\n got: %.120s\nwant: %.120s\n", i,
                got + from, want + from);
    }
    free(got);
    free(want);
    xresnet_destroy(&net);
}

static void test_summary(const char *arch, int bs, int size)
{
    xresnet_t *net = s_net(arch, 10);
    char fname[64];
    snprintf(fname, sizeof(fname), "summary_%s_bs%d_%d.txt", arch, bs, size);
    char *want = s_fixture(fname);
    char *got = NULL;
    size_t got_len = 0;
    FILE *f = open_memstream(&got, &got_len);
    NF_CHECK(f, "open_memstream");
    T_CHECK(xresnet_summary(net, bs, size, size, f) == 0, "summary");
    NF_CHECK(fclose(f) == 0, "fclose");
    bool same = strcmp(got, want) == 0;
    T_CHECK(same, "%s summary at bs %d, %d px differs from fastai's", arch, bs, size);
    if (!same) {
        size_t i = 0;
        while (got[i] && got[i] == want[i]) i++;
        size_t from = i > 100 ? i - 100 : 0;
        fprintf(stderr, "first difference at byte %zu:\n--- got:\n%.300s\n--- want:\n%.300s\n",
                i, got + from, want + from);
    }
    free(got);
    free(want);
    FILE *null = fopen("/dev/null", "w");
    NF_CHECK(null, "fopen /dev/null");
    T_CHECK(xresnet_summary(net, bs, 32, 32, null) == 0, "32 px fits (1x1 at the end)");
    T_CHECK(xresnet_summary(net, bs, 16, 16, null) == -1, "16 px: the last shortcut pool "
            "would see 1x1 (refused, see xresnet_shapes)");
    T_CHECK(xresnet_summary(net, bs, 0, 0, null) == -1, "0 px is refused");
    fclose(null);
    xresnet_destroy(&net);
}

static void test_init(void)
{
    xresnet_t *net = s_net("xresnet50", 10);
    float *p = nf_xmalloc(net->n_param_floats * sizeof(float));
    float *q = nf_xmalloc(net->n_param_floats * sizeof(float));
    float *rm = nf_xmalloc(net->n_bn_floats * sizeof(float));
    float *rv = nf_xmalloc(net->n_bn_floats * sizeof(float));
    xresnet_init_fastai(net, 42, p, rm, rv);
    int zero_bn = 0;
    for (int t = 0; t < net->n_params; t++) {
        const xresnet_param_t *pp = &net->params[t];
        const float *x = p + pp->offset;
        const xresnet_op_t *op = &net->ops[pp->op];
        if (pp->kind == XRESNET_PARAM_CONV_W || pp->kind == XRESNET_PARAM_LINEAR_W) {
            double fan_in = pp->kind == XRESNET_PARAM_CONV_W
                                ? (double)pp->shape[1] * pp->shape[2] * pp->shape[3]
                                : (double)pp->shape[1];
            double s1 = 0, s2 = 0;
            for (size_t i = 0; i < pp->numel; i++) {
                s1 += x[i];
                s2 += (double)x[i] * x[i];
            }
            double mean = s1 / (double)pp->numel;
            double sd = sqrt(s2 / (double)pp->numel - mean * mean), want = sqrt(2.0 / fan_in);
            // 6 standard errors of the sample std (sd / sqrt(2n)) and of the mean
            double tol = 6.0 * want / sqrt(2.0 * (double)pp->numel);
            if (fabs(sd - want) > tol || fabs(mean) > 6.0 * want / sqrt((double)pp->numel))
                T_CHECK(0, "%s: std %g want %g (tol %g), mean %g", pp->name, sd, want, tol, mean);
        } else {
            float want = 0.0f;
            if (pp->kind == XRESNET_PARAM_BN_W) want = op->zero_bn ? 0.0f : 1.0f;
            bool ok = true;
            for (size_t i = 0; i < pp->numel; i++) ok = ok && x[i] == want;
            T_CHECK(ok, "%s: every element should be %g", pp->name, (double)want);
            if (pp->kind == XRESNET_PARAM_BN_W && op->zero_bn) zero_bn++;
        }
    }
    // the last BN of each branch: "*.convpath.2.1" in all 16 bottleneck blocks
    T_CHECK(zero_bn == 16, "%d zero-initialised BN layers, want 16", zero_bn);
    int i_last = xresnet_param_find(net, "4.0.convpath.2.1.weight");
    int i_id = xresnet_param_find(net, "4.0.idpath.0.1.weight");
    T_CHECK(i_last >= 0 && net->ops[net->params[i_last].op].zero_bn, "convpath.2.1 is zero BN");
    T_CHECK(i_id >= 0 && !net->ops[net->params[i_id].op].zero_bn, "idpath BN weight is 1");
    T_CHECK(xresnet_param_find(net, "no.such.weight") == -1, "missing name gives -1");
    bool stats = true;
    for (size_t i = 0; i < net->n_bn_floats; i++) stats = stats && rm[i] == 0.0f && rv[i] == 1.0f;
    T_CHECK(stats, "running mean 0, running var 1");

    xresnet_init_fastai(net, 42, q, rm, rv);
    T_CHECK(memcmp(p, q, net->n_param_floats * sizeof(float)) == 0, "same seed, same weights");
    xresnet_init_fastai(net, 43, q, rm, rv);
    T_CHECK(memcmp(p, q, net->n_param_floats * sizeof(float)) != 0, "other seed, other weights");

    // layout round trip through PyTorch's (O, I, KH, KW)
    const xresnet_param_t *w = &net->params[xresnet_param_find(net, "0.0.weight")];
    float *tw = nf_xmalloc(w->numel * sizeof(float)), *back = nf_xmalloc(w->numel * sizeof(float));
    xresnet_param_to_torch(w, p + w->offset, tw);
    // ours (o=1, kh=2, kw=0, i=1) == torch (o=1, i=1, kh=2, kw=0)
    T_CHECK(p[w->offset + ((1 * 3 + 2) * 3 + 0) * 3 + 1] == tw[((1 * 3 + 1) * 3 + 2) * 3 + 0],
            "conv weight element maps to PyTorch's order");
    xresnet_param_from_torch(w, tw, back);
    T_CHECK(memcmp(back, p + w->offset, w->numel * sizeof(float)) == 0, "round trip");
    free(tw);
    free(back);

    xresnet_init_pattern(net, q, rm, rv);
    T_NEAR(xresnet_pattern_u(0, 0), xresnet_pattern_u(0, 0), 0);
    T_CHECK(xresnet_pattern_u(0, 1) != xresnet_pattern_u(1, 0), "pattern depends on (t, e)");
    free(p);
    free(q);
    free(rm);
    free(rv);
    xresnet_destroy(&net);
}

static void test_shapes(void)
{
    xresnet_t *net = s_net("xresnet18", 10);
    xresnet_shape_t *s = nf_xmalloc((size_t)net->n_values * sizeof(*s));
    // 40 px: stem 20, maxpool 10, stage2 5, stage3 3 (ceil-mode pool 5 -> 3), stage4 2
    T_CHECK(xresnet_shapes(net, 40, 40, s) == 0, "shapes at 40");
    int last_conv = -1;
    for (int i = 0; i < net->n_ops; i++)
        if (net->ops[i].kind == XRESNET_OP_AVGPOOL) {
            const xresnet_shape_t *in = &s[net->ops[i].in0], *out = &s[net->ops[i].out];
            if (in->h == 5) T_CHECK(out->h == 3, "ceil-mode pool 5 -> %d", out->h);
        } else if (net->ops[i].kind == XRESNET_OP_CONV) {
            last_conv = net->ops[i].out;
        }
    T_CHECK(s[last_conv].h == 2 && s[last_conv].c == 512, "stage4 %dx%d", s[last_conv].c,
            s[last_conv].h);
    T_CHECK(s[net->ops[net->n_ops - 1].out].c == 10, "logits");
    free(s);
    xresnet_destroy(&net);
}

int main(void)
{
    test_counts();
    test_state_dict("xresnet18");
    test_state_dict("xresnet50");
    test_summary("xresnet18", 8, 64);
    test_summary("xresnet34", 16, 40);
    test_summary("xresnet50", 64, 224);
    test_init();
    test_shapes();
    return t_done();
}
