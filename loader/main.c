/*
 * main.c: the `loader` program. Subcommands:
 *   coordinator  serve a dataset to workers and consumers (optionally starting
 *                local workers with --spawn-workers N); `run` = the same with
 *                one local worker per core by default
 *   worker       join a running coordinator (from this host or another)
 *   verify       decode every file of a dataset, report each bad one
 *   consume      a command-line consumer: epochs of batches, rate, digests,
 *                a delivery log for accounting
 *   keygen       CURVE key pairs (common/curve.h) for sockets other hosts reach
 *   bench-decode raw TurboJPEG decode vs decode + presize on one core
 *   gen-synthetic  write a small generated dataset of learnable JPEG classes
 *   pack         write a dataset as a few shard files and an index (pack.h)
 * Each has --help. Ctrl-C / SIGTERM stop cleanly (bounded linger). This file
 * only parses options and wires the library objects together.
 */
#include "consumer.h"
#include "coordinator.h"
#include "curve_opts.h"
#include "dataset.h"
#include "decode.h"
#include "log.h"
#include "synth.h"
#include "pack.h"
#include "timeutil.h"
#include "worker.h"
#include "zmqutil.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <turbojpeg.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
// shared option handling

typedef struct {
    const char *data, *train, *valid;
    loader_split_mode_t mode;
    double valid_pct;
    uint64_t seed;
    uint64_t max_pixels;
    bool strict;
} s_data_opts_t;

enum {
    O_TRAIN = 1000, O_VALID, O_SPLIT, O_VALID_PCT, O_SEED, O_MAX_PIXELS, O_STRICT, O_BIND,
    O_JOB, O_SPARES, O_HB, O_WTIMEOUT, O_TTIMEOUT, O_ATIMEOUT, O_CTIMEOUT, O_SPAWN, O_SLOTS,
    O_CONNECT, O_TIMEOUT, O_ID, O_SINK, O_EPOCHS, O_FIRST_EPOCH, O_BS, O_PRESIZE, O_CREDITS,
    O_ORDERED, O_EXACT, O_SLEEP, O_DIGEST, O_JSON, O_LIMIT, O_SHUFFLE, O_NO_SHUFFLE, O_QUIET,
    O_PASS, O_MAX_BATCHES, O_LOG,
};

#define S_DATA_OPTIONS                                                                       \
    {"data", required_argument, NULL, 'd'}, {"train", required_argument, NULL, O_TRAIN},     \
        {"valid", required_argument, NULL, O_VALID},                                         \
        {"split", required_argument, NULL, O_SPLIT},                                         \
        {"valid-pct", required_argument, NULL, O_VALID_PCT},                                 \
        {"seed", required_argument, NULL, O_SEED},                                           \
        {"max-pixels", required_argument, NULL, O_MAX_PIXELS},                               \
        {"strict-jpeg", no_argument, NULL, O_STRICT}

static const char *s_data_help =
    "  --data DIR          dataset folder (ImageFolder: DIR/<train>/<class>/<file>, DIR/<valid>/...)\n"
    "  --train NAME        training folder name (default train)\n"
    "  --valid NAME        validation folder name (default val)\n"
    "  --split MODE        auto (folders when both exist, else random), folders, random\n"
    "  --valid-pct P       random split: fraction in validation (default 0.2)\n"
    "  --seed N            seed of the random split and of every stream (default 42)\n"
    "  --max-pixels N      header width*height above N is a bad file (default 178956970)\n"
    "  --strict-jpeg       a decode warning (truncated/corrupt data) makes a file bad\n";

static loader_pack_t *s_open_pack(const char *root);

static int s_fail_usage(const char *cmd, const char *msg)
{
    fprintf(stderr, "loader %s: %s (see loader %s --help)\n", cmd, msg, cmd);
    return 2;
}

static bool s_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') return false;
    *out = v;
    return true;
}

static bool s_int(const char *s, int lo, int hi, int *out)
{
    uint64_t v;
    if (!s_u64(s, &v) || v < (uint64_t)lo || v > (uint64_t)hi) return false;
    *out = (int)v;
    return true;
}

// Handles a data option; returns 1 when handled, -1 on a bad value, 0 when not a data option.
static int s_data_opt(int c, const char *arg, s_data_opts_t *o)
{
    switch (c) {
    case 'd': o->data = arg; return 1;
    case O_TRAIN: o->train = arg; return 1;
    case O_VALID: o->valid = arg; return 1;
    case O_SPLIT:
        if (!strcmp(arg, "auto")) o->mode = LOADER_SPLIT_AUTO;
        else if (!strcmp(arg, "folders")) o->mode = LOADER_SPLIT_FOLDERS;
        else if (!strcmp(arg, "random")) o->mode = LOADER_SPLIT_RANDOM;
        else return -1;
        return 1;
    case O_VALID_PCT: {
        char *end;
        o->valid_pct = strtod(arg, &end);
        return *end || o->valid_pct <= 0 || o->valid_pct >= 1 ? -1 : 1;
    }
    case O_SEED: return s_u64(arg, &o->seed) ? 1 : -1;
    case O_MAX_PIXELS: return s_u64(arg, &o->max_pixels) && o->max_pixels > 0 ? 1 : -1;
    case O_STRICT: o->strict = true; return 1;
    default: return 0;
    }
}

static loader_dataset_t *s_open_dataset(const char *cmd, const s_data_opts_t *o)
{
    if (!o->data) {
        fprintf(stderr, "loader %s: --data DIR is required\n", cmd);
        return NULL;
    }
    loader_dataset_config_t dc = {.root = o->data, .train_name = o->train, .valid_name = o->valid,
                                  .mode = o->mode, .valid_pct = o->valid_pct, .seed = o->seed};
    char err[512];
    loader_dataset_t *ds = loader_dataset_new(&dc, err, sizeof err);
    if (!ds) fprintf(stderr, "loader %s: %s\n", cmd, err);
    return ds;
}

// ---------------------------------------------------------------------------
// CURVE (common/curve_opts.h)

