/*
 * serve.c: `augment serve`, the augment process: a loader consumer upstream
 * and a tensor-stream server downstream (augment/server.h). This file only
 * parses options, sets up logging and signals, and runs the server.
 */
#include "serve.h"

#include "augment.h"
#include "curve_opts.h"
#include "log.h"
#include "server.h"
#include "zmqutil.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The augment process binds the ROUTER (clients) and the loader sink (workers)
// and connects to the coordinator: with keys every bind is a CURVE server, and
// the loader link is CURVE when the coordinator's key is given.
static const nf_curve_role_t s_role = {
    .prog = "augment serve", .binds = true, .connects = true, .need_allow = true,
    .server_is = "the loader coordinator's public key (its NAME.key)",
    .allow_is = "allowed keys of clients and of workers (sink)"};

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: augment serve --connect COORDINATOR [options]\n"
            "The augment process: takes raw batches from a loader coordinator, serves\n"
            "model-ready tensor streams to trainers and evaluators (docs/augment.md).\n"
            "  --connect EP       loader coordinator endpoint (required)\n"
            "  --bind EP          endpoint for clients (default tcp://127.0.0.1:5556)\n"
            "  --sink EP          where loader workers push raw batches (default tcp://127.0.0.1:*)\n"
            "  --device D         cpu | cuda | auto (default auto: CUDA when a GPU is usable)\n"
            "  --threads N        CPU threads (default: OpenMP's)\n"
            "  --gpu N            CUDA device ordinal (default 0)\n"
            "  --seed N           seed of streams that do not give one (default 42)\n"
            "  --raw-credits N    raw batches held per stream (default 2)\n"
            "  --job ID           only serve this job (default: the coordinator's)\n"
            "  --log FILE         also append the log to FILE\n");
    nf_curve_opts_help(f, &s_role);
}

static int s_fail(const char *msg, const char *arg)
{
    fprintf(stderr, "augment serve: %s%s%s (augment serve --help)\n", msg, arg ? " " : "",
            arg ? arg : "");
    return 2;
}

static bool s_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max) return false;
    *out = v;
    return true;
}

int augment_serve_main(int argc, char **argv)
{
    enum { O_CONNECT = 256, O_BIND, O_SINK, O_DEVICE, O_THREADS, O_GPU, O_SEED, O_RAW, O_JOB,
           O_LOG, O_HELP };
    static const struct option opts[] = {
        {"connect", required_argument, 0, O_CONNECT}, {"bind", required_argument, 0, O_BIND},
        {"sink", required_argument, 0, O_SINK},       {"device", required_argument, 0, O_DEVICE},
        {"threads", required_argument, 0, O_THREADS}, {"gpu", required_argument, 0, O_GPU},
        {"seed", required_argument, 0, O_SEED},       {"raw-credits", required_argument, 0, O_RAW},
        {"job", required_argument, 0, O_JOB},         {"log", required_argument, 0, O_LOG},
        {"help", no_argument, 0, O_HELP},             NF_CURVE_LONG_OPTIONS,
        {0, 0, 0, 0}};
    augment_server_config_t cfg = {.stop_fd = -1};
    nf_curve_opts_t co = {0};
    const char *device = "auto", *log_file = NULL;
    int c;
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        unsigned long long v = 0;
        if (nf_curve_opts_getopt(&co, c, optarg)) continue;
        switch (c) {
        case O_CONNECT: cfg.coordinator = optarg; break;
        case O_BIND: cfg.bind = optarg; break;
        case O_SINK: cfg.sink = optarg; break;
        case O_DEVICE: device = optarg; break;
        case O_THREADS:
            if (!s_uint(optarg, 1024, &v)) return s_fail("bad --threads", optarg);
            cfg.threads = (int)v;
            break;
        case O_GPU:
            if (!s_uint(optarg, 64, &v)) return s_fail("bad --gpu", optarg);
            cfg.device = (int)v;
            break;
        case O_SEED:
            if (!s_uint(optarg, UINT64_MAX, &v)) return s_fail("bad --seed", optarg);
            cfg.seed = v;
            break;
        case O_RAW:
            if (!s_uint(optarg, 64, &v) || v == 0) return s_fail("bad --raw-credits", optarg);
            cfg.raw_credits = (uint32_t)v;
            break;
        case O_JOB: cfg.job = optarg; break;
        case O_LOG: log_file = optarg; break;
        case O_HELP: s_usage(stdout); return 0;
        default: return s_fail("unknown or incomplete option", argv[optind - 1]);
        }
    }
    if (optind < argc) return s_fail("unexpected argument", argv[optind]);
    if (!cfg.coordinator) return s_fail("--connect COORDINATOR is required", NULL);
    if (nf_curve_opts_check(&co, &s_role) != 0) return 2;
    // first: every thread created later (CUDA, ZeroMQ, OpenMP) inherits the blocked mask
    nf_signals_t *sig = nf_signals_new();
    if (!sig) return 1;
    int gpus = augment_cuda_devices();
    if (strcmp(device, "auto") == 0) {
        cfg.backend = gpus > 0 ? AUGMENT_BACKEND_CUDA : AUGMENT_BACKEND_CPU;
    } else if (augment_backend_parse(device, &cfg.backend) != 0) {
        nf_signals_destroy(&sig);
        return s_fail("--device must be cpu, cuda or auto, not", device);
    } else if (cfg.backend == AUGMENT_BACKEND_CUDA && gpus <= 0) {
        nf_signals_destroy(&sig);
        fprintf(stderr, "augment serve: --device cuda, but no usable GPU\n");
        return 2;
    }
    if (log_file) {
        nf_log_config_t lc = {.stage = "augment", .level = NF_LOG_INFO, .file = log_file};
        nf_log_init(&lc);
    }
    cfg.stop_fd = nf_signals_fd(sig);
    cfg.zmq_ctx = zmq_ctx_new();
    NF_CHECK(cfg.zmq_ctx != NULL, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
    augment_server_t *srv = NULL;
    if (nf_curve_opts_open(&co, &s_role, cfg.zmq_ctx, &cfg.curve) == 0) {
        cfg.curve_loader = co.server != NULL;
        srv = augment_server_new(&cfg);
    }
    int rc = 1;
    if (srv) {
        if (cfg.curve)
            printf("augment %s (CURVE, public key %s)\n", augment_server_endpoint(srv),
                   nf_curve_public_key(cfg.curve));
        else
            printf("augment %s\n", augment_server_endpoint(srv));
        fflush(stdout);
        rc = augment_server_run(srv) == 0 ? 0 : 1;
        augment_server_stats_t st;
        augment_server_stats(srv, &st);
        nf_log_info("augment: %llu streams, %llu batches (%llu images) sent, %llu skipped on "
                    "re-request, %llu epochs done, %.1f s transforming, %llu messages rejected",
                    (unsigned long long)st.streams, (unsigned long long)st.batches,
                    (unsigned long long)st.images, (unsigned long long)st.skipped,
                    (unsigned long long)st.epochs_done, st.busy_s,
                    (unsigned long long)st.rejected);
    }
    augment_server_destroy(&srv);
    nf_curve_opts_close(&cfg.curve);
    if (zmq_ctx_term(cfg.zmq_ctx) != 0) nf_log_warn("zmq_ctx_term: %s", zmq_strerror(zmq_errno()));
    nf_signals_destroy(&sig);
    return rc;
}
