/*
 * chapter.c: `nf_chapter`, the chapter-7 recipe run end to end through the
 * libraries: real loader processes (a coordinator with N decode workers,
 * reading a folder or a pack) feeding, through the consumer library, the
 * augment stage (aug_transforms + Normalize [+ Mixup], CUDA or CPU) and the
 * learner (xresnet, fastai's Adam + fit_one_cycle [+ label smoothing]), a
 * validation pass per epoch with fastai's table, and TTA at the end.
 *
 * On a GPU the augmented batches never touch the host: augment writes each
 * into a slot of a device ring (common/devring.h) on its stream, the
 * learner's queued step waits for the slot's ready event, copies it into its
 * plan and records the done event, and the ring hands the slot back to
 * augment; the host only moves raw uint8 batches and labels.
 *
 * What it is not: the project's process pipeline (separate augment, trainer
 * and evaluator processes over sockets, run folders, checkpoints; the e2e
 * stage). It exists so that one command measures the whole recipe on a GPU
 * machine (`./run.sh gpu-check`): the wall time from the first decode to the
 * final accuracy, the share of time the trainer waited for data, and the
 * accuracy. Prints the table and writes summary.json and metrics.csv into
 * --out.
 */
#include "augment.h"
#include "consumer.h"
#include "dataset.h"
#include "devring.h"
#include "fsutil.h"
#include "learner.h"
#include "log.h"
#include "recorder.h"
#include "timeutil.h"
#include "xent.h"
#include "zmqutil.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_MAX_EPOCHS 100
#define S_RING_SLOTS 4
#define S_TIMEOUT_MS 120000

typedef struct {
    const char *data, *out, *arch, *backend, *dtype;
    int epochs, bs, size, presize, workers, tta, max_batches;
    double lr;
    float min_scale, ls, mixup;
    uint64_t seed;
    bool no_graphs;
} s_args_t;

typedef struct {
    int epoch;
    double train_loss, valid_loss, accuracy, seconds, train_s, train_img_s, wait_frac;
    double t_start, t_end;  // since the run's start (wall clock: GPU-utilisation windows)
    uint32_t train_images, valid_images;
} s_row_t;

// Everything a run holds.
typedef struct {
    s_args_t a;
    pid_t coord;
    char sockdir[64];
    loader_consumer_t *con;
    learner_t *l;
    augment_t *aug_train, *aug_valid, *aug_tta;
    bool cuda;
    devring_t *ring;        // cuda: augmented batches on the device
    devring_peer_t *peer;   // the learner's view of it
    void *host_px;          // cpu: one augmented batch (f32)
    int32_t *labels, *partners;
    float *weights;
    uint32_t n_classes;
    // per dataset sample index (grown as indices are met): the softmax of the
    // last validation pass, the sum over TTA passes, the label, and whether
    // the last plain pass saw it
    float *probs, *tta_sum;  // (cap, C)
    int32_t *targets;        // (cap)
    uint8_t *seen;           // (cap)
    uint32_t cap;
    uint32_t bad_files;
    double t_run;           // nf_now_s() at the start
    double t_run_unix;      // the same instant, Unix time
} s_run_t;

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: nf_chapter --data DIR --out DIR [options]\n"
            "The chapter-7 recipe through the libraries: loader processes -> augment -> learner,\n"
            "a validation pass per epoch (fastai's table), TTA at the end; summary.json and\n"
            "metrics.csv in --out.\n"
            "  --data DIR        dataset folder or pack (ImageFolder with train/ and val/)\n"
            "  --out DIR         where the summary and table go\n"
            "  --arch A          xresnet18 | xresnet34 | xresnet50 (default xresnet50)\n"
            "  --epochs N        fit_one_cycle epochs (default 5)\n"
            "  --lr LR           one-cycle max lr (default 3e-3)\n"
            "  --bs B            batch size (default 128)\n"
            "  --size S          training/validation image side (default 128)\n"
            "  --presize P       the loader's Resize side (default: S)\n"
            "  --min-scale F     RandomResizedCrop area floor (default 0.75, the chapter's)\n"
            "  --ls EPS          label smoothing (default 0: cross-entropy, as the chapter)\n"
            "  --mixup ALPHA     Mixup (default 0)\n"
            "  --tta N           TTA passes at the end (default 4; 0 = none)\n"
            "  --workers N       loader decode workers (default: cores)\n"
            "  --backend K       cuda | onednn | ref (default: cuda when a GPU is usable)\n"
            "  --dtype D         cuda: bf16 (default) | f32\n"
            "  --no-graphs       cuda: no CUDA graphs\n"
            "  --max-batches M   at most M batches per epoch and pass (quick runs)\n"
            "  --seed N          (default 42)\n");
}