static const nf_curve_role_t s_role_coordinator = {
    .binds = true, .need_allow = true, .allow_is = "worker and consumer keys allowed in"};
static const nf_curve_role_t s_role_worker = {
    .connects = true, .need_server = true,
    .server_is = "the coordinator's public key (its NAME.key)"};
static const nf_curve_role_t s_role_consume = {
    .binds = true, .connects = true, .need_server = true, .need_allow = true,
    .server_is = "the coordinator's public key (its NAME.key)",
    .allow_is = "worker keys allowed to push to the sink"};

// With any CURVE option: makes the context and the key set (role's rules,
// prog for messages). Returns 0 (nothing to do without options), or -1 after
// a one-line message.
static int s_curve_open(const char *prog, const nf_curve_opts_t *o, nf_curve_role_t role,
                        void **ctx, nf_curve_t **curve)
{
    *ctx = NULL;
    *curve = NULL;
    role.prog = prog;
    if (nf_curve_opts_check(o, &role) != 0) return -1;
    if (!nf_curve_opts_any(o)) return 0;
    *ctx = zmq_ctx_new();
    NF_CHECK(*ctx != NULL, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
    if (nf_curve_opts_open(o, &role, *ctx, curve) != 0) {
        if (zmq_ctx_term(*ctx) != 0) nf_log_warn("zmq_ctx_term: %s", zmq_strerror(zmq_errno()));
        *ctx = NULL;
        return -1;
    }
    return 0;
}

// Logs what CURVE refused, then frees the key set and the context.
static void s_curve_close(void **ctx, nf_curve_t **curve)
{
    nf_curve_opts_close(curve);
    if (*ctx && zmq_ctx_term(*ctx) != 0) nf_log_warn("zmq_ctx_term: %s", zmq_strerror(zmq_errno()));
    *ctx = NULL;
}

// ---------------------------------------------------------------------------
// coordinator (+ local workers)

static void s_stop_children(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0 && kill(pids[i], SIGTERM) != 0 && errno != ESRCH)
            nf_log_warn("kill %d: %s", (int)pids[i], strerror(errno));
    double end = nf_now_s() + 5.0;
    for (int i = 0; i < n; i++) {
        while (pids[i] > 0) {
            pid_t r = waitpid(pids[i], NULL, WNOHANG);
            if (r == pids[i] || (r < 0 && errno == ECHILD)) break;
            if (nf_now_s() > end) {
                nf_log_warn("worker %d did not stop: killing it", (int)pids[i]);
                kill(pids[i], SIGKILL);
                waitpid(pids[i], NULL, 0);
                break;
            }
            nf_sleep_ms(20);
        }
    }
}

