/*
 * coordinator.c: see coordinator.h. One zmq_poll loop over the ROUTER socket
 * and the stop fd; per-stream ledgers indexed by batch seq; task ids that
 * encode (stream uid, attempt, seq) so any TaskDone, even a late one from a
 * worker given up on, finds its batch.
 */
#include "coordinator.h"

#include "check.h"
#include "decode.h"
#include "log.h"
#include "rng.h"
#include "timeutil.h"
#include "wire.h"
#include "zmqutil.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Bounds on what peers may ask for (larger values are rejected and counted).
enum {
    S_MAX_BATCH = 65536,
    S_MAX_PRESIZE = 4096,
    S_MAX_CREDITS = 4096,
    S_MAX_SLOTS = 64,
    S_MAX_BAD_REPORTED = 1000,  // BadSample entries kept per epoch for EpochDone
};
#define S_MAX_BATCH_BYTES ((uint64_t)1 << 31)

typedef enum { S_PENDING = 0, S_ISSUED, S_QUEUED, S_ACKED } s_seq_state_t;

typedef struct {
    bool live;
    nf_wire_peer_t peer;
    char id[64];
    uint32_t slots;
    uint64_t *tasks;       // (slots) task ids held
    uint32_t n_tasks;
    int64_t last_rx, last_tx;
} s_worker_t;

typedef struct {
    bool live;
    nf_wire_peer_t peer;
    int64_t last_rx, last_tx;
} s_consumer_t;

typedef struct {
    bool live, done;
    uint32_t uid;          // unique per coordinator run; high bits of task ids
    int consumer;
    uint32_t id, epoch, pass, epoch_word;
    int split;
    uint32_t batch_size, presize;
    int crop;
    bool exact;
    uint64_t seed;
    char *sink;
    char *sink_key;        // the sink's CURVE public key, or NULL
    uint32_t credits;
    uint32_t *order;       // (n_order) sample indices in epoch order
    uint32_t n_order, n_batches, next_seq;
    const uint32_t *pool;  // the split's items (spares are drawn from them)
    uint32_t n_pool;
    // the ledger, per seq
    uint8_t *state;        // s_seq_state_t
    uint8_t *attempt;
    uint8_t *sent;         // a worker reported TaskDone for the current attempt
    uint8_t *counted;      // bad samples of this seq counted
    int32_t *worker;       // worker holding the current attempt, -1 = none
    int64_t *deadline;     // task or ack deadline (ms)
    uint32_t *queue;       // (n_batches) seqs waiting for re-issue
    uint32_t n_queue;
    uint32_t n_acked, in_flight, bad, dropped, warnings, reissued;
    Nf__BadSample **bad_list;  // (<= S_MAX_BAD_REPORTED)
    uint32_t n_bad_list;
} s_stream_t;

struct loader_coordinator_t {
    loader_coordinator_config_t cfg;
    char job[64];
    char endpoint[256];
    void *ctx;
    bool own_ctx;
    void *router;
    nf_wire_stats_t wire;
    nf_wire_expect_t expect;
    loader_coordinator_stats_t stats;
    s_worker_t *workers;
    uint32_t n_workers;
    s_consumer_t *consumers;
    uint32_t n_consumers;
    s_stream_t *streams;
    uint32_t n_streams;
    uint32_t next_uid, rr;
    // scratch for building tasks
    uint32_t *idx;
    char **paths;
    int32_t *labels;
    size_t scratch_cap;
};

// ---------------------------------------------------------------------------
// small helpers

static int s_ms(int v, int dflt) { return v > 0 ? v : dflt; }

static bool s_peer_eq(const nf_wire_peer_t *a, const nf_wire_peer_t *b)
{
    return a->len == b->len && memcmp(a->id, b->id, a->len) == 0;
}

static int s_send(loader_coordinator_t *self, const nf_wire_peer_t *peer, Nf__Envelope *env)
{
    return nf_wire_send(self->router, peer, self->job, env, NULL, ZMQ_DONTWAIT);
}

static void s_reject(loader_coordinator_t *self, const char *what)
{
    nf_wire_stats_drop(&self->wire, NF_WIRE_DROP_FIELD);
    self->stats.peers_rejected++;
    nf_log_warn("coordinator: rejected %s", what);
}

static int s_find_worker(const loader_coordinator_t *self, const nf_wire_peer_t *peer)
{
    for (uint32_t i = 0; i < self->n_workers; i++)
        if (self->workers[i].live && s_peer_eq(&self->workers[i].peer, peer)) return (int)i;
    return -1;
}

static int s_find_consumer(const loader_coordinator_t *self, const nf_wire_peer_t *peer)
{
    for (uint32_t i = 0; i < self->n_consumers; i++)
        if (self->consumers[i].live && s_peer_eq(&self->consumers[i].peer, peer)) return (int)i;
    return -1;
}