static int s_parse(int argc, char **argv, s_args_t *a)
{
    *a = (s_args_t){.arch = "xresnet50", .dtype = "bf16", .epochs = 5, .bs = 128, .size = 128,
                    .tta = 4, .lr = 3e-3, .min_scale = 0.75f, .seed = 42};
    enum { O_DATA = 1, O_OUT, O_ARCH, O_EPOCHS, O_LR, O_BS, O_SIZE, O_PRESIZE, O_MINS, O_LS,
           O_MIXUP, O_TTA, O_WORKERS, O_BACKEND, O_DTYPE, O_NOGRAPHS, O_MAXB, O_SEED, O_HELP };
    static const struct option opts[] = {
        {"data", required_argument, 0, O_DATA},       {"out", required_argument, 0, O_OUT},
        {"arch", required_argument, 0, O_ARCH},       {"epochs", required_argument, 0, O_EPOCHS},
        {"lr", required_argument, 0, O_LR},           {"bs", required_argument, 0, O_BS},
        {"size", required_argument, 0, O_SIZE},       {"presize", required_argument, 0, O_PRESIZE},
        {"min-scale", required_argument, 0, O_MINS},  {"ls", required_argument, 0, O_LS},
        {"mixup", required_argument, 0, O_MIXUP},     {"tta", required_argument, 0, O_TTA},
        {"workers", required_argument, 0, O_WORKERS}, {"backend", required_argument, 0, O_BACKEND},
        {"dtype", required_argument, 0, O_DTYPE},     {"no-graphs", no_argument, 0, O_NOGRAPHS},
        {"max-batches", required_argument, 0, O_MAXB}, {"seed", required_argument, 0, O_SEED},
        {"help", no_argument, 0, O_HELP},             {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end = NULL;
        errno = 0;
        switch (c) {
        case O_DATA: a->data = optarg; break;
        case O_OUT: a->out = optarg; break;
        case O_ARCH: a->arch = optarg; break;
        case O_BACKEND: a->backend = optarg; break;
        case O_DTYPE: a->dtype = optarg; break;
        case O_NOGRAPHS: a->no_graphs = true; break;
        case O_EPOCHS: a->epochs = (int)strtol(optarg, &end, 10); break;
        case O_BS: a->bs = (int)strtol(optarg, &end, 10); break;
        case O_SIZE: a->size = (int)strtol(optarg, &end, 10); break;
        case O_PRESIZE: a->presize = (int)strtol(optarg, &end, 10); break;
        case O_TTA: a->tta = (int)strtol(optarg, &end, 10); break;
        case O_WORKERS: a->workers = (int)strtol(optarg, &end, 10); break;
        case O_MAXB: a->max_batches = (int)strtol(optarg, &end, 10); break;
        case O_SEED: a->seed = strtoull(optarg, &end, 10); break;
        case O_LR: a->lr = strtod(optarg, &end); break;
        case O_MINS: a->min_scale = strtof(optarg, &end); break;
        case O_LS: a->ls = strtof(optarg, &end); break;
        case O_MIXUP: a->mixup = strtof(optarg, &end); break;
        case 'h':
        case O_HELP: s_usage(stdout); exit(0);
        default:
            fprintf(stderr, "nf_chapter: unknown or incomplete option '%s'\n", argv[optind - 1]);
            return -1;
        }
        if (end && (*end || errno)) {
            fprintf(stderr, "nf_chapter: bad value '%s' for --%s\n", optarg, opts[c - 1].name);
            return -1;
        }
    }
    if (!a->data || !a->out) {
        fprintf(stderr, "nf_chapter: --data and --out are required (nf_chapter --help)\n");
        return -1;
    }
    if (!a->presize) a->presize = a->size;
    if (a->workers <= 0) a->workers = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (a->epochs < 1 || a->epochs > S_MAX_EPOCHS || a->bs < 2 || a->size < 32 ||
        a->presize < a->size / 2 || a->tta < 0 || a->lr <= 0 || a->ls < 0 || a->ls >= 1 ||
        a->mixup < 0 || a->min_scale <= 0 || a->min_scale > 1) {
        fprintf(stderr, "nf_chapter: an option is out of range (nf_chapter --help)\n");
        return -1;
    }
    return 0;
}

// ---------------------------------------------------------------------------
// set-up

static int s_start_loader(s_run_t *r, const char *self_exe)
{
    char bin[4096], endpoint[128], workers[16], seed[32];
    const char *dir = getenv("NF_BIN_DIR");
    char exe[4096];
    snprintf(exe, sizeof exe, "%s", self_exe);
    snprintf(bin, sizeof bin, "%s/loader", dir ? dir : dirname(exe));
    snprintf(endpoint, sizeof endpoint, "ipc://%s/coord.ipc", r->sockdir);
    snprintf(workers, sizeof workers, "%d", r->a.workers);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->a.seed);
    char *argv[] = {bin, "coordinator", "--data", (char *)r->a.data, "--bind", endpoint,
                    "--spawn-workers", workers, "--seed", seed, NULL};
    r->coord = nf_spawn(argv);
    if (r->coord < 0) return -1;
    char sink[128];
    snprintf(sink, sizeof sink, "ipc://%s/sink.ipc", r->sockdir);
    loader_consumer_config_t cc = {.coordinator = endpoint, .sink = sink,
                                   .timeout_ms = S_TIMEOUT_MS};
    r->con = loader_consumer_new(&cc);
    if (!r->con) return -1;
    const char *const *names;
    if (loader_consumer_classes(r->con, &r->n_classes, &names, S_TIMEOUT_MS) != 0) {
        nf_log_error("chapter: no dataset description from the loader (%s)", strerror(errno));
        return -1;
    }
    return 0;
}

