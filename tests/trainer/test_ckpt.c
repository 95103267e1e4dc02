/*
 * test_ckpt.c: checkpoints.
 *
 * Resume: a learner trains 3 steps of a one-cycle fit (dropout 0.25, label
 * smoothing, Mixup on some steps), saves, trains 3 more at another batch
 * shape; a fresh learner with another seed loads the checkpoint and trains
 * the same 3 steps. Weights, Adam moments, BN running statistics, losses and
 * every progress field must be bit-identical (onednn and ref executors).
 * Faults: wrong architecture, truncated file, garbage, a file missing a
 * tensor: each refused with -1 and the learner left unchanged. Metadata:
 * class names, normalisation statistics and the run config come back.
 * Retention: only the newest K "ckpt-*" files stay.
 *
 * `test_ckpt --write DIR` writes DIR/ckpt.safetensors and
 * DIR/eval_logits.safetensors for tests/reference/check_ckpt.py (loads the
 * checkpoint with the Python safetensors package into fastai's xresnet18).
 */
#include "ckpt.h"
#include "fsutil.h"
#include "learner.h"
#include "safetensors.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *s_classes[10] = {"tench",  "English springer", "cassette player", "chain saw",
                                    "church", "French horn",      "garbage truck",   "gas pump",
                                    "golf ball", "parachute"};

static learner_config_t s_config(exec_kind_t kind, uint64_t seed)
{
    learner_config_t c = learner_default_config("xresnet18", 10);
    c.backend = kind;
    c.seed = seed;
    c.dropout = 0.25f;
    c.ls_eps = 0.1f;
    c.n_classes = 10;
    c.class_names = s_classes;
    c.run_config_json = "{\"recipe\": \"test\", \"epochs\": 2}";
    return c;
}

typedef struct {
    float *x;
    int32_t y[8], y_mix[8];
    float lam[8];
    learner_batch_t b;
} s_batch_t;

// Batch i: 4 x 40 px for i < 3, 6 x 32 px after; Mixup on odd batches.
static void s_make_batch(s_batch_t *sb, int i)
{
    int n = i < 3 ? 4 : 6, size = i < 3 ? 40 : 32;
    size_t count = (size_t)n * size * size * 3;
    sb->x = nf_xmalloc(count * sizeof(float));
    for (size_t e = 0; e < count; e++)
        sb->x[e] = 2.0f * xresnet_pattern_u(500u + (uint32_t)i, (uint32_t)e) - 1.0f;
    for (int j = 0; j < n; j++) {
        sb->y[j] = (int32_t)(xresnet_pattern_u(600u + (uint32_t)i, (uint32_t)j) * 10);
        sb->y_mix[j] = (int32_t)(xresnet_pattern_u(700u + (uint32_t)i, (uint32_t)j) * 10);
        sb->lam[j] = 0.5f + 0.5f * xresnet_pattern_u(800u + (uint32_t)i, (uint32_t)j);
    }
    sb->b = (learner_batch_t){.x = sb->x, .y = sb->y, .n = n, .h = size, .w = size};
    if (i % 2) {
        sb->b.y_mix = sb->y_mix;
        sb->b.lam = sb->lam;
    }
}

typedef struct {
    float *params, *m, *v, *rm, *rv;
    size_t np, nb;
} s_snap_t;

static s_snap_t s_snapshot(learner_t *l)
{
    const xresnet_t *net = learner_net(l);
    s_snap_t s = {.np = net->n_param_floats, .nb = net->n_bn_floats};
    s.params = nf_xmalloc(s.np * sizeof(float));
    s.m = nf_xmalloc(s.np * sizeof(float));
    s.v = nf_xmalloc(s.np * sizeof(float));
    s.rm = nf_xmalloc(s.nb * sizeof(float));
    s.rv = nf_xmalloc(s.nb * sizeof(float));
    exec_state_t st = {s.params, s.rm, s.rv, s.m, s.v};
    learner_state_read(l, &st);
    return s;
}

