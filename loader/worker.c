/*
 * worker.c: see worker.h. The task queue, the decode loop with socket service
 * between images, spares and refills, the PUSH sockets to sinks, and the
 * Paranoid Pirate reconnect.
 */
#include "worker.h"

#include "check.h"
#include "decode.h"
#include "log.h"
#include "pack.h"
#include "timeutil.h"
#include "zmqutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { S_MAX_SLOTS = 64, S_MAX_SINKS = 8, S_MAX_BATCH = 65536, S_MAX_PRESIZE = 4096 };
#define S_MAX_BATCH_BYTES ((uint64_t)1 << 31)

typedef struct {
    char *endpoint;
    char *key;               // the sink's CURVE key, or NULL (plain)
    void *sock;
} s_sink_t;

struct loader_worker_t {
    loader_worker_config_t cfg;
    char id[96];
    char job[64];
    char *root;              // dataset root (config override or announced)
    void *ctx;
    bool own_ctx;
    void *dealer;
    nf_wire_expect_t expect;
    loader_worker_stats_t stats;
    Nf__Envelope *queue[S_MAX_SLOTS];  // owned envelopes holding BatchTasks
    uint32_t n_queue;
    s_sink_t sinks[S_MAX_SINKS];
    uint32_t n_sinks;
    int64_t last_rx, last_tx;
    bool stopping;
    loader_decoder_t *dec;
    uint8_t *file;
    size_t file_cap;
    loader_pack_t *pack;     // the root's pack, when the root is one (loader/pack.h)
    char *pack_root;         // the root pack was looked for in
};

static int s_ms(int v, int dflt) { return v > 0 ? v : dflt; }

// ---------------------------------------------------------------------------
// coordinator socket

static int s_send(loader_worker_t *self, Nf__Envelope *env)
{
    int rc = nf_wire_send(self->dealer, NULL, self->job, env, NULL, ZMQ_DONTWAIT);
    if (rc == 0) self->last_tx = nf_now_ms();
    return rc;
}

static int s_hello(loader_worker_t *self)
{
    Nf__WorkerHello h = NF__WORKER_HELLO__INIT;
    h.worker_id = self->id;
    h.slots = self->cfg.slots;
    h.has_pid = true;
    h.pid = (uint32_t)getpid();
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_WORKER_HELLO;
    env.worker_hello = &h;
    return s_send(self, &env);
}

static int s_connect(loader_worker_t *self)
{
    nf_zmq_socket_config_t sc = {.type = ZMQ_DEALER, .sndhwm = 1000, .rcvhwm = 1000};
    self->dealer = nf_zmq_socket_new(self->ctx, &sc);
    if (!self->dealer) return -1;
    if ((self->cfg.curve && nf_curve_client(self->cfg.curve, self->dealer, NULL, "worker") != 0) ||
        nf_zmq_connect(self->dealer, self->cfg.coordinator) != 0) {
        nf_zmq_close(&self->dealer);
        return -1;
    }
    self->last_rx = nf_now_ms();
    if (s_hello(self) != 0 && errno != EAGAIN) {
        nf_log_error("hello to %s: %s", self->cfg.coordinator, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static void s_drop_queue(loader_worker_t *self)
{
    for (uint32_t i = 0; i < self->n_queue; i++) nf__envelope__free_unpacked(self->queue[i], NULL);
    self->n_queue = 0;
}

static void s_sink_free(s_sink_t *sk)
{
    nf_zmq_close(&sk->sock);
    free(sk->endpoint);
    free(sk->key);
    memset(sk, 0, sizeof *sk);
}

loader_worker_t *loader_worker_new(const loader_worker_config_t *cfg)
{
    NF_CHECK(cfg && cfg->coordinator, "worker needs a coordinator endpoint");
    loader_worker_t *self = nf_xcalloc(1, sizeof *self);
    self->cfg = *cfg;
    if (self->cfg.slots == 0) self->cfg.slots = 2;
    if (self->cfg.slots > S_MAX_SLOTS) self->cfg.slots = S_MAX_SLOTS;
    if (cfg->worker_id) {
        snprintf(self->id, sizeof self->id, "%s", cfg->worker_id);
    } else {
        char host[64] = "?";
        if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
        host[sizeof host - 1] = 0;
        snprintf(self->id, sizeof self->id, "%s:%d", host, (int)getpid());
    }
    snprintf(self->job, sizeof self->job, "%s", cfg->job ? cfg->job : "");
    if (cfg->data_root) self->root = nf_xstrdup(cfg->data_root);
    self->ctx = cfg->zmq_ctx;
    if (!self->ctx) {
        self->ctx = zmq_ctx_new();
        NF_CHECK(self->ctx != NULL, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
        self->own_ctx = true;
    }
    NF_CHECK(!cfg->curve || nf_curve_ctx(cfg->curve) == self->ctx, "curve of another context");
    self->dec = loader_decoder_new();
    self->expect = (nf_wire_expect_t){
        .bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_BATCH_TASK) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_DATASET_INFO) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_HEARTBEAT) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_CONTROL),
    };
    if (!self->dec || s_connect(self) != 0) {
        loader_worker_destroy(&self);
        return NULL;
    }
    return self;
}

