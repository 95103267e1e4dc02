/*
 * main.c: the `evaluator` program (evaluator/eval.h does the work).
 *
 *   evaluator --augment EP --follow TRAINER_EP   follow a training run: evaluate every
 *                                                checkpoint it announces, in order, and
 *                                                send the results back for its table
 *   evaluator --augment EP --watch RUN_DIR       the same from a run folder's checkpoints
 *   evaluator --augment EP --checkpoint FILE     evaluate one finished checkpoint
 *   evaluator predict --checkpoint FILE IMG...   class and probabilities of image files
 *
 * The first three need the augment stage (and its loader) on the dataset to
 * evaluate on; predict needs nothing but the checkpoint. Ctrl-C / SIGTERM stop
 * between batches. This file parses options and runs the modes.
 */
#include "augment.h"
#include "client.h"
#include "curve_opts.h"
#include "eval.h"
#include "follow.h"
#include "fsutil.h"
#include "log.h"
#include "timeutil.h"
#include "wire.h"
#include "zmqutil.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *augment, *follow, *watch, *checkpoint, *job, *log_file, *device;
    nf_curve_opts_t curve;
    const char *curve_trainer;  // the trainer's public key file (--follow over CURVE)
    int tta, tta_n, threads, top;
    float tta_beta;
    uint32_t size, presize, bs;
    bool json, print_loader_args, print_data;
} s_opts_t;

// The evaluator binds nothing; it connects to augment (--curve-server) and,
// with --follow, to a trainer (--curve-trainer, this stage's second server).
static const nf_curve_role_t s_role = {
    .prog = "evaluator", .connects = true,
    .server_is = "the augment stage's public key (its NAME.key)"};

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: evaluator --augment EP --follow TRAINER_EP [options]\n"
            "       evaluator --augment EP --watch RUN_DIR [options]\n"
            "       evaluator --augment EP --checkpoint FILE [options]\n"
            "       evaluator predict --checkpoint FILE [--top K] [--json] IMAGE...\n"
            "Evaluates checkpoints on the validation split served by `augment serve`:\n"
            "valid loss and accuracy over every image, and fastai's TTA at the end.\n"
            "  --augment EP       the augment stage's endpoint\n"
            "  --follow EP        a trainer's announcement endpoint (ipc://RUN/trainer.ipc)\n"
            "  --watch DIR        a run folder: evaluate its checkpoints as they appear\n"
            "  --checkpoint FILE  one checkpoint (and predict's model)\n"
            "  --tta / --no-tta   TTA for the final (or given) checkpoint (default: as its recipe says)\n"
            "  --n N              TTA passes (default 4); --beta B  weight of the plain pass (0.25)\n"
            "  --size S --presize P --bs B   override the checkpoint's (checkpoint, predict)\n"
            "  --device D         cpu | cuda | auto (default auto)\n"
            "  --threads N        CPU threads (default all)\n"
            "  --json             print results as JSON\n"
            "  --top K            predict: classes listed per image (3)\n"
            "  --print-data       with --checkpoint: print the dataset folder it was trained on\n"
            "  --print-loader-args  with --checkpoint: print the loader's split options of its run\n"
            "  --job ID           job id (default: the loader's)\n"
            "  --log FILE         also append the log to FILE\n");
    nf_curve_opts_help(f, &s_role);
    fprintf(f, "  --curve-trainer F  the trainer's public key (its NAME.key): follow over CURVE\n");
}

static int s_fail(const char *msg, const char *arg)
{
    fprintf(stderr, "evaluator: %s%s%s (evaluator --help)\n", msg, arg ? " " : "", arg ? arg : "");
    return 2;
}

static bool s_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) return false;
    *out = (uint32_t)v;
    return true;
}