static augment_t *s_augment(const s_run_t *r, augment_mode_t mode)
{
    augment_config_t cfg;
    augment_config_defaults(&cfg);
    cfg.size = r->a.size;
    cfg.presize = r->a.presize;
    cfg.min_scale = r->a.min_scale;
    cfg.max_batch = r->a.bs;
    cfg.mixup_alpha = mode == AUGMENT_MODE_TRAIN ? r->a.mixup : 0.0f;
    cfg.seed = r->a.seed;
    cfg.backend = r->cuda ? AUGMENT_BACKEND_CUDA : AUGMENT_BACKEND_CPU;
    cfg.dtype = r->cuda && strcmp(r->a.dtype, "bf16") == 0 ? AUGMENT_DTYPE_BF16 : AUGMENT_DTYPE_F32;
    (void)mode;
    return augment_new(&cfg);
}

static int s_setup(s_run_t *r, const char *self_exe)
{
    const s_args_t *a = &r->a;
    r->cuda = a->backend ? strcmp(a->backend, "cuda") == 0
                         : exec_backend(EXEC_CUDA) && augment_cuda_devices() > 0;
    snprintf(r->sockdir, sizeof r->sockdir, "/tmp/nfchapter.XXXXXX");
    if (!mkdtemp(r->sockdir) || nf_mkdir_p(a->out) != 0) {
        nf_log_error("chapter: cannot create %s or a socket folder: %s", a->out, strerror(errno));
        return -1;
    }
    if (s_start_loader(r, self_exe) != 0) return -1;
    learner_config_t lc = learner_default_config(a->arch, (int)r->n_classes);
    if (a->backend && exec_kind_parse(a->backend, &lc.backend) != 0) {
        nf_log_error("chapter: unknown backend %s", a->backend);
        return -1;
    }
    if (!a->backend) lc.backend = r->cuda ? EXEC_CUDA : EXEC_ONEDNN;
    lc.bf16 = r->cuda && strcmp(a->dtype, "bf16") == 0;
    lc.no_graphs = a->no_graphs;
    lc.ls_eps = a->ls;
    lc.seed = a->seed;
    r->l = learner_new(&lc);
    r->aug_train = s_augment(r, AUGMENT_MODE_TRAIN);
    r->aug_valid = s_augment(r, AUGMENT_MODE_VALID);
    r->aug_tta = s_augment(r, AUGMENT_MODE_TTA);
    if (!r->l || !r->aug_train || !r->aug_valid || !r->aug_tta) return -1;
    const size_t bytes = augment_out_bytes(r->aug_train, a->bs);
    if (r->cuda) {
        devring_config_t rc = {.kind = DEVRING_CUDA, .slots = S_RING_SLOTS, .slot_bytes = bytes};
        r->ring = devring_new(&rc);
        if (r->ring) r->peer = devring_attach_local(r->ring);
        else nf_log_warn("chapter: no device ring: batches go through host memory");
    }
    if (!r->ring) r->host_px = nf_xaligned(bytes);
    r->labels = nf_xmalloc((size_t)a->bs * sizeof(int32_t));
    r->partners = nf_xmalloc((size_t)a->bs * sizeof(int32_t));
    r->weights = nf_xmalloc((size_t)a->bs * sizeof(float));
    return 0;
}

