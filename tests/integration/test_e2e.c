/*
 * test_e2e.c: the product end to end, as a user runs it: `./run.sh train`
 * starts the loader coordinator and its workers, the augment stage, the
 * evaluator and the trainer over ipc:// sockets in the run folder, on a small
 * subset of real Imagenette JPEGs (4 classes, linked from NF_DATA_DIR), two
 * short epochs of xresnet18 with progressive resizing (48 then 64 px, one
 * fit_one_cycle each, so two tables), then TTA. It asserts:
 *   - the run succeeds and prints fastai's table (a header per fit, one row
 *     per epoch) and the TTA line;
 *   - the loss falls (smoothed train loss, and the batch losses of the first
 *     and last steps) and the accuracy is well above chance (0.25);
 *   - the run folder holds config.json, metrics.csv, metrics.jsonl (per step
 *     and per epoch), summary.json with every promised field, the four stages'
 *     logs, loss/lr pictures and the show_batch grid (valid PNGs), the final
 *     checkpoint;
 *   - `./run.sh eval CKPT --tta` reproduces the run's plain and TTA accuracy
 *     exactly (evaluation is deterministic);
 *   - `./run.sh predict CKPT IMAGE...` names a class for each image, mostly the
 *     right one;
 *   - `./run.sh lr-find` prints the valley suggestion and writes its plot.
 * Skips (77) without the data. About two minutes on 2 cores.
 */
#include "fsutil.h"
#include "image.h"
#include "testlib.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const s_classes[4] = {"n01440764", "n03028079", "n03445777", "n03888257"};

static int s_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// Links the first n files (sorted) of data/split/cls into dst/split/cls.
static int s_link(const char *data, const char *dst, const char *split, const char *cls, int n)
{
    char src_dir[2048], dst_dir[2048];
    snprintf(src_dir, sizeof src_dir, "%s/%s/%s", data, split, cls);
    snprintf(dst_dir, sizeof dst_dir, "%s/%s/%s", dst, split, cls);
    NF_CHECK(nf_mkdir_p(dst_dir) == 0, "mkdir %s", dst_dir);
    DIR *d = opendir(src_dir);
    if (!d) return 0;
    char **names = NULL;
    int count = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        names = nf_xrealloc(names, (size_t)(count + 1) * sizeof *names);
        names[count++] = nf_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)count, sizeof *names, s_cmp);
    int linked = 0;
    for (int i = 0; i < count; i++) {
        if (linked < n) {
            char a[4096], b[4096];
            snprintf(a, sizeof a, "%s/%s", src_dir, names[i]);
            snprintf(b, sizeof b, "%s/%s", dst_dir, names[i]);
            if (symlink(a, b) == 0) linked++;
        }
        free(names[i]);
    }
    free(names);
    return linked;
}

static cJSON *s_json(const char *path)
{
    size_t len;
    char *text = nf_read_file(path, 1 << 20, &len);
    if (!text) return NULL;
    cJSON *o = cJSON_Parse(text);
    free(text);
    return o;
}

static double s_num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static bool s_has(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return nf_is_file(p);
}

static void s_png(const char *dir, const char *name, int min_w)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    nf_image_t *im = nf_image_read_png(p);
    T_CHECK(im && im->w >= min_w && im->h >= 100, "%s is a picture", name);
    nf_image_destroy(&im);
}

