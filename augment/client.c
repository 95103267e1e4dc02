/*
 * client.c: see client.h. A pump over the DEALER, per-stream seq bitmaps and
 * reorder slots, acks, credits, and the re-request after a server restart.
 */
#include "client.h"

#include "check.h"
#include "log.h"
#include "timeutil.h"
#include "zmqutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    augment_tensor_batch_t pub;  // first: an augment_tensor_batch_t * is an s_batch_t *
    Nf__Envelope *env;
    zmq_msg_t payload;
} s_batch_t;

typedef enum { S_WAIT_PLAN = 1, S_RUNNING } s_phase_t;

typedef struct {
    bool live;
    s_phase_t phase;
    augment_stream_request_t req;
    augment_stream_plan_t plan;
    uint8_t *have;           // (n_batches) received (and kept) already
    s_batch_t **slots;       // (n_batches) waiting for delivery, by seq
    uint32_t next_seq;       // next seq to deliver
    uint32_t held;           // delivered and not yet released
    int64_t asked_ms;        // when the request was last sent
    bool replan;             // a re-request is waiting for its plan
    augment_stream_stats_t stats;
} s_stream_t;

struct augment_client_t {
    augment_client_config_t cfg;
    char job[64];
    char incarnation[128];   // the server's, from its heartbeats
    void *ctx;
    bool own_ctx;
    void *dealer;
    nf_wire_expect_t ex;
    nf_wire_stats_t st;
    int64_t last_rx, last_tx;
    bool stopping;           // stop_fd was readable
    bool have_info;
    char **classes;
    uint32_t n_classes, n_train, n_valid;
    s_stream_t *streams;
    uint32_t n_streams;
};

static int s_ms(int v, int dflt) { return v > 0 ? v : dflt; }

static int s_send(augment_client_t *self, Nf__Envelope *env)
{
    int rc = nf_wire_send(self->dealer, NULL, self->job, env, NULL, ZMQ_DONTWAIT);
    if (rc == 0) self->last_tx = nf_now_ms();
    else if (errno != EAGAIN) nf_log_warn("augment client: send: %s", zmq_strerror(errno));
    return rc;
}

static s_stream_t *s_stream(augment_client_t *self, uint32_t id)
{
    for (uint32_t i = 0; i < self->n_streams; i++)
        if (self->streams[i].live && self->streams[i].req.stream == id) return &self->streams[i];
    return NULL;
}

static void s_batch_free(s_batch_t *b)
{
    if (!b) return;
    nf__envelope__free_unpacked(b->env, NULL);
    zmq_msg_close(&b->payload);
    free(b);
}

static uint32_t s_buffered(const s_stream_t *st)
{
    uint32_t n = 0;
    for (uint32_t i = st->next_seq; st->slots && i < st->plan.n_batches; i++) n += st->slots[i] != NULL;
    return n;
}

static void s_stream_reset(s_stream_t *st)
{
    for (uint32_t i = 0; st->slots && i < st->plan.n_batches; i++) s_batch_free(st->slots[i]);
    free(st->slots);
    free(st->have);
    st->slots = NULL;
    st->have = NULL;
    st->next_seq = st->held = 0;
    st->replan = false;
    memset(&st->plan, 0, sizeof st->plan);
    memset(&st->stats, 0, sizeof st->stats);
}

// ---------------------------------------------------------------------------
// lifecycle