void loader_worker_destroy(loader_worker_t **self_p)
{
    if (!self_p || !*self_p) return;
    loader_worker_t *self = *self_p;
    s_drop_queue(self);
    for (uint32_t i = 0; i < self->n_sinks; i++) s_sink_free(&self->sinks[i]);
    nf_zmq_close(&self->dealer);
    if (self->own_ctx && zmq_ctx_term(self->ctx) != 0)
        nf_log_warn("zmq_ctx_term: %s", zmq_strerror(zmq_errno()));
    loader_decoder_destroy(&self->dec);
    free(self->file);
    free(self->root);
    loader_pack_close(&self->pack);
    free(self->pack_root);
    free(self);
    *self_p = NULL;
}

void loader_worker_stats(const loader_worker_t *self, loader_worker_stats_t *out) { *out = self->stats; }

// ---------------------------------------------------------------------------
// validation of what the coordinator sends

static bool s_path_ok(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    if (n == 0 || n >= 2048 || p[0] == '/') return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 2 && s[0] == '.' && s[1] == '.') return false;
        if (!e) break;
        s = e + 1;
    }
    return true;
}

static const char *s_task_problem(const loader_worker_t *self, const Nf__BatchTask *t)
{
    if (!self->root) return "no dataset root yet";
    if (t->n_indices == 0 || t->n_indices > S_MAX_BATCH || t->n_spares > S_MAX_BATCH)
        return "batch size out of range";
    size_t total = t->n_indices + t->n_spares;
    if (t->n_paths != total || t->n_labels != total) return "paths/labels do not match indices";
    if (t->presize == 0 || t->presize > S_MAX_PRESIZE) return "presize out of range";
    if ((uint64_t)t->n_indices * t->presize * t->presize * 3 > S_MAX_BATCH_BYTES)
        return "batch over 2 GiB";
    if (t->split != NF__SPLIT__SPLIT_TRAIN && t->split != NF__SPLIT__SPLIT_VALID) return "bad split";
    if (t->crop != NF__CROP_MODE__CROP_RANDOM && t->crop != NF__CROP_MODE__CROP_CENTER)
        return "bad crop mode";
    if (t->epoch >= (1u << 24) || (t->has_pass && t->pass >= 256)) return "epoch/pass out of range";
    size_t sl = t->sink ? strlen(t->sink) : 0;
    if (sl < 7 || sl > 255 || (strncmp(t->sink, "tcp://", 6) && strncmp(t->sink, "ipc://", 6) &&
                               strncmp(t->sink, "inproc://", 9)))
        return "bad sink endpoint";
    if (t->sink_key && !nf_curve_key_valid(t->sink_key)) return "bad sink key";
    if (t->sink_key && !self->cfg.curve) return "the sink needs CURVE keys this worker lacks";
    for (size_t i = 0; i < total; i++) {
        if (!s_path_ok(t->paths[i])) return "a path leaves the dataset root";
        if (t->labels[i] < 0) return "negative label";
    }
    return NULL;
}