static bool s_snap_equal(const s_snap_t *a, const s_snap_t *b)
{
    return memcmp(a->params, b->params, a->np * sizeof(float)) == 0 &&
           memcmp(a->m, b->m, a->np * sizeof(float)) == 0 &&
           memcmp(a->v, b->v, a->np * sizeof(float)) == 0 &&
           memcmp(a->rm, b->rm, a->nb * sizeof(float)) == 0 &&
           memcmp(a->rv, b->rv, a->nb * sizeof(float)) == 0;
}

static void s_snap_free(s_snap_t *s)
{
    free(s->params);
    free(s->m);
    free(s->v);
    free(s->rm);
    free(s->rv);
}

static void test_resume(exec_kind_t kind, const char *label)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/resume-%s.safetensors", t_tmpdir(), label);
    s_batch_t batches[6];
    for (int i = 0; i < 6; i++) s_make_batch(&batches[i], i);

    learner_config_t ca = s_config(kind, 5);
    learner_t *a = learner_new(&ca);
    NF_CHECK(a, "learner");
    sched_t fit = sched_one_cycle(2, 3, 1e-2);
    learner_fit_begin(a, &fit);
    float loss_a[6], loss_b[6];
    for (int i = 0; i < 3; i++)
        T_CHECK(learner_train_step(a, &batches[i].b, &loss_a[i]) == 0, "step");
    T_CHECK(ckpt_save(a, path) == 0, "save");
    s_snap_t at_save = s_snapshot(a);
    learner_progress_t p_save = learner_progress(a);
    for (int i = 3; i < 6; i++)
        T_CHECK(learner_train_step(a, &batches[i].b, &loss_a[i]) == 0, "step");

    learner_config_t cb = s_config(kind, 99);  // another seed: everything must come from the file
    cb.ls_eps = 0.0f;                          // and the loss eps too
    learner_t *b = learner_new(&cb);
    NF_CHECK(b, "learner");
    T_CHECK(ckpt_load(b, path) == 0, "load");
    s_snap_t loaded = s_snapshot(b);
    learner_progress_t p_load = learner_progress(b);
    T_CHECK(s_snap_equal(&at_save, &loaded), "%s: the loaded state equals the saved one", label);
    T_CHECK(memcmp(&p_save, &p_load, sizeof(p_save)) == 0, "%s: loaded progress equals saved",
            label);
    s_snap_free(&at_save);
    s_snap_free(&loaded);
    for (int i = 3; i < 6; i++)
        T_CHECK(learner_train_step(b, &batches[i].b, &loss_b[i]) == 0, "step");

    s_snap_t sa = s_snapshot(a), sb = s_snapshot(b);
    T_CHECK(s_snap_equal(&sa, &sb),
            "%s: weights, Adam moments and BN statistics after resume differ from straight "
            "training", label);
    T_CHECK(memcmp(loss_a + 3, loss_b + 3, 3 * sizeof(float)) == 0,
            "%s: losses after resume differ (%.9g vs %.9g)", label, (double)loss_a[5],
            (double)loss_b[5]);
    learner_progress_t pa = learner_progress(a), pb = learner_progress(b);
    T_CHECK(pa.step == 6 && pb.step == 6 && pa.adam_step == pb.adam_step &&
                pa.bn_batches == pb.bn_batches && pa.lr == pb.lr && pa.mom == pb.mom &&
                pa.fit_pos == pb.fit_pos && pa.fit_active == pb.fit_active &&
                pa.smooth.count == pb.smooth.count && pa.smooth.val == pb.smooth.val,
            "%s: progress differs after resume", label);
    printf("%s: resumed 3 + 3 steps bit-identically (loss %.7f)\n", label, (double)loss_b[5]);
    s_snap_free(&sa);
    s_snap_free(&sb);
    learner_destroy(&a);
    learner_destroy(&b);
    for (int i = 0; i < 6; i++) free(batches[i].x);
}