static s_stream_t *s_find_stream(loader_coordinator_t *self, int consumer, uint32_t id)
{
    for (uint32_t i = 0; i < self->n_streams; i++)
        if (self->streams[i].live && self->streams[i].consumer == consumer && self->streams[i].id == id)
            return &self->streams[i];
    return NULL;
}

static s_stream_t *s_find_uid(loader_coordinator_t *self, uint32_t uid)
{
    for (uint32_t i = 0; i < self->n_streams; i++)
        if (self->streams[i].live && self->streams[i].uid == uid) return &self->streams[i];
    return NULL;
}

static uint64_t s_task_id(const s_stream_t *st, uint32_t seq)
{
    return (uint64_t)st->uid << 40 | (uint64_t)st->attempt[seq] << 32 | seq;
}

static void s_stream_free(s_stream_t *st)
{
    free(st->sink);
    free(st->sink_key);
    free(st->order);
    free(st->state);
    free(st->attempt);
    free(st->sent);
    free(st->counted);
    free(st->worker);
    free(st->deadline);
    free(st->queue);
    for (uint32_t i = 0; i < st->n_bad_list; i++) {
        free(st->bad_list[i]->path);
        free(st->bad_list[i]);
    }
    free(st->bad_list);
    memset(st, 0, sizeof *st);
}

// ---------------------------------------------------------------------------
// lifecycle

loader_coordinator_t *loader_coordinator_new(const loader_coordinator_config_t *cfg)
{
    NF_CHECK(cfg && cfg->dataset, "coordinator needs a dataset");
    loader_coordinator_t *self = nf_xcalloc(1, sizeof *self);
    self->cfg = *cfg;
    snprintf(self->job, sizeof self->job, "%s", cfg->job ? cfg->job : "netteflow");
    self->cfg.job = self->job;
    self->ctx = cfg->zmq_ctx;
    if (!self->ctx) {
        self->ctx = zmq_ctx_new();
        NF_CHECK(self->ctx != NULL, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
        self->own_ctx = true;
    }
    nf_zmq_socket_config_t sc = {.type = ZMQ_ROUTER, .sndhwm = 1000, .rcvhwm = 1000,
                                 .router_mandatory = true};
    self->router = nf_zmq_socket_new(self->ctx, &sc);
    const char *bind = cfg->bind ? cfg->bind : "tcp://127.0.0.1:5555";
    NF_CHECK(!cfg->curve || nf_curve_ctx(cfg->curve) == self->ctx, "curve of another context");
    if (!self->router || !nf_curve_bind_allowed(cfg->curve, bind) ||
        (cfg->curve && nf_curve_server(cfg->curve, self->router, "coordinator") != 0) ||
        nf_zmq_bind(self->router, bind, self->endpoint, sizeof self->endpoint) != 0) {
        loader_coordinator_destroy(&self);
        return NULL;
    }
    self->expect = (nf_wire_expect_t){
        .router = true,
        .job = self->job,
        .allow_no_job = true,
        .bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_WORKER_HELLO) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_TASK_DONE) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_HEARTBEAT) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_STREAM_REQUEST) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_CREDIT) | NF_WIRE_BODY(NF__ENVELOPE__BODY_ACK) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_DATASET_INFO_REQUEST) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_CONTROL),
        .max_payload = 0,
    };
    self->next_uid = 1;
    return self;
}

void loader_coordinator_destroy(loader_coordinator_t **self_p)
{
    if (!self_p || !*self_p) return;
    loader_coordinator_t *self = *self_p;
    nf_zmq_close(&self->router);
    if (self->own_ctx && zmq_ctx_term(self->ctx) != 0)
        nf_log_warn("zmq_ctx_term: %s", zmq_strerror(zmq_errno()));
    for (uint32_t i = 0; i < self->n_workers; i++) free(self->workers[i].tasks);
    for (uint32_t i = 0; i < self->n_streams; i++) s_stream_free(&self->streams[i]);
    free(self->workers);
    free(self->consumers);
    free(self->streams);
    free(self->idx);
    free(self->paths);
    free(self->labels);
    free(self);
    *self_p = NULL;
}

const char *loader_coordinator_endpoint(const loader_coordinator_t *self) { return self->endpoint; }

void loader_coordinator_stats(const loader_coordinator_t *self, loader_coordinator_stats_t *out)
{
    *out = self->stats;
    out->messages_dropped = nf_wire_stats_dropped(&self->wire);
}

// ---------------------------------------------------------------------------
// workers

