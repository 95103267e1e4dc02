/*
 * trainer_main.c: the `trainer` binary.
 *
 *   trainer --arch xresnet50 --n-out 10 --summary [--size 224 --bs 64]
 *       fastai's learn.summary() table: layers, output shapes, parameter counts
 *   trainer --bench [--arch xresnet18 --size 128 --bs 64 --backend onednn
 *                    --threads 0 --steps 10 --warmup 2] [--json]
 *       full training steps (forward, loss, backward, Adam) on a synthetic
 *       batch; prints images/s, ms/step and the memory peak (ru_maxrss).
 *       cuda: bf16 (--dtype f32 for fp32), the batch resident in a device
 *       ring slot as the augment stage would hand it over (--host-input:
 *       from host memory every step), steps queued two deep, CUDA graphs and
 *       autotuned convolutions (--no-graphs, --no-autotune)
 *
 * The training process itself (ZeroMQ input from the augment stage, the
 * epoch loop, the table, checkpoints) is the next stage of this binary; the
 * engine it drives is trainer/learner.h.
 */
#include "devring.h"
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
    const char *backend, *dtype;
    int threads, steps, warmup;
    bool no_graphs, no_autotune, host_input;
} s_args_t;

static void s_usage(FILE *f)
{
    fprintf(
        f,
        "usage: trainer --summary [--arch A] [--n-out N] [--size S] [--bs B]\n"
        "       trainer --bench [--arch A] [--n-out N] [--size S] [--bs B] [--backend K]\n"
        "                       [--threads T] [--steps N] [--warmup N] [--no-winograd] [--json]\n"
        "                       [--dtype bf16|f32] [--no-graphs] [--no-autotune] [--host-input]\n"
        "  --arch      xresnet18 | xresnet34 | xresnet50 (default xresnet50)\n"
        "  --n-out     number of classes (default 10)\n"
        "  --size      square image size (default 224 for --summary, 128 for --bench)\n"
        "  --bs        batch size (default 64)\n"
        "  --backend   ref | onednn | cuda (default onednn)\n"
        "  --threads   CPU threads (default: OpenMP's)\n"
        "  --steps     timed training steps (default 10); --warmup untimed ones (2)\n"
        "  --no-winograd  onednn: direct convolutions only (default: Winograd for 3x3/1)\n"
        "  --dtype     cuda: bf16 (default) or f32 activations (fp32 master weights)\n"
        "  --no-graphs, --no-autotune   cuda: eager steps; cuDNN heuristics\n"
        "  --host-input   cuda: images uploaded from host memory every step\n"
        "                 (default: resident in a device ring slot)\n"
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
                    .dtype = "bf16", .steps = 10, .warmup = 2};
    enum { O_ARCH = 1, O_NOUT, O_SIZE, O_BS, O_SUMMARY, O_BENCH, O_JSON, O_BACKEND, O_THREADS,
           O_STEPS, O_WARMUP, O_NO_WINO, O_HELP, O_DTYPE, O_NO_GRAPHS, O_NO_TUNE, O_HOST_IN };
    static const struct option opts[] = {
        {"arch", required_argument, 0, O_ARCH},       {"n-out", required_argument, 0, O_NOUT},
        {"size", required_argument, 0, O_SIZE},       {"bs", required_argument, 0, O_BS},
        {"summary", no_argument, 0, O_SUMMARY},       {"bench", no_argument, 0, O_BENCH},
        {"json", no_argument, 0, O_JSON},             {"backend", required_argument, 0, O_BACKEND},
        {"threads", required_argument, 0, O_THREADS}, {"steps", required_argument, 0, O_STEPS},
        {"warmup", required_argument, 0, O_WARMUP},   {"no-winograd", no_argument, 0, O_NO_WINO},
        {"help", no_argument, 0, O_HELP},             {"dtype", required_argument, 0, O_DTYPE},
        {"no-graphs", no_argument, 0, O_NO_GRAPHS},   {"no-autotune", no_argument, 0, O_NO_TUNE},
        {"host-input", no_argument, 0, O_HOST_IN},
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
        case O_DTYPE: a->dtype = optarg; break;
        case O_NO_GRAPHS: a->no_graphs = true; break;
        case O_NO_TUNE: a->no_autotune = true; break;
        case O_HOST_IN: a->host_input = true; break;
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
    if (strcmp(a->dtype, "bf16") != 0 && strcmp(a->dtype, "f32") != 0) {
        fprintf(stderr, "trainer: --dtype must be bf16 or f32, got '%s'\n", a->dtype);
        return -1;
    }
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

// The synthetic batch in a one-slot device ring, as the augment stage hands
// a batch over (the executor copies it into its plan, as it would a real one).
static devring_t *s_bench_ring(const float *x, size_t bytes, learner_batch_t *b,
                               devring_peer_t **peer)
{
    devring_config_t rc = {.kind = DEVRING_CUDA, .slots = 1, .slot_bytes = bytes};
    devring_t *r = devring_new(&rc);
    if (!r) return NULL;
    const int s = devring_acquire(r, NULL);
    devring_write(r, s, x, bytes, NULL);
    devring_publish(r, s, NULL);
    *peer = devring_attach_local(r);
    b->x = NULL;
    b->dev = (exec_dev_images_t){.x = devring_peer_ptr(*peer, s), .dtype = KDTYPE_F32,
                                 .ready = devring_peer_ready(*peer, s)};
    return r;
}

static int s_bench(const s_args_t *a)
{
    learner_config_t cfg = learner_default_config(a->arch, a->n_out);
    if (exec_kind_parse(a->backend, &cfg.backend) != 0) {
        fprintf(stderr, "trainer: unknown backend '%s' (ref, onednn, cuda)\n", a->backend);
        return 1;
    }
    const bool cuda = cfg.backend == EXEC_CUDA;
    cfg.threads = a->threads;
    cfg.winograd = !a->no_winograd;
    cfg.bf16 = cuda && strcmp(a->dtype, "bf16") == 0;
    cfg.no_graphs = a->no_graphs;
    cfg.no_autotune = a->no_autotune;
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
    devring_t *ring = NULL;
    devring_peer_t *peer = NULL;
    if (cuda && !a->host_input) {
        ring = s_bench_ring(x, nx * sizeof(float), &b, &peer);
        if (!ring) nf_log_warn("trainer: no device ring; the batch comes from host memory");
    }
    learner_set_hypers(l, 1e-3, 0.9);
    float loss = 0;
    // warm-up: the first steps plan, tune, run eagerly and capture the graph
    for (int i = 0; i < a->warmup; i++) learner_train_step(l, &b, &loss);
    double t1 = nf_now_s();
    for (int i = 0; i < a->steps; i++) {
        if (learner_train_pending(l) == LEARNER_MAX_INFLIGHT) learner_train_collect(l, &loss);
        if (learner_train_submit(l, &b) != 0) return 1;
    }
    while (learner_train_collect(l, &loss)) {}
    double dt = nf_now_s() - t1;
    const exec_stats_t es = learner_exec_stats(l);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double img_s = (double)a->bs * a->steps / dt, ms = 1e3 * dt / a->steps;
    double gflop = 3.0 * 2.0 * xresnet_macs(learner_net(l), a->size, a->size) / 1e9;
    const char *dtype = cuda ? a->dtype : "f32";
    if (a->json)
        printf("{\"arch\": \"%s\", \"size\": %d, \"bs\": %d, \"backend\": \"%s\", "
               "\"dtype\": \"%s\", \"winograd\": %s, \"threads\": %d, \"steps\": %d, "
               "\"img_per_s\": %.2f, \"ms_per_step\": %.2f, "
               "\"gflop_per_s\": %.1f, \"peak_rss_mb\": %.1f, \"setup_s\": %.2f, "
               "\"last_loss\": %.4f, \"input\": \"%s\", \"graphs\": %d, "
               "\"graph_launches\": %lld, \"eager_runs\": %lld, \"tuned_convs\": %d, "
               "\"plan_s\": %.2f, \"device_mb\": %.1f}\n",
               a->arch, a->size, a->bs, a->backend, dtype, cfg.winograd ? "true" : "false",
               a->threads, a->steps, img_s, ms, img_s * gflop, (double)ru.ru_maxrss / 1024.0,
               t_setup, (double)loss, ring ? "device" : "host", es.graphs,
               (long long)es.graph_launches, (long long)es.eager_runs, es.tuned_convs, es.plan_s,
               (double)es.device_bytes / 1e6);
    else
        printf("%s %d px bs %d on %s (%s): %.2f img/s, %.2f ms/step, %.1f GFLOP/s (conv+linear), "
               "peak RSS %.1f MB, setup %.2f s, loss %.4f\n",
               a->arch, a->size, a->bs, a->backend, dtype, img_s, ms, img_s * gflop,
               (double)ru.ru_maxrss / 1024.0, t_setup, (double)loss);
    learner_destroy(&l);
    devring_detach(&peer);
    devring_destroy(&ring);
    free(x);
    free(y);
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