// Runs a shell command; returns its exit status.
static int s_sh(const char *cmd)
{
    int st = system(cmd);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(void)
{
    const char *data = t_data_dir_or_skip();
    const char *tmp = t_tmpdir();
    const char *src = getenv("NF_SOURCE_DIR"), *bin = getenv("NF_BIN_DIR");
    NF_CHECK(src && bin, "NF_SOURCE_DIR and NF_BIN_DIR are set by ctest");
    char sub[2048], run[2048], cmd[16384], path[4096];
    snprintf(sub, sizeof sub, "%s/subset", tmp);
    snprintf(run, sizeof run, "%s/run", tmp);
    int n_train = 0, n_valid = 0;
    for (int c = 0; c < 4; c++) {
        n_train += s_link(data, sub, "train", s_classes[c], 150);
        n_valid += s_link(data, sub, "val", s_classes[c], 50);
    }
    T_CHECK(n_train == 600 && n_valid == 200, "subset: %d train, %d valid", n_train, n_valid);

    // --- the run, through the front door
    snprintf(cmd, sizeof cmd,
             "cd %s && NF_BIN_DIR=%s NF_NO_BAR=1 ./run.sh train --data %s --preset tiny "
             "--sizes 48,64 --presize 64,80 --epochs 1,1 --bs 32 --lr 1e-2,5e-3 --tta --workers 2 "
             "--out %s "
             ">%s/stdout.txt 2>%s/stderr.txt",
             src, bin, sub, run, tmp, tmp);
    int rc = s_sh(cmd);
    snprintf(path, sizeof path, "%s/stdout.txt", tmp);
    size_t len = 0;
    char *out = nf_read_file(path, 1 << 20, &len);
    snprintf(path, sizeof path, "%s/stderr.txt", tmp);
    char *err = nf_read_file(path, 1 << 20, &len);
    T_CHECK(rc == 0, "run.sh train exited %d\n--- stdout\n%s\n--- stderr\n%s", rc,
            out ? out : "", err ? err : "");
    const char *hdr = "epoch     train_loss  valid_loss  accuracy  time";
    const char *h1 = out ? strstr(out, hdr) : NULL, *h2 = h1 ? strstr(h1 + 1, hdr) : NULL;
    T_CHECK(h1 && h2, "fastai's table header, once per fit");
    T_CHECK(h1 && h2 && strstr(h1, "\n0         ") < h2 && strstr(h2, "\n0         "),
            "a row under each header");
    T_CHECK(out && strstr(out, "TTA (n=4, beta=0.25) accuracy"), "the TTA line");
    T_CHECK(err && strstr(err, "device: CPU"), "the device is said");

    // --- the run folder
    static const char *const files[] = {"config.json", "metrics.csv", "metrics.jsonl",
                                        "summary.json", "trainer.log", "loader.log",
                                        "augment.log", "evaluator.log",
                                        "checkpoints/final.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        T_CHECK(s_has(run, files[i]), "run folder has %s", files[i]);
    s_png(run, "loss.png", 600);
    s_png(run, "lr.png", 600);
    s_png(run, "show_batch.png", 200);

    snprintf(path, sizeof path, "%s/summary.json", run);
    cJSON *sum = s_json(path);
    T_CHECK(sum != NULL, "summary.json parses");
    double acc = s_num(sum, "accuracy"), tta = s_num(sum, "tta_accuracy");
    T_CHECK(acc >= 0.5, "accuracy %.3f well above chance (0.25)", acc);
    T_CHECK(tta >= 0.4 && tta <= 1.0, "tta_accuracy %.3f", tta);
    T_CHECK(s_num(sum, "valid_loss") > 0 && s_num(sum, "epochs") == 2 && s_num(sum, "wall_s") > 0 &&
                s_num(sum, "train_img_per_s") > 0 && s_num(sum, "bad_files") == 0 &&
                s_num(sum, "n_valid") == 200,
            "summary fields");

    // the loss falls: smoothed per epoch (metrics.csv) and raw batch losses (jsonl)
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    FILE *f = fopen(path, "r");
    double tl[2] = {NAN, NAN};
    char line[512];
    int rows = 0;
    while (f && fgets(line, sizeof line, f)) {
        int e, fit, fe;
        double t;
        if (sscanf(line, "%d,%d,%d,%lf", &e, &fit, &fe, &t) == 4 && e < 2 && fit == e) tl[e] = t;
        rows++;
    }
    if (f) fclose(f);
    T_CHECK(rows == 3 && tl[1] < tl[0], "smoothed train loss falls: %.4f -> %.4f", tl[0], tl[1]);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    f = fopen(path, "r");
    double first = 0, last[8] = {0};
    int steps = 0, epochs = 0;
    while (f && fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "step")) {
            double l = s_num(o, "loss");
            if (steps < 8) first += l / 8;
            last[steps % 8] = l;
            steps++;
        } else if (cJSON_IsString(type) && !strcmp(type->valuestring, "epoch")) {
            epochs++;
        }
        cJSON_Delete(o);
    }
    if (f) fclose(f);
    double last_mean = 0;
    for (int i = 0; i < 8; i++) last_mean += last[i] / 8;
    T_CHECK(steps == 36 && epochs == 2, "jsonl: 36 steps, 2 epochs (%d, %d)", steps, epochs);
    bool sizes = false;
    f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) sizes |= strstr(line, "\"size\": 64") != NULL;
    if (f) fclose(f);
    T_CHECK(sizes, "the second phase trains at 64 px");
    T_CHECK(last_mean < first, "batch loss falls: first 8 %.3f, last 8 %.3f", first, last_mean);

    // --- a finished checkpoint, evaluated again by the eval verb (deterministic)
    char ckpt[4096];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/final.safetensors", run);
    snprintf(cmd, sizeof cmd,
             "cd %s && NF_BIN_DIR=%s ./run.sh eval %s --tta --json --workers 2 >%s/eval.json "
             "2>%s/eval.err",
             src, bin, ckpt, tmp, tmp);
    rc = s_sh(cmd);
    T_CHECK(rc == 0, "run.sh eval exited %d", rc);
    snprintf(path, sizeof path, "%s/eval.json", tmp);
    cJSON *ev = s_json(path);
    T_CHECK(ev != NULL, "eval prints JSON");
    T_NEAR(s_num(ev, "accuracy"), acc, 1e-9);
    T_NEAR(s_num(ev, "tta_accuracy"), tta, 1e-9);
    T_CHECK(s_num(ev, "n_samples") == 200, "eval over the 200 validation images");

    // --- predictions for image files
    snprintf(cmd, sizeof cmd,
             "cd %s && NF_BIN_DIR=%s ./run.sh predict %s %s/val/%s/* --top 2 >%s/pred.txt",
             src, bin, ckpt, sub, s_classes[3], tmp);
    rc = s_sh(cmd);
    T_CHECK(rc == 0, "run.sh predict exited %d", rc);
    snprintf(path, sizeof path, "%s/pred.txt", tmp);
    f = fopen(path, "r");
    int lines = 0, right = 0;
    while (f && fgets(line, sizeof line, f)) {
        lines++;
        char *colon = strstr(line, ".JPEG: ");
        right += colon && strncmp(colon + 7, s_classes[3], strlen(s_classes[3])) == 0;
    }
    if (f) fclose(f);
    T_CHECK(lines == 50, "a prediction per image (%d)", lines);
    T_CHECK(right >= 20, "parachutes predicted as parachutes: %d of 50", right);

    // --- lr_find on the same data
    char lrf[2048];
    snprintf(lrf, sizeof lrf, "%s/lrfind", tmp);
    snprintf(cmd, sizeof cmd,
             "cd %s && NF_BIN_DIR=%s NF_NO_BAR=1 ./run.sh lr-find --data %s --preset tiny --size 48 "
             "--presize 64 --bs 32 --num-it 30 --workers 2 --out %s >%s/lrf.txt 2>&1",
             src, bin, sub, lrf, tmp);
    rc = s_sh(cmd);
    T_CHECK(rc == 0, "run.sh lr-find exited %d", rc);
    snprintf(path, sizeof path, "%s/lrf.txt", tmp);
    char *lo = nf_read_file(path, 1 << 20, &len);
    const char *sg = lo ? strstr(lo, "valley suggestion lr = ") : NULL;
    double sugg = sg ? atof(sg + strlen("valley suggestion lr = ")) : 0;
    T_CHECK(sugg > 1e-7 && sugg < 10, "a valley suggestion in the range (%g)", sugg);
    T_CHECK(s_has(lrf, "lr_find.csv"), "lr_find.csv");
    s_png(lrf, "lr_find.png", 600);
    free(lo);

    cJSON_Delete(sum);
    cJSON_Delete(ev);
    free(out);
    free(err);
    return t_done();
}