static void s_queue_seq(loader_coordinator_t *self, s_stream_t *st, uint32_t seq)
{
    NF_CHECK(st->n_queue < st->n_batches, "re-issue queue overflow");
    st->state[seq] = S_QUEUED;
    st->worker[seq] = -1;
    st->queue[st->n_queue++] = seq;
    st->reissued++;
    self->stats.tasks_reissued++;
}

// A worker died, stalled or left: its un-acked batches are re-issued. A worker
// that died or stalled may have sent a batch that is still in its socket buffer,
// so everything un-acked goes again (all = true); a worker that left on its own
// flushed what it sent, so only what it had not finished goes again.
static void s_worker_lost(loader_coordinator_t *self, int w, const char *why, bool all)
{
    s_worker_t *wk = &self->workers[w];
    uint32_t requeued = 0;
    for (uint32_t i = 0; i < self->n_streams; i++) {
        s_stream_t *st = &self->streams[i];
        if (!st->live || st->done) continue;
        for (uint32_t seq = 0; seq < st->next_seq; seq++) {
            if (st->state[seq] == S_ISSUED && st->worker[seq] == w && (all || !st->sent[seq])) {
                s_queue_seq(self, st, seq);
                requeued++;
            } else if (st->state[seq] == S_ISSUED && st->worker[seq] == w) {
                st->worker[seq] = -1;  // sent; the ack deadline still guards it
            }
        }
    }
    nf_log(requeued ? NF_LOG_WARN : NF_LOG_INFO, "worker %s gone (%s): %u tasks re-issued", wk->id,
           why, requeued);
    wk->live = false;
    wk->n_tasks = 0;
    self->stats.workers_lost++;
}

// Answers a peer with the dataset's root, vocabulary and split sizes.
static int s_send_dataset_info(loader_coordinator_t *self, const nf_wire_peer_t *peer)
{
    const loader_dataset_t *ds = self->cfg.dataset;
    uint32_t nc = loader_dataset_n_classes(ds), n_train, n_valid;
    loader_dataset_split(ds, LOADER_TRAIN, &n_train);
    loader_dataset_split(ds, LOADER_VALID, &n_valid);
    char **classes = nf_xmalloc((nc + 1) * sizeof *classes);
    for (uint32_t c = 0; c < nc; c++) classes[c] = (char *)loader_dataset_class_name(ds, c);
    Nf__DatasetInfo info = NF__DATASET_INFO__INIT;
    info.n_classes = nc;
    info.classes = classes;
    info.n_train = n_train;
    info.n_valid = n_valid;
    info.root = (char *)loader_dataset_root(ds);
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_DATASET_INFO;
    env.dataset_info = &info;
    int rc = s_send(self, peer, &env);
    free(classes);
    return rc;
}

static void s_on_hello(loader_coordinator_t *self, const nf_wire_msg_t *m, int64_t now)
{
    const Nf__WorkerHello *h = m->env->worker_hello;
    if (h->slots == 0 || h->slots > S_MAX_SLOTS) {
        s_reject(self, "WorkerHello with slots out of range");
        return;
    }
    int w = s_find_worker(self, &m->peer);
    if (w < 0) {
        for (uint32_t i = 0; i < self->n_workers; i++)
            if (!self->workers[i].live) {
                w = (int)i;
                break;
            }
        if (w < 0) {
            self->workers = nf_xrealloc(self->workers, (self->n_workers + 1) * sizeof *self->workers);
            memset(&self->workers[self->n_workers], 0, sizeof *self->workers);
            w = (int)self->n_workers++;
        }
        s_worker_t *wk = &self->workers[w];
        free(wk->tasks);
        memset(wk, 0, sizeof *wk);
        wk->live = true;
        wk->peer = m->peer;
        wk->tasks = nf_xcalloc(S_MAX_SLOTS, sizeof *wk->tasks);
        self->stats.workers_joined++;
    }
    s_worker_t *wk = &self->workers[w];
    snprintf(wk->id, sizeof wk->id, "%s", h->worker_id);
    wk->slots = h->slots;
    wk->last_rx = now;
    nf_log_info("worker %s joined (%u slots)", wk->id, wk->slots);
    if (s_send_dataset_info(self, &m->peer) != 0) s_worker_lost(self, w, "cannot reach it", true);
    else wk->last_tx = now;
}