static void s_teardown(s_run_t *r)
{
    if (r->l) learner_sync(r->l);
    learner_destroy(&r->l);
    devring_detach(&r->peer);
    devring_destroy(&r->ring);
    augment_destroy(&r->aug_train);
    augment_destroy(&r->aug_valid);
    augment_destroy(&r->aug_tta);
    loader_consumer_destroy(&r->con);
    if (r->coord > 0) {
        kill(r->coord, SIGTERM);
        int st;
        waitpid(r->coord, &st, 0);
    }
    if (r->sockdir[0]) {
        char p[128];
        snprintf(p, sizeof p, "%s/coord.ipc", r->sockdir);
        unlink(p);
        snprintf(p, sizeof p, "%s/sink.ipc", r->sockdir);
        unlink(p);
        rmdir(r->sockdir);
    }
    free(r->host_px), free(r->labels), free(r->partners), free(r->weights);
    free(r->probs), free(r->tta_sum), free(r->targets), free(r->seen);
}

// Makes room for sample index `index` in the per-sample arrays (zero-filled).
static void s_grow(s_run_t *r, uint32_t index)
{
    if (index < r->cap) return;
    uint32_t cap = r->cap ? r->cap : 1024;
    while (cap <= index) cap *= 2;
    const size_t C = r->n_classes, old = r->cap;
    r->probs = nf_xrealloc(r->probs, (size_t)cap * C * sizeof(float));
    r->tta_sum = nf_xrealloc(r->tta_sum, (size_t)cap * C * sizeof(float));
    r->targets = nf_xrealloc(r->targets, (size_t)cap * sizeof(int32_t));
    r->seen = nf_xrealloc(r->seen, cap);
    memset(r->probs + old * C, 0, (cap - old) * C * sizeof(float));
    memset(r->tta_sum + old * C, 0, (cap - old) * C * sizeof(float));
    memset(r->targets + old, 0, (cap - old) * sizeof(int32_t));
    memset(r->seen + old, 0, cap - old);
    r->cap = cap;
}

// ---------------------------------------------------------------------------
// one augmented batch into the learner's input

typedef struct {
    learner_batch_t b;
    int slot;  // ring slot (cuda), -1 otherwise
} s_ready_t;