static int s_cmd_coordinator(int argc, char **argv, bool run_mode)
{
    const char *cmd = run_mode ? "run" : "coordinator";
    static const struct option opts[] = {
        S_DATA_OPTIONS,
        {"bind", required_argument, NULL, O_BIND},
        {"job", required_argument, NULL, O_JOB},
        {"spares", required_argument, NULL, O_SPARES},
        {"heartbeat-ms", required_argument, NULL, O_HB},
        {"worker-timeout-ms", required_argument, NULL, O_WTIMEOUT},
        {"task-timeout-ms", required_argument, NULL, O_TTIMEOUT},
        {"ack-timeout-ms", required_argument, NULL, O_ATIMEOUT},
        {"consumer-timeout-ms", required_argument, NULL, O_CTIMEOUT},
        {"spawn-workers", required_argument, NULL, O_SPAWN},
        {"slots", required_argument, NULL, O_SLOTS},
        NF_CURVE_LONG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    s_data_opts_t d = {.seed = 42};
    nf_curve_opts_t co_curve = {0};
    loader_coordinator_config_t cc = {.stop_fd = -1};
    int spawn = run_mode ? (int)sysconf(_SC_NPROCESSORS_ONLN) : 0, slots = 2, spares = 8;
    for (int c; (c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1;) {
        int r = s_data_opt(c, optarg, &d);
        if (r < 0) return s_fail_usage(cmd, "bad value for a data option");
        if (r > 0 || nf_curve_opts_getopt(&co_curve, c, optarg)) continue;
        bool ok = true;
        switch (c) {
        case O_BIND: cc.bind = optarg; break;
        case O_JOB: cc.job = optarg; break;
        case O_SPARES: ok = s_int(optarg, 0, 4096, &spares); break;
        case O_HB: ok = s_int(optarg, 10, 600000, &cc.heartbeat_ms); break;
        case O_WTIMEOUT: ok = s_int(optarg, 10, 3600000, &cc.worker_timeout_ms); break;
        case O_TTIMEOUT: ok = s_int(optarg, 10, 86400000, &cc.task_timeout_ms); break;
        case O_ATIMEOUT: ok = s_int(optarg, 10, 86400000, &cc.ack_timeout_ms); break;
        case O_CTIMEOUT: ok = s_int(optarg, 10, 86400000, &cc.consumer_timeout_ms); break;
        case O_SPAWN: ok = s_int(optarg, 0, 1024, &spawn); break;
        case O_SLOTS: ok = s_int(optarg, 1, 64, &slots); break;
        case 'h':
            printf("usage: loader %s --data DIR [options]\n"
                   "Serves the dataset to loader workers and consumers (docs/loader.md).\n%s"
                   "  --bind EP           endpoint (default tcp://127.0.0.1:5555); one other hosts\n"
                   "                      can reach (tcp://0.0.0.0:P, tcp://10.0.0.1:P) needs CURVE\n"
                   "  --job ID            job id checked on every message (default netteflow)\n"
                   "  --spares N          replacement samples per train batch (default 8)\n"
                   "  --heartbeat-ms MS   heartbeat interval (default 1000)\n"
                   "  --worker-timeout-ms MS   worker silence before its tasks move (default 5000)\n"
                   "  --task-timeout-ms MS     task deadline (default 60000)\n"
                   "  --ack-timeout-ms MS      delivered-but-unacked deadline (default 60000)\n"
                   "  --consumer-timeout-ms MS consumer silence before its streams drop (default 600000)\n"
                   "  --spawn-workers N   also start N local workers (run: default one per core)\n"
                   "  --slots N           tasks per spawned worker (default 2)\n",
                   cmd, s_data_help);
            nf_curve_opts_help(stdout, &s_role_coordinator);
            return 0;
        default: return s_fail_usage(cmd, "unknown option");
        }
        if (!ok) return s_fail_usage(cmd, "bad option value");
    }
    if (optind < argc) return s_fail_usage(cmd, "unexpected argument");
    nf_signals_t *sig = nf_signals_new();
    if (!sig) return 1;
    void *ctx;
    nf_curve_t *curve;
    if (s_curve_open(run_mode ? "loader run" : "loader coordinator", &co_curve, s_role_coordinator,
                     &ctx, &curve) != 0) {
        nf_signals_destroy(&sig);
        return 2;
    }
    loader_dataset_t *ds = s_open_dataset(cmd, &d);
    if (!ds) {
        s_curve_close(&ctx, &curve);
        nf_signals_destroy(&sig);
        return 2;
    }
    cc.zmq_ctx = ctx;
    cc.curve = curve;
    cc.dataset = ds;
    cc.seed = d.seed;
    cc.spares = (uint32_t)spares;
    cc.max_pixels = d.max_pixels;
    cc.strict_jpeg = d.strict;
    cc.stop_fd = nf_signals_fd(sig);
    loader_coordinator_t *co = loader_coordinator_new(&cc);
    int rc = 1;
    pid_t *pids = NULL;
    if (co) {
        uint32_t nt, nv;
        loader_dataset_split(ds, LOADER_TRAIN, &nt);
        loader_dataset_split(ds, LOADER_VALID, &nv);
        nf_log_info("dataset %s: %u train, %u valid, %u classes", d.data, nt, nv,
                    loader_dataset_n_classes(ds));
        if (curve)
            printf("coordinator %s (CURVE, public key %s)\n", loader_coordinator_endpoint(co),
                   nf_curve_public_key(curve));
        else
            printf("coordinator %s\n", loader_coordinator_endpoint(co));
        fflush(stdout);
        pids = nf_xcalloc((size_t)spawn + 1, sizeof *pids);
        char exe[4096], slots_s[16];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = 0;
        snprintf(slots_s, sizeof slots_s, "%d", slots);
        for (int i = 0; i < spawn && n > 0; i++) {
            // local workers use the coordinator's own key pair (always allowed)
            char *wargv[] = {exe, "worker", "--connect", (char *)loader_coordinator_endpoint(co),
                             "--slots", slots_s, curve ? "--curve-secret" : NULL,
                             (char *)co_curve.secret, "--curve-server", (char *)co_curve.secret,
                             NULL};
            pids[i] = nf_spawn(wargv);
        }
        rc = loader_coordinator_run(co) == 0 ? 0 : 1;
        s_stop_children(pids, spawn);
        loader_coordinator_stats_t st;
        loader_coordinator_stats(co, &st);
        nf_log_info("coordinator: %llu tasks (%llu re-issued), %llu epochs, %llu workers joined, "
                    "%llu lost, %llu bad files, %llu messages dropped",
                    (unsigned long long)st.tasks_issued, (unsigned long long)st.tasks_reissued,
                    (unsigned long long)st.epochs_done, (unsigned long long)st.workers_joined,
                    (unsigned long long)st.workers_lost, (unsigned long long)st.bad_files,
                    (unsigned long long)st.messages_dropped);
    }
    free(pids);
    loader_coordinator_destroy(&co);
    s_curve_close(&ctx, &curve);
    loader_dataset_destroy(&ds);
    nf_signals_destroy(&sig);
    return rc;
}

// ---------------------------------------------------------------------------
// worker

static int s_cmd_worker(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connect", required_argument, NULL, O_CONNECT},
        {"data", required_argument, NULL, 'd'},
        {"slots", required_argument, NULL, O_SLOTS},
        {"heartbeat-ms", required_argument, NULL, O_HB},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"job", required_argument, NULL, O_JOB},
        {"id", required_argument, NULL, O_ID},
        NF_CURVE_LONG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    loader_worker_config_t wc = {.stop_fd = -1};
    nf_curve_opts_t wcurve = {0};
    int slots = 2;
    for (int c; (c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1;) {
        if (nf_curve_opts_getopt(&wcurve, c, optarg)) continue;
        bool ok = true;
        switch (c) {
        case O_CONNECT: wc.coordinator = optarg; break;
        case 'd': wc.data_root = optarg; break;
        case O_SLOTS: ok = s_int(optarg, 1, 64, &slots); break;
        case O_HB: ok = s_int(optarg, 10, 600000, &wc.heartbeat_ms); break;
        case O_TIMEOUT: ok = s_int(optarg, 10, 3600000, &wc.timeout_ms); break;
        case O_JOB: wc.job = optarg; break;
        case O_ID: wc.worker_id = optarg; break;
        case 'h':
            printf("usage: loader worker --connect EP [options]\n"
                   "Joins a running coordinator and decodes + presizes its batch tasks.\n"
                   "  --connect EP        coordinator endpoint (tcp://host:port or ipc://path)\n"
                   "  --data DIR          dataset root on this host (default: the coordinator's)\n"
                   "  --slots N           tasks held at once (default 2)\n"
                   "  --heartbeat-ms MS   heartbeat interval (default 1000)\n"
                   "  --timeout-ms MS     coordinator silence before reconnecting (default 5000)\n"
                   "  --job ID            only work for this job (default: the coordinator's)\n"
                   "  --id NAME           worker name in logs (default host:pid)\n");
            nf_curve_opts_help(stdout, &s_role_worker);
            return 0;
        default: return s_fail_usage("worker", "unknown option");
        }
        if (!ok) return s_fail_usage("worker", "bad option value");
    }
    if (!wc.coordinator) return s_fail_usage("worker", "--connect EP is required");
    nf_signals_t *sig = nf_signals_new();
    if (!sig) return 1;
    void *ctx;
    nf_curve_t *curve;
    if (s_curve_open("loader worker", &wcurve, s_role_worker, &ctx, &curve) != 0) {
        nf_signals_destroy(&sig);
        return 2;
    }
    wc.zmq_ctx = ctx;
    wc.curve = curve;
    wc.slots = (uint32_t)slots;
    wc.stop_fd = nf_signals_fd(sig);
    loader_worker_t *w = loader_worker_new(&wc);
    int rc = w && loader_worker_run(w) == 0 ? 0 : 1;
    if (w) {
        loader_worker_stats_t st;
        loader_worker_stats(w, &st);
        nf_log_info("worker: %llu tasks, %llu images, %llu bad files, %llu warnings, %llu "
                    "rejected tasks, %llu messages dropped",
                    (unsigned long long)st.tasks_done, (unsigned long long)st.images,
                    (unsigned long long)st.bad_files, (unsigned long long)st.warnings,
                    (unsigned long long)st.tasks_rejected,
                    (unsigned long long)nf_wire_stats_dropped(&st.wire));
    }
    loader_worker_destroy(&w);
    s_curve_close(&ctx, &curve);
    nf_signals_destroy(&sig);
    return rc;
}

// ---------------------------------------------------------------------------
// verify

static int s_cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        S_DATA_OPTIONS,
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    s_data_opts_t d = {.seed = 42};
    bool quiet = false;
    for (int c; (c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1;) {
        int r = s_data_opt(c, optarg, &d);
        if (r < 0) return s_fail_usage("verify", "bad value for a data option");
        if (r > 0) continue;
        if (c == O_QUIET) quiet = true;
        else if (c == 'h') {
            printf("usage: loader verify --data DIR [options]\n"
                   "Decodes every image file of the dataset and reports each bad one as\n"
                   "  bad <path>: <reason>: <detail>\n"
                   "(and `warning <path>: ...` for files that decode with a libjpeg warning).\n"
                   "Exit status: 0 all good, 1 some files are bad, 2 usage or dataset error.\n%s"
                   "  --quiet             only the summary line\n",
                   s_data_help);
            return 0;
        } else return s_fail_usage("verify", "unknown option");
    }
    if (optind < argc) return s_fail_usage("verify", "unexpected argument");
    loader_dataset_t *ds = s_open_dataset("verify", &d);
    if (!ds) return 2;
    loader_decoder_t *dec = loader_decoder_new();
    if (!dec) {
        loader_dataset_destroy(&ds);
        return 1;
    }
    uint32_t n = loader_dataset_n_items(ds), bad = 0, warnings = 0;
    uint32_t by_reason[LOADER_BAD_N] = {0};
    uint8_t *buf = NULL;
    size_t cap = 0;
    loader_pack_t *pack = s_open_pack(loader_dataset_root(ds));
    double t0 = nf_now_s();
    for (uint32_t i = 0; i < n; i++) {
        const loader_item_t *it = loader_dataset_item(ds, i);
        loader_decode_info_t info;
        loader_bad_t why = LOADER_BAD_NONE;
        const uint8_t *data = NULL;
        long len = loader_sample_read(pack, loader_dataset_root(ds), it->path, &buf, &cap, &data,
                                      &why, info.detail, sizeof info.detail);
        if (len >= 0 && loader_decoder_full(dec, data, (size_t)len, d.strict, d.max_pixels, &info))
            why = LOADER_BAD_NONE;
        else if (len >= 0)
            why = info.bad;
        if (why != LOADER_BAD_NONE) {
            bad++;
            by_reason[why]++;
            if (!quiet) printf("bad %s: %s: %s\n", it->path, loader_bad_name(why), info.detail);
        } else if (info.warning) {
            warnings++;
            if (!quiet) printf("warning %s: %s\n", it->path, info.detail);
        }
    }
    printf("verify: %u files in %.1f s, %u bad", n, nf_now_s() - t0, bad);
    for (int r = 0; r < LOADER_BAD_N; r++)
        if (by_reason[r]) printf(", %s %u", loader_bad_name((loader_bad_t)r), by_reason[r]);
    printf(", %u decoded with warnings\n", warnings);
    free(buf);
    loader_pack_close(&pack);
    loader_decoder_destroy(&dec);
    loader_dataset_destroy(&ds);
    return bad ? 1 : 0;
}

// ---------------------------------------------------------------------------
// consume

static uint64_t s_fnv1a(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

static int s_cmd_consume(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connect", required_argument, NULL, O_CONNECT},
        {"sink", required_argument, NULL, O_SINK},
        {"split", required_argument, NULL, O_SPLIT},
        {"epochs", required_argument, NULL, O_EPOCHS},
        {"first-epoch", required_argument, NULL, O_FIRST_EPOCH},
        {"pass", required_argument, NULL, O_PASS},
        {"batch-size", required_argument, NULL, O_BS},
        {"presize", required_argument, NULL, O_PRESIZE},
        {"credits", required_argument, NULL, O_CREDITS},
        {"ordered", no_argument, NULL, O_ORDERED},
        {"shuffle", no_argument, NULL, O_SHUFFLE},
        {"no-shuffle", no_argument, NULL, O_NO_SHUFFLE},
        {"exact", no_argument, NULL, O_EXACT},
        {"seed", required_argument, NULL, O_SEED},
        {"sleep-ms", required_argument, NULL, O_SLEEP},
        {"max-batches", required_argument, NULL, O_MAX_BATCHES},
        {"digest", required_argument, NULL, O_DIGEST},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"job", required_argument, NULL, O_JOB},
        {"json", no_argument, NULL, O_JSON},
        {"log", required_argument, NULL, O_LOG},
        NF_CURVE_LONG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    loader_consumer_config_t cc = {0};
    nf_curve_opts_t ccurve = {0};
    const char *log_path = NULL;
    loader_stream_request_t r = {.stream = 1, .split = LOADER_TRAIN, .batch_size = 64,
                                 .presize = 224, .credits = 4};
    int epochs = 1, first = 0, pass = 0, bs = 64, presize = 224, credits = 4, sleep_ms = 0;
    int shuffle = -1, timeout = 60000, max_batches = 0;
    const char *digest = NULL;
    bool json = false;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        if (nf_curve_opts_getopt(&ccurve, c, optarg)) continue;
        bool ok = true;
        switch (c) {
        case O_CONNECT: cc.coordinator = optarg; break;
        case O_SINK: cc.sink = optarg; break;
        case O_LOG: log_path = optarg; break;
        case O_SPLIT:
            ok = !strcmp(optarg, "train") || !strcmp(optarg, "valid");
            r.split = !strcmp(optarg, "valid") ? LOADER_VALID : LOADER_TRAIN;
            break;
        case O_EPOCHS: ok = s_int(optarg, 1, 100000, &epochs); break;
        case O_FIRST_EPOCH: ok = s_int(optarg, 0, (1 << 24) - 1, &first); break;
        case O_PASS: ok = s_int(optarg, 0, 255, &pass); break;
        case O_BS: ok = s_int(optarg, 1, 65536, &bs); break;
        case O_PRESIZE: ok = s_int(optarg, 1, 4096, &presize); break;
        case O_CREDITS: ok = s_int(optarg, 1, 4096, &credits); break;
        case O_ORDERED: r.ordered = true; break;
        case O_SHUFFLE: shuffle = 1; break;
        case O_NO_SHUFFLE: shuffle = 0; break;
        case O_EXACT: r.exact = true; break;
        case O_SEED: ok = s_u64(optarg, &r.seed); break;
        case O_SLEEP: ok = s_int(optarg, 0, 600000, &sleep_ms); break;
        case O_MAX_BATCHES: ok = s_int(optarg, 1, 1 << 30, &max_batches); break;
        case O_DIGEST: digest = optarg; break;
        case O_TIMEOUT: ok = s_int(optarg, 1, 86400000, &timeout); break;
        case O_JOB: cc.job = optarg; break;
        case O_JSON: json = true; break;
        case 'h':
            printf("usage: loader consume --connect EP [options]\n"
                   "Receives epochs of raw batches from a coordinator, as any consumer would.\n"
                   "  --connect EP        coordinator endpoint\n"
                   "  --sink EP           where workers send batches (default tcp://127.0.0.1:*)\n"
                   "  --split S           train (random crop, shuffled, drop_last) or valid\n"
                   "  --epochs N / --first-epoch E / --pass P\n"
                   "  --batch-size N (64) --presize S (224) --credits N (4)\n"
                   "  --ordered           deliver batches in seq order\n"
                   "  --shuffle / --no-shuffle   override the split's default\n"
                   "  --exact             never use the DCT-scaled decode\n"
                   "  --seed N            stream seed (default: the coordinator's)\n"
                   "  --sleep-ms MS       hold each batch this long (a slow consumer)\n"
                   "  --max-batches N     stop after N batches in all\n"
                   "  --digest FILE       write `epoch seq n fnv64(pixels) fnv64(labels) fnv64(indices)`\n"
                   "  --json              print one JSON summary line\n"
                   "  --log FILE          delivery log for accounting: `batch E SEQ N IDX...` per\n"
                   "                      batch, `bad E IDX REASON` per skipped file, and\n"
                   "                      `epoch E batches B samples S bad K warnings W duplicates D\n"
                   "                      reissued R` when an epoch ends\n");
            nf_curve_opts_help(stdout, &s_role_consume);
            return 0;
        default: return s_fail_usage("consume", "unknown option");
        }
        if (!ok) return s_fail_usage("consume", "bad option value");
    }
    if (!cc.coordinator) return s_fail_usage("consume", "--connect EP is required");
    bool train = r.split == LOADER_TRAIN;
    r.batch_size = (uint32_t)bs;
    r.presize = (uint32_t)presize;
    r.credits = (uint32_t)credits;
    r.pass = (uint32_t)pass;
    r.shuffle = shuffle < 0 ? train : shuffle == 1;
    r.drop_last = train;
    r.random_crop = train || pass > 0;
    nf_signals_t *sig = nf_signals_new();
    if (!sig) return 1;
    void *ctx;
    nf_curve_t *curve;
    if (s_curve_open("loader consume", &ccurve, s_role_consume, &ctx, &curve) != 0) {
        nf_signals_destroy(&sig);
        return 2;
    }
    cc.zmq_ctx = ctx;
    cc.curve = curve;
    loader_consumer_t *con = loader_consumer_new(&cc);
    FILE *dg = digest ? fopen(digest, "w") : NULL;
    FILE *lg = log_path ? fopen(log_path, "w") : NULL;
    if (lg) setvbuf(lg, NULL, _IOLBF, 0);  // line by line: others follow it while it grows
    if (!con || (digest && !dg) || (log_path && !lg)) {
        if (digest && !dg) fprintf(stderr, "loader consume: cannot write %s: %s\n", digest, strerror(errno));
        if (log_path && !lg) fprintf(stderr, "loader consume: cannot write %s: %s\n", log_path, strerror(errno));
        if (dg) fclose(dg);
        if (lg) fclose(lg);
        loader_consumer_destroy(&con);
        s_curve_close(&ctx, &curve);
        nf_signals_destroy(&sig);
        return 1;
    }
    uint64_t images = 0, batches = 0, bad = 0, dups = 0, reissued = 0, warnings = 0, first_n = 0;
    double t0 = nf_now_s(), first_batch_s = -1;
    int rc = 0;
    for (int e = 0; e < epochs && rc == 0; e++) {
        r.epoch = (uint32_t)(first + e);
        loader_epoch_plan_t plan;
        if (loader_consumer_start(con, &r, &plan, timeout) != 0) {
            fprintf(stderr, "loader consume: epoch %u not started: %s\n", r.epoch, strerror(errno));
            rc = 1;
            break;
        }
        for (;;) {
            if (nf_signals_take(sig)) {
                rc = 1;
                break;
            }
            loader_batch_t *b;
            int got = loader_consumer_next(con, r.stream, &b, timeout);
            if (got == 0) break;
            if (got < 0) {
                fprintf(stderr, "loader consume: %s\n", strerror(errno));
                rc = 1;
                break;
            }
            if (first_batch_s < 0) {
                first_batch_s = nf_now_s() - t0;
                first_n = b->n;
            }
            images += b->n;
            batches++;
            if (dg)
                fprintf(dg, "%u %u %u %016llx %016llx %016llx\n", b->epoch, b->seq, b->n,
                        (unsigned long long)s_fnv1a(b->pixels, (size_t)b->n * b->h * b->w * b->c),
                        (unsigned long long)s_fnv1a(b->labels, b->n * sizeof *b->labels),
                        (unsigned long long)s_fnv1a(b->indices, b->n * sizeof *b->indices));
            if (lg) {
                fprintf(lg, "batch %u %u %u", b->epoch, b->seq, b->n);
                for (uint32_t i = 0; i < b->n; i++) fprintf(lg, " %u", b->indices[i]);
                fputc('\n', lg);
                for (uint32_t i = 0; i < b->n_bad; i++)
                    fprintf(lg, "bad %u %u %s\n", b->epoch, b->bad[i].index,
                            b->bad[i].reason < LOADER_BAD_N ? loader_bad_name(b->bad[i].reason) : "?");
            }
            // a slow consumer keeps its sockets serviced (acks, heartbeats) while busy;
            // an error shows up again in the next loader_consumer_next
            if (sleep_ms) (void)loader_consumer_poll(con, sleep_ms);
            loader_consumer_release(con, &b);
            if (max_batches && batches >= (uint64_t)max_batches) break;
        }
        loader_epoch_stats_t es;
        if (loader_consumer_stats(con, r.stream, &es) == 0) {
            bad += es.bad_files;
            dups += es.duplicates;
            reissued += es.reissued;
            warnings += es.warnings;
            if (lg && es.done)
                fprintf(lg, "epoch %u batches %u samples %u bad %u warnings %u duplicates %u "
                        "reissued %u\n", r.epoch, es.batches, es.samples, es.bad_files,
                        es.warnings, es.duplicates, es.reissued);
        }
        if (max_batches && batches >= (uint64_t)max_batches) break;
    }
    double secs = nf_now_s() - t0;
    double steady = secs > first_batch_s && first_batch_s >= 0
                        ? (double)(images - first_n) / (secs - first_batch_s)
                        : 0.0;
    if (json)
        printf("{\"batches\": %llu, \"images\": %llu, \"seconds\": %.3f, \"img_per_s\": %.1f, "
               "\"steady_img_per_s\": %.1f, \"first_batch_s\": %.3f, \"bad_files\": %llu, "
               "\"warnings\": %llu, \"duplicates\": %llu, \"reissued\": %llu}\n",
               (unsigned long long)batches, (unsigned long long)images, secs,
               secs > 0 ? images / secs : 0.0, steady, first_batch_s, (unsigned long long)bad,
               (unsigned long long)warnings, (unsigned long long)dups, (unsigned long long)reissued);
    else
        printf("consumed %llu batches, %llu images in %.2f s (%.0f img/s), %llu bad files, "
               "%llu duplicates dropped, %llu re-issued\n",
               (unsigned long long)batches, (unsigned long long)images, secs,
               secs > 0 ? images / secs : 0.0, (unsigned long long)bad, (unsigned long long)dups,
               (unsigned long long)reissued);
    if (dg && fclose(dg) != 0) {
        fprintf(stderr, "loader consume: writing %s: %s\n", digest, strerror(errno));
        rc = 1;
    }
    if (lg && fclose(lg) != 0) {
        fprintf(stderr, "loader consume: writing %s: %s\n", log_path, strerror(errno));
        rc = 1;
    }
    loader_consumer_destroy(&con);
    s_curve_close(&ctx, &curve);
    nf_signals_destroy(&sig);
    return rc;
}

// ---------------------------------------------------------------------------
// keygen

static int s_cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        if (c != 'h') return s_fail_usage("keygen", "unknown option");
        printf("usage: loader keygen NAME [NAME...]\n"
               "Writes a CURVE key pair per NAME: NAME.key (public certificate, give it to\n"
               "peers; put clients' ones in the server's --curve-allow folder) and\n"
               "NAME.key_secret (mode 0600, keep it). Existing files are never replaced.\n"
               "The format is czmq's and pyzmq's (zmq.auth.load_certificate reads it).\n");
        return 0;
    }
    if (optind >= argc) return s_fail_usage("keygen", "NAME is required");
    for (int i = optind; i < argc; i++) {
        char err[512], pub[NF_CURVE_KEY_Z85 + 1];
        if (nf_curve_keygen(argv[i], pub, err, sizeof err) != 0) {
            fprintf(stderr, "loader keygen: %s\n", err);
            return 1;
        }
        printf("%s.key %s\n", argv[i], pub);
    }
    return 0;
}