augment_client_t *augment_client_new(const augment_client_config_t *cfg)
{
    NF_CHECK(cfg && cfg->endpoint, "augment client needs an endpoint");
    augment_client_t *self = nf_xcalloc(1, sizeof *self);
    self->cfg = *cfg;
    snprintf(self->job, sizeof self->job, "%s", cfg->job ? cfg->job : "");
    self->ctx = cfg->zmq_ctx;
    if (!self->ctx) {
        self->ctx = zmq_ctx_new();
        NF_CHECK(self->ctx != NULL, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
        self->own_ctx = true;
    }
    uint64_t max_bytes = cfg->max_batch_bytes ? cfg->max_batch_bytes : (uint64_t)1 << 30;
    // every frame: a batch's payload, or an envelope (<= NF_WIRE_MAX_ENVELOPE)
    uint64_t max_frame = max_bytes > NF_WIRE_MAX_ENVELOPE ? max_bytes : NF_WIRE_MAX_ENVELOPE;
    nf_zmq_socket_config_t dc = {.type = ZMQ_DEALER, .sndhwm = 1000, .rcvhwm = 1000,
                                 .maxmsgsize = (int64_t)max_frame};
    self->dealer = nf_zmq_socket_new(self->ctx, &dc);
    NF_CHECK(!cfg->curve || nf_curve_ctx(cfg->curve) == self->ctx, "curve of another context");
    if (!self->dealer ||
        (cfg->curve && nf_curve_client(cfg->curve, self->dealer, NULL,
                                       cfg->name ? cfg->name : "augment client") != 0) ||
        nf_zmq_connect(self->dealer, cfg->endpoint) != 0) {
        augment_client_destroy(&self);
        return NULL;
    }
    self->ex = (nf_wire_expect_t){
        .job = self->job,
        .bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_DATASET_INFO) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_EPOCH_PLAN) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_TENSOR_BATCH) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_EPOCH_DONE) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_HEARTBEAT) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_CONTROL),
        .max_payload = max_bytes,
    };
    self->last_rx = self->last_tx = nf_now_ms();
    return self;
}

void augment_client_destroy(augment_client_t **self_p)
{
    if (!self_p || !*self_p) return;
    augment_client_t *self = *self_p;
    if (self->dealer) {
        Nf__Control ctl = NF__CONTROL__INIT;
        ctl.cmd = NF__COMMAND__CMD_STOP;
        ctl.reason = "client leaving";
        Nf__Envelope env = NF__ENVELOPE__INIT;
        env.body_case = NF__ENVELOPE__BODY_CONTROL;
        env.control = &ctl;
        (void)nf_wire_send(self->dealer, NULL, self->job, &env, NULL, ZMQ_DONTWAIT);
    }
    for (uint32_t i = 0; i < self->n_streams; i++) s_stream_reset(&self->streams[i]);
    free(self->streams);
    for (uint32_t i = 0; i < self->n_classes; i++) free(self->classes[i]);
    free(self->classes);
    nf_zmq_close(&self->dealer);
    if (self->own_ctx && zmq_ctx_term(self->ctx) != 0)
        nf_log_warn("zmq_ctx_term: %s", zmq_strerror(zmq_errno()));
    free(self);
    *self_p = NULL;
}

void augment_client_wire_stats(const augment_client_t *self, nf_wire_stats_t *out)
{
    *out = self->st;
}

int augment_client_stats(const augment_client_t *self, uint32_t stream,
                         augment_stream_stats_t *out)
{
    for (uint32_t i = 0; i < self->n_streams; i++)
        if (self->streams[i].live && self->streams[i].req.stream == stream) {
            *out = self->streams[i].stats;
            return 0;
        }
    return -1;
}

// ---------------------------------------------------------------------------
// requests