static void test_faults(void)
{
    char good[1024], bad[1024];
    snprintf(good, sizeof(good), "%s/good.safetensors", t_tmpdir());
    learner_config_t c = s_config(EXEC_ONEDNN, 5);
    learner_t *l = learner_new(&c);
    NF_CHECK(l, "learner");
    T_CHECK(ckpt_save(l, good) == 0, "save");
    s_snap_t before = s_snapshot(l);

    // another architecture
    learner_config_t c34 = s_config(EXEC_ONEDNN, 5);
    c34.arch = "xresnet34";
    learner_t *l34 = learner_new(&c34);
    T_CHECK(ckpt_load(l34, good) == -1, "an xresnet18 checkpoint does not load into xresnet34");
    learner_destroy(&l34);

    // truncated
    size_t len;
    char *data = nf_read_file(good, (size_t)1 << 31, &len);
    NF_CHECK(data, "read back");
    snprintf(bad, sizeof(bad), "%s/truncated.safetensors", t_tmpdir());
    NF_CHECK(nf_write_file_atomic(bad, data, len / 2) == 0, "write");
    T_CHECK(ckpt_load(l, bad) == -1, "a truncated checkpoint is refused");
    // garbage
    snprintf(bad, sizeof(bad), "%s/garbage.safetensors", t_tmpdir());
    NF_CHECK(nf_write_file_atomic(bad, "not a checkpoint at all", 23) == 0, "write");
    T_CHECK(ckpt_load(l, bad) == -1, "garbage is refused");
    free(data);
    // a well-formed file with the right metadata but a tensor missing
    char err[256];
    safetensors_t *st = safetensors_open(good, err, sizeof(err));
    NF_CHECK(st, "%s", err);
    safetensors_writer_t *w = safetensors_writer_new();
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const safetensors_tensor_t *t = safetensors_tensor_at(st, i);
        if (strcmp(t->name, "7.1.convpath.1.0.weight") == 0) continue;
        safetensors_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    for (size_t i = 0; i < safetensors_meta_count(st); i++) {
        const char *k, *v;
        safetensors_meta_at(st, i, &k, &v);
        safetensors_writer_set_meta(w, k, v);
    }
    snprintf(bad, sizeof(bad), "%s/missing.safetensors", t_tmpdir());
    NF_CHECK(safetensors_writer_write(w, bad) == 0, "write");
    safetensors_writer_destroy(&w);
    T_CHECK(ckpt_load(l, bad) == -1, "a checkpoint missing a tensor is refused");
    // wrong format version
    w = safetensors_writer_new();
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const safetensors_tensor_t *t = safetensors_tensor_at(st, i);
        safetensors_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    safetensors_writer_set_meta(w, "format", CKPT_FORMAT);
    safetensors_writer_set_meta(w, "format_version", "999");
    snprintf(bad, sizeof(bad), "%s/version.safetensors", t_tmpdir());
    NF_CHECK(safetensors_writer_write(w, bad) == 0, "write");
    safetensors_writer_destroy(&w);
    safetensors_close(&st);
    T_CHECK(ckpt_load(l, bad) == -1, "an unknown format version is refused");
    T_CHECK(ckpt_load(l, "/nonexistent/dir/x.safetensors") == -1, "a missing file is refused");

    s_snap_t after = s_snapshot(l);
    T_CHECK(s_snap_equal(&before, &after), "refused loads leave the learner unchanged");
    T_CHECK(ckpt_save(l, "/nonexistent/dir/x.safetensors") == -1, "an unwritable path fails");

    // metadata for building a matching learner
    ckpt_info_t info;
    T_CHECK(ckpt_info_read(good, &info) == 0, "info");
    T_CHECK(strcmp(info.arch, "xresnet18") == 0 && info.n_out == 10 && info.n_classes == 10,
            "arch, n_out, classes");
    T_CHECK(info.n_classes == 10 && strcmp(info.class_names[1], "English springer") == 0,
            "class names");
    T_NEAR(info.norm_mean[0], 0.485, 1e-7);
    T_NEAR(info.norm_std[2], 0.225, 1e-7);
    T_NEAR(info.dropout, 0.25, 0);
    T_CHECK(info.config_json && strstr(info.config_json, "\"recipe\""), "run config");
    learner_config_t base = learner_default_config("xresnet50", 1000);
    learner_config_t back = ckpt_info_config(&info, &base);
    T_CHECK(strcmp(back.arch, "xresnet18") == 0 && back.n_out == 10, "config from info");
    ckpt_info_free(&info);
    T_CHECK(ckpt_info_read(bad, &info) == -1, "info of a bad file fails");

    s_snap_free(&before);
    s_snap_free(&after);
    learner_destroy(&l);
}