// Augments a raw batch into a ring slot (cuda) or the host buffer. Returns
// 0, or -1 when the batch is malformed (dropped).
static int s_augment_batch(s_run_t *r, augment_t *aug, const loader_batch_t *lb,
                           augment_mode_t mode, s_ready_t *out)
{
    augment_raw_t raw = {.pixels = lb->pixels, .n = (int)lb->n, .h = (int)lb->h, .w = (int)lb->w,
                         .labels = lb->labels, .indices = lb->indices, .epoch = lb->epoch,
                         .seq = lb->seq, .pass = lb->pass, .mode = mode};
    augment_out_t o = {.labels = r->labels, .partner_labels = r->partners, .weights = r->weights};
    out->slot = -1;
    if (r->ring) {
        // the slot comes back once the learner's copy of its previous batch is done
        int s;
        while ((s = devring_acquire(r->ring, augment_stream(aug))) < 0) learner_sync(r->l);
        o.pixels = devring_slot(r->ring, s);
        if (augment_batch_device(aug, &o, &raw) != 0) {  // nothing written: hand it back
            devring_publish(r->ring, s, augment_stream(aug));
            devring_peer_release(r->peer, s);
            return -1;
        }
        devring_publish(r->ring, s, augment_stream(aug));
        char err[128];
        const int ps = devring_peer_slot(r->peer, devring_offset(r->ring, s),
                                         augment_out_bytes(aug, o.n), err, sizeof err);
        NF_CHECK(ps == s, "chapter: own slot refused: %s", err);
        out->slot = s;
        out->b = (learner_batch_t){
            .y = r->labels, .n = o.n, .h = o.h, .w = o.w,
            .dev = {.x = devring_peer_ptr(r->peer, s),
                    .dtype = o.dtype == AUGMENT_DTYPE_BF16 ? KDTYPE_BF16 : KDTYPE_F32,
                    .ready = devring_peer_ready(r->peer, s), .done = devring_peer_done(r->peer, s)}};
    } else {
        o.pixels = r->host_px;
        if (augment_batch(aug, &o, &raw) != 0) return -1;
        out->b = (learner_batch_t){.x = r->host_px, .y = r->labels, .n = o.n, .h = o.h, .w = o.w};
    }
    if (mode == AUGMENT_MODE_TRAIN && r->a.mixup > 0) {
        out->b.y_mix = r->partners;
        out->b.lam = r->weights;
    }
    return 0;
}

// The learner has taken the batch (its copy is queued, `done` will fire): the
// slot goes back to the ring.
static void s_handed_over(s_run_t *r, const s_ready_t *rb)
{
    if (rb->slot >= 0) devring_peer_release(r->peer, rb->slot);
}

// ---------------------------------------------------------------------------
// epochs

static int s_start(s_run_t *r, uint32_t stream, int split, uint32_t epoch, uint32_t pass,
                   bool train, loader_epoch_plan_t *plan)
{
    loader_stream_request_t req = {.stream = stream, .split = split, .epoch = epoch, .pass = pass,
                                   .batch_size = (uint32_t)r->a.bs,
                                   .presize = (uint32_t)r->a.presize, .shuffle = train,
                                   .drop_last = train, .random_crop = train || pass > 0,
                                   .credits = 8, .ordered = true};
    if (loader_consumer_start(r->con, &req, plan, S_TIMEOUT_MS) != 0) {
        nf_log_error("chapter: stream %u epoch %u refused: %s", stream, epoch, strerror(errno));
        return -1;
    }
    return 0;
}

// The next batch of a stream: 1, 0 at the end of the epoch (or after
// max_batches), -1 on error. *wait_s gets the time spent waiting for it.
static int s_next(s_run_t *r, uint32_t stream, uint32_t done, loader_batch_t **lb, double *wait_s)
{
    if (r->a.max_batches > 0 && done >= (uint32_t)r->a.max_batches) return 0;
    const double t0 = nf_now_s();
    const int rc = loader_consumer_next(r->con, stream, lb, S_TIMEOUT_MS);
    *wait_s += nf_now_s() - t0;
    if (rc < 0) nf_log_error("chapter: stream %u: %s", stream, strerror(errno));
    return rc;
}