// ---------------------------------------------------------------------------
// bench-decode

static int s_cmd_bench_decode(int argc, char **argv)
{
    static const struct option opts[] = {
        S_DATA_OPTIONS,
        {"limit", required_argument, NULL, O_LIMIT},
        {"presize", required_argument, NULL, O_PRESIZE},
        {"exact", no_argument, NULL, O_EXACT},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    s_data_opts_t d = {.seed = 42};
    int limit = 2000, presize = 224;
    bool exact = false;
    for (int c; (c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1;) {
        int r = s_data_opt(c, optarg, &d);
        if (r < 0) return s_fail_usage("bench-decode", "bad value for a data option");
        if (r > 0) continue;
        bool ok = true;
        if (c == O_LIMIT) ok = s_int(optarg, 1, 1 << 30, &limit);
        else if (c == O_PRESIZE) ok = s_int(optarg, 1, 4096, &presize);
        else if (c == O_EXACT) exact = true;
        else if (c == 'h') {
            printf("usage: loader bench-decode --data DIR [--limit N] [--presize S] [--exact]\n"
                   "On one core, over the first N training files held in memory: plain\n"
                   "TurboJPEG decode to RGB (the floor), then decode + fastai presize (random\n"
                   "crop, Pillow-exact resize). Prints one JSON line.\n%s",
                   s_data_help);
            return 0;
        } else return s_fail_usage("bench-decode", "unknown option");
        if (!ok) return s_fail_usage("bench-decode", "bad option value");
    }
    loader_dataset_t *ds = s_open_dataset("bench-decode", &d);
    if (!ds) return 2;
    uint32_t n;
    const uint32_t *tr = loader_dataset_split(ds, LOADER_TRAIN, &n);
    if (n > (uint32_t)limit) n = (uint32_t)limit;
    uint8_t **files = nf_xcalloc(n, sizeof *files);
    size_t *lens = nf_xcalloc(n, sizeof *lens), max_pixels = 0;
    tjhandle tj = tjInitDecompress();
    NF_CHECK(tj != NULL, "tjInitDecompress: %s", tjGetErrorStr2(NULL));
    uint32_t kept = 0;
    loader_pack_t *pack = s_open_pack(loader_dataset_root(ds));
    for (uint32_t i = 0; i < n; i++) {
        size_t cap = 0;
        loader_bad_t why;
        char detail[128];
        uint8_t *buf = NULL;
        const uint8_t *data = NULL;
        long len = loader_sample_read(pack, loader_dataset_root(ds),
                                      loader_dataset_item(ds, tr[i])->path, &buf, &cap, &data,
                                      &why, detail, sizeof detail);
        if (len > 0 && data != buf) {  // from the pack's mapping: hold a copy like a file
            buf = nf_xmalloc((size_t)len);
            memcpy(buf, data, (size_t)len);
        }
        int w, h, ss, cs;
        if (len <= 0 || tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &ss, &cs) != 0 ||
            cs == TJCS_CMYK || cs == TJCS_YCCK) {
            free(buf);
            continue;
        }
        files[kept] = buf;
        lens[kept++] = (size_t)len;
        if ((size_t)w * h > max_pixels) max_pixels = (size_t)w * h;
    }
    uint8_t *rgb = nf_xmalloc(max_pixels * 3 + 1);
    double t0 = nf_now_s();
    uint32_t ok_raw = 0;
    for (uint32_t i = 0; i < kept; i++) {
        int w, h, ss, cs;
        if (tjDecompressHeader3(tj, files[i], (unsigned long)lens[i], &w, &h, &ss, &cs) == 0 &&
            tjDecompress2(tj, files[i], (unsigned long)lens[i], rgb, w, 0, h, TJPF_RGB, 0) == 0)
            ok_raw++;
    }
    double raw_s = nf_now_s() - t0;
    loader_decoder_t *dec = loader_decoder_new();
    uint8_t *out = nf_xmalloc((size_t)presize * presize * 3);
    t0 = nf_now_s();
    uint32_t ok_pre = 0;
    for (uint32_t i = 0; i < kept; i++) {
        loader_presize_params_t p = {.size = (uint32_t)presize, .random_crop = true,
                                     .seed = d.seed, .index = i, .exact = exact};
        loader_decode_info_t info;
        if (loader_decoder_presize(dec, &p, files[i], lens[i], out, &info) == 0) ok_pre++;
    }
    double pre_s = nf_now_s() - t0;
    printf("{\"files\": %u, \"raw_decode_img_per_s\": %.1f, \"decode_presize_img_per_s\": %.1f, "
           "\"presize\": %d, \"exact\": %s}\n",
           kept, raw_s > 0 ? ok_raw / raw_s : 0.0, pre_s > 0 ? ok_pre / pre_s : 0.0, presize,
           exact ? "true" : "false");
    for (uint32_t i = 0; i < kept; i++) free(files[i]);
    loader_pack_close(&pack);
    free(files);
    free(lens);
    free(rgb);
    free(out);
    tjDestroy(tj);
    loader_decoder_destroy(&dec);
    loader_dataset_destroy(&ds);
    return 0;
}

// ---------------------------------------------------------------------------
// gen-synthetic

static int s_cmd_gen_synthetic(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"classes", required_argument, NULL, O_EPOCHS},
        {"train", required_argument, NULL, O_TRAIN},
        {"valid", required_argument, NULL, O_VALID},
        {"seed", required_argument, NULL, O_SEED},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    loader_synth_config_t sc = {0};
    int classes = 10, train = 100, valid = 30;
    for (int c; (c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1;) {
        bool ok = true;
        switch (c) {
        case 'o': sc.out = optarg; break;
        case O_EPOCHS: ok = s_int(optarg, 2, 12, &classes); break;
        case O_TRAIN: ok = s_int(optarg, 1, 100000, &train); break;
        case O_VALID: ok = s_int(optarg, 1, 100000, &valid); break;
        case O_SEED: ok = s_u64(optarg, &sc.seed) && sc.seed > 0; break;
        case 'h':
            printf("usage: loader gen-synthetic --out DIR [--classes N] [--train N] [--valid N] [--seed N]\n"
                   "Writes DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg: real JPEGs of N\n"
                   "classes of shapes and textures (stripes, disc, ring, checkerboard, ...) in\n"
                   "random colours, positions and sizes, learnable in a few epochs. For a first\n"
                   "run without Imagenette; accuracy on it only shows that the pipeline works.\n"
                   "  --classes N   2..12 (default 10)\n"
                   "  --train N     pictures per class in train/ (default 100)\n"
                   "  --valid N     pictures per class in val/ (default 30)\n"
                   "  --seed N      (default 42)\n");
            return 0;
        default: return s_fail_usage("gen-synthetic", "unknown option");
        }
        if (!ok) return s_fail_usage("gen-synthetic", "bad option value");
    }
    if (optind < argc) return s_fail_usage("gen-synthetic", "unexpected argument");
    if (!sc.out) return s_fail_usage("gen-synthetic", "--out DIR is required");
    sc.classes = (uint32_t)classes;
    sc.train_per_class = (uint32_t)train;
    sc.valid_per_class = (uint32_t)valid;
    char err[512];
    double t0 = nf_now_s();
    if (loader_synth_generate(&sc, err, sizeof err) != 0) {
        fprintf(stderr, "loader gen-synthetic: %s\n", err);
        return 1;
    }
    printf("generated %s: %d classes, %d train + %d valid pictures each, in %.1f s\n", sc.out,
           classes, train, valid, nf_now_s() - t0);
    return 0;
}

// ---------------------------------------------------------------------------
// pack

static int s_cmd_pack(int argc, char **argv)
{
    enum { P_OUT = 2000, P_SIZE, P_QUALITY, P_SHARD, P_THREADS };
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"train", required_argument, NULL, O_TRAIN},
        {"valid", required_argument, NULL, O_VALID},
        {"out", required_argument, NULL, P_OUT},
        {"size", required_argument, NULL, P_SIZE},
        {"quality", required_argument, NULL, P_QUALITY},
        {"shard-mb", required_argument, NULL, P_SHARD},
        {"threads", required_argument, NULL, P_THREADS},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    loader_pack_config_t pc = {0};
    int size = 0, quality = 90, shard_mb = 64, threads = 0;
    bool ok = true;
    for (int c; (c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1;) {
        if (c == 'd') pc.src = optarg;
        else if (c == O_TRAIN) pc.train_name = optarg;
        else if (c == O_VALID) pc.valid_name = optarg;
        else if (c == P_OUT) pc.out = optarg;
        else if (c == P_SIZE) ok &= s_int(optarg, 0, 65535, &size);
        else if (c == P_QUALITY) ok &= s_int(optarg, 1, 100, &quality);
        else if (c == P_SHARD) ok &= s_int(optarg, 1, 1 << 20, &shard_mb);
        else if (c == P_THREADS) ok &= s_int(optarg, 0, 1024, &threads);
        else if (c == 'h') {
            printf("usage: loader pack --data DIR --out DIR [--size S] [--quality Q] [--shard-mb M]\n"
                   "                   [--threads T] [--train NAME] [--valid NAME]\n"
                   "Writes the dataset as a few shard files and an index (loader/pack.h): every\n"
                   "image file the loader would see, under its path, with its label and split.\n"
                   "Every loader command takes the pack folder as --data.\n"
                   "  --size S      store images with their shorter side at S px, re-encoded\n"
                   "                (smaller ones, and files that do not decode, are stored as\n"
                   "                they are); 0 (default) stores every file unchanged\n"
                   "  --quality Q   JPEG quality of re-encoded images (default 90)\n"
                   "  --shard-mb M  close a shard once it holds M MiB (default 64)\n"
                   "  --threads T   decode/encode threads (default: all cores)\n"
                   "Prints one JSON line with the counts, sizes and the rate.\n");
            return 0;
        } else return s_fail_usage("pack", "unknown option");
    }
    if (!ok) return s_fail_usage("pack", "bad option value");
    if (optind < argc) return s_fail_usage("pack", "unexpected argument");
    if (!pc.src || !pc.out) return s_fail_usage("pack", "--data and --out are required");
    pc.size = (uint32_t)size;
    pc.quality = quality;
    pc.shard_bytes = (uint64_t)shard_mb << 20;
    pc.threads = threads;
    loader_pack_stats_t st;
    char err[512];
    if (loader_pack_write(&pc, &st, err, sizeof err) != 0) {
        fprintf(stderr, "loader pack: %s\n", err);
        return 1;
    }
    printf("{\"items\": %u, \"shards\": %u, \"reencoded\": %u, \"copied\": %u, "
           "\"bytes_in\": %llu, \"bytes_out\": %llu, \"size\": %u, \"quality\": %d, "
           "\"seconds\": %.2f, \"img_per_s\": %.1f}\n",
           st.items, st.shards, st.reencoded, st.copied, (unsigned long long)st.bytes_in,
           (unsigned long long)st.bytes_out, pc.size, quality, st.seconds,
           st.seconds > 0 ? st.items / st.seconds : 0.0);
    return 0;
}

// The pack at root, or NULL when root is a plain folder.
static loader_pack_t *s_open_pack(const char *root)
{
    if (!loader_pack_exists(root)) return NULL;
    char err[512];
    loader_pack_t *p = loader_pack_open(root, err, sizeof err);
    NF_CHECK(p, "%s (it opened a moment ago)", err);
    return p;
}

// ---------------------------------------------------------------------------

static void s_usage(FILE *f)
{
    fprintf(f, "usage: loader COMMAND [options]   (loader COMMAND --help for each)\n"
               "  coordinator   serve a dataset to workers and consumers\n"
               "  run           coordinator + one local worker per core\n"
               "  worker        join a running coordinator\n"
               "  verify        report every bad image file of a dataset\n"
               "  consume       receive epochs of batches (a consumer on the command line)\n"
               "  keygen        write CURVE key pairs for sockets other hosts reach\n"
               "  bench-decode  raw TurboJPEG decode vs decode + presize on one core\n"
               "  gen-synthetic write a small generated dataset of learnable JPEG classes\n"
               "  pack          write a dataset as a few shard files (pre-sized if asked)\n");
}

int main(int argc, char **argv)
{
    nf_log_config_t lc = {.stage = "loader", .level = NF_LOG_INFO};
    nf_log_init(&lc);
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    argc--;
    argv++;
    if (!strcmp(cmd, "coordinator")) return s_cmd_coordinator(argc, argv, false);
    if (!strcmp(cmd, "run")) return s_cmd_coordinator(argc, argv, true);
    if (!strcmp(cmd, "worker")) return s_cmd_worker(argc, argv);
    if (!strcmp(cmd, "verify")) return s_cmd_verify(argc, argv);
    if (!strcmp(cmd, "consume")) return s_cmd_consume(argc, argv);
    if (!strcmp(cmd, "bench-decode")) return s_cmd_bench_decode(argc, argv);
    if (!strcmp(cmd, "gen-synthetic")) return s_cmd_gen_synthetic(argc, argv);
    if (!strcmp(cmd, "keygen")) return s_cmd_keygen(argc, argv);
    if (!strcmp(cmd, "pack")) return s_cmd_pack(argc, argv);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        s_usage(stdout);
        return 0;
    }
    fprintf(stderr, "loader: unknown command '%s'\n", cmd);
    s_usage(stderr);
    return 2;
}
