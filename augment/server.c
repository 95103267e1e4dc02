/*
 * server.c: see server.h. One poll loop over the downstream ROUTER, the
 * loader consumer's two sockets and the stop fd; per stream a loader stream,
 * an augment context (shared by streams with the same configuration), credit
 * and ack bookkeeping.
 */
#include "server.h"

#include "augment.h"
#include "consumer.h"
#include "dataset.h"
#include "log.h"
#include "timeutil.h"
#include "wire.h"
#include "zmqutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    S_MAX_PEERS = 64,
    S_MAX_STREAMS = 256,
    S_CACHE = 6,              // augment contexts kept for reuse
    S_MAX_BS = 4096,
    S_MAX_SIZE = 4096,
    // the loader coordinator's limit: a larger presize was forwarded, refused
    // there without an answer, and this loop waited S_START_TIMEOUT_MS for the
    // plan and then exited as if the coordinator were lost
    S_MAX_PRESIZE = 4096,
    S_MAX_STREAMS_PER_PEER = 32,  // one client cannot take every stream slot
    S_START_TIMEOUT_MS = 60000,
};
// Largest raw (uint8) batch asked of the loader: the consumer's sink limit,
// checked before a context (whose scratch grows with the presize) is made.
#define S_MAX_RAW_BYTES ((uint64_t)1 << 30)

typedef struct {
    bool live;
    nf_wire_peer_t id;
    char name[64];            // from its heartbeats, for logs
    int64_t last_rx, last_tx;
} s_peer_t;

typedef struct {
    augment_t *aug;
    augment_config_t cfg;     // memset-zeroed before filling: compared with memcmp
    int64_t used;             // LRU clock
    int refs;                 // streams using it
} s_ctx_t;

typedef struct {
    bool live;
    int peer;
    uint32_t id;              // the client's stream id
    uint32_t lid;             // loader stream id (0 = none held)
    augment_mode_t mode;
    int split;
    uint32_t epoch, pass, bs, size, presize;
    uint32_t n_batches, n_samples;  // the plan sent (after max_batches)
    uint32_t loader_batches;  // the loader epoch's batches
    uint8_t *skip;            // (loader_batches) seqs the client already holds
    uint8_t *acked;           // (n_batches)
    uint32_t n_acked, sent, credits;
    bool done;                // EpochDone sent
    int ctx;                  // index into the context cache
    float mean[3], std[3];
    bool normalized, mixup;
} s_stream_t;

struct augment_server_t {
    augment_server_config_t cfg;
    char endpoint[256];
    char incarnation[96];
    void *ctx;
    bool own_ctx;
    void *router;
    loader_consumer_t *con;
    nf_wire_expect_t ex;
    nf_wire_stats_t st;
    s_peer_t peers[S_MAX_PEERS];
    s_stream_t streams[S_MAX_STREAMS];
    s_ctx_t cache[S_CACHE];
    int64_t clock;
    uint32_t *free_lids;      // loader stream ids ready for reuse
    uint32_t n_free_lids, next_lid;
    uint32_t rr;              // round-robin start
    // per-batch scratch for the metadata arrays
    int32_t *labels, *partners;
    float *weights;
    uint32_t *indices;
    augment_server_stats_t stats;
};

static int s_ms(int v, int dflt) { return v > 0 ? v : dflt; }

// ---------------------------------------------------------------------------
// lifecycle