// Sends a stream's request; `have` lists the seqs held (a re-request).
static int s_send_request(augment_client_t *self, s_stream_t *st)
{
    const augment_stream_request_t *q = &st->req;
    Nf__TensorStreamRequest r = NF__TENSOR_STREAM_REQUEST__INIT;
    r.stream = q->stream;
    r.split = q->split == 0 ? NF__SPLIT__SPLIT_TRAIN : NF__SPLIT__SPLIT_VALID;
    r.mode = (Nf__AugMode)q->mode;
    r.epoch = q->epoch;
    r.batch_size = q->batch_size;
    r.size = q->size;
    r.presize = q->presize;
    uint32_t held = st->held + s_buffered(st);
    r.credits = q->credits > held ? q->credits - held : 1;
    r.has_mixup_alpha = true;
    r.mixup_alpha = q->mixup_alpha;
    r.has_dtype = true;
    r.dtype = q->dtype == AUGMENT_DTYPE_BF16 ? NF__DTYPE__DTYPE_BF16 : NF__DTYPE__DTYPE_F32;
    r.has_pass = true;
    r.pass = q->pass;
    r.has_min_scale = true;
    r.min_scale = q->min_scale > 0.0f ? q->min_scale : 0.75f;
    float mean[3], std[3];
    if (q->normalize) {
        memcpy(mean, q->mean, sizeof mean);
        memcpy(std, q->std, sizeof std);
        r.n_norm_mean = r.n_norm_std = 3;
        r.norm_mean = mean;
        r.norm_std = std;
    }
    r.has_seed = true;
    r.seed = q->seed;
    r.has_max_batches = true;
    r.max_batches = q->max_batches;
    r.has_resample = true;
    r.resample = q->resample == AUGMENT_RESAMPLE_REFERENCE ? NF__RESAMPLE__RESAMPLE_REFERENCE
                                                          : NF__RESAMPLE__RESAMPLE_FUSED;
    uint32_t *have = NULL;
    if (st->have) {
        have = nf_xmalloc((st->plan.n_batches + 1) * sizeof *have);
        for (uint32_t i = 0; i < st->plan.n_batches; i++)
            if (st->have[i]) have[r.n_have++] = i;
        r.have = have;
    }
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_TENSOR_STREAM_REQUEST;
    env.tensor_stream_request = &r;
    int rc = s_send(self, &env);
    free(have);
    st->asked_ms = nf_now_ms();
    return rc;
}

// The server restarted or went silent: ask again for every unfinished stream.
static void s_rerequest(augment_client_t *self, const char *why)
{
    for (uint32_t i = 0; i < self->n_streams; i++) {
        s_stream_t *st = &self->streams[i];
        if (!st->live || st->stats.done) continue;
        uint32_t have = 0;
        for (uint32_t k = 0; st->have && k < st->plan.n_batches; k++) have += st->have[k];
        nf_log_warn("augment client: %s; asking again for stream %u epoch %u (have %u of %u "
                    "batches)", why, st->req.stream, st->req.epoch, have, st->plan.n_batches);
        st->stats.restarts++;
        if (st->phase == S_RUNNING) st->replan = true;
        (void)s_send_request(self, st);
    }
}

// ---------------------------------------------------------------------------
// receiving

static void s_reject(augment_client_t *self, const char *why)
{
    nf_wire_stats_drop(&self->st, NF_WIRE_DROP_FIELD);
    nf_log_warn("augment client: dropped a message: %s", why);
}

static void s_ack(augment_client_t *self, const Nf__TensorBatch *b)
{
    Nf__Ack a = NF__ACK__INIT;
    a.stream = b->stream;
    a.epoch = b->epoch;
    a.seq = b->seq;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_ACK;
    env.ack = &a;
    (void)s_send(self, &env);
}