// ---------------------------------------------------------------------------
// socket service

static void s_reconnect(loader_worker_t *self)
{
    nf_log_warn("coordinator %s silent for %d ms: reconnecting", self->cfg.coordinator,
                s_ms(self->cfg.timeout_ms, 5000));
    s_drop_queue(self);
    nf_zmq_close(&self->dealer);
    self->stats.reconnects++;
    if (s_connect(self) != 0) self->stopping = true;
}

static void s_on_message(loader_worker_t *self, nf_wire_msg_t *m)
{
    Nf__Envelope *env = m->env;
    switch (env->body_case) {
    case NF__ENVELOPE__BODY_DATASET_INFO:
        if (!self->cfg.data_root && env->dataset_info->root) {
            free(self->root);
            self->root = nf_xstrdup(env->dataset_info->root);
        }
        if (!self->job[0] && env->job) snprintf(self->job, sizeof self->job, "%s", env->job);
        nf_log_info("worker %s: dataset %s, %zu classes", self->id, self->root ? self->root : "?",
                    env->dataset_info->n_classes);
        return;
    case NF__ENVELOPE__BODY_BATCH_TASK: {
        const char *why = s_task_problem(self, env->batch_task);
        if (!why && self->n_queue >= self->cfg.slots) why = "more tasks than slots";
        if (why) {
            nf_wire_stats_drop(&self->stats.wire, NF_WIRE_DROP_FIELD);
            self->stats.tasks_rejected++;
            nf_log_warn("worker %s: task rejected: %s", self->id, why);
            return;
        }
        self->queue[self->n_queue++] = env;
        m->env = NULL;  // the queue owns it now
        return;
    }
    case NF__ENVELOPE__BODY_CONTROL:
        if (env->control->cmd == NF__COMMAND__CMD_STOP) {
            nf_log_info("worker %s: stop requested (%s)", self->id,
                        env->control->reason ? env->control->reason : "");
            self->stopping = true;
        }
        return;
    default: return;  // heartbeat: liveness only
    }
}