// One training epoch (its stream already started). A stream cut short by
// --max-batches is simply replaced by its next request.
static int s_train_epoch(s_run_t *r, s_row_t *row)
{
    const double t0 = nf_now_s();
    double wait = 0;
    uint32_t batches = 0;
    loader_batch_t *lb;
    int rc;
    while ((rc = s_next(r, 1, batches, &lb, &wait)) == 1) {
        s_ready_t rb;
        if (s_augment_batch(r, r->aug_train, lb, AUGMENT_MODE_TRAIN, &rb) == 0) {
            float loss;
            if (learner_train_pending(r->l) == LEARNER_MAX_INFLIGHT) learner_train_collect(r->l, &loss);
            if (learner_train_submit(r->l, &rb.b) == 0) row->train_images += (uint32_t)rb.b.n;
            s_handed_over(r, &rb);
        }
        loader_epoch_stats_t es;
        if (loader_consumer_stats(r->con, 1, &es) == 0) r->bad_files = es.bad_files;
        loader_consumer_release(r->con, &lb);
        batches++;
    }
    if (rc < 0) return -1;
    learner_sync(r->l);
    row->train_s = nf_now_s() - t0;
    row->wait_frac = row->train_s > 0 ? wait / row->train_s : 0;
    row->train_img_s = row->train_s > 0 ? row->train_images / row->train_s : 0;
    const learner_progress_t prog = learner_progress(r->l);
    row->train_loss = recorder_smooth_value(&prog.smooth);
    return 0;
}

// One pass over the validation split (a new `epoch` of its stream each
// time): mean loss and accuracy; every sample's softmax into r->probs, by
// dataset index, and its label into r->targets.
static int s_valid_pass(s_run_t *r, uint32_t stream, uint32_t epoch, uint32_t pass,
                        augment_t *aug, augment_mode_t mode, double *loss_out, double *acc_out)
{
    loader_epoch_plan_t plan;
    if (s_start(r, stream, LOADER_VALID, epoch, pass, false, &plan) != 0) return -1;
    double loss_sum = 0, wait = 0;
    uint32_t n = 0, correct = 0, batches = 0;
    const uint32_t C = r->n_classes;
    float *probs = nf_xmalloc((size_t)r->a.bs * C * sizeof(float));
    loader_batch_t *lb;
    int rc;
    while ((rc = s_next(r, stream, batches, &lb, &wait)) == 1) {
        s_ready_t rb;
        learner_eval_t ev = {.probs = probs};
        if (s_augment_batch(r, aug, lb, mode, &rb) == 0 && learner_eval_batch(r->l, &rb.b, &ev) == 0) {
            loss_sum += (double)ev.loss * rb.b.n;
            correct += (uint32_t)ev.correct;
            n += (uint32_t)rb.b.n;
            for (int i = 0; i < rb.b.n; i++) {
                const uint32_t k = lb->indices[i];
                s_grow(r, k);
                memcpy(r->probs + (size_t)k * C, probs + (size_t)i * C, C * sizeof(float));
                r->targets[k] = lb->labels[i];
                r->seen[k] = 1;
            }
        }
        if (rb.slot >= 0) s_handed_over(r, &rb);
        loader_consumer_release(r->con, &lb);
        batches++;
    }
    free(probs);
    if (rc < 0) return -1;
    *loss_out = n ? loss_sum / n : NAN;
    *acc_out = n ? (double)correct / n : NAN;
    return (int)n;
}

// ---------------------------------------------------------------------------
// output

static void s_print_row(const recorder_table_t *t, const s_row_t *row)
{
    char cells[5][48], line[256];
    snprintf(cells[0], 48, "%d", row->epoch);
    recorder_format_float(row->train_loss, cells[1]);
    recorder_format_float(row->valid_loss, cells[2]);
    recorder_format_float(row->accuracy, cells[3]);
    const int secs = (int)(row->seconds + 0.5);
    snprintf(cells[4], 48, "%02d:%02d", secs / 60, secs % 60);
    const char *c[5] = {cells[0], cells[1], cells[2], cells[3], cells[4]};
    recorder_table_row(t, c, line, sizeof line);
    printf("%s\n", line);
    fflush(stdout);
}