// Checks a batch against its stream. NULL when fine, else the reason.
static const char *s_check_batch(const augment_client_t *self, const s_stream_t *st,
                                 const nf_wire_msg_t *m)
{
    const Nf__TensorBatch *b = m->env->tensor_batch;
    // the pixels are the payload frame (nf_wire checked its size against the
    // shape); this client takes no CUDA IPC hand-over
    if (!m->has_payload || (b->has_cuda_ipc_handle && b->cuda_ipc_handle.len > 0))
        return "a batch without its payload frame (CUDA IPC is not taken here)";
    if (b->seq >= st->plan.n_batches) return "seq beyond the epoch";
    if (b->has_pass && b->pass != st->req.pass) return "pass is not the requested one";
    if (b->n > st->req.batch_size || b->h != st->req.size || b->w != st->req.size || b->c != 3 ||
        b->layout != NF__LAYOUT__LAYOUT_NHWC)
        return "shape is not the requested one";
    int want = st->req.dtype == AUGMENT_DTYPE_BF16 ? NF__DTYPE__DTYPE_BF16 : NF__DTYPE__DTYPE_F32;
    if ((int)b->dtype != want) return "dtype is not the requested one";
    if ((b->n_partner_labels == 0) != (b->n_mix_weights == 0)) return "half a Mixup batch";
    if (b->n_indices != b->n) return "sample indices missing";
    if (b->n_norm_mean != b->n_norm_std || (b->n_norm_mean && b->n_norm_mean != 3))
        return "bad Normalize statistics";
    for (size_t c = 0; c < b->n_norm_mean; c++)
        if (!isfinite(b->norm_mean[c]) || !isfinite(b->norm_std[c]) || !(b->norm_std[c] > 0.0f))
            return "Normalize statistics not finite, or std <= 0";
    // a running stream has the dataset description (augment_client_start)
    uint32_t n_items = self->n_train + self->n_valid;
    for (uint32_t i = 0; i < b->n; i++) {
        if (b->labels[i] < 0 || (uint32_t)b->labels[i] >= self->n_classes)
            return "label out of range";
        if (b->n_partner_labels &&
            (b->partner_labels[i] < 0 || (uint32_t)b->partner_labels[i] >= self->n_classes))
            return "partner label out of range";
        if (b->n_mix_weights && !(b->mix_weights[i] >= 0.0f && b->mix_weights[i] <= 1.0f))
            return "Mixup weight out of range";
        if (b->indices[i] >= n_items) return "sample index out of range";
    }
    return NULL;
}

static void s_on_batch(augment_client_t *self, nf_wire_msg_t *m)
{
    const Nf__TensorBatch *b = m->env->tensor_batch;
    s_stream_t *st = s_stream(self, b->stream);
    if (!st || st->phase != S_RUNNING || b->epoch != st->req.epoch) {
        nf_log_debug("augment client: a batch of a stream/epoch not running (late): dropped");
        return;
    }
    const char *why = s_check_batch(self, st, m);
    if (why) {
        s_reject(self, why);
        return;
    }
    s_ack(self, b);
    if (st->have[b->seq]) {
        st->stats.duplicates++;
        return;
    }
    st->have[b->seq] = 1;
    s_batch_t *sb = nf_xcalloc(1, sizeof *sb);
    sb->env = m->env;
    m->env = NULL;
    NF_ZMQ_CHECK(zmq_msg_init(&sb->payload));
    NF_ZMQ_CHECK(zmq_msg_move(&sb->payload, &m->payload));
    const Nf__TensorBatch *tb = sb->env->tensor_batch;
    sb->pub = (augment_tensor_batch_t){
        .stream = tb->stream, .epoch = tb->epoch, .seq = tb->seq,
        .pass = tb->has_pass ? tb->pass : 0,
        .n = (int)tb->n, .h = (int)tb->h, .w = (int)tb->w, .c = (int)tb->c,
        .dtype = tb->dtype == NF__DTYPE__DTYPE_BF16 ? AUGMENT_DTYPE_BF16 : AUGMENT_DTYPE_F32,
        .pixels = zmq_msg_data(&sb->payload), .labels = tb->labels,
        .partner_labels = tb->n_partner_labels ? tb->partner_labels : NULL,
        .weights = tb->n_mix_weights ? tb->mix_weights : NULL,
        .indices = tb->indices, .normalized = tb->n_norm_mean == 3,
    };
    for (int c = 0; c < 3 && sb->pub.normalized; c++) {
        sb->pub.mean[c] = tb->norm_mean[c];
        sb->pub.std[c] = tb->norm_std[c];
    }
    st->slots[tb->seq] = sb;
}

