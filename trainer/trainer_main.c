/*
 * trainer_main.c: the `trainer` binary.
 *
 *   trainer --arch xresnet50 --n-out 10 --summary [--size 224 --bs 64]
 *       fastai's learn.summary() table: layers, output shapes, parameter counts
 *   trainer --bench [--arch xresnet18 --size 128 --bs 64 --backend onednn
 *                    --threads 0 --steps 10 --warmup 2] [--json]
 *       full training steps (forward, loss, backward, Adam) on a synthetic
 *       batch; prints images/s, ms/step and the memory peak (ru_maxrss)
 *
 * The training process itself (ZeroMQ input from the augment stage, the
 * epoch loop, the table, checkpoints) is the next stage of this binary; the
 * engine it drives is trainer/learner.h.
 */
#include "learner.h"
#include "log.h"
#include "rng.h"
#include "timeutil.h"
#include "xresnet.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct {
    const char *arch;
    int n_out, size, bs;
    bool summary, bench, json, no_winograd;
    const char *backend;
    int threads, steps, warmup;
} s_args_t;

static void s_usage(FILE *f)
{
    fprintf(
        f,
        "usage: trainer --summary [--arch A] [--n-out N] [--size S] [--bs B]\n"
        "       trainer --bench [--arch A] [--n-out N] [--size S] [--bs B] [--backend K]\n"
        "                       [--threads T] [--steps N] [--warmup N] [--no-winograd] [--json]\n"
        "  --arch      xresnet18 | xresnet34 | xresnet50 (default xresnet50)\n"
        "  --n-out     number of classes (default 10)\n"
        "  --size      square image size (default 224 for --summary, 128 for --bench)\n"
        "  --bs        batch size (default 64)\n"
        "  --backend   ref | onednn | cuda (default onednn)\n"
        "  --threads   CPU threads (default: OpenMP's)\n"
        "  --steps     timed training steps (default 10); --warmup untimed ones (2)\n"
        "  --no-winograd  onednn: direct convolutions only (default: Winograd for 3x3/1)\n"
        "  --json      print one JSON object\n");
}