augment_server_t *augment_server_new(const augment_server_config_t *cfg)
{
    NF_CHECK(cfg && cfg->coordinator, "augment server needs a coordinator endpoint");
    augment_server_t *self = nf_xcalloc(1, sizeof *self);
    self->cfg = *cfg;
    if (!self->cfg.seed) self->cfg.seed = 42;
    if (!self->cfg.raw_credits) self->cfg.raw_credits = 2;
    if (!self->cfg.max_credits) self->cfg.max_credits = 32;
    if (!self->cfg.max_batch_bytes) self->cfg.max_batch_bytes = (uint64_t)1 << 30;
    char host[64] = "host";
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = 0;
    snprintf(self->incarnation, sizeof self->incarnation, "augment:%s:%d:%lld", host,
             (int)getpid(), (long long)nf_wall_ms());
    self->ctx = cfg->zmq_ctx;
    if (!self->ctx) {
        self->ctx = zmq_ctx_new();
        NF_CHECK(self->ctx != NULL, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
        self->own_ctx = true;
    }
    nf_zmq_socket_config_t rc = {.type = ZMQ_ROUTER, .sndhwm = 2 * (int)self->cfg.max_credits + 16,
                                 .rcvhwm = 1000, .router_mandatory = true};
    self->router = nf_zmq_socket_new(self->ctx, &rc);
    const char *bind = cfg->bind ? cfg->bind : "tcp://127.0.0.1:5556";
    NF_CHECK(!cfg->curve || nf_curve_ctx(cfg->curve) == self->ctx, "curve of another context");
    if (!self->router || !nf_curve_bind_allowed(cfg->curve, bind) ||
        (cfg->curve && nf_curve_server(cfg->curve, self->router, "augment") != 0) ||
        nf_zmq_bind(self->router, bind, self->endpoint, sizeof self->endpoint) != 0) {
        augment_server_destroy(&self);
        return NULL;
    }
    loader_consumer_config_t lc = {.coordinator = cfg->coordinator, .sink = cfg->sink,
                                   .job = cfg->job, .heartbeat_ms = cfg->heartbeat_ms,
                                   .timeout_ms = cfg->coordinator_timeout_ms,
                                   .zmq_ctx = self->ctx, .max_batch_bytes = S_MAX_RAW_BYTES,
                                   .curve = cfg->curve_loader ? cfg->curve : NULL};
    self->con = loader_consumer_new(&lc);
    if (!self->con) {
        augment_server_destroy(&self);
        return NULL;
    }
    self->ex = (nf_wire_expect_t){
        .router = true,
        .job = cfg->job,
        .allow_no_job = true,
        .bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_DATASET_INFO_REQUEST) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_TENSOR_STREAM_REQUEST) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_CREDIT) | NF_WIRE_BODY(NF__ENVELOPE__BODY_ACK) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_HEARTBEAT) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_CONTROL),
    };
    self->labels = nf_xmalloc(S_MAX_BS * sizeof *self->labels);
    self->partners = nf_xmalloc(S_MAX_BS * sizeof *self->partners);
    self->weights = nf_xmalloc(S_MAX_BS * sizeof *self->weights);
    self->indices = nf_xmalloc(S_MAX_BS * sizeof *self->indices);
    self->free_lids = nf_xmalloc(S_MAX_STREAMS * sizeof *self->free_lids);
    // Loader stream ids start at a value of this incarnation: raw batches that a
    // previous augment process asked for, still arriving at a re-bound sink after
    // a restart, then match no stream of ours and are dropped.
    self->next_lid = 1 + (((uint32_t)nf_wall_ms() ^ ((uint32_t)getpid() << 16)) & 0x7FFFF000u);
    return self;
}

static void s_stream_free(augment_server_t *self, s_stream_t *st);
static void s_send_epoch_done(augment_server_t *self, s_stream_t *st);

void augment_server_destroy(augment_server_t **self_p)
{
    if (!self_p || !*self_p) return;
    augment_server_t *self = *self_p;
    for (int i = 0; i < S_MAX_STREAMS; i++)
        if (self->streams[i].live) s_stream_free(self, &self->streams[i]);
    for (int i = 0; i < S_CACHE; i++) augment_destroy(&self->cache[i].aug);
    loader_consumer_destroy(&self->con);
    nf_zmq_close(&self->router);
    if (self->own_ctx && zmq_ctx_term(self->ctx) != 0)
        nf_log_warn("zmq_ctx_term: %s", zmq_strerror(zmq_errno()));
    free(self->labels);
    free(self->partners);
    free(self->weights);
    free(self->indices);
    free(self->free_lids);
    free(self);
    *self_p = NULL;
}

const char *augment_server_endpoint(const augment_server_t *self) { return self->endpoint; }
const char *augment_server_incarnation(const augment_server_t *self) { return self->incarnation; }
void augment_server_stats(const augment_server_t *self, augment_server_stats_t *out)
{
    *out = self->stats;
    out->rejected += nf_wire_stats_dropped(&self->st);
}

// ---------------------------------------------------------------------------
// peers and sending

