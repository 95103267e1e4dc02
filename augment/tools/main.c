/*
 * main.c: the `augment` command-line tool.
 *
 *   augment show-batch --data DIR --out batch.png [options]
 *   augment stats      --data DIR [options]
 *   augment bench      --data DIR [options]
 *   augment fidelity   --data DIR [options]
 *   augment devices
 *   augment serve      --connect COORDINATOR [options]
 *
 * show-batch writes a PNG grid of an augmented, Mixup'd batch of real images;
 * stats prints fastai's Normalize() statistics of one augmented training
 * batch; bench times augment_batch and prints one JSON object; fidelity
 * prints how close each resample mode comes to an 8x8-supersampled rendering
 * of the same geometry (PSNR, JSON); devices prints the number of usable CUDA
 * devices. The augment process (sockets) will be a
 * further subcommand of this binary. Pictures come from imgdir.h (a tiny
 * local decoder), not from the loader.
 */
#include "augment.h"
#include "transform.h"
#include "imgdir.h"
#include "serve.h"
#include "log.h"
#include "rng.h"
#include "show_batch.h"
#include "timeutil.h"

#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *data, *out, *split;
    int n, iters, warmup, epoch;
    augment_mode_t mode;
    augment_config_t cfg;
} s_opts_t;

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: augment COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  show-batch   write a PNG grid of an augmented batch (--data, --out)\n"
            "  stats        print Normalize() stats of one augmented training batch (--data)\n"
            "  bench        time the batch transform, print JSON (--data)\n"
            "  fidelity     PSNR of both resample modes against an 8x8-supersampled\n"
            "               rendering of the same geometry, print JSON (--data)\n"
            "  devices      print the number of usable CUDA devices\n"
            "  serve        the augment process: tensor streams for trainers and evaluators\n"
            "               (augment serve --help)\n"
            "\n"
            "options (defaults: the fastai chapter's recipe):\n"
            "  --data DIR        Imagenette-style folder (DIR/SPLIT/<class>/*.JPEG)\n"
            "  --split NAME      folder under DIR (train)\n"
            "  --out FILE        PNG to write (show-batch)\n"
            "  --bs N            images per batch (16 for show-batch, 64 otherwise)\n"
            "  --size N          output side (224)\n"
            "  --presize N       input side the images are presized to (460)\n"
            "  --min-scale X     RandomResizedCropGPU min_scale; 1 = no crop stage (0.75)\n"
            "  --mode M          train | valid | tta (train)\n"
            "  --mixup A         Mixup alpha, 0 = off (0.4 for show-batch, 0 otherwise)\n"
            "  --resample R      fused | reference (fused)\n"
            "  --backend B       cpu | cuda (cpu)\n"
            "  --dtype T         f32 | bf16 (f32)\n"
            "  --threads N       CPU threads, 0 = all (0)\n"
            "  --no-normalize    output in [0, 1] instead of Normalize(imagenet_stats)\n"
            "  --seed N          random seed (0)\n"
            "  --epoch N         epoch of the draws (0)\n"
            "  --iters N         timed batches for bench (10), --warmup N untimed (2)\n");
}