static void s_count_bad(loader_coordinator_t *self, s_stream_t *st, const Nf__TaskDone *d)
{
    uint32_t n_items = loader_dataset_n_items(self->cfg.dataset);
    for (size_t i = 0; i < d->n_bad; i++) {
        const Nf__BadSample *b = d->bad[i];
        if (b->index >= n_items) continue;
        st->bad++;
        self->stats.bad_files++;
        if (st->n_bad_list < S_MAX_BAD_REPORTED) {
            Nf__BadSample *c = nf_xmalloc(sizeof *c);
            nf__bad_sample__init(c);
            c->index = b->index;
            c->reason = b->reason;
            c->path = nf_xstrdup(loader_dataset_item(self->cfg.dataset, b->index)->path);
            st->bad_list[st->n_bad_list++] = c;
        }
    }
    if (st->split == LOADER_VALID) st->dropped += (uint32_t)d->n_bad;  // train refills
    uint32_t warn = d->has_warnings ? d->warnings : 0;
    st->warnings += warn;
    self->stats.warnings += warn;
}

static void s_on_task_done(loader_coordinator_t *self, const nf_wire_msg_t *m, int64_t now)
{
    int w = s_find_worker(self, &m->peer);
    if (w < 0) {
        nf_log_debug("TaskDone from a worker not (or no longer) known: ignored");
        self->stats.peers_rejected++;
        return;
    }
    s_worker_t *wk = &self->workers[w];
    wk->last_rx = now;
    const Nf__TaskDone *d = m->env->task_done;
    for (uint32_t i = 0; i < wk->n_tasks; i++) {
        if (wk->tasks[i] == d->task_id) {
            wk->tasks[i] = wk->tasks[--wk->n_tasks];
            break;
        }
    }
    s_stream_t *st = s_find_uid(self, (uint32_t)(d->task_id >> 40));
    uint32_t seq = (uint32_t)d->task_id;
    if (!st || seq >= st->next_seq) return;  // a finished or replaced stream
    if (d->n_bad > (size_t)st->batch_size * 2 + 16) {
        s_reject(self, "TaskDone with more bad samples than the task had");
        return;
    }
    if (!st->counted[seq]) {
        st->counted[seq] = 1;
        s_count_bad(self, st, d);
    }
    if (st->state[seq] == S_ISSUED && s_task_id(st, seq) == d->task_id) {
        st->sent[seq] = 1;
        st->deadline[seq] = now + s_ms(self->cfg.ack_timeout_ms, 60000);
    }
}

// ---------------------------------------------------------------------------
// consumers and streams

static int s_add_consumer(loader_coordinator_t *self, const nf_wire_peer_t *peer, int64_t now)
{
    int c = s_find_consumer(self, peer);
    if (c >= 0) {
        self->consumers[c].last_rx = now;
        return c;
    }
    for (uint32_t i = 0; i < self->n_consumers; i++)
        if (!self->consumers[i].live) {
            c = (int)i;
            break;
        }
    if (c < 0) {
        self->consumers =
            nf_xrealloc(self->consumers, (self->n_consumers + 1) * sizeof *self->consumers);
        c = (int)self->n_consumers++;
    }
    self->consumers[c] = (s_consumer_t){.live = true, .peer = *peer, .last_rx = now, .last_tx = now};
    return c;
}

static void s_consumer_gone(loader_coordinator_t *self, int c, const char *why)
{
    for (uint32_t i = 0; i < self->n_streams; i++)
        if (self->streams[i].live && self->streams[i].consumer == c) s_stream_free(&self->streams[i]);
    self->consumers[c].live = false;
    nf_log(strcmp(why, "it left") ? NF_LOG_WARN : NF_LOG_INFO,
           "consumer %d gone (%s): its streams were dropped", c, why);
}

static bool s_endpoint_ok(const char *ep)
{
    size_t n = ep ? strlen(ep) : 0;
    return n > 6 && n < 256 &&
           (strncmp(ep, "tcp://", 6) == 0 || strncmp(ep, "ipc://", 6) == 0 ||
            strncmp(ep, "inproc://", 9) == 0);
}

static void s_send_epoch_done(loader_coordinator_t *self, s_stream_t *st, int64_t now)
{
    Nf__EpochDone d = NF__EPOCH_DONE__INIT;
    d.stream = st->id;
    d.epoch = st->epoch;
    d.n_batches = st->n_batches;
    uint32_t planned = st->split == LOADER_TRAIN && st->n_order >= st->batch_size &&
                               st->n_batches * st->batch_size <= st->n_order
                           ? st->n_batches * st->batch_size
                           : st->n_order;
    d.n_samples = planned - (st->dropped < planned ? st->dropped : planned);
    d.bad_files = st->bad;
    d.n_bad = st->n_bad_list;
    d.bad = st->bad_list;
    d.has_reissued = true;
    d.reissued = st->reissued;
    d.has_warnings = true;
    d.warnings = st->warnings;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_EPOCH_DONE;
    env.epoch_done = &d;
    s_consumer_t *c = &self->consumers[st->consumer];
    st->done = true;
    self->stats.epochs_done++;
    nf_log_info("stream %u epoch %u done: %u batches, %u bad files, %u re-issued", st->id,
                st->epoch, st->n_batches, st->bad, st->reissued);
    if (s_send(self, &c->peer, &env) != 0) s_consumer_gone(self, st->consumer, "cannot reach it");
    else c->last_tx = now;
}