static int s_peer_find(augment_server_t *self, const nf_wire_peer_t *id, bool add, int64_t now)
{
    int free_slot = -1;
    for (int i = 0; i < S_MAX_PEERS; i++) {
        s_peer_t *p = &self->peers[i];
        if (p->live && p->id.len == id->len && memcmp(p->id.id, id->id, id->len) == 0) return i;
        if (!p->live && free_slot < 0) free_slot = i;
    }
    if (!add || free_slot < 0) return -1;
    s_peer_t *p = &self->peers[free_slot];
    memset(p, 0, sizeof *p);
    p->live = true;
    p->id = *id;
    snprintf(p->name, sizeof p->name, "client%d", free_slot);
    p->last_rx = p->last_tx = now;
    return free_slot;
}

static void s_peer_drop(augment_server_t *self, int peer, const char *why)
{
    s_peer_t *p = &self->peers[peer];
    if (!p->live) return;
    int n = 0;
    for (int i = 0; i < S_MAX_STREAMS; i++)
        if (self->streams[i].live && self->streams[i].peer == peer) {
            s_stream_free(self, &self->streams[i]);
            n++;
        }
    nf_log_info("%s left (%s): %d stream(s) closed", p->name, why, n);
    p->live = false;
    self->stats.peers_lost++;
}

// Sends env (+ payload) to a peer; a peer that cannot be reached is dropped.
static int s_send(augment_server_t *self, int peer, Nf__Envelope *env, zmq_msg_t *payload)
{
    s_peer_t *p = &self->peers[peer];
    if (nf_wire_send(self->router, &p->id, self->cfg.job, env, payload, ZMQ_DONTWAIT) != 0) {
        s_peer_drop(self, peer, errno == EAGAIN ? "its queue is full" : "unreachable");
        return -1;
    }
    p->last_tx = nf_now_ms();
    return 0;
}

// ---------------------------------------------------------------------------
// augment contexts and loader stream ids

// A context for cfg (reused when an identical one exists). -1 when it cannot start.
static int s_ctx_get(augment_server_t *self, const augment_config_t *cfg)
{
    int victim = -1;  // an empty slot, else the least recently used one no stream holds
    for (int i = 0; i < S_CACHE; i++) {
        s_ctx_t *c = &self->cache[i];
        if (c->aug && memcmp(&c->cfg, cfg, sizeof *cfg) == 0) {
            c->used = ++self->clock;
            c->refs++;
            return i;
        }
        if (!c->aug) {
            if (victim < 0 || self->cache[victim].aug) victim = i;
        } else if (c->refs == 0 && (victim < 0 || (self->cache[victim].aug &&
                                                   c->used < self->cache[victim].used))) {
            victim = i;
        }
    }
    if (victim < 0) {
        nf_log_error("augment: more than %d distinct stream configurations at once", S_CACHE);
        return -1;
    }
    s_ctx_t *c = &self->cache[victim];
    augment_destroy(&c->aug);
    c->aug = augment_new(cfg);
    if (!c->aug) return -1;
    c->cfg = *cfg;
    c->used = ++self->clock;
    c->refs = 1;
    return victim;
}

static uint32_t s_lid_get(augment_server_t *self)
{
    if (self->n_free_lids) return self->free_lids[--self->n_free_lids];
    return self->next_lid++;
}

static void s_stream_free(augment_server_t *self, s_stream_t *st)
{
    if (!st->live) return;
    // The loader stream stays open at the coordinator until its id is reused
    // (a new request on the same id replaces it); meanwhile at most
    // raw_credits raw batches of it wait in the consumer.
    if (st->lid) self->free_lids[self->n_free_lids++] = st->lid;
    if (st->ctx >= 0) self->cache[st->ctx].refs--;
    free(st->skip);
    free(st->acked);
    memset(st, 0, sizeof *st);
}

static s_stream_t *s_stream_find(augment_server_t *self, int peer, uint32_t id)
{
    for (int i = 0; i < S_MAX_STREAMS; i++)
        if (self->streams[i].live && self->streams[i].peer == peer && self->streams[i].id == id)
            return &self->streams[i];
    return NULL;
}

// ---------------------------------------------------------------------------
// client messages

static void s_reject(augment_server_t *self, const char *why)
{
    nf_wire_stats_drop(&self->st, NF_WIRE_DROP_FIELD);
    nf_log_warn("augment: dropped a client message: %s", why);
}