static int s_parse(int argc, char **argv, s_opts_t *o, bool show)
{
    augment_config_defaults(&o->cfg);
    o->data = NULL;
    o->out = NULL;
    o->split = "train";
    o->n = show ? 16 : 64;
    o->iters = 10;
    o->warmup = 2;
    o->epoch = 0;
    o->mode = AUGMENT_MODE_TRAIN;
    if (show) o->cfg.mixup_alpha = 0.4f;
    enum { O_DATA = 256, O_SPLIT, O_OUT, O_BS, O_SIZE, O_PRESIZE, O_MINSCALE, O_MODE, O_MIXUP,
           O_RESAMPLE, O_BACKEND, O_DTYPE, O_THREADS, O_NONORM, O_SEED, O_EPOCH, O_ITERS,
           O_WARMUP, O_HELP };
    // in the order of the enum: opts[c - O_DATA] is option c
    static const struct option opts[] = {
        {"data", required_argument, 0, O_DATA},
        {"split", required_argument, 0, O_SPLIT},
        {"out", required_argument, 0, O_OUT},
        {"bs", required_argument, 0, O_BS},
        {"size", required_argument, 0, O_SIZE},
        {"presize", required_argument, 0, O_PRESIZE},
        {"min-scale", required_argument, 0, O_MINSCALE},
        {"mode", required_argument, 0, O_MODE},
        {"mixup", required_argument, 0, O_MIXUP},
        {"resample", required_argument, 0, O_RESAMPLE},
        {"backend", required_argument, 0, O_BACKEND},
        {"dtype", required_argument, 0, O_DTYPE},
        {"threads", required_argument, 0, O_THREADS},
        {"no-normalize", no_argument, 0, O_NONORM},
        {"seed", required_argument, 0, O_SEED},
        {"epoch", required_argument, 0, O_EPOCH},
        {"iters", required_argument, 0, O_ITERS},
        {"warmup", required_argument, 0, O_WARMUP},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case O_DATA: o->data = optarg; break;
        case O_SPLIT: o->split = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_BS: o->n = (int)strtol(optarg, &end, 10); break;
        case O_SIZE: o->cfg.size = (int)strtol(optarg, &end, 10); break;
        case O_PRESIZE: o->cfg.presize = (int)strtol(optarg, &end, 10); break;
        case O_MINSCALE: o->cfg.min_scale = strtof(optarg, &end); break;
        case O_MIXUP: o->cfg.mixup_alpha = strtof(optarg, &end); break;
        case O_THREADS: o->cfg.threads = (int)strtol(optarg, &end, 10); break;
        case O_SEED: o->cfg.seed = strtoull(optarg, &end, 10); break;
        case O_EPOCH: o->epoch = (int)strtol(optarg, &end, 10); break;
        case O_ITERS: o->iters = (int)strtol(optarg, &end, 10); break;
        case O_WARMUP: o->warmup = (int)strtol(optarg, &end, 10); break;
        case O_NONORM: o->cfg.normalize = false; break;
        case O_MODE:
            if (augment_mode_parse(optarg, &o->mode) != 0) goto bad_value;
            break;
        case O_RESAMPLE:
            if (augment_resample_parse(optarg, &o->cfg.resample) != 0) goto bad_value;
            break;
        case O_BACKEND:
            if (augment_backend_parse(optarg, &o->cfg.backend) != 0) goto bad_value;
            break;
        case O_DTYPE:
            if (augment_dtype_parse(optarg, &o->cfg.dtype) != 0) goto bad_value;
            break;
        case O_HELP: s_usage(stdout); exit(0);
        default: s_usage(stderr); return -1;
        }
        if (end && *end) goto bad_value;
        continue;
    bad_value:
        fprintf(stderr, "augment: bad value '%s' for --%s\n", optarg, opts[c - O_DATA].name);
        return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "augment: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!o->data) {
        fprintf(stderr, "augment: --data DIR is required (an Imagenette-style folder)\n");
        return -1;
    }
    if (o->n < 1 || o->iters < 1 || o->warmup < 0 || o->epoch < 0) {
        fprintf(stderr, "augment: --bs, --iters must be >= 1, --warmup and --epoch >= 0\n");
        return -1;
    }
    o->cfg.max_batch = o->n;
    return 0;
}