static void s_write_outputs(const s_run_t *r, const s_row_t *rows, int n_rows, double wall,
                            double tta_acc, double tta_s, int rc)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.csv", r->a.out);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "epoch,train_loss,valid_loss,accuracy,time,train_img_per_s,data_wait_frac\n");
        for (int i = 0; i < n_rows; i++)
            fprintf(f, "%d,%.6f,%.6f,%.6f,%.2f,%.1f,%.4f\n", rows[i].epoch, rows[i].train_loss,
                    rows[i].valid_loss, rows[i].accuracy, rows[i].seconds, rows[i].train_img_s,
                    rows[i].wait_frac);
        if (fclose(f) != 0) nf_log_warn("chapter: writing %s: %s", path, strerror(errno));
    }
    const exec_stats_t es = r->l ? learner_exec_stats(r->l) : (exec_stats_t){0};
    double train_s = 0, wait = 0, imgs = 0;
    for (int i = 0; i < n_rows; i++) {
        train_s += rows[i].train_s;
        wait += rows[i].wait_frac * rows[i].train_s;
        imgs += rows[i].train_images;
    }
    snprintf(path, sizeof path, "%s/summary.json", r->a.out);
    f = fopen(path, "w");
    if (!f) {
        nf_log_error("chapter: cannot write %s: %s", path, strerror(errno));
        return;
    }
    fprintf(f,
            "{\"pipeline\": \"loader processes -> augment and learner libraries in one process "
            "(the e2e process pipeline had not landed)\", \"ok\": %s, \"data\": \"%s\", "
            "\"arch\": \"%s\", \"backend\": \"%s\", \"dtype\": \"%s\", \"epochs\": %d, "
            "\"bs\": %d, \"size\": %d, \"presize\": %d, \"lr\": %g, \"min_scale\": %g, "
            "\"ls\": %g, \"mixup\": %g, \"workers\": %d, \"max_batches\": %d, "
            "\"t0_unix\": %.3f, \"wall_s\": %.2f, \"train_s\": %.2f, \"train_img_per_s\": %.1f, "
            "\"data_wait_frac\": %.4f, \"accuracy\": %.6f, \"tta_passes\": %d, "
            "\"tta_accuracy\": %.6f, \"tta_s\": %.2f, \"bad_files\": %u, "
            "\"exec\": {\"plans\": %d, \"graphs\": %d, \"graph_launches\": %lld, "
            "\"eager_runs\": %lld, \"plan_s\": %.2f, \"device_mb\": %.1f}, \"rows\": [",
            rc == 0 ? "true" : "false", r->a.data, r->a.arch, r->cuda ? "cuda" : "cpu",
            r->cuda ? r->a.dtype : "f32", r->a.epochs, r->a.bs, r->a.size, r->a.presize, r->a.lr,
            (double)r->a.min_scale, (double)r->a.ls, (double)r->a.mixup, r->a.workers,
            r->a.max_batches, r->t_run_unix, wall, train_s, train_s > 0 ? imgs / train_s : 0.0,
            train_s > 0 ? wait / train_s : 0.0, n_rows ? rows[n_rows - 1].accuracy : NAN,
            r->a.tta, tta_acc, tta_s, r->bad_files, es.plans, es.graphs,
            (long long)es.graph_launches, (long long)es.eager_runs, es.plan_s,
            (double)es.device_bytes / 1e6);
    for (int i = 0; i < n_rows; i++)
        fprintf(f,
                "%s{\"epoch\": %d, \"train_loss\": %.6f, \"valid_loss\": %.6f, \"accuracy\": %.6f, "
                "\"time_s\": %.2f, \"train_img_per_s\": %.1f, \"data_wait_frac\": %.4f, "
                "\"t_start_s\": %.2f, \"t_end_s\": %.2f}",
                i ? ", " : "", rows[i].epoch, rows[i].train_loss, rows[i].valid_loss,
                rows[i].accuracy, rows[i].seconds, rows[i].train_img_s, rows[i].wait_frac,
                rows[i].t_start, rows[i].t_end);
    fprintf(f, "]}\n");
    if (fclose(f) != 0) nf_log_warn("chapter: writing %s: %s", path, strerror(errno));
}

// ---------------------------------------------------------------------------