static void s_on_stream_request(loader_coordinator_t *self, const nf_wire_msg_t *m, int64_t now)
{
    const Nf__StreamRequest *r = m->env->stream_request;
    uint64_t bytes = (uint64_t)r->batch_size * r->presize * r->presize * 3;
    if (r->batch_size == 0 || r->batch_size > S_MAX_BATCH || r->presize == 0 ||
        r->presize > S_MAX_PRESIZE || r->credits == 0 || r->credits > S_MAX_CREDITS ||
        (r->split != NF__SPLIT__SPLIT_TRAIN && r->split != NF__SPLIT__SPLIT_VALID) ||
        (r->crop != NF__CROP_MODE__CROP_RANDOM && r->crop != NF__CROP_MODE__CROP_CENTER) ||
        !s_endpoint_ok(r->sink) || r->epoch >= (1u << 24) || (r->has_pass && r->pass >= 256) ||
        bytes > S_MAX_BATCH_BYTES || (r->sink_key && !nf_curve_key_valid(r->sink_key))) {
        s_reject(self, "StreamRequest with a field out of range");
        return;
    }
    int c = s_add_consumer(self, &m->peer, now);
    s_stream_t *st = s_find_stream(self, c, r->stream);
    if (st) s_stream_free(st);
    else {
        for (uint32_t i = 0; i < self->n_streams && !st; i++)
            if (!self->streams[i].live) st = &self->streams[i];
        if (!st) {
            self->streams = nf_xrealloc(self->streams, (self->n_streams + 1) * sizeof *self->streams);
            st = &self->streams[self->n_streams++];
            memset(st, 0, sizeof *st);
        }
    }
    const loader_dataset_t *ds = self->cfg.dataset;
    st->live = true;
    st->uid = self->next_uid++ & 0xFFFFFF;
    st->consumer = c;
    st->id = r->stream;
    st->epoch = r->epoch;
    st->pass = r->has_pass ? r->pass : 0;
    st->epoch_word = loader_epoch_word(st->epoch, st->pass);
    st->split = r->split == NF__SPLIT__SPLIT_TRAIN ? LOADER_TRAIN : LOADER_VALID;
    st->batch_size = r->batch_size;
    st->presize = r->presize;
    st->crop = r->crop;
    st->exact = r->has_exact && r->exact;
    st->seed = r->has_seed && r->seed ? r->seed : self->cfg.seed;
    st->sink = nf_xstrdup(r->sink);
    st->sink_key = r->sink_key ? nf_xstrdup(r->sink_key) : NULL;
    st->credits = r->credits;
    st->pool = loader_dataset_split(ds, st->split, &st->n_pool);
    st->n_order = st->n_pool;
    st->order = nf_xmalloc((st->n_order + 1) * sizeof *st->order);
    memcpy(st->order, st->pool, st->n_order * sizeof *st->order);
    if (r->shuffle && st->n_order > 1) {
        nf_rng_t g = nf_rng_make(st->seed, NF_RNG_STREAM_SHUFFLE, st->epoch_word, 0);
        for (uint32_t i = st->n_order - 1; i > 0; i--) {
            uint32_t j = nf_rng_below(&g, i + 1);
            uint32_t t = st->order[i];
            st->order[i] = st->order[j];
            st->order[j] = t;
        }
    }
    st->n_batches = r->drop_last ? st->n_order / st->batch_size
                                 : (st->n_order + st->batch_size - 1) / st->batch_size;
    uint32_t nb = st->n_batches + 1;
    st->state = nf_xcalloc(nb, 1);
    st->attempt = nf_xcalloc(nb, 1);
    st->sent = nf_xcalloc(nb, 1);
    st->counted = nf_xcalloc(nb, 1);
    st->worker = nf_xcalloc(nb, sizeof *st->worker);
    st->deadline = nf_xcalloc(nb, sizeof *st->deadline);
    st->queue = nf_xcalloc(nb, sizeof *st->queue);
    st->bad_list = nf_xcalloc(S_MAX_BAD_REPORTED, sizeof *st->bad_list);

    Nf__EpochPlan plan = NF__EPOCH_PLAN__INIT;
    plan.stream = st->id;
    plan.epoch = st->epoch;
    plan.split = r->split;
    plan.n_batches = st->n_batches;
    plan.batch_size = st->batch_size;
    plan.n_samples = r->drop_last ? st->n_batches * st->batch_size : st->n_order;
    plan.has_pass = true;
    plan.pass = st->pass;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_EPOCH_PLAN;
    env.epoch_plan = &plan;
    nf_log_info("stream %u epoch %u: %s, %u batches of %u at %u px, %u credits", st->id,
                st->epoch, st->split == LOADER_TRAIN ? "train" : "valid", st->n_batches,
                st->batch_size, st->presize, st->credits);
    if (s_send(self, &m->peer, &env) != 0) {
        s_consumer_gone(self, c, "cannot reach it");
        return;
    }
    self->consumers[c].last_tx = now;
    if (st->n_batches == 0) s_send_epoch_done(self, st, now);
}