static int s_on_dataset_request(augment_server_t *self, int peer)
{
    uint32_t nc, nt, nv;
    const char *const *names;
    if (loader_consumer_classes(self->con, &nc, &names, S_START_TIMEOUT_MS) != 0) {
        nf_log_error("augment: no dataset description from the coordinator %s: %s",
                     self->cfg.coordinator, strerror(errno));
        return -1;
    }
    loader_consumer_split_sizes(self->con, &nt, &nv);
    Nf__DatasetInfo d = NF__DATASET_INFO__INIT;
    d.classes = (char **)names;
    d.n_classes = nc;
    d.n_train = nt;
    d.n_valid = nv;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_DATASET_INFO;
    env.dataset_info = &d;
    (void)s_send(self, peer, &env, NULL);
    return 0;
}

// Checks a request's fields. Returns NULL when fine, else the reason.
static const char *s_check_request(const augment_server_t *self, const Nf__TensorStreamRequest *r)
{
    if (r->split != NF__SPLIT__SPLIT_TRAIN && r->split != NF__SPLIT__SPLIT_VALID)
        return "unknown split";
    if (r->mode != NF__AUG_MODE__AUG_TRAIN && r->mode != NF__AUG_MODE__AUG_VALID &&
        r->mode != NF__AUG_MODE__AUG_TTA)
        return "unknown mode";
    if (r->mode == NF__AUG_MODE__AUG_TTA && r->split != NF__SPLIT__SPLIT_VALID)
        return "tta mode is for the valid split";
    if (r->batch_size < 1 || r->batch_size > S_MAX_BS) return "batch_size out of range";
    if (r->size < 2 || r->size > S_MAX_SIZE || r->presize < 2 || r->presize > S_MAX_PRESIZE)
        return "size or presize out of range";
    if (r->credits < 1 || r->credits > self->cfg.max_credits) return "credits out of range";
    if (r->epoch >= (1u << 24) || (r->has_pass && r->pass >= 256)) return "epoch or pass out of range";
    if (r->has_mixup_alpha && !(r->mixup_alpha >= 0.0f && r->mixup_alpha <= 100.0f))
        return "mixup_alpha out of range";
    if (r->has_min_scale && !(r->min_scale > 0.0f && r->min_scale <= 1.0f))
        return "min_scale out of range";
    if (r->has_dtype && r->dtype != NF__DTYPE__DTYPE_F32 && r->dtype != NF__DTYPE__DTYPE_BF16)
        return "dtype must be f32 or bf16";
    if (r->has_resample && r->resample != NF__RESAMPLE__RESAMPLE_FUSED &&
        r->resample != NF__RESAMPLE__RESAMPLE_REFERENCE)
        return "unknown resample mode";
    if (r->n_norm_mean != r->n_norm_std || (r->n_norm_mean != 0 && r->n_norm_mean != 3))
        return "norm_mean/norm_std must both have 3 values (or none)";
    for (size_t c = 0; c < r->n_norm_mean; c++)
        if (!isfinite(r->norm_mean[c]) || !(r->norm_std[c] > 0.0f) || !isfinite(r->norm_std[c]))
            return "bad Normalize statistics";
    size_t elem = r->has_dtype && r->dtype == NF__DTYPE__DTYPE_BF16 ? 2 : 4;
    uint64_t bytes = (uint64_t)r->batch_size * r->size * r->size * 3 * elem;
    if (bytes > self->cfg.max_batch_bytes) return "a batch would exceed max_batch_bytes";
    if ((uint64_t)r->batch_size * r->presize * r->presize * 3 > S_MAX_RAW_BYTES)
        return "a raw batch at the presize would exceed the loader's 1 GiB";
    return NULL;
}

static const char *s_mode_name(augment_mode_t m)
{
    return m == AUGMENT_MODE_TRAIN ? "train" : m == AUGMENT_MODE_VALID ? "valid" : "tta";
}