static int s_parse(int argc, char **argv, int first, s_opts_t *o)
{
    enum { O_AUGMENT = 256, O_FOLLOW, O_WATCH, O_CKPT, O_TTA, O_NO_TTA, O_N, O_BETA, O_SIZE,
           O_PRESIZE, O_BS, O_DEVICE, O_THREADS, O_JSON, O_TOP, O_JOB, O_LOG, O_HELP,
           O_PRINT_LOADER, O_PRINT_DATA, O_CURVE_TRAINER };
    static const struct option opts[] = {
        {"augment", required_argument, 0, O_AUGMENT}, {"follow", required_argument, 0, O_FOLLOW},
        {"watch", required_argument, 0, O_WATCH},     {"checkpoint", required_argument, 0, O_CKPT},
        {"tta", no_argument, 0, O_TTA},               {"no-tta", no_argument, 0, O_NO_TTA},
        {"n", required_argument, 0, O_N},             {"beta", required_argument, 0, O_BETA},
        {"size", required_argument, 0, O_SIZE},       {"presize", required_argument, 0, O_PRESIZE},
        {"bs", required_argument, 0, O_BS},           {"device", required_argument, 0, O_DEVICE},
        {"threads", required_argument, 0, O_THREADS}, {"json", no_argument, 0, O_JSON},
        {"top", required_argument, 0, O_TOP},         {"job", required_argument, 0, O_JOB},
        {"log", required_argument, 0, O_LOG},         {"help", no_argument, 0, O_HELP},
        {"print-loader-args", no_argument, 0, O_PRINT_LOADER},
        {"print-data", no_argument, 0, O_PRINT_DATA},
        {"curve-trainer", required_argument, 0, O_CURVE_TRAINER},
        NF_CURVE_LONG_OPTIONS,
        {0, 0, 0, 0}};
    *o = (s_opts_t){.tta = -1, .tta_beta = -1.0f, .device = "auto"};
    optind = first;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        uint32_t v = 0;
        char *end;
        if (nf_curve_opts_getopt(&o->curve, c, optarg)) continue;
        switch (c) {
        case O_AUGMENT: o->augment = optarg; break;
        case O_FOLLOW: o->follow = optarg; break;
        case O_WATCH: o->watch = optarg; break;
        case O_CKPT: o->checkpoint = optarg; break;
        case O_TTA: o->tta = 1; break;
        case O_NO_TTA: o->tta = 0; break;
        case O_N:
            if (!s_u32(optarg, 1, 64, &v)) return s_fail("bad --n", optarg);
            o->tta_n = (int)v;
            break;
        case O_BETA:
            o->tta_beta = strtof(optarg, &end);
            if (*end || !(o->tta_beta >= 0.0f && o->tta_beta <= 1.0f))
                return s_fail("--beta must be in [0, 1], not", optarg);
            break;
        case O_SIZE:
            if (!s_u32(optarg, 16, 4096, &o->size)) return s_fail("bad --size", optarg);
            break;
        case O_PRESIZE:
            if (!s_u32(optarg, 16, 8192, &o->presize)) return s_fail("bad --presize", optarg);
            break;
        case O_BS:
            if (!s_u32(optarg, 1, 4096, &o->bs)) return s_fail("bad --bs", optarg);
            break;
        case O_DEVICE: o->device = optarg; break;
        case O_THREADS:
            if (!s_u32(optarg, 0, 1024, &v)) return s_fail("bad --threads", optarg);
            o->threads = (int)v;
            break;
        case O_JSON: o->json = true; break;
        case O_TOP:
            if (!s_u32(optarg, 1, 64, &v)) return s_fail("bad --top", optarg);
            o->top = (int)v;
            break;
        case O_JOB: o->job = optarg; break;
        case O_LOG: o->log_file = optarg; break;
        case O_PRINT_LOADER: o->print_loader_args = true; break;
        case O_PRINT_DATA: o->print_data = true; break;
        case O_CURVE_TRAINER: o->curve_trainer = optarg; break;
        case O_HELP: s_usage(stdout); exit(0);
        default: return s_fail("unknown or incomplete option", argv[optind - 1]);
        }
    }
    if (strcmp(o->device, "auto") && strcmp(o->device, "cpu") && strcmp(o->device, "cuda"))
        return s_fail("--device must be cpu, cuda or auto, not", o->device);
    if (nf_curve_opts_check(&o->curve, &s_role) != 0) return 2;
    if (o->curve_trainer && !o->curve.secret)
        return s_fail("--curve-trainer needs --curve-secret (this evaluator's key pair)", NULL);
    return 0;
}