static void s_on_ack(loader_coordinator_t *self, int c, const Nf__Ack *a, int64_t now)
{
    s_stream_t *st = s_find_stream(self, c, a->stream);
    if (!st || st->epoch != a->epoch || a->seq >= st->next_seq) {
        if (!st || st->epoch != a->epoch) return;  // a late ack for a replaced epoch
        s_reject(self, "Ack for a batch never issued");
        return;
    }
    if (st->state[a->seq] == S_ACKED) return;
    st->state[a->seq] = S_ACKED;
    st->n_acked++;
    st->in_flight--;
    if (st->n_acked == st->n_batches) s_send_epoch_done(self, st, now);
}

static void s_on_consumer_msg(loader_coordinator_t *self, const nf_wire_msg_t *m, int64_t now)
{
    Nf__Envelope *env = m->env;
    if (env->body_case == NF__ENVELOPE__BODY_STREAM_REQUEST) {
        s_on_stream_request(self, m, now);
        return;
    }
    int c = env->body_case == NF__ENVELOPE__BODY_DATASET_INFO_REQUEST
                ? s_add_consumer(self, &m->peer, now)
                : s_find_consumer(self, &m->peer);
    if (c < 0) {
        s_reject(self, "consumer message from an unknown peer");
        return;
    }
    self->consumers[c].last_rx = now;
    switch (env->body_case) {
    case NF__ENVELOPE__BODY_CREDIT: {
        s_stream_t *st = s_find_stream(self, c, env->credit->stream);
        if (!st || env->credit->n > S_MAX_CREDITS || st->credits + env->credit->n > S_MAX_CREDITS) {
            if (st) s_reject(self, "Credit out of range");
            return;
        }
        st->credits += env->credit->n;
        return;
    }
    case NF__ENVELOPE__BODY_ACK: s_on_ack(self, c, env->ack, now); return;
    case NF__ENVELOPE__BODY_DATASET_INFO_REQUEST:
        if (s_send_dataset_info(self, &m->peer) != 0) s_consumer_gone(self, c, "cannot reach it");
        else self->consumers[c].last_tx = now;
        return;
    case NF__ENVELOPE__BODY_CONTROL: s_consumer_gone(self, c, "it left"); return;
    default: return;
    }
}

static void s_handle(loader_coordinator_t *self, const nf_wire_msg_t *m, int64_t now)
{
    Nf__Envelope *env = m->env;
    switch (env->body_case) {
    case NF__ENVELOPE__BODY_WORKER_HELLO: s_on_hello(self, m, now); return;
    case NF__ENVELOPE__BODY_TASK_DONE: s_on_task_done(self, m, now); return;
    case NF__ENVELOPE__BODY_HEARTBEAT:
    case NF__ENVELOPE__BODY_CONTROL: {
        int w = s_find_worker(self, &m->peer);
        if (w >= 0) {
            self->workers[w].last_rx = now;
            if (env->body_case == NF__ENVELOPE__BODY_CONTROL) s_worker_lost(self, w, "it left", false);
            return;
        }
        int c = s_find_consumer(self, &m->peer);
        if (c >= 0) {
            s_on_consumer_msg(self, m, now);
            return;
        }
        nf_log_debug("heartbeat from an unknown peer: ignored");
        return;
    }
    default: s_on_consumer_msg(self, m, now); return;
    }
}

// ---------------------------------------------------------------------------
// dispatch

static void s_scratch(loader_coordinator_t *self, size_t n)
{
    if (self->scratch_cap >= n) return;
    self->idx = nf_xrealloc(self->idx, n * sizeof *self->idx);
    self->paths = nf_xrealloc(self->paths, n * sizeof *self->paths);
    self->labels = nf_xrealloc(self->labels, n * sizeof *self->labels);
    self->scratch_cap = n;
}