static void s_on_message(augment_client_t *self, nf_wire_msg_t *m)
{
    Nf__Envelope *env = m->env;
    switch (env->body_case) {
    case NF__ENVELOPE__BODY_TENSOR_BATCH: s_on_batch(self, m); return;
    case NF__ENVELOPE__BODY_DATASET_INFO: {
        if (self->have_info) return;
        const Nf__DatasetInfo *d = env->dataset_info;
        if (d->n_classes == 0 || d->n_classes > 100000) {
            s_reject(self, "DatasetInfo without classes");
            return;
        }
        if ((uint64_t)d->n_train + d->n_valid > UINT32_MAX) {  // sizes every index bound
            s_reject(self, "DatasetInfo whose item count overflows 32 bits");
            return;
        }
        self->classes = nf_xcalloc(d->n_classes + 1, sizeof *self->classes);
        for (size_t i = 0; i < d->n_classes; i++) self->classes[i] = nf_xstrdup(d->classes[i]);
        self->n_classes = (uint32_t)d->n_classes;
        self->n_train = d->n_train;
        self->n_valid = d->n_valid;
        self->have_info = true;
        if (!self->job[0] && env->job) snprintf(self->job, sizeof self->job, "%s", env->job);
        return;
    }
    case NF__ENVELOPE__BODY_EPOCH_PLAN: {
        const Nf__EpochPlan *p = env->epoch_plan;
        s_stream_t *st = s_stream(self, p->stream);
        if (!st || p->epoch != st->req.epoch || p->batch_size != st->req.batch_size) {
            s_reject(self, "EpochPlan of no waiting stream");
            return;
        }
        // the batch count sizes what is allocated for the epoch: it must follow
        // from the samples, which the split must hold
        bool train = st->req.split == 0;
        uint32_t split_items = train ? self->n_train : self->n_valid;
        uint64_t want = ((uint64_t)p->n_samples + p->batch_size - 1) / p->batch_size;
        if (p->split != (train ? NF__SPLIT__SPLIT_TRAIN : NF__SPLIT__SPLIT_VALID) ||
            p->n_samples > split_items || p->n_batches != want || p->n_batches > (1u << 24)) {
            s_reject(self, "EpochPlan out of bounds (split, samples, batches != ceil(samples/bs))");
            return;
        }
        if (st->phase == S_RUNNING) {  // the answer to a re-request
            if (!st->replan) return;   // a duplicate answer
            if (p->n_batches != st->plan.n_batches) {
                s_reject(self, "a re-requested stream changed its plan");
                return;
            }
            st->replan = false;
            return;
        }
        st->plan = (augment_stream_plan_t){.n_batches = p->n_batches, .n_samples = p->n_samples,
                                           .batch_size = p->batch_size};
        size_t nb = p->n_batches ? p->n_batches : 1;
        st->have = nf_xcalloc(nb, 1);
        st->slots = nf_xcalloc(nb, sizeof *st->slots);
        st->phase = S_RUNNING;
        return;
    }
    case NF__ENVELOPE__BODY_EPOCH_DONE: {
        const Nf__EpochDone *d = env->epoch_done;
        s_stream_t *st = s_stream(self, d->stream);
        if (!st || st->phase != S_RUNNING || d->epoch != st->req.epoch) return;
        // the server ends an epoch when every batch is acked, and this client
        // acks what it received: an end before that would stall the stream
        uint32_t have = 0;
        for (uint32_t k = 0; k < st->plan.n_batches; k++) have += st->have[k];
        if (d->n_batches != st->plan.n_batches || have != st->plan.n_batches) {
            s_reject(self, "EpochDone before every batch of the epoch arrived");
            return;
        }
        st->stats.done = true;
        st->stats.bad_files = d->bad_files;
        return;
    }
    case NF__ENVELOPE__BODY_HEARTBEAT: {
        const char *who = env->heartbeat->sender ? env->heartbeat->sender : "";
        if (!who[0] || strcmp(who, self->incarnation) == 0) return;
        bool restarted = self->incarnation[0] != 0;
        snprintf(self->incarnation, sizeof self->incarnation, "%s", who);
        if (restarted) s_rerequest(self, "the augment stage restarted");
        return;
    }
    case NF__ENVELOPE__BODY_CONTROL:
        if (env->control->cmd == NF__COMMAND__CMD_STOP)
            nf_log_warn("augment client: the server says it stops (%s)",
                        env->control->reason ? env->control->reason : "");
        return;
    default: return;
    }
}