static int s_backend(const s_opts_t *o, exec_kind_t *out)
{
    bool built = exec_backend(EXEC_CUDA) != NULL;
    int gpus = augment_cuda_devices();
    if (!strcmp(o->device, "cuda") && (!built || gpus <= 0)) {
        fprintf(stderr, "evaluator: --device cuda, but %s\n",
                built ? "no GPU is usable" : "this build has no CUDA backend");
        return -1;
    }
    *out = !strcmp(o->device, "cpu") || !built || gpus <= 0 ? EXEC_ONEDNN : EXEC_CUDA;
    return 0;
}

static void s_print_result(const char *ckpt, const eval_result_t *r, bool json, bool with_tta)
{
    if (json) {
        printf("{\"checkpoint\": \"%s\", \"epochs_done\": %u, \"valid_loss\": %.6f, "
               "\"accuracy\": %.6f, \"n_samples\": %u, \"bad_files\": %u, \"plain_s\": %.2f",
               ckpt, r->epochs_done, r->valid_loss, r->accuracy, r->n_samples, r->bad_files,
               r->plain_s);
        if (r->has_tta)
            printf(", \"tta_n\": %d, \"tta_beta\": %g, \"tta_accuracy\": %.6f, \"tta_loss\": %.6f, "
                   "\"tta_s\": %.2f",
                   r->tta_n, r->tta_beta, r->tta_accuracy, r->tta_loss, r->tta_s);
        else printf(", \"tta_accuracy\": null");
        printf("}\n");
    } else {
        printf("%s (after %u epochs): valid_loss %.6f accuracy %.6f (%u images, %u bad) in %.1f s\n",
               ckpt, r->epochs_done, r->valid_loss, r->accuracy, r->n_samples, r->bad_files,
               r->plain_s);
        if (with_tta && r->has_tta)
            printf("  TTA (n=%d, beta=%g): accuracy %.6f loss %.6f in %.1f s\n", r->tta_n,
                   r->tta_beta, r->tta_accuracy, r->tta_loss, r->tta_s);
    }
    fflush(stdout);
}

// ---------------------------------------------------------------------------
// follow a trainer

typedef struct {
    void *dealer;
    const char *job;
    const char *ckpt;
    uint32_t epoch;
} s_reply_t;

static void s_send_result(const s_reply_t *rp, const eval_result_t *r, bool tta)
{
    Nf__EvalResult e = NF__EVAL_RESULT__INIT;
    e.checkpoint = (char *)rp->ckpt;
    e.epoch = rp->epoch;
    e.valid_loss = r->valid_loss;
    e.accuracy = r->accuracy;
    e.n_samples = r->n_samples;
    e.has_bad_files = true;
    e.bad_files = r->bad_files;
    e.has_wall_s = true;
    e.wall_s = tta ? r->tta_s : r->plain_s;
    if (tta) {
        e.has_tta_accuracy = e.has_tta_loss = true;
        e.tta_accuracy = r->tta_accuracy;
        e.tta_loss = r->tta_loss;
    }
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_EVAL_RESULT;
    env.eval_result = &e;
    if (nf_wire_send(rp->dealer, NULL, rp->job, &env, NULL, ZMQ_DONTWAIT) != 0)
        nf_log_warn("evaluator: cannot send the result of %s: %s", rp->ckpt, zmq_strerror(errno));
}

static void s_on_plain(const eval_result_t *plain, void *arg)
{
    s_send_result(arg, plain, false);
    nf_log_info("evaluated %s: valid_loss %.6f accuracy %.6f (%u images) in %.1f s",
                ((const s_reply_t *)arg)->ckpt, plain->valid_loss, plain->accuracy,
                plain->n_samples, plain->plain_s);
}