// Starts (or restarts) a stream. Returns -1 only when the coordinator is lost.
static int s_on_stream_request(augment_server_t *self, int peer, const Nf__TensorStreamRequest *r)
{
    const char *why = s_check_request(self, r);
    if (why) {
        s_reject(self, why);
        return 0;
    }
    s_stream_t *st = s_stream_find(self, peer, r->stream);
    if (st) s_stream_free(self, st);
    else {
        int held = 0;
        for (int i = 0; i < S_MAX_STREAMS; i++)
            held += self->streams[i].live && self->streams[i].peer == peer;
        if (held >= S_MAX_STREAMS_PER_PEER) {
            s_reject(self, "too many streams for one client");
            return 0;
        }
        for (int i = 0; i < S_MAX_STREAMS && !st; i++)
            if (!self->streams[i].live) st = &self->streams[i];
        if (!st) {
            s_reject(self, "too many streams");
            return 0;
        }
    }
    augment_config_t cfg;
    augment_config_defaults(&cfg);  // memset first: the cache compares with memcmp
    cfg.size = (int)r->size;
    cfg.presize = (int)r->presize;
    cfg.max_batch = (int)r->batch_size;
    cfg.min_scale = r->has_min_scale ? r->min_scale : 0.75f;
    cfg.resample = r->has_resample && r->resample == NF__RESAMPLE__RESAMPLE_REFERENCE
                       ? AUGMENT_RESAMPLE_REFERENCE
                       : AUGMENT_RESAMPLE_FUSED;
    cfg.normalize = r->n_norm_mean == 3;
    for (int c = 0; cfg.normalize && c < 3; c++) {
        cfg.mean[c] = r->norm_mean[c];
        cfg.std[c] = r->norm_std[c];
    }
    augment_mode_t mode = (augment_mode_t)r->mode;
    cfg.mixup_alpha = mode == AUGMENT_MODE_TRAIN && r->has_mixup_alpha ? r->mixup_alpha : 0.0f;
    cfg.dtype = r->has_dtype && r->dtype == NF__DTYPE__DTYPE_BF16 ? AUGMENT_DTYPE_BF16
                                                                  : AUGMENT_DTYPE_F32;
    cfg.seed = r->has_seed && r->seed ? r->seed : self->cfg.seed;
    cfg.backend = self->cfg.backend;
    cfg.threads = self->cfg.threads;
    cfg.device = self->cfg.device;
    char err[200];
    if (augment_config_check(&cfg, err, sizeof err) != 0) {
        s_reject(self, err);
        return 0;
    }
    int ctx = s_ctx_get(self, &cfg);
    if (ctx < 0) {
        s_reject(self, "no augment context for this stream");
        return 0;
    }
    memset(st, 0, sizeof *st);
    st->live = true;
    st->peer = peer;
    st->id = r->stream;
    st->ctx = ctx;
    st->mode = mode;
    st->split = r->split == NF__SPLIT__SPLIT_TRAIN ? LOADER_TRAIN : LOADER_VALID;
    st->epoch = r->epoch;
    st->pass = r->has_pass ? r->pass : 0;
    st->bs = r->batch_size;
    st->size = r->size;
    st->presize = r->presize;
    st->credits = r->credits;
    st->normalized = cfg.normalize;
    st->mixup = cfg.mixup_alpha > 0.0f;
    memcpy(st->mean, cfg.mean, sizeof st->mean);
    memcpy(st->std, cfg.std, sizeof st->std);
    st->lid = s_lid_get(self);

    bool train = st->split == LOADER_TRAIN;
    loader_stream_request_t lr = {
        .stream = st->lid, .split = st->split, .epoch = st->epoch, .pass = st->pass,
        .batch_size = st->bs, .presize = st->presize,
        .shuffle = r->has_shuffle ? r->shuffle : train,
        .drop_last = r->has_drop_last ? r->drop_last : train,
        .random_crop = train || mode == AUGMENT_MODE_TTA,
        .credits = self->cfg.raw_credits, .ordered = true, .seed = cfg.seed};
    loader_epoch_plan_t plan;
    if (loader_consumer_start(self->con, &lr, &plan, S_START_TIMEOUT_MS) != 0) {
        int e = errno;
        nf_log_error("augment: the coordinator did not start a loader stream: %s", strerror(e));
        s_stream_free(self, st);
        return e == EINVAL ? 0 : -1;
    }
    st->loader_batches = plan.n_batches;
    st->n_batches = plan.n_batches;
    st->n_samples = plan.n_samples;
    if (r->has_max_batches && r->max_batches > 0 && r->max_batches < plan.n_batches) {
        st->n_batches = r->max_batches;
        st->n_samples = r->max_batches * st->bs;
    }
    st->skip = nf_xcalloc(st->loader_batches + 1, 1);
    st->acked = nf_xcalloc(st->n_batches + 1, 1);
    uint32_t n_skip = 0;
    for (size_t i = 0; i < r->n_have; i++)
        if (r->have[i] < st->n_batches && !st->skip[r->have[i]]) {
            st->skip[r->have[i]] = 1;
            st->acked[r->have[i]] = 1;
            n_skip++;
        }
    st->n_acked = n_skip;
    self->stats.streams++;

    Nf__EpochPlan p = NF__EPOCH_PLAN__INIT;
    p.stream = st->id;
    p.epoch = st->epoch;
    p.split = r->split;
    p.n_samples = st->n_samples;
    p.n_batches = st->n_batches;
    p.batch_size = st->bs;
    p.has_pass = true;
    p.pass = st->pass;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_EPOCH_PLAN;
    env.epoch_plan = &p;
    double mb = (double)augment_out_bytes(self->cache[ctx].aug, (int)st->bs) / 1e6;
    double raw_mb = (double)st->bs * st->presize * st->presize * 3 / 1e6;
    nf_log_info("%s stream %u epoch %u pass %u (%s, %s): %u batches of %u at %u px from %u px%s%s; "
                "in flight at most %u x %.1f MB + %u x %.1f MB raw",
                self->peers[peer].name, st->id, st->epoch, st->pass, train ? "train" : "valid",
                s_mode_name(mode), st->n_batches, st->bs, st->size, st->presize,
                st->mixup ? ", Mixup" : "", n_skip ? ", resumed" : "", st->credits, mb,
                self->cfg.raw_credits, raw_mb);
    if (s_send(self, peer, &env, NULL) != 0) return 0;
    if (st->n_acked == st->n_batches) s_send_epoch_done(self, st);  // nothing left to send
    return 0;
}