static int s_run(s_run_t *r, s_row_t *rows, int *n_rows, double *tta_acc, double *tta_s)
{
    const s_args_t *a = &r->a;
    loader_epoch_plan_t plan;
    if (s_start(r, 1, LOADER_TRAIN, 0, 0, true, &plan) != 0) return -1;
    int steps = (int)plan.n_batches;
    if (a->max_batches > 0 && steps > a->max_batches) steps = a->max_batches;
    sched_t fit = sched_one_cycle(a->epochs, steps, a->lr);
    learner_fit_begin(r->l, &fit);
    recorder_table_t table;
    const char *cols[5] = {"epoch", "train_loss", "valid_loss", "accuracy", "time"};
    recorder_table_init(&table, cols, 5);
    char line[256];
    recorder_table_header(&table, line, sizeof line);
    printf("%s\n", line);
    for (int e = 0; e < a->epochs; e++) {
        s_row_t *row = &rows[e];
        memset(row, 0, sizeof *row);
        row->epoch = e;
        const double t0 = nf_now_s();
        row->t_start = t0 - r->t_run;
        if (e > 0 && s_start(r, 1, LOADER_TRAIN, (uint32_t)e, 0, true, &plan) != 0) return -1;
        if (s_train_epoch(r, row) != 0) return -1;
        const int nv = s_valid_pass(r, 2, (uint32_t)e, 0, r->aug_valid, AUGMENT_MODE_VALID,
                                    &row->valid_loss, &row->accuracy);
        if (nv < 0) return -1;
        row->valid_images = (uint32_t)nv;
        row->seconds = nf_now_s() - t0;
        row->t_end = nf_now_s() - r->t_run;
        *n_rows = e + 1;
        s_print_row(&table, row);
    }
    if (a->tta > 0) {
        // fastai's tta(n, beta=0.25): 0.75 * mean of n augmented passes + 0.25 * plain pass
        const double t0 = nf_now_s();
        const size_t C = r->n_classes;
        double l, acc;
        for (int p = 1; p <= a->tta; p++) {
            if (s_valid_pass(r, 3, (uint32_t)p, (uint32_t)p, r->aug_tta, AUGMENT_MODE_TTA, &l,
                             &acc) < 0)
                return -1;
            for (size_t i = 0; i < (size_t)r->cap * C; i++) r->tta_sum[i] += r->probs[i];
        }
        memset(r->seen, 0, r->cap);
        if (s_valid_pass(r, 2, (uint32_t)a->epochs, 0, r->aug_valid, AUGMENT_MODE_VALID, &l,
                         &acc) < 0)
            return -1;
        uint32_t correct = 0, n = 0;
        for (uint32_t k = 0; k < r->cap; k++) {
            if (!r->seen[k]) continue;
            size_t best = 0;
            float bv = -1;
            for (size_t c = 0; c < C; c++) {
                const float v = 0.75f * (r->tta_sum[k * C + c] / (float)a->tta) +
                                0.25f * r->probs[k * C + c];
                if (v > bv) bv = v, best = c;
            }
            correct += (int32_t)best == r->targets[k];
            n++;
        }
        *tta_acc = n ? (double)correct / n : NAN;
        *tta_s = nf_now_s() - t0;
        printf("TTA (%d passes): accuracy %.6f\n", a->tta, *tta_acc);
    }
    return 0;
}

int main(int argc, char **argv)
{
    nf_log_config_t lc = {.stage = "chapter", .level = NF_LOG_INFO};
    nf_log_init(&lc);
    s_run_t r = {0};
    if (s_parse(argc, argv, &r.a) != 0) return 2;
    const double t0 = nf_now_s();
    r.t_run = t0;
    r.t_run_unix = (double)nf_wall_ms() / 1e3;
    s_row_t rows[S_MAX_EPOCHS];
    int n_rows = 0;
    double tta_acc = NAN, tta_s = 0;
    int rc = s_setup(&r, argv[0]);
    if (rc == 0) rc = s_run(&r, rows, &n_rows, &tta_acc, &tta_s);
    const double wall = nf_now_s() - t0;
    s_write_outputs(&r, rows, n_rows, wall, tta_acc, tta_s, rc);
    printf("chapter: %s, %d epochs in %.1f s from the first decode to the final accuracy%s\n",
           rc == 0 ? "done" : "FAILED", n_rows, wall, r.cuda ? " (GPU)" : " (CPU)");
    s_teardown(&r);
    return rc == 0 ? 0 : 1;
}