// Services the socket for up to timeout_ms; returns after the first round
// that handled something.
static void s_pump(augment_client_t *self, int timeout_ms)
{
    zmq_pollitem_t items[2] = {{.socket = self->dealer, .events = ZMQ_POLLIN},
                               {.fd = self->cfg.stop_fd, .events = ZMQ_POLLIN}};
    int hb = s_ms(self->cfg.heartbeat_ms, 1000);
    int rc = zmq_poll(items, self->cfg.stop_fd >= 0 ? 2 : 1, timeout_ms < hb ? timeout_ms : hb);
    if (rc < 0 && zmq_errno() != EINTR) nf_log_error("zmq_poll: %s", zmq_strerror(zmq_errno()));
    if (self->cfg.stop_fd >= 0 && (items[1].revents & ZMQ_POLLIN)) self->stopping = true;
    for (int k = 0; k < 256; k++) {
        nf_wire_msg_t m;
        int got = nf_wire_recv(self->dealer, &self->ex, &m, &self->st, ZMQ_DONTWAIT);
        if (got < 0) break;
        self->last_rx = nf_now_ms();
        if (got == 1) {
            s_on_message(self, &m);
            nf_wire_msg_close(&m);
        }
    }
    int64_t now = nf_now_ms();
    if (now - self->last_tx >= hb) {
        Nf__Heartbeat h = NF__HEARTBEAT__INIT;
        h.wall_ms = nf_wall_ms();
        h.sender = (char *)(self->cfg.name ? self->cfg.name : "client");
        Nf__Envelope env = NF__ENVELOPE__INIT;
        env.body_case = NF__ENVELOPE__BODY_HEARTBEAT;
        env.heartbeat = &h;
        (void)s_send(self, &env);
    }
    int restart = s_ms(self->cfg.restart_ms, 15000);
    if (now - self->last_rx > restart) {
        bool pending = false;
        for (uint32_t i = 0; i < self->n_streams; i++)
            pending |= self->streams[i].live && !self->streams[i].stats.done &&
                       now - self->streams[i].asked_ms > restart;
        if (pending) s_rerequest(self, "the augment stage is silent");
    }
}

void augment_client_poll(augment_client_t *self, int timeout_ms)
{
    int64_t end = nf_now_ms() + timeout_ms;
    do {
        int64_t left = end - nf_now_ms();
        s_pump(self, left > 0 ? (int)left : 0);
    } while (nf_now_ms() < end);
}

// ---------------------------------------------------------------------------
// dataset, streams, batches

int augment_client_dataset(augment_client_t *self, uint32_t *n_classes,
                           const char *const **names, uint32_t *n_train, uint32_t *n_valid,
                           int timeout_ms)
{
    int64_t end = nf_now_ms() + timeout_ms, asked = 0;
    while (!self->have_info) {
        int64_t now = nf_now_ms();
        if (self->stopping) {
            errno = EINTR;
            return -1;
        }
        if (now >= end) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (now - asked >= 2000) {  // again now and then: the server may not be up yet
            Nf__DatasetInfoRequest r = NF__DATASET_INFO_REQUEST__INIT;
            Nf__Envelope env = NF__ENVELOPE__INIT;
            env.body_case = NF__ENVELOPE__BODY_DATASET_INFO_REQUEST;
            env.dataset_info_request = &r;
            (void)s_send(self, &env);
            asked = now;
        }
        s_pump(self, (int)(end - now < 200 ? end - now : 200));
    }
    *n_classes = self->n_classes;
    *names = (const char *const *)self->classes;
    if (n_train) *n_train = self->n_train;
    if (n_valid) *n_valid = self->n_valid;
    return 0;
}