static int s_parse_int(const char *name, const char *v, int lo, int hi, int *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || x < lo || x > hi) {
        fprintf(stderr, "trainer: --%s must be an integer in [%d, %d], got '%s'\n", name, lo, hi,
                v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int s_parse(int argc, char **argv, s_args_t *a)
{
    *a = (s_args_t){.arch = "xresnet50", .n_out = 10, .bs = 64, .backend = "onednn",
                    .steps = 10, .warmup = 2};
    enum { O_ARCH = 1, O_NOUT, O_SIZE, O_BS, O_SUMMARY, O_BENCH, O_JSON, O_BACKEND, O_THREADS,
           O_STEPS, O_WARMUP, O_NO_WINO, O_HELP };
    static const struct option opts[] = {
        {"arch", required_argument, 0, O_ARCH},       {"n-out", required_argument, 0, O_NOUT},
        {"size", required_argument, 0, O_SIZE},       {"bs", required_argument, 0, O_BS},
        {"summary", no_argument, 0, O_SUMMARY},       {"bench", no_argument, 0, O_BENCH},
        {"json", no_argument, 0, O_JSON},             {"backend", required_argument, 0, O_BACKEND},
        {"threads", required_argument, 0, O_THREADS}, {"steps", required_argument, 0, O_STEPS},
        {"warmup", required_argument, 0, O_WARMUP},   {"no-winograd", no_argument, 0, O_NO_WINO},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    int c, rc = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_ARCH: a->arch = optarg; break;
        case O_NOUT: rc |= s_parse_int("n-out", optarg, 1, 100000, &a->n_out); break;
        case O_SIZE: rc |= s_parse_int("size", optarg, 1, 4096, &a->size); break;
        case O_BS: rc |= s_parse_int("bs", optarg, 1, 65536, &a->bs); break;
        case O_SUMMARY: a->summary = true; break;
        case O_BENCH: a->bench = true; break;
        case O_JSON: a->json = true; break;
        case O_BACKEND: a->backend = optarg; break;
        case O_THREADS: rc |= s_parse_int("threads", optarg, 0, 1024, &a->threads); break;
        case O_STEPS: rc |= s_parse_int("steps", optarg, 1, 1000000, &a->steps); break;
        case O_WARMUP: rc |= s_parse_int("warmup", optarg, 0, 1000000, &a->warmup); break;
        case O_NO_WINO: a->no_winograd = true; break;
        case 'h':
        case O_HELP: s_usage(stdout); exit(0);
        default:
            fprintf(stderr, "trainer: unknown or incomplete option '%s' (trainer --help)\n",
                    argv[optind - 1]);
            return -1;
        }
    }
    if (rc) return -1;
    if (optind < argc) {
        fprintf(stderr, "trainer: unexpected argument '%s' (trainer --help)\n", argv[optind]);
        return -1;
    }
    if (a->summary == a->bench) {
        fprintf(stderr, "trainer: give exactly one of --summary or --bench (trainer --help)\n");
        return -1;
    }
    if (!a->size) a->size = a->summary ? 224 : 128;
    return 0;
}

static int s_summary(const s_args_t *a)
{
    xresnet_config_t cfg = {.arch = a->arch, .n_out = a->n_out, .c_in = 3};
    xresnet_t *net = xresnet_new(&cfg);
    if (!net) return 1;
    int rc = xresnet_summary(net, a->bs, a->size, a->size, stdout);
    if (rc != 0) fprintf(stderr, "trainer: %d px is too small for %s\n", a->size, a->arch);
    else
        printf("\nOptimizer used: Adam (fastai: mom 0.9, sqr_mom 0.99, eps 1e-5, wd 0.01)\n"
               "Loss function: FlattenedLoss of CrossEntropyLoss()\n");
    xresnet_destroy(&net);
    return rc == 0 ? 0 : 1;
}

static int s_bench(const s_args_t *a)
{
    learner_config_t cfg = learner_default_config(a->arch, a->n_out);
    if (exec_kind_parse(a->backend, &cfg.backend) != 0) {
        fprintf(stderr, "trainer: unknown backend '%s' (ref, onednn, cuda)\n", a->backend);
        return 1;
    }
    cfg.threads = a->threads;
    cfg.winograd = !a->no_winograd;
    cfg.bs = a->bs;
    cfg.size = a->size;
    double t0 = nf_now_s();
    learner_t *l = learner_new(&cfg);
    if (!l) return 1;
    double t_setup = nf_now_s() - t0;
    size_t nx = (size_t)a->bs * a->size * a->size * 3;
    float *x = nf_xaligned(nx * sizeof(float));
    int32_t *y = nf_xmalloc((size_t)a->bs * sizeof(int32_t));
    nf_rng_t r = nf_rng_make(1, NF_RNG_STREAM_TEST, 0, 0);
    for (size_t i = 0; i < nx; i++) x[i] = 2.0f * nf_rng_uniform(&r) - 1.0f;
    for (int i = 0; i < a->bs; i++) y[i] = (int32_t)nf_rng_below(&r, (uint32_t)a->n_out);
    learner_batch_t b = {.x = x, .y = y, .n = a->bs, .h = a->size, .w = a->size};
    learner_set_hypers(l, 1e-3, 0.9);
    float loss = 0;
    for (int i = 0; i < a->warmup; i++) learner_train_step(l, &b, &loss);
    double t1 = nf_now_s();
    for (int i = 0; i < a->steps; i++) learner_train_step(l, &b, &loss);
    double dt = nf_now_s() - t1;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double img_s = (double)a->bs * a->steps / dt, ms = 1e3 * dt / a->steps;
    double gflop = 3.0 * 2.0 * xresnet_macs(learner_net(l), a->size, a->size) / 1e9;
    if (a->json)
        printf("{\"arch\": \"%s\", \"size\": %d, \"bs\": %d, \"backend\": \"%s\", "
               "\"winograd\": %s, \"threads\": %d, \"steps\": %d, \"img_per_s\": %.2f, "
               "\"ms_per_step\": %.1f, "
               "\"gflop_per_s\": %.1f, \"peak_rss_mb\": %.1f, \"setup_s\": %.2f, "
               "\"last_loss\": %.4f}\n",
               a->arch, a->size, a->bs, a->backend, cfg.winograd ? "true" : "false", a->threads,
               a->steps, img_s, ms, img_s * gflop, (double)ru.ru_maxrss / 1024.0, t_setup,
               (double)loss);
    else
        printf("%s %d px bs %d on %s: %.2f img/s, %.1f ms/step, %.1f GFLOP/s (conv+linear), "
               "peak RSS %.1f MB, setup %.2f s, loss %.4f\n",
               a->arch, a->size, a->bs, a->backend, img_s, ms, img_s * gflop,
               (double)ru.ru_maxrss / 1024.0, t_setup, (double)loss);
    free(x);
    free(y);
    learner_destroy(&l);
    return 0;
}

int main(int argc, char **argv)
{
    nf_log_config_t lc = {.stage = "trainer", .level = NF_LOG_INFO};
    nf_log_init(&lc);
    s_args_t a;
    if (s_parse(argc, argv, &a) != 0) return 2;
    return a.summary ? s_summary(&a) : s_bench(&a);
}