// trainer_key: the trainer's public key (Z85) for CURVE with curve, or NULL (plain text).
static int s_follow(const s_opts_t *o, eval_t *ev, void *zctx, nf_curve_t *curve,
                    const char *trainer_key, nf_signals_t *sig)
{
    nf_zmq_socket_config_t dc = {.type = ZMQ_DEALER, .sndhwm = 1000, .rcvhwm = 1000};
    void *dealer = nf_zmq_socket_new(zctx, &dc);
    if (!dealer ||
        (trainer_key && nf_curve_client(curve, dealer, trainer_key, "evaluator follow") != 0) ||
        nf_zmq_connect(dealer, o->follow) != 0) {
        nf_zmq_close(&dealer);
        return 1;
    }
    nf_wire_expect_t ex = {.job = o->job,
                           .bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_CHECKPOINT_ANNOUNCE) |
                                     NF_WIRE_BODY(NF__ENVELOPE__BODY_CONTROL)};
    nf_wire_stats_t st = {0};
    eval_follow_t *fol = eval_follow_new(NULL);
    int rc = 0;
    int64_t last_hb = 0;
    bool stop = false;
    nf_log_info("evaluator: following %s", o->follow);
    while (!stop) {
        int64_t now = nf_now_ms();
        if (now - last_hb >= 1000) {
            Nf__Heartbeat h = NF__HEARTBEAT__INIT;
            h.wall_ms = nf_wall_ms();
            h.sender = "evaluator";
            Nf__Envelope env = NF__ENVELOPE__INIT;
            env.body_case = NF__ENVELOPE__BODY_HEARTBEAT;
            env.heartbeat = &h;
            (void)nf_wire_send(dealer, NULL, o->job, &env, NULL, ZMQ_DONTWAIT);
            last_hb = now;
        }
        zmq_pollitem_t items[2] = {{.socket = dealer, .events = ZMQ_POLLIN},
                                   {.fd = nf_signals_fd(sig), .events = ZMQ_POLLIN}};
        if (zmq_poll(items, 2, eval_follow_pending(fol) ? 0 : 500) < 0 && zmq_errno() != EINTR) {
            nf_log_error("zmq_poll: %s", zmq_strerror(zmq_errno()));
            rc = 1;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            (void)nf_signals_take(sig);
            rc = 130;
            break;
        }
        for (;;) {
            nf_wire_msg_t m;
            int got = nf_wire_recv(dealer, &ex, &m, &st, ZMQ_DONTWAIT);
            if (got < 0) break;
            if (got == 0) continue;
            if (m.env->body_case == NF__ENVELOPE__BODY_CONTROL) {
                if (m.env->control->cmd == NF__COMMAND__CMD_STOP) {
                    nf_log_info("evaluator: the trainer says %s",
                                m.env->control->reason ? m.env->control->reason : "stop");
                    stop = true;
                }
            } else {
                const char *why = NULL;
                if (eval_follow_offer(fol, m.env->checkpoint_announce, &why) < 0) {
                    nf_wire_stats_drop(&st, NF_WIRE_DROP_FIELD);
                    nf_log_warn("evaluator: dropped a checkpoint announcement: %s", why);
                }
            }
            nf_wire_msg_close(&m);
        }
        const eval_follow_item_t *q = stop ? NULL : eval_follow_next(fol);
        if (!q) continue;
        char err[1200];
        if (eval_follow_file_ok(fol, q->path, err, sizeof err) != 0) {
            nf_log_warn("evaluator: not evaluating an announced checkpoint: %s", err);
            continue;
        }
        eval_job_t job = {.checkpoint = q->path, .size = q->size, .presize = q->presize,
                          .batch_size = q->bs, .tta = q->final ? o->tta : 0, .tta_n = o->tta_n,
                          .tta_beta = o->tta_beta};
        s_reply_t rp = {.dealer = dealer, .job = o->job, .ckpt = q->path, .epoch = q->epoch};
        eval_result_t r;
        if (eval_run(ev, &job, &r, s_on_plain, &rp) != 0) {
            if (nf_signals_take(sig)) {
                rc = 130;
                break;
            }
            nf_log_warn("evaluator: could not evaluate %s (skipped)", q->path);
            continue;
        }
        eval_follow_done(fol, q->epoch);
        s_print_result(q->path, &r, o->json, true);
        if (r.has_tta) s_send_result(&rp, &r, true);
    }
    eval_follow_destroy(&fol);
    nf_zmq_close(&dealer);
    return rc;
}