// Sends (stream, seq) to worker w. Returns 0, or -1 when the worker is unreachable.
static int s_issue(loader_coordinator_t *self, s_stream_t *st, uint32_t seq, int w, int64_t now)
{
    const loader_dataset_t *ds = self->cfg.dataset;
    uint32_t first = seq * st->batch_size;
    uint32_t n = st->n_order - first < st->batch_size ? st->n_order - first : st->batch_size;
    uint32_t n_spares = st->split == LOADER_TRAIN ? (self->cfg.spares ? self->cfg.spares : 8) : 0;
    s_scratch(self, (size_t)n + n_spares);
    memcpy(self->idx, st->order + first, n * sizeof *self->idx);
    nf_rng_t g = nf_rng_make(st->seed, NF_RNG_STREAM_SPARES, st->epoch_word, seq);
    for (uint32_t i = 0; i < n_spares; i++) self->idx[n + i] = st->pool[nf_rng_below(&g, st->n_pool)];
    for (uint32_t i = 0; i < n + n_spares; i++) {
        const loader_item_t *it = loader_dataset_item(ds, self->idx[i]);
        self->paths[i] = (char *)it->path;
        self->labels[i] = it->label;
    }
    st->attempt[seq]++;
    Nf__BatchTask t = NF__BATCH_TASK__INIT;
    t.task_id = s_task_id(st, seq);
    t.stream = st->id;
    t.epoch = st->epoch;
    t.seq = seq;
    t.split = st->split == LOADER_TRAIN ? NF__SPLIT__SPLIT_TRAIN : NF__SPLIT__SPLIT_VALID;
    t.n_indices = n;
    t.indices = self->idx;
    t.n_spares = n_spares;
    t.spares = self->idx + n;
    t.presize = st->presize;
    t.crop = (Nf__CropMode)st->crop;
    t.seed = st->seed;
    t.sink = st->sink;
    t.sink_key = st->sink_key;
    t.has_pass = true;
    t.pass = st->pass;
    t.n_paths = n + n_spares;
    t.paths = self->paths;
    t.n_labels = n + n_spares;
    t.labels = self->labels;
    t.has_exact = true;
    t.exact = st->exact;
    t.has_strict_jpeg = true;
    t.strict_jpeg = self->cfg.strict_jpeg;
    t.has_max_pixels = true;
    t.max_pixels = self->cfg.max_pixels ? self->cfg.max_pixels : LOADER_DEFAULT_MAX_PIXELS;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_BATCH_TASK;
    env.batch_task = &t;
    s_worker_t *wk = &self->workers[w];
    if (s_send(self, &wk->peer, &env) != 0) return -1;
    wk->last_tx = now;
    wk->tasks[wk->n_tasks++] = t.task_id;
    st->state[seq] = S_ISSUED;
    st->worker[seq] = w;
    st->sent[seq] = 0;
    st->deadline[seq] = now + s_ms(self->cfg.task_timeout_ms, 60000);
    self->stats.tasks_issued++;
    return 0;
}

static int s_pick_worker(const loader_coordinator_t *self)
{
    int best = -1;
    uint32_t best_free = 0;
    for (uint32_t k = 0; k < self->n_workers; k++) {
        uint32_t i = (self->rr + k) % self->n_workers;
        const s_worker_t *wk = &self->workers[i];
        if (!wk->live || wk->n_tasks >= wk->slots) continue;
        uint32_t free_slots = wk->slots - wk->n_tasks;
        if (free_slots > best_free) {
            best = (int)i;
            best_free = free_slots;
        }
    }
    return best;
}

static void s_dispatch(loader_coordinator_t *self, int64_t now)
{
    for (;;) {
        int w = s_pick_worker(self);
        if (w < 0 || self->n_streams == 0) return;
        // the next stream with work: re-issues first, then new batches with credit
        s_stream_t *st = NULL;
        uint32_t seq = 0;
        for (uint32_t k = 0; k < self->n_streams && !st; k++) {
            s_stream_t *s = &self->streams[(self->rr + k) % self->n_streams];
            if (!s->live || s->done) continue;
            while (s->n_queue && s->state[s->queue[0]] != S_QUEUED) {
                memmove(s->queue, s->queue + 1, (s->n_queue - 1) * sizeof *s->queue);
                s->n_queue--;
            }
            if (s->n_queue) {
                st = s;
                seq = s->queue[0];
                memmove(s->queue, s->queue + 1, (s->n_queue - 1) * sizeof *s->queue);
                s->n_queue--;
            } else if (s->next_seq < s->n_batches && s->credits > 0) {
                st = s;
                seq = s->next_seq++;
                s->credits--;
                s->in_flight++;
                if (s->in_flight > self->stats.max_unacked) self->stats.max_unacked = s->in_flight;
            }
        }
        if (!st) return;
        self->rr++;
        if (s_issue(self, st, seq, w, now) != 0) {
            st->state[seq] = S_QUEUED;  // put it back: front of the queue
            memmove(st->queue + 1, st->queue, st->n_queue * sizeof *st->queue);
            st->queue[0] = seq;
            st->n_queue++;
            s_worker_lost(self, w, "cannot reach it", true);
        }
    }
}