static void s_send_epoch_done(augment_server_t *self, s_stream_t *st)
{
    loader_epoch_stats_t ls = {0};
    (void)loader_consumer_stats(self->con, st->lid, &ls);
    Nf__EpochDone d = NF__EPOCH_DONE__INIT;
    d.stream = st->id;
    d.epoch = st->epoch;
    d.n_batches = st->n_batches;
    d.n_samples = ls.samples;
    d.bad_files = ls.bad_files;
    d.has_warnings = true;
    d.warnings = ls.warnings;
    d.has_reissued = true;
    d.reissued = ls.reissued;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_EPOCH_DONE;
    env.epoch_done = &d;
    st->done = true;
    self->stats.epochs_done++;
    int peer = st->peer;
    // the loader stream is no longer needed (a max_batches stream stops early)
    self->free_lids[self->n_free_lids++] = st->lid;
    st->lid = 0;
    (void)s_send(self, peer, &env, NULL);
}

// A client's name for logs: its heartbeat's sender, printable ASCII only.
static void s_peer_name(char *dst, size_t cap, const char *sender)
{
    size_t i = 0;
    for (; sender[i] && i + 1 < cap; i++)
        dst[i] = sender[i] >= 0x20 && sender[i] < 0x7F ? sender[i] : '?';
    dst[i] = 0;
}