// ---------------------------------------------------------------------------
// watch a run folder

// The step in "ckpt-<digits>.safetensors", or -1.
static int64_t s_ckpt_step(const char *name)
{
    int64_t step;
    int n = 0;
    if (sscanf(name, "ckpt-%" SCNd64 ".safetensors%n", &step, &n) != 1 || name[n] != 0) return -1;
    return step;
}

static int s_watch(const s_opts_t *o, eval_t *ev, nf_signals_t *sig)
{
    char dir[1100], final[1200];
    snprintf(dir, sizeof dir, "%s/checkpoints", o->watch);
    snprintf(final, sizeof final, "%s/final.safetensors", dir);
    int64_t done = -1;
    int rc = 0;
    nf_log_info("evaluator: watching %s", dir);
    for (;;) {
        if (nf_signals_take(sig)) return 130;
        bool finished = nf_is_file(final);
        int64_t next = -1;
        DIR *d = opendir(dir);
        for (struct dirent *e; d && (e = readdir(d));) {
            int64_t s = s_ckpt_step(e->d_name);
            if (s > done && (next < 0 || s < next)) next = s;
        }
        if (d) closedir(d);
        if (next < 0) {
            if (finished) return rc;
            nf_sleep_ms(1000);
            continue;
        }
        char path[1300];
        snprintf(path, sizeof path, "%s/ckpt-%010" PRId64 ".safetensors", dir, next);
        done = next;
        // TTA only for the last checkpoint of a finished run
        bool last = true;
        d = opendir(dir);
        for (struct dirent *e; d && (e = readdir(d));) last &= s_ckpt_step(e->d_name) <= next;
        if (d) closedir(d);
        eval_job_t job = {.checkpoint = path, .tta = finished && last ? o->tta : 0,
                          .tta_n = o->tta_n, .tta_beta = o->tta_beta};
        eval_result_t r;
        if (eval_run(ev, &job, &r, NULL, NULL) != 0) {
            nf_log_warn("evaluator: could not evaluate %s (skipped)", path);
            rc = 1;
            continue;
        }
        s_print_result(path, &r, o->json, true);
    }
}

// ---------------------------------------------------------------------------