// Polls the coordinator socket (and stop fd) for up to timeout_ms, handles
// everything pending, sends a heartbeat when due, reconnects when the
// coordinator went silent. Returns -1 on a socket failure.
static int s_service(loader_worker_t *self, int timeout_ms)
{
    zmq_pollitem_t items[2] = {
        {.socket = self->dealer, .events = ZMQ_POLLIN},
        {.fd = self->cfg.stop_fd, .events = ZMQ_POLLIN},
    };
    int n_items = self->cfg.stop_fd >= 0 ? 2 : 1;
    int rc = zmq_poll(items, n_items, timeout_ms);
    if (rc < 0 && zmq_errno() != EINTR) {
        nf_log_error("zmq_poll: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    if (rc > 0 && n_items == 2 && (items[1].revents & ZMQ_POLLIN)) self->stopping = true;
    for (int k = 0; k < 1000 && rc > 0 && (items[0].revents & ZMQ_POLLIN); k++) {
        nf_wire_msg_t m;
        int got = nf_wire_recv(self->dealer, &self->expect, &m, &self->stats.wire, ZMQ_DONTWAIT);
        if (got < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            nf_log_error("receive: %s", zmq_strerror(errno));
            return -1;
        }
        self->last_rx = nf_now_ms();  // anything from the coordinator is a heartbeat
        if (got == 1) {
            s_on_message(self, &m);
            nf_wire_msg_close(&m);
        }
    }
    int64_t now = nf_now_ms();
    if (now - self->last_rx > s_ms(self->cfg.timeout_ms, 5000)) {
        s_reconnect(self);
        return 0;
    }
    if (now - self->last_tx >= s_ms(self->cfg.heartbeat_ms, 1000)) {
        Nf__Heartbeat hb = NF__HEARTBEAT__INIT;
        hb.wall_ms = nf_wall_ms();
        hb.sender = self->id;
        Nf__Envelope env = NF__ENVELOPE__INIT;
        env.body_case = NF__ENVELOPE__BODY_HEARTBEAT;
        env.heartbeat = &hb;
        (void)s_send(self, &env);
    }
    return 0;
}

// ---------------------------------------------------------------------------
// tasks

// The PUSH socket to a sink (endpoint + CURVE key, NULL = plain), made on first use.
static void *s_sink(loader_worker_t *self, const char *endpoint, const char *key)
{
    for (uint32_t i = 0; i < self->n_sinks; i++) {
        const s_sink_t *sk = &self->sinks[i];
        if (!strcmp(sk->endpoint, endpoint) && (sk->key ? key && !strcmp(sk->key, key) : !key))
            return sk->sock;
    }
    if (self->n_sinks == S_MAX_SINKS) {  // forget the oldest sink
        s_sink_free(&self->sinks[0]);
        memmove(self->sinks, self->sinks + 1, (S_MAX_SINKS - 1) * sizeof *self->sinks);
        self->n_sinks--;
    }
    nf_zmq_socket_config_t sc = {.type = ZMQ_PUSH, .sndhwm = 4, .immediate = true,
                                 .linger_ms = 2000};
    void *sock = nf_zmq_socket_new(self->ctx, &sc);
    if (!sock) return NULL;
    if ((key && nf_curve_client(self->cfg.curve, sock, key, "worker sink") != 0) ||
        nf_zmq_connect(sock, endpoint) != 0) {
        nf_zmq_close(&sock);
        return NULL;
    }
    self->sinks[self->n_sinks] = (s_sink_t){.endpoint = nf_xstrdup(endpoint),
                                            .key = key ? nf_xstrdup(key) : NULL, .sock = sock};
    self->n_sinks++;
    return sock;
}

// Sends a batch to a sink without blocking the coordinator link: while the
// sink cannot take it (its HWM is full, or the connection is not up yet) the
// worker keeps servicing heartbeats, for up to send_timeout_ms. The payload
// frame is shared (zmq_msg_copy), not copied, between attempts. Returns 0, or
// -1 (errno: EAGAIN when the sink never took it, ECANCELED when stopping).
static int s_push(loader_worker_t *self, const Nf__BatchTask *t, Nf__Envelope *env,
                  zmq_msg_t *payload)
{
    void *sock = s_sink(self, t->sink, t->sink_key);
    if (!sock) {
        errno = ENOTSUP;
        return -1;
    }
    int64_t end = nf_now_ms() + s_ms(self->cfg.send_timeout_ms, 30000);
    for (;;) {
        zmq_msg_t attempt;
        NF_ZMQ_CHECK(zmq_msg_init(&attempt));
        NF_ZMQ_CHECK(zmq_msg_copy(&attempt, payload));
        if (nf_wire_send(sock, NULL, self->job, env, &attempt, ZMQ_DONTWAIT) == 0) return 0;
        if (errno != EAGAIN) return -1;
        if (self->stopping) {
            errno = ECANCELED;
            return -1;
        }
        if (nf_now_ms() > end) {
            errno = EAGAIN;
            return -1;
        }
        zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLOUT};
        if (zmq_poll(&it, 1, 20) < 0 && zmq_errno() != EINTR) return -1;
        if (s_service(self, 0) != 0) return -1;
    }
}

typedef struct {
    Nf__BadSample *items;   // (n_total)
    Nf__BadSample **ptrs;   // (n_total)
    char **paths;           // (n_total) owned copies of detail strings
    size_t n;
} s_badlist_t;

// The pack of the dataset root, or NULL when the root is a plain folder
// (looked for again when the announced root changes).
static const loader_pack_t *s_pack(loader_worker_t *self)
{
    if (self->pack_root && strcmp(self->pack_root, self->root) == 0) return self->pack;
    loader_pack_close(&self->pack);
    free(self->pack_root);
    self->pack_root = nf_xstrdup(self->root);
    if (loader_pack_exists(self->root)) {
        char err[512];
        self->pack = loader_pack_open(self->root, err, sizeof err);
        if (!self->pack) nf_log_error("worker %s: %s (every sample will be a bad file)", self->id, err);
        else nf_log_info("worker %s: reading the pack %s", self->id, self->root);
    }
    return self->pack;
}

// Decodes sample k of the task (k < n_indices: batch entry, else spare k - n)
// into row. Returns 0, or -1 after recording the bad sample.
static int s_decode_one(loader_worker_t *self, const Nf__BatchTask *t, size_t k, uint8_t *row,
                        s_badlist_t *bad, uint32_t *warnings)
{
    uint32_t index = k < t->n_indices ? t->indices[k] : t->spares[k - t->n_indices];
    loader_decode_info_t info;
    loader_bad_t why = LOADER_BAD_NONE;
    const uint8_t *data = NULL;
    long len = loader_sample_read(s_pack(self), self->root, t->paths[k], &self->file,
                                  &self->file_cap, &data, &why, info.detail, sizeof info.detail);
    if (len >= 0) {
        loader_presize_params_t p = {
            .size = t->presize,
            .random_crop = t->crop == NF__CROP_MODE__CROP_RANDOM,
            .seed = t->seed,
            .epoch_word = loader_epoch_word(t->epoch, t->has_pass ? t->pass : 0),
            .index = index,
            .exact = t->has_exact && t->exact,
            .strict = t->has_strict_jpeg && t->strict_jpeg,
            .max_pixels = t->has_max_pixels ? t->max_pixels : 0,
        };
        if (loader_decoder_presize(self->dec, &p, data, (size_t)len, row, &info) == 0) {
            self->stats.images++;
            if (info.warning) {
                (*warnings)++;
                self->stats.warnings++;
                nf_log_warn("%s: decoded with a warning: %s", t->paths[k], info.detail);
            }
            return 0;
        }
        why = info.bad;
    }
    self->stats.bad_files++;
    nf_log_warn("bad file %s: %s: %s", t->paths[k], loader_bad_name(why), info.detail);
    Nf__BadSample *b = &bad->items[bad->n];
    nf__bad_sample__init(b);
    b->index = index;
    b->reason = (Nf__BadReason)why;
    b->path = (char *)t->paths[k];
    b->detail = bad->paths[bad->n] = nf_xstrdup(info.detail);
    bad->ptrs[bad->n] = b;
    bad->n++;
    return -1;
}

// Runs one task. Returns 0, or -1 on a socket failure.
static int s_run_task(loader_worker_t *self, const Nf__BatchTask *t)
{
    double t0 = nf_now_s();
    const size_t S = t->presize, row_bytes = S * S * 3, n = t->n_indices;
    const size_t total = n + t->n_spares;
    const bool train = t->split == NF__SPLIT__SPLIT_TRAIN;
    zmq_msg_t payload;
    NF_ZMQ_CHECK(zmq_msg_init_size(&payload, n * row_bytes));
    uint8_t *px = zmq_msg_data(&payload);
    int32_t *labels = nf_xmalloc(n * sizeof *labels);
    uint32_t *indices = nf_xmalloc(n * sizeof *indices);
    s_badlist_t bad = {
        .items = nf_xcalloc(total, sizeof *bad.items),
        .ptrs = nf_xcalloc(total, sizeof *bad.ptrs),
        .paths = nf_xcalloc(total, sizeof *bad.paths),
    };
    uint32_t warnings = 0;
    size_t rows = 0, next_spare = n;
    int rc = 0;
    for (size_t i = 0; i < n && !self->stopping; i++) {
        if (s_service(self, 0) != 0) {
            rc = -1;
            break;
        }
        size_t k = i;
        int ok = s_decode_one(self, t, k, px + rows * row_bytes, &bad, &warnings);
        while (ok != 0 && train && next_spare < total) {
            k = next_spare++;
            ok = s_decode_one(self, t, k, px + rows * row_bytes, &bad, &warnings);
        }
        if (ok != 0) continue;  // valid: the sample is dropped; train: spares ran out
        labels[rows] = t->labels[k];
        indices[rows] = k < n ? t->indices[k] : t->spares[k - n];
        rows++;
    }
    if (rc == 0 && !self->stopping) {
        // a train batch keeps its size even when spares ran out: repeat good rows
        for (size_t r = 0; train && rows > 0 && rows < n; r++, rows++) {
            memcpy(px + rows * row_bytes, px + r * row_bytes, row_bytes);
            labels[rows] = labels[r];
            indices[rows] = indices[r];
            self->stats.refills++;
        }
        if (rows < n) {  // rare: shrink the payload to the rows kept
            zmq_msg_t shrunk;
            NF_ZMQ_CHECK(zmq_msg_init_size(&shrunk, rows * row_bytes));
            if (rows) memcpy(zmq_msg_data(&shrunk), px, rows * row_bytes);
            zmq_msg_close(&payload);
            payload = shrunk;
        }
        Nf__RawBatch b = NF__RAW_BATCH__INIT;
        b.stream = t->stream;
        b.epoch = t->epoch;
        b.seq = t->seq;
        b.split = t->split;
        b.n = (uint32_t)rows;
        b.h = b.w = (uint32_t)S;
        b.c = 3;
        b.n_labels = rows;
        b.labels = labels;
        b.n_indices = rows;
        b.indices = indices;
        b.n_bad = bad.n;
        b.bad = bad.ptrs;
        b.payload_bytes = rows * row_bytes;
        b.has_task_id = true;
        b.task_id = t->task_id;
        b.worker_id = self->id;
        b.has_pass = t->has_pass;
        b.pass = t->pass;
        b.has_warnings = true;
        b.warnings = warnings;
        Nf__Envelope env = NF__ENVELOPE__INIT;
        env.body_case = NF__ENVELOPE__BODY_RAW_BATCH;
        env.raw_batch = &b;
        if (s_push(self, t, &env, &payload) != 0) {
            self->stats.batches_unsent++;
            nf_log_error("worker %s: batch %u of stream %u not delivered to %s: %s", self->id,
                         t->seq, t->stream, t->sink, zmq_strerror(errno));
        } else {
            Nf__TaskDone d = NF__TASK_DONE__INIT;
            d.task_id = t->task_id;
            d.n_bad = bad.n;
            d.bad = bad.ptrs;
            d.has_decode_s = true;
            d.decode_s = nf_now_s() - t0;
            d.has_warnings = true;
            d.warnings = warnings;
            Nf__Envelope denv = NF__ENVELOPE__INIT;
            denv.body_case = NF__ENVELOPE__BODY_TASK_DONE;
            denv.task_done = &d;
            if (s_send(self, &denv) != 0) nf_log_warn("TaskDone not sent: %s", zmq_strerror(errno));
            self->stats.tasks_done++;
        }
    }
    zmq_msg_close(&payload);
    for (size_t i = 0; i < bad.n; i++) free(bad.paths[i]);
    free(bad.items);
    free(bad.ptrs);
    free(bad.paths);
    free(labels);
    free(indices);
    return rc;
}

int loader_worker_run(loader_worker_t *self)
{
    int hb = s_ms(self->cfg.heartbeat_ms, 1000);
    while (!self->stopping) {
        if (self->n_queue == 0) {
            if (s_service(self, hb / 2) != 0) return -1;
            continue;
        }
        Nf__Envelope *env = self->queue[0];
        memmove(self->queue, self->queue + 1, (self->n_queue - 1) * sizeof *self->queue);
        self->n_queue--;
        int rc = s_run_task(self, env->batch_task);
        nf__envelope__free_unpacked(env, NULL);
        if (rc != 0) return -1;
    }
    // tell the coordinator we leave, so our tasks move on at once
    Nf__Control ctl = NF__CONTROL__INIT;
    ctl.cmd = NF__COMMAND__CMD_STOP;
    ctl.reason = "worker leaving";
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_CONTROL;
    env.control = &ctl;
    (void)s_send(self, &env);
    return 0;
}