// ---------------------------------------------------------------------------
// timers

// Sends a heartbeat when nothing went to the peer for a heartbeat interval.
// Returns -1 when the peer cannot be reached.
static int s_heartbeat(loader_coordinator_t *self, const nf_wire_peer_t *peer, int64_t *last_tx,
                       int64_t now)
{
    if (now - *last_tx < s_ms(self->cfg.heartbeat_ms, 1000)) return 0;
    Nf__Heartbeat hb = NF__HEARTBEAT__INIT;
    hb.wall_ms = nf_wall_ms();
    hb.sender = "coordinator";
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    if (s_send(self, peer, &env) != 0) return -1;
    *last_tx = now;
    return 0;
}

static void s_timers(loader_coordinator_t *self, int64_t now)
{
    int worker_timeout = s_ms(self->cfg.worker_timeout_ms, 5000);
    for (uint32_t i = 0; i < self->n_workers; i++) {
        s_worker_t *wk = &self->workers[i];
        if (!wk->live) continue;
        if (now - wk->last_rx > worker_timeout) s_worker_lost(self, (int)i, "no heartbeat", true);
        else if (s_heartbeat(self, &wk->peer, &wk->last_tx, now) != 0)
            s_worker_lost(self, (int)i, "cannot reach it", true);
    }
    for (uint32_t i = 0; i < self->n_consumers; i++) {
        s_consumer_t *c = &self->consumers[i];
        if (!c->live) continue;
        if (now - c->last_rx > s_ms(self->cfg.consumer_timeout_ms, 600000))
            s_consumer_gone(self, (int)i, "no heartbeat");
        else if (s_heartbeat(self, &c->peer, &c->last_tx, now) != 0)
            s_consumer_gone(self, (int)i, "cannot reach it");
    }
    for (uint32_t i = 0; i < self->n_streams; i++) {
        s_stream_t *st = &self->streams[i];
        if (!st->live || st->done) continue;
        for (uint32_t seq = 0; seq < st->next_seq; seq++) {
            if (st->state[seq] != S_ISSUED || now <= st->deadline[seq]) continue;
            int w = st->worker[seq];
            if (!st->sent[seq] && w >= 0 && self->workers[w].live) {
                s_worker_lost(self, w, "task past its deadline", true);
            } else {
                nf_log_warn("stream %u batch %u sent but not acked in time: re-issued", st->id, seq);
                s_queue_seq(self, st, seq);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// main loop

static void s_say_stop(loader_coordinator_t *self)
{
    Nf__Control ctl = NF__CONTROL__INIT;
    ctl.cmd = NF__COMMAND__CMD_STOP;
    ctl.reason = "coordinator stopping";
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_CONTROL;
    env.control = &ctl;
    for (uint32_t i = 0; i < self->n_workers; i++)
        if (self->workers[i].live) (void)s_send(self, &self->workers[i].peer, &env);
    for (uint32_t i = 0; i < self->n_consumers; i++)
        if (self->consumers[i].live) (void)s_send(self, &self->consumers[i].peer, &env);
}

int loader_coordinator_run(loader_coordinator_t *self)
{
    nf_log_info("coordinator listening on %s (job %s)", self->endpoint, self->job);
    int tick = s_ms(self->cfg.heartbeat_ms, 1000) / 4;
    if (tick < 5) tick = 5;
    for (;;) {
        zmq_pollitem_t items[2] = {
            {.socket = self->router, .events = ZMQ_POLLIN},
            {.fd = self->cfg.stop_fd, .events = ZMQ_POLLIN},
        };
        int n_items = self->cfg.stop_fd >= 0 ? 2 : 1;
        int rc = zmq_poll(items, n_items, tick);
        if (rc < 0) {
            if (zmq_errno() == EINTR) continue;
            nf_log_error("zmq_poll: %s", zmq_strerror(zmq_errno()));
            return -1;
        }
        if (n_items == 2 && (items[1].revents & ZMQ_POLLIN)) break;
        int64_t now = nf_now_ms();
        for (int k = 0; k < 1000; k++) {
            nf_wire_msg_t m;
            int got = nf_wire_recv(self->router, &self->expect, &m, &self->wire, ZMQ_DONTWAIT);
            if (got < 0) {
                if (errno == EAGAIN || errno == EINTR) break;
                nf_log_error("receive: %s", zmq_strerror(errno));
                return -1;
            }
            if (got == 1) {
                s_handle(self, &m, now);
                nf_wire_msg_close(&m);
            }
        }
        s_timers(self, now);
        s_dispatch(self, now);
    }
    nf_log_info("coordinator stopping");
    s_say_stop(self);
    return 0;
}