int augment_client_start(augment_client_t *self, const augment_stream_request_t *req,
                         augment_stream_plan_t *plan, int timeout_ms)
{
    if (req->batch_size == 0 || req->size < 2 || req->presize < 2 || req->batch_size > 4096) {
        nf_log_error("augment client: bad stream request (bs %u, size %u, presize %u)",
                     req->batch_size, req->size, req->presize);
        errno = EINVAL;
        return -1;
    }
    // the labels and sample indices of every batch are checked against the
    // dataset description: have it first
    uint32_t nc;
    const char *const *names;
    int64_t end = nf_now_ms() + timeout_ms;
    if (augment_client_dataset(self, &nc, &names, NULL, NULL, timeout_ms) != 0) return -1;
    s_stream_t *st = s_stream(self, req->stream);
    if (!st) {
        self->streams = nf_xrealloc(self->streams, (self->n_streams + 1) * sizeof *self->streams);
        st = &self->streams[self->n_streams++];
        memset(st, 0, sizeof *st);
        st->live = true;
    }
    s_stream_reset(st);
    st->req = *req;
    if (!st->req.credits) st->req.credits = 4;
    st->phase = S_WAIT_PLAN;
    if (s_send_request(self, st) != 0) {
        errno = EPIPE;
        return -1;
    }
    while (st->phase == S_WAIT_PLAN) {
        int64_t left = end - nf_now_ms();
        if (self->stopping) {
            errno = EINTR;
            return -1;
        }
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        s_pump(self, (int)left);
        st = s_stream(self, req->stream);
    }
    if (plan) *plan = st->plan;
    return 0;
}

int augment_client_next(augment_client_t *self, uint32_t stream, augment_tensor_batch_t **out,
                        int timeout_ms)
{
    *out = NULL;
    int64_t end = nf_now_ms() + timeout_ms;
    for (;;) {
        s_stream_t *st = s_stream(self, stream);
        if (!st || st->phase != S_RUNNING) {
            errno = ENOENT;
            return -1;
        }
        if (st->next_seq < st->plan.n_batches && st->slots[st->next_seq]) {
            s_batch_t *b = st->slots[st->next_seq];
            st->slots[st->next_seq++] = NULL;
            st->held++;
            st->stats.batches++;
            st->stats.samples += (uint32_t)b->pub.n;
            *out = &b->pub;
            return 1;
        }
        if (st->next_seq == st->plan.n_batches && st->stats.done) return 0;
        int64_t left = end - nf_now_ms();
        if (self->stopping) {
            errno = EINTR;
            return -1;
        }
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        s_pump(self, (int)left);
    }
}

void augment_client_release(augment_client_t *self, augment_tensor_batch_t **batch_p)
{
    if (!batch_p || !*batch_p) return;
    s_batch_t *b = (s_batch_t *)*batch_p;
    s_stream_t *st = s_stream(self, b->pub.stream);
    if (st && st->phase == S_RUNNING && st->req.epoch == b->pub.epoch) {
        if (st->held) st->held--;
        if (!st->stats.done && st->next_seq < st->plan.n_batches) {
            Nf__Credit c = NF__CREDIT__INIT;
            c.stream = b->pub.stream;
            c.n = 1;
            Nf__Envelope env = NF__ENVELOPE__INIT;
            env.body_case = NF__ENVELOPE__BODY_CREDIT;
            env.credit = &c;
            (void)s_send(self, &env);
        }
    }
    s_batch_free(b);
    *batch_p = NULL;
}

void augment_tensor_to_f32(const augment_tensor_batch_t *b, float *dst)
{
    size_t count = (size_t)b->n * b->h * b->w * b->c;
    if (b->dtype == AUGMENT_DTYPE_F32) {
        memcpy(dst, b->pixels, count * sizeof(float));
        return;
    }
    const uint16_t *src = b->pixels;
    for (size_t i = 0; i < count; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(&dst[i], &u, sizeof u);
    }
}