int main(int argc, char **argv)
{
    nf_log_config_t lc = {.stage = "evaluator", .level = NF_LOG_INFO};
    nf_log_init(&lc);
    bool predict = argc > 1 && !strcmp(argv[1], "predict");
    s_opts_t o;
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    int prc = s_parse(argc, argv, predict ? 2 : 1, &o);
    if (prc != 0) return prc;
    if ((o.print_loader_args || o.print_data) && !predict) {
        recipe_t r;
        if (!o.checkpoint) return s_fail("--print-loader-args and --print-data need --checkpoint", NULL);
        if (eval_checkpoint_recipe(o.checkpoint, &r) != 0) return 2;
        if (o.print_data) {
            if (!r.data[0]) {
                fprintf(stderr, "evaluator: %s does not say which data it was trained on: give --data\n",
                        o.checkpoint);
                return 2;
            }
            printf("%s\n", r.data);
        } else {
            char args[256];
            recipe_loader_args(&r, args, sizeof args);
            printf("%s\n", args);
        }
        return 0;
    }
    if (o.log_file) {
        nf_log_config_t fl = {.stage = "evaluator", .level = NF_LOG_INFO, .file = o.log_file};
        nf_log_init(&fl);
    }
    // first: every thread created later (CUDA, ZeroMQ, OpenMP) inherits the blocked mask
    nf_signals_t *sig = nf_signals_new();
    if (!sig) return 1;
    eval_config_t ec = {.threads = o.threads, .stop_fd = -1};
    if (s_backend(&o, &ec.backend) != 0) {
        nf_signals_destroy(&sig);
        return 2;
    }
    if (predict) {
        if (!o.checkpoint) return s_fail("predict needs --checkpoint FILE", NULL);
        if (optind >= argc) return s_fail("predict needs image files", NULL);
        eval_t *ev = eval_new(&ec);
        eval_predict_t p = {.checkpoint = o.checkpoint, .files = (const char *const *)argv + optind,
                            .n_files = argc - optind, .size = o.size, .presize = o.presize,
                            .top = o.top, .json = o.json};
        int rc = eval_predict(ev, &p);
        eval_destroy(&ev);
        nf_signals_destroy(&sig);
        return rc < 0 ? 1 : rc;
    }
    int modes = (o.follow != NULL) + (o.watch != NULL) + (o.checkpoint != NULL);
    const char *bad = optind < argc ? "unexpected argument"
                      : modes != 1  ? "give exactly one of --follow, --watch, --checkpoint"
                      : !o.augment  ? "--augment EP is required (the `augment serve` endpoint)"
                                    : NULL;
    if (bad || (o.checkpoint && !nf_is_file(o.checkpoint))) {
        nf_signals_destroy(&sig);
        if (bad) return s_fail(bad, optind < argc ? argv[optind] : NULL);
        fprintf(stderr, "evaluator: no checkpoint file %s\n", o.checkpoint);
        return 2;
    }
    void *zctx = zmq_ctx_new();
    NF_CHECK(zctx != NULL, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
    nf_curve_t *curve = NULL;
    char trainer_key[NF_CURVE_KEY_Z85 + 1] = "", err[512];
    augment_client_t *cl = NULL;
    int rc = 1;
    if (nf_curve_opts_open(&o.curve, &s_role, zctx, &curve) != 0) {
        rc = 2;
    } else if (o.curve_trainer &&
               nf_curve_read_public(o.curve_trainer, trainer_key, err, sizeof err) != 0) {
        fprintf(stderr, "evaluator: %s\n", err);
        rc = 2;
    } else {
        augment_client_config_t cc = {.endpoint = o.augment, .job = o.job, .name = "evaluator",
                                      .stop_fd = nf_signals_fd(sig), .zmq_ctx = zctx,
                                      .curve = o.curve.server ? curve : NULL};
        cl = augment_client_new(&cc);
    }
    if (cl) {
        ec.client = cl;
        ec.stop_fd = nf_signals_fd(sig);
        eval_t *ev = eval_new(&ec);
        if (o.follow)
            rc = s_follow(&o, ev, zctx, curve, trainer_key[0] ? trainer_key : NULL, sig);
        else if (o.watch) rc = s_watch(&o, ev, sig);
        else {
            eval_job_t job = {.checkpoint = o.checkpoint, .size = o.size, .presize = o.presize,
                              .batch_size = o.bs, .tta = o.tta, .tta_n = o.tta_n,
                              .tta_beta = o.tta_beta};
            eval_result_t r;
            rc = eval_run(ev, &job, &r, NULL, NULL) == 0 ? 0 : 1;
            if (rc == 0) s_print_result(o.checkpoint, &r, o.json, true);
            else if (nf_signals_take(sig)) rc = 130;
        }
        eval_destroy(&ev);
    }
    augment_client_destroy(&cl);
    nf_curve_opts_close(&curve);
    if (zmq_ctx_term(zctx) != 0) nf_log_warn("zmq_ctx_term: %s", zmq_strerror(zmq_errno()));
    nf_signals_destroy(&sig);
    return rc;
}