static int s_on_client(augment_server_t *self, nf_wire_msg_t *m, int64_t now)
{
    Nf__Envelope *env = m->env;
    // any message of a new routing id is its hello (a restarted server learns
    // its clients from their credits and heartbeats), but a goodbye
    bool hello = env->body_case != NF__ENVELOPE__BODY_CONTROL;
    int peer = s_peer_find(self, &m->peer, hello, now);
    if (peer < 0 && !hello) return 0;
    if (peer < 0) {
        s_reject(self, "too many clients");
        return 0;
    }
    self->peers[peer].last_rx = now;
    switch (env->body_case) {
    case NF__ENVELOPE__BODY_DATASET_INFO_REQUEST: return s_on_dataset_request(self, peer);
    case NF__ENVELOPE__BODY_TENSOR_STREAM_REQUEST:
        return s_on_stream_request(self, peer, env->tensor_stream_request);
    case NF__ENVELOPE__BODY_CREDIT: {
        s_stream_t *st = s_stream_find(self, peer, env->credit->stream);
        if (!st) return 0;  // a stream that ended or was replaced
        if ((uint64_t)st->credits + env->credit->n > self->cfg.max_credits) {
            s_reject(self, "credit beyond max_credits");
            return 0;
        }
        st->credits += env->credit->n;
        return 0;
    }
    case NF__ENVELOPE__BODY_ACK: {
        const Nf__Ack *a = env->ack;
        s_stream_t *st = s_stream_find(self, peer, a->stream);
        if (!st || st->epoch != a->epoch || st->done) return 0;  // late
        if (a->seq >= st->n_batches) {
            s_reject(self, "ack beyond the epoch");
            return 0;
        }
        if (!st->acked[a->seq]) {
            st->acked[a->seq] = 1;
            st->n_acked++;
            if (st->n_acked == st->n_batches) s_send_epoch_done(self, st);
        }
        return 0;
    }
    case NF__ENVELOPE__BODY_HEARTBEAT:
        if (env->heartbeat->sender && env->heartbeat->sender[0])
            s_peer_name(self->peers[peer].name, sizeof self->peers[peer].name,
                        env->heartbeat->sender);
        return 0;
    case NF__ENVELOPE__BODY_CONTROL:
        if (env->control->cmd == NF__COMMAND__CMD_STOP) s_peer_drop(self, peer, "said goodbye");
        return 0;
    default: return 0;
    }
}

// ---------------------------------------------------------------------------
// producing

// Transforms and sends one raw batch of st. Returns 1 when a batch was sent.
static int s_produce(augment_server_t *self, s_stream_t *st, loader_batch_t *b)
{
    if (b->seq >= st->n_batches || st->skip[b->seq]) {
        if (b->seq < st->n_batches) self->stats.skipped++;
        return 0;
    }
    s_ctx_t *c = &self->cache[st->ctx];
    c->used = ++self->clock;
    zmq_msg_t payload;
    size_t bytes = augment_out_bytes(c->aug, (int)b->n);
    NF_ZMQ_CHECK(zmq_msg_init_size(&payload, bytes));
    augment_out_t out = {.pixels = zmq_msg_data(&payload), .labels = self->labels,
                         .partner_labels = self->partners, .weights = self->weights,
                         .h = (int)st->size, .w = (int)st->size, .c = 3,
                         .dtype = c->cfg.dtype};
    if (b->n > 0) {  // a validation batch whose every file was bad arrives empty
        augment_raw_t raw = {.pixels = b->pixels, .n = (int)b->n, .h = (int)b->h,
                             .w = (int)b->w, .labels = b->labels, .indices = b->indices,
                             .epoch = st->epoch, .seq = b->seq, .pass = st->pass,
                             .mode = st->mode};
        double t0 = nf_now_s();
        // The consumer checked the batch (shape = the presize, n <= bs, labels
        // and indices in range), which is all augment_raw_check asks.
        NF_CHECK(augment_batch(c->aug, &out, &raw) == 0, "augment_batch refused a checked batch");
        self->stats.busy_s += nf_now_s() - t0;
    }
    for (uint32_t i = 0; i < b->n; i++) self->indices[i] = b->indices[i];

    Nf__TensorBatch tb = NF__TENSOR_BATCH__INIT;
    tb.stream = st->id;
    tb.epoch = st->epoch;
    tb.seq = b->seq;
    tb.split = st->split == LOADER_TRAIN ? NF__SPLIT__SPLIT_TRAIN : NF__SPLIT__SPLIT_VALID;
    tb.n = (uint32_t)out.n;
    tb.h = (uint32_t)out.h;
    tb.w = (uint32_t)out.w;
    tb.c = 3;
    tb.dtype = out.dtype == AUGMENT_DTYPE_BF16 ? NF__DTYPE__DTYPE_BF16 : NF__DTYPE__DTYPE_F32;
    tb.layout = NF__LAYOUT__LAYOUT_NHWC;
    tb.n_labels = b->n;
    tb.labels = self->labels;
    if (st->mixup) {
        tb.n_partner_labels = b->n;
        tb.partner_labels = self->partners;
        tb.n_mix_weights = b->n;
        tb.mix_weights = self->weights;
    }
    tb.n_indices = b->n;
    tb.indices = self->indices;
    tb.payload_bytes = bytes;
    tb.has_pass = true;
    tb.pass = st->pass;
    if (st->normalized) {
        tb.n_norm_mean = tb.n_norm_std = 3;
        tb.norm_mean = st->mean;
        tb.norm_std = st->std;
    }
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_TENSOR_BATCH;
    env.tensor_batch = &tb;
    int peer = st->peer;
    st->sent++;
    st->credits--;
    if (s_send(self, peer, &env, &payload) != 0) return 0;  // the peer (and st) is gone
    self->stats.batches++;
    self->stats.images += b->n;
    return 1;
}