// Loads n pictures chosen by the seed (a seeded shuffle of the split), skipping
// unreadable files. Fills px (n, presize, presize, 3), labels and indices.
static int s_load(const s_opts_t *o, const imgdir_t *dir, uint8_t *px, int32_t *labels,
                  uint32_t *idx)
{
    uint32_t *perm = nf_xmalloc((size_t)dir->n * sizeof *perm);
    for (int i = 0; i < dir->n; i++) perm[i] = (uint32_t)i;
    nf_rng_t r = nf_rng_make(o->cfg.seed, NF_RNG_STREAM_TEST, 0, 0);
    for (int i = dir->n - 1; i > 0; i--) {
        uint32_t j = nf_rng_below(&r, (uint32_t)i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    size_t per = (size_t)o->cfg.presize * o->cfg.presize * 3;
    int got = 0;
    for (int k = 0; k < dir->n && got < o->n; k++) {
        if (imgdir_load(dir->paths[perm[k]], o->cfg.presize, px + (size_t)got * per) != 0) continue;
        labels[got] = dir->labels[perm[k]];
        idx[got] = perm[k];
        got++;
    }
    free(perm);
    if (got < o->n) {
        nf_log_error("augment: only %d readable images for a batch of %d", got, o->n);
        return -1;
    }
    return 0;
}

typedef struct {
    imgdir_t *dir;
    uint8_t *px;
    int32_t *labels;
    uint32_t *idx;
    augment_t *aug;
    augment_out_t out;
} s_job_t;

static int s_job_open(const s_opts_t *o, s_job_t *j)
{
    memset(j, 0, sizeof *j);
    j->dir = imgdir_open(o->data, o->split);
    if (!j->dir) return -1;
    j->px = nf_xmalloc((size_t)o->n * o->cfg.presize * o->cfg.presize * 3);
    j->labels = nf_xmalloc((size_t)o->n * sizeof *j->labels);
    j->idx = nf_xmalloc((size_t)o->n * sizeof *j->idx);
    if (s_load(o, j->dir, j->px, j->labels, j->idx) != 0) return -1;
    j->aug = augment_new(&o->cfg);
    if (!j->aug) return -1;
    j->out.pixels = nf_xmalloc(augment_out_bytes(j->aug, o->n));
    j->out.labels = nf_xmalloc((size_t)o->n * sizeof(int32_t));
    j->out.partner_labels = nf_xmalloc((size_t)o->n * sizeof(int32_t));
    j->out.weights = nf_xmalloc((size_t)o->n * sizeof(float));
    return 0;
}

static void s_job_close(s_job_t *j)
{
    augment_destroy(&j->aug);
    imgdir_destroy(&j->dir);
    free(j->px);
    free(j->labels);
    free(j->idx);
    free(j->out.pixels);
    free(j->out.labels);
    free(j->out.partner_labels);
    free(j->out.weights);
}

static augment_raw_t s_raw(const s_opts_t *o, const s_job_t *j, uint32_t seq)
{
    augment_raw_t raw = {.pixels = j->px, .n = o->n, .h = o->cfg.presize, .w = o->cfg.presize,
                         .labels = j->labels, .indices = j->idx, .epoch = (uint32_t)o->epoch,
                         .seq = seq, .pass = (uint32_t)o->epoch, .mode = o->mode};
    return raw;
}

static int s_show_batch(const s_opts_t *o)
{
    if (!o->out) {
        fprintf(stderr, "augment: show-batch needs --out FILE.png\n");
        return 2;
    }
    s_job_t j;
    int rc = 1;
    if (s_job_open(o, &j) != 0) goto done;
    augment_raw_t raw = s_raw(o, &j, 0);
    if (augment_batch(j.aug, &j.out, &raw) != 0) goto done;
    const char **names = nf_xmalloc((size_t)j.dir->n_classes * sizeof *names);
    for (int c = 0; c < j.dir->n_classes; c++) names[c] = imgdir_class_name(j.dir->classes[c]);
    static const char *const modes[] = {"train", "valid", "tta"};
    char title[200];
    snprintf(title, sizeof title, "%s epoch %d, %s resample, size %d from %d, mixup %g, seed %llu",
             modes[o->mode], o->epoch, augment_resample_name(o->cfg.resample), o->cfg.size,
             o->cfg.presize, o->mode == AUGMENT_MODE_TRAIN ? (double)o->cfg.mixup_alpha : 0.0,
             (unsigned long long)o->cfg.seed);
    show_batch_config_t sc = {.class_names = names, .n_classes = j.dir->n_classes,
                              .normalized = o->cfg.normalize, .title = title};
    memcpy(sc.mean, o->cfg.mean, sizeof sc.mean);
    memcpy(sc.std, o->cfg.std, sizeof sc.std);
    if (augment_show_batch(&j.out, &sc, o->out) == 0) {
        printf("wrote %s (%d images)\n", o->out, o->n);
        rc = 0;
    }
    free(names);
done:
    s_job_close(&j);
    return rc;
}

static int s_stats(const s_opts_t *o)
{
    s_job_t j;
    int rc = 1;
    if (s_job_open(o, &j) == 0) {
        augment_raw_t raw = s_raw(o, &j, 0);
        raw.mode = AUGMENT_MODE_TRAIN;
        float mean[3], std[3];
        if (augment_compute_stats(j.aug, &raw, mean, std) == 0) {
            printf("{\"mean\": [%.6f, %.6f, %.6f], \"std\": [%.6f, %.6f, %.6f], \"bs\": %d}\n",
                   (double)mean[0], (double)mean[1], (double)mean[2], (double)std[0],
                   (double)std[1], (double)std[2], o->n);
            rc = 0;
        }
    }
    s_job_close(&j);
    return rc;
}

static int s_bench(const s_opts_t *o)
{
    s_job_t j;
    int rc = 1;
    if (s_job_open(o, &j) != 0) goto done;
    double kernel_ms = 0;
    for (int it = 0; it < o->warmup; it++) {
        augment_raw_t raw = s_raw(o, &j, (uint32_t)(1000 + it));
        if (augment_batch(j.aug, &j.out, &raw) != 0) goto done;
    }
    double t0 = nf_now_s();
    for (int it = 0; it < o->iters; it++) {
        augment_raw_t raw = s_raw(o, &j, (uint32_t)it);
        if (augment_batch(j.aug, &j.out, &raw) != 0) goto done;
        kernel_ms += augment_last_kernel_ms(j.aug);
    }
    double dt = nf_now_s() - t0;
    static const char *const dtypes[] = {"f32", "bf16"};
    printf("{\"backend\": \"%s\", \"resample\": \"%s\", \"size\": %d, \"presize\": %d, \"bs\": %d, "
           "\"threads\": %d, \"dtype\": \"%s\", \"mixup\": %g, \"iters\": %d, "
           "\"ms_per_batch\": %.3f, \"img_per_s\": %.1f",
           o->cfg.backend == AUGMENT_BACKEND_CUDA ? "cuda" : "cpu",
           augment_resample_name(o->cfg.resample), o->cfg.size, o->cfg.presize, o->n,
           o->cfg.threads, dtypes[o->cfg.dtype], (double)o->cfg.mixup_alpha, o->iters,
           dt * 1000.0 / o->iters, o->n * o->iters / dt);
    if (o->cfg.backend == AUGMENT_BACKEND_CUDA)
        printf(", \"kernel_ms_per_batch\": %.3f, \"kernel_img_per_s\": %.1f", kernel_ms / o->iters,
               o->n * o->iters / (kernel_ms / 1000.0));
    printf("}\n");
    rc = 0;
done:
    s_job_close(&j);
    return rc;
}

// The geometry of one drawn training batch rendered three ways on the CPU
// (no lighting, Normalize or Mixup, values in [0, 1]): fused (k x k
// supersampling as configured), reference (fastai's two resamples), and an
// oracle: the fused map with 8 x 8 supersampling, a close approximation of the
// exact box-filtered warp of the bilinear source. Prints PSNR of each mode
// against the oracle.
static int s_fidelity(const s_opts_t *o)
{
    s_job_t j;
    int rc = 1;
    s_opts_t q = *o;
    q.cfg.normalize = false;
    q.cfg.max_lighting = 0.0f;
    q.cfg.mixup_alpha = 0.0f;
    q.cfg.dtype = AUGMENT_DTYPE_F32;
    if (s_job_open(&q, &j) != 0) goto done;
    size_t elems = (size_t)q.n * q.cfg.size * q.cfg.size * 3;
    float *img[3];
    augment_image_params_t *ip = nf_xmalloc((size_t)q.n * sizeof *ip);
    int threads = q.cfg.threads > 0 ? q.cfg.threads : omp_get_max_threads();
    augment_workspace_shape_t shape = {.max_n = q.n, .presize = q.cfg.presize, .size = q.cfg.size,
                                       .threads = threads,
                                       .resample = AUGMENT_RESAMPLE_REFERENCE};  // the larger
    size_t ws_bytes = augment_transform_workspace_bytes(AUGMENT_BACKEND_CPU, &shape);
    void *ws = nf_xaligned(ws_bytes);
    for (int k = 0; k < 3; k++) {
        augment_config_t cfg = q.cfg;
        cfg.resample = k == 1 ? AUGMENT_RESAMPLE_REFERENCE : AUGMENT_RESAMPLE_FUSED;
        augment_raw_t raw = s_raw(&q, &j, 0);
        raw.mode = AUGMENT_MODE_TRAIN;
        augment_batch_params_t bp;
        augment_params_draw(&cfg, &raw, &bp, ip);
        if (k == 2)
            for (int i = 0; i < q.n; i++) ip[i].ss = 8;
        img[k] = nf_xmalloc(elems * sizeof(float));
        augment_transform_args_t a = {.batch = bp, .img = ip, .src = j.px, .out = img[k],
                                      .dtype = AUGMENT_DTYPE_F32, .ws = ws, .ws_bytes = ws_bytes,
                                      .threads = threads};
        augment_transform_cpu(&a);
    }
    double psnr[2];
    for (int k = 0; k < 2; k++) {
        double se = 0;
        for (size_t e = 0; e < elems; e++) {
            double d = (double)img[k][e] - img[2][e];
            se += d * d;
        }
        psnr[k] = 10.0 * log10(1.0 / (se / (double)elems));
    }
    printf("{\"size\": %d, \"presize\": %d, \"bs\": %d, "
           "\"oracle\": \"fused map, 8x8 supersampling\", "
           "\"psnr_fused_db\": %.2f, \"psnr_reference_db\": %.2f}\n",
           q.cfg.size, q.cfg.presize, q.n, psnr[0], psnr[1]);
    for (int k = 0; k < 3; k++) free(img[k]);
    free(ws);
    free(ip);
    rc = 0;
done:
    s_job_close(&j);
    return rc;
}

int main(int argc, char **argv)
{
    nf_log_config_t lc = {.stage = "augment", .level = NF_LOG_INFO};
    nf_log_init(&lc);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0) return augment_serve_main(argc, argv);
    if (strcmp(cmd, "devices") == 0) {
        printf("%d\n", augment_cuda_devices());
        return 0;
    }
    bool show = strcmp(cmd, "show-batch") == 0;
    if (!show && strcmp(cmd, "stats") != 0 && strcmp(cmd, "bench") != 0 &&
        strcmp(cmd, "fidelity") != 0) {
        fprintf(stderr, "augment: unknown command '%s' (augment --help)\n", cmd);
        return 2;
    }
    s_opts_t o;
    if (s_parse(argc, argv, &o, show) != 0) return 2;
    if (show) return s_show_batch(&o);
    if (strcmp(cmd, "stats") == 0) return s_stats(&o);
    if (strcmp(cmd, "fidelity") == 0) return s_fidelity(&o);
    return s_bench(&o);
}