static void test_retention(void)
{
    char dir[1024], path[1200];
    snprintf(dir, sizeof(dir), "%s/retain", t_tmpdir());
    NF_CHECK(nf_mkdir_p(dir) == 0, "mkdir");
    int64_t steps[5] = {300, 10, 2000, 7, 150};
    for (int i = 0; i < 5; i++) {
        ckpt_path(dir, steps[i], path, sizeof(path));
        NF_CHECK(nf_write_file_atomic(path, "x", 1) == 0, "write");
    }
    const char *others[2] = {"final.safetensors", "ckpt-abc.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, others[i]);
        NF_CHECK(nf_write_file_atomic(path, "x", 1) == 0, "write");
    }
    T_CHECK(ckpt_retain(dir, 2) == 3, "3 of 5 step checkpoints deleted");
    int64_t kept[2] = {2000, 300}, gone[3] = {150, 10, 7};
    for (int i = 0; i < 2; i++) {
        ckpt_path(dir, kept[i], path, sizeof(path));
        T_CHECK(nf_is_file(path), "newest kept: %s", path);
    }
    for (int i = 0; i < 3; i++) {
        ckpt_path(dir, gone[i], path, sizeof(path));
        T_CHECK(!nf_is_file(path), "older deleted: %s", path);
    }
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, others[i]);
        T_CHECK(nf_is_file(path), "untouched: %s", path);
    }
    T_CHECK(ckpt_retain("/nonexistent/dir", 2) == -1, "a missing directory fails");
}

// For tests/reference/check_ckpt.py: a checkpoint after 2 steps, and the
// eval logits of the pattern batch t = 900 (2 x 48 px) in DIR.
static int s_write(const char *dir)
{
    if (nf_mkdir_p(dir) != 0) return 1;
    learner_config_t c = s_config(EXEC_ONEDNN, 5);
    c.dropout = 0.0f;
    learner_t *l = learner_new(&c);
    NF_CHECK(l, "learner");
    s_batch_t batches[2];
    float loss;
    for (int i = 0; i < 2; i++) {
        s_make_batch(&batches[i], i);
        learner_set_hypers(l, 1e-2, 0.9);
        learner_train_step(l, &batches[i].b, &loss);
        free(batches[i].x);
    }
    char path[1200];
    snprintf(path, sizeof(path), "%s/ckpt.safetensors", dir);
    if (ckpt_save(l, path) != 0) return 1;
    const int n = 2, size = 48;
    size_t count = (size_t)n * size * size * 3;
    float *x = nf_xmalloc(count * sizeof(float));
    for (size_t e = 0; e < count; e++) x[e] = 2.0f * xresnet_pattern_u(900u, (uint32_t)e) - 1.0f;
    int32_t y[2] = {0, 1};
    learner_batch_t b = {.x = x, .y = y, .n = n, .h = size, .w = size};
    learner_eval_t ev = {0};
    NF_CHECK(learner_eval_batch(l, &b, &ev) == 0, "eval");
    safetensors_writer_t *w = safetensors_writer_new();
    int64_t shape[2] = {n, 10};
    safetensors_writer_add(w, "logits", SAFETENSORS_F32, 2, shape, learner_logits(l));
    safetensors_writer_set_meta(w, "x_pattern_t", "900");
    safetensors_writer_set_meta(w, "bs", "2");
    safetensors_writer_set_meta(w, "size", "48");
    snprintf(path, sizeof(path), "%s/eval_logits.safetensors", dir);
    int rc = safetensors_writer_write(w, path);
    safetensors_writer_destroy(&w);
    free(x);
    learner_destroy(&l);
    printf("wrote %s/ckpt.safetensors and %s\n", dir, path);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write") == 0) return s_write(argv[2]);
    test_resume(EXEC_ONEDNN, "onednn");
    test_resume(EXEC_REF, "ref");
    test_faults();
    test_retention();
    return t_done();
}