// One batch for every stream that has a credit and a raw batch ready.
static int s_produce_round(augment_server_t *self)
{
    int produced = 0;
    for (int k = 0; k < S_MAX_STREAMS; k++) {
        s_stream_t *st = &self->streams[(self->rr + (uint32_t)k) % S_MAX_STREAMS];
        // skipped seqs (the client has them) cost no credit: take those as they come
        for (;;) {
            if (!st->live || st->done || !st->lid || st->credits == 0) break;
            loader_batch_t *b = NULL;
            int got = loader_consumer_next(self->con, st->lid, &b, 0);
            if (got != 1) break;
            bool skipped = b->seq >= st->n_batches || st->skip[b->seq];
            produced += s_produce(self, st, b);
            loader_consumer_release(self->con, &b);
            if (!skipped) break;
        }
    }
    self->rr++;
    return produced;
}

static void s_heartbeats(augment_server_t *self, int64_t now)
{
    int hb = s_ms(self->cfg.heartbeat_ms, 1000);
    int timeout = s_ms(self->cfg.peer_timeout_ms, 600000);
    for (int i = 0; i < S_MAX_PEERS; i++) {
        s_peer_t *p = &self->peers[i];
        if (!p->live) continue;
        if (now - p->last_rx > timeout) {
            s_peer_drop(self, i, "silent");
            continue;
        }
        if (now - p->last_tx < hb) continue;
        Nf__Heartbeat h = NF__HEARTBEAT__INIT;
        h.wall_ms = nf_wall_ms();
        h.sender = self->incarnation;
        Nf__Envelope env = NF__ENVELOPE__INIT;
        env.body_case = NF__ENVELOPE__BODY_HEARTBEAT;
        env.heartbeat = &h;
        (void)s_send(self, i, &env, NULL);
    }
}

int augment_server_run(augment_server_t *self)
{
    int hb = s_ms(self->cfg.heartbeat_ms, 1000);
    nf_log_info("augment %s serving on %s (loader coordinator %s, %s backend)", self->incarnation,
                self->endpoint, self->cfg.coordinator,
                self->cfg.backend == AUGMENT_BACKEND_CUDA ? "CUDA" : "CPU");
    int produced = 0;
    for (;;) {
        zmq_pollitem_t items[4] = {{.socket = self->router, .events = ZMQ_POLLIN}};
        loader_consumer_pollitems(self->con, &items[1]);
        int n_items = 3;
        if (self->cfg.stop_fd >= 0)
            items[n_items++] = (zmq_pollitem_t){.fd = self->cfg.stop_fd, .events = ZMQ_POLLIN};
        int rc = zmq_poll(items, n_items, produced ? 0 : hb);
        if (rc < 0 && zmq_errno() != EINTR) {
            nf_log_error("augment: zmq_poll: %s", zmq_strerror(zmq_errno()));
            return -1;
        }
        if (n_items == 4 && (items[3].revents & ZMQ_POLLIN)) {
            nf_log_info("augment: stopping");
            return 0;
        }
        int64_t now = nf_now_ms();
        for (int k = 0; k < 1000; k++) {
            nf_wire_msg_t m;
            int got = nf_wire_recv(self->router, &self->ex, &m, &self->st, ZMQ_DONTWAIT);
            if (got < 0) break;
            if (got == 1) {
                int r = s_on_client(self, &m, now);
                nf_wire_msg_close(&m);
                if (r != 0) return -1;
            }
        }
        if (loader_consumer_poll(self->con, 0) != 0) {
            nf_log_error("augment: lost the loader coordinator %s", self->cfg.coordinator);
            return -1;
        }
        produced = s_produce_round(self);
        s_heartbeats(self, nf_now_ms());
    }
}
