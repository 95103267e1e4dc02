/*
 * consumer.c: see consumer.h. A pump that services both sockets, per-stream
 * dedup bitmaps, a reorder buffer (ordered streams) or a FIFO, acks and credits.
 */
#include "consumer.h"

#include "check.h"
#include "dataset.h"
#include "log.h"
#include "timeutil.h"
#include "zmqutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    loader_batch_t pub;     // first: a loader_batch_t * is an s_batch_t *
    Nf__Envelope *env;
    zmq_msg_t payload;
    loader_bad_sample_t *bad;  // (pub.n_bad)
} s_batch_t;

typedef enum { S_IDLE = 0, S_WAIT_PLAN, S_RUNNING } s_phase_t;

typedef struct {
    bool live;
    s_phase_t phase;
    loader_stream_request_t req;
    loader_epoch_plan_t plan;
    uint8_t *seen;          // (n_batches) kept already
    s_batch_t **slots;      // ordered: (n_batches) waiting batches by seq
    uint32_t next_seq;      // ordered: next seq to deliver
    s_batch_t **fifo;       // unordered: waiting batches (ring, n_batches)
    uint32_t fifo_head, fifo_len;
    uint32_t delivered;
    loader_epoch_stats_t stats;
} s_stream_t;

struct loader_consumer_t {
    loader_consumer_config_t cfg;
    char job[64];
    char sink_ep[256];
    void *ctx;
    bool own_ctx;
    void *dealer, *pull;
    nf_wire_expect_t ex_sink, ex_ctl;
    nf_wire_stats_t st_sink, st_ctl;
    int64_t last_rx, last_tx;
    bool coordinator_stopped;
    bool have_info;
    char **classes;
    uint32_t n_classes, n_items, n_train, n_valid;
    uint64_t max_batch_bytes;
    s_stream_t *streams;
    uint32_t n_streams;
};

static int s_ms(int v, int dflt) { return v > 0 ? v : dflt; }

static int s_send(loader_consumer_t *self, Nf__Envelope *env)
{
    int rc = nf_wire_send(self->dealer, NULL, self->job, env, NULL, ZMQ_DONTWAIT);
    if (rc == 0) self->last_tx = nf_now_ms();
    else nf_log_warn("consumer: send to coordinator: %s", zmq_strerror(errno));
    return rc;
}

static s_stream_t *s_stream(loader_consumer_t *self, uint32_t id)
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
    free(b->bad);
    free(b);
}

// Drops what a stream holds (batches not handed out) and its epoch state.
static void s_stream_reset(s_stream_t *st)
{
    for (uint32_t i = 0; st->slots && i < st->plan.n_batches; i++) s_batch_free(st->slots[i]);
    for (uint32_t i = 0; i < st->fifo_len; i++)
        s_batch_free(st->fifo[(st->fifo_head + i) % (st->plan.n_batches ? st->plan.n_batches : 1)]);
    free(st->seen);
    free(st->slots);
    free(st->fifo);
    st->seen = NULL;
    st->slots = st->fifo = NULL;
    st->fifo_head = st->fifo_len = st->next_seq = st->delivered = 0;
    memset(&st->stats, 0, sizeof st->stats);
    memset(&st->plan, 0, sizeof st->plan);
    st->phase = S_IDLE;
}

// ---------------------------------------------------------------------------
// lifecycle

loader_consumer_t *loader_consumer_new(const loader_consumer_config_t *cfg)
{
    NF_CHECK(cfg && cfg->coordinator, "consumer needs a coordinator endpoint");
    loader_consumer_t *self = nf_xcalloc(1, sizeof *self);
    self->cfg = *cfg;
    snprintf(self->job, sizeof self->job, "%s", cfg->job ? cfg->job : "");
    self->ctx = cfg->zmq_ctx;
    if (!self->ctx) {
        self->ctx = zmq_ctx_new();
        NF_CHECK(self->ctx != NULL, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
        self->own_ctx = true;
    }
    uint64_t max_bytes = cfg->max_batch_bytes ? cfg->max_batch_bytes : (uint64_t)1 << 30;
    self->max_batch_bytes = max_bytes;
    nf_zmq_socket_config_t pc = {.type = ZMQ_PULL, .rcvhwm = 64, .maxmsgsize = (int64_t)max_bytes};
    nf_zmq_socket_config_t dc = {.type = ZMQ_DEALER, .sndhwm = 1000, .rcvhwm = 1000};
    self->pull = nf_zmq_socket_new(self->ctx, &pc);
    self->dealer = nf_zmq_socket_new(self->ctx, &dc);
    const char *sink = cfg->sink ? cfg->sink : "tcp://127.0.0.1:*";
    NF_CHECK(!cfg->curve || nf_curve_ctx(cfg->curve) == self->ctx, "curve of another context");
    if (!self->pull || !self->dealer || !nf_curve_bind_allowed(cfg->curve, sink) ||
        (cfg->curve && (nf_curve_server(cfg->curve, self->pull, "consumer sink") != 0 ||
                        nf_curve_client(cfg->curve, self->dealer, NULL, "consumer") != 0)) ||
        nf_zmq_bind(self->pull, sink, self->sink_ep, sizeof self->sink_ep) != 0 ||
        nf_zmq_connect(self->dealer, cfg->coordinator) != 0) {
        loader_consumer_destroy(&self);
        return NULL;
    }
    self->ex_sink = (nf_wire_expect_t){
        .job = self->job,
        .bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_RAW_BATCH),
        .max_payload = max_bytes,
    };
    self->ex_ctl = (nf_wire_expect_t){
        .job = self->job,
        .bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_EPOCH_PLAN) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_EPOCH_DONE) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_DATASET_INFO) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_HEARTBEAT) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_CONTROL),
    };
    self->last_rx = self->last_tx = nf_now_ms();
    return self;
}

void loader_consumer_destroy(loader_consumer_t **self_p)
{
    if (!self_p || !*self_p) return;
    loader_consumer_t *self = *self_p;
    if (self->dealer && !self->coordinator_stopped) {
        Nf__Control ctl = NF__CONTROL__INIT;
        ctl.cmd = NF__COMMAND__CMD_STOP;
        ctl.reason = "consumer leaving";
        Nf__Envelope env = NF__ENVELOPE__INIT;
        env.body_case = NF__ENVELOPE__BODY_CONTROL;
        env.control = &ctl;
        (void)nf_wire_send(self->dealer, NULL, self->job, &env, NULL, ZMQ_DONTWAIT);
    }
    for (uint32_t i = 0; i < self->n_streams; i++) s_stream_reset(&self->streams[i]);
    free(self->streams);
    for (uint32_t i = 0; i < self->n_classes; i++) free(self->classes[i]);
    free(self->classes);
    nf_zmq_close(&self->pull);
    nf_zmq_close(&self->dealer);
    if (self->own_ctx && zmq_ctx_term(self->ctx) != 0)
        nf_log_warn("zmq_ctx_term: %s", zmq_strerror(zmq_errno()));
    free(self);
    *self_p = NULL;
}

const char *loader_consumer_sink(const loader_consumer_t *self) { return self->sink_ep; }

void loader_consumer_pollitems(const loader_consumer_t *self, zmq_pollitem_t items[2])
{
    items[0] = (zmq_pollitem_t){.socket = self->dealer, .events = ZMQ_POLLIN};
    items[1] = (zmq_pollitem_t){.socket = self->pull, .events = ZMQ_POLLIN};
}

void loader_consumer_split_sizes(const loader_consumer_t *self, uint32_t *n_train,
                                 uint32_t *n_valid)
{
    *n_train = self->n_train;
    *n_valid = self->n_valid;
}

void loader_consumer_wire_stats(const loader_consumer_t *self, nf_wire_stats_t *sink,
                                nf_wire_stats_t *control)
{
    if (sink) *sink = self->st_sink;
    if (control) *control = self->st_ctl;
}

int loader_consumer_stats(const loader_consumer_t *self, uint32_t stream, loader_epoch_stats_t *out)
{
    for (uint32_t i = 0; i < self->n_streams; i++)
        if (self->streams[i].live && self->streams[i].req.stream == stream) {
            *out = self->streams[i].stats;
            return 0;
        }
    return -1;
}

// ---------------------------------------------------------------------------
// receiving

static void s_ack(loader_consumer_t *self, const Nf__RawBatch *b)
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

static void s_reject(loader_consumer_t *self, const char *why)
{
    nf_wire_stats_drop(&self->st_sink, NF_WIRE_DROP_FIELD);
    nf_log_warn("consumer: dropped a batch: %s", why);
}

static void s_on_batch(loader_consumer_t *self, nf_wire_msg_t *m)
{
    const Nf__RawBatch *b = m->env->raw_batch;
    s_stream_t *st = s_stream(self, b->stream);
    if (!st || st->phase != S_RUNNING || b->epoch != st->req.epoch) {
        nf_log_debug("batch of a stream/epoch not running (a late one): dropped");
        return;
    }
    const char *why = NULL;
    if (b->seq >= st->plan.n_batches) why = "seq beyond the epoch";
    else if (b->h != st->req.presize || b->w != st->req.presize || b->c != 3 ||
             b->n > st->req.batch_size)
        why = "shape is not the requested presize";
    for (uint32_t i = 0; !why && i < b->n; i++)
        if (b->labels[i] < 0 || (uint32_t)b->labels[i] >= self->n_classes ||
            b->indices[i] >= self->n_items)
            why = "label or sample index out of range";
    if (why) {
        s_reject(self, why);
        return;
    }
    s_ack(self, b);  // also for duplicates: the ledger may be waiting for this seq again
    if (st->seen[b->seq]) {
        st->stats.duplicates++;
        return;
    }
    st->seen[b->seq] = 1;
    s_batch_t *sb = nf_xcalloc(1, sizeof *sb);
    sb->env = m->env;
    m->env = NULL;
    NF_ZMQ_CHECK(zmq_msg_init(&sb->payload));
    NF_ZMQ_CHECK(zmq_msg_move(&sb->payload, &m->payload));
    const Nf__RawBatch *rb = sb->env->raw_batch;
    sb->pub = (loader_batch_t){
        .stream = rb->stream, .epoch = rb->epoch, .seq = rb->seq,
        .pass = rb->has_pass ? rb->pass : 0,
        .split = rb->split == NF__SPLIT__SPLIT_TRAIN ? LOADER_TRAIN : LOADER_VALID,
        .n = rb->n, .h = rb->h, .w = rb->w, .c = rb->c,
        .pixels = zmq_msg_data(&sb->payload), .labels = rb->labels, .indices = rb->indices,
        .n_bad = (uint32_t)rb->n_bad, .warnings = rb->has_warnings ? rb->warnings : 0,
        .worker_id = rb->worker_id,
    };
    sb->bad = nf_xcalloc(rb->n_bad + 1, sizeof *sb->bad);
    for (size_t i = 0; i < rb->n_bad; i++) {
        unsigned r = (unsigned)rb->bad[i]->reason;
        sb->bad[i] = (loader_bad_sample_t){.index = rb->bad[i]->index,
                                           .reason = r < LOADER_BAD_N ? (loader_bad_t)r : LOADER_BAD_N};
        if (r < LOADER_BAD_N) st->stats.bad_by_reason[r]++;
    }
    sb->pub.bad = sb->bad;
    st->stats.batches++;
    st->stats.samples += rb->n;
    st->stats.bad_files += (uint32_t)rb->n_bad;
    st->stats.warnings += sb->pub.warnings;
    if (st->req.ordered) {
        st->slots[rb->seq] = sb;
    } else {
        st->fifo[(st->fifo_head + st->fifo_len) % st->plan.n_batches] = sb;
        st->fifo_len++;
    }
}

static void s_on_control(loader_consumer_t *self, const Nf__Envelope *env)
{
    switch (env->body_case) {
    case NF__ENVELOPE__BODY_DATASET_INFO: {
        if (self->have_info) return;
        const Nf__DatasetInfo *d = env->dataset_info;
        if (d->n_classes == 0 || (uint64_t)d->n_train + d->n_valid > UINT32_MAX) {
            nf_wire_stats_drop(&self->st_ctl, NF_WIRE_DROP_FIELD);  // sizes every bound below
            return;
        }
        self->classes = nf_xcalloc(d->n_classes + 1, sizeof *self->classes);
        for (size_t i = 0; i < d->n_classes; i++) self->classes[i] = nf_xstrdup(d->classes[i]);
        self->n_classes = (uint32_t)d->n_classes;
        self->n_items = d->n_train + d->n_valid;
        self->n_train = d->n_train;
        self->n_valid = d->n_valid;
        self->have_info = true;
        if (!self->job[0] && env->job) snprintf(self->job, sizeof self->job, "%s", env->job);
        return;
    }
    case NF__ENVELOPE__BODY_EPOCH_PLAN: {
        const Nf__EpochPlan *p = env->epoch_plan;
        s_stream_t *st = s_stream(self, p->stream);
        // the plan sizes what we allocate for the epoch: batches of the size we
        // asked for, exactly as many as the samples need, no more samples than items
        if (!st || st->phase != S_WAIT_PLAN || p->epoch != st->req.epoch ||
            p->batch_size != st->req.batch_size || p->n_samples > self->n_items ||
            p->n_batches != (uint32_t)(((uint64_t)p->n_samples + p->batch_size - 1) / p->batch_size)) {
            nf_wire_stats_drop(&self->st_ctl, NF_WIRE_DROP_FIELD);
            return;
        }
        st->plan.n_batches = p->n_batches;
        st->plan.n_samples = p->n_samples;
        st->plan.batch_size = p->batch_size;
        size_t nb = p->n_batches ? p->n_batches : 1;
        st->seen = nf_xcalloc(nb, 1);
        st->slots = nf_xcalloc(nb, sizeof *st->slots);
        st->fifo = nf_xcalloc(nb, sizeof *st->fifo);
        st->phase = S_RUNNING;
        return;
    }
    case NF__ENVELOPE__BODY_EPOCH_DONE: {
        const Nf__EpochDone *d = env->epoch_done;
        s_stream_t *st = s_stream(self, d->stream);
        if (!st || st->phase != S_RUNNING || d->epoch != st->req.epoch) return;
        st->stats.done = true;
        st->stats.reissued = d->has_reissued ? d->reissued : 0;
        return;
    }
    case NF__ENVELOPE__BODY_CONTROL:
        if (env->control->cmd == NF__COMMAND__CMD_STOP) {
            nf_log_warn("consumer: the coordinator stopped (%s)",
                        env->control->reason ? env->control->reason : "");
            self->coordinator_stopped = true;
        }
        return;
    default: return;  // heartbeat
    }
}

// Services both sockets for up to timeout_ms (returns after the first round
// that handled something). Returns 0, or -1 with errno EPIPE when the
// coordinator is lost or stopped.
static int s_pump(loader_consumer_t *self, int timeout_ms)
{
    if (self->coordinator_stopped) {
        errno = EPIPE;
        return -1;
    }
    zmq_pollitem_t items[2] = {
        {.socket = self->dealer, .events = ZMQ_POLLIN},
        {.socket = self->pull, .events = ZMQ_POLLIN},
    };
    int hb = s_ms(self->cfg.heartbeat_ms, 1000);
    int rc = zmq_poll(items, 2, timeout_ms < hb ? timeout_ms : hb);
    if (rc < 0 && zmq_errno() != EINTR) {
        nf_log_error("zmq_poll: %s", zmq_strerror(zmq_errno()));
        errno = EPIPE;
        return -1;
    }
    // control first: an EpochPlan always precedes its batches
    for (int k = 0; k < 1000; k++) {
        nf_wire_msg_t m;
        int got = nf_wire_recv(self->dealer, &self->ex_ctl, &m, &self->st_ctl, ZMQ_DONTWAIT);
        if (got < 0) break;
        self->last_rx = nf_now_ms();
        if (got == 1) {
            s_on_control(self, m.env);
            nf_wire_msg_close(&m);
        }
    }
    for (int k = 0; k < 64; k++) {
        nf_wire_msg_t m;
        int got = nf_wire_recv(self->pull, &self->ex_sink, &m, &self->st_sink, ZMQ_DONTWAIT);
        if (got < 0) break;
        if (got == 1) {
            s_on_batch(self, &m);
            nf_wire_msg_close(&m);
        }
    }
    int64_t now = nf_now_ms();
    if (now - self->last_tx >= hb) {
        Nf__Heartbeat h = NF__HEARTBEAT__INIT;
        h.wall_ms = nf_wall_ms();
        h.sender = "consumer";
        Nf__Envelope env = NF__ENVELOPE__INIT;
        env.body_case = NF__ENVELOPE__BODY_HEARTBEAT;
        env.heartbeat = &h;
        (void)s_send(self, &env);
    }
    if (self->coordinator_stopped || now - self->last_rx > s_ms(self->cfg.timeout_ms, 30000)) {
        if (!self->coordinator_stopped) nf_log_error("consumer: coordinator %s silent", self->cfg.coordinator);
        errno = EPIPE;
        return -1;
    }
    return 0;
}

int loader_consumer_poll(loader_consumer_t *self, int timeout_ms)
{
    int64_t end = nf_now_ms() + timeout_ms;
    do {
        if (s_pump(self, (int)(end - nf_now_ms() > 0 ? end - nf_now_ms() : 0)) != 0) return -1;
    } while (nf_now_ms() < end);
    return 0;
}

// ---------------------------------------------------------------------------
// epochs and batches

int loader_consumer_classes(loader_consumer_t *self, uint32_t *n_classes,
                            const char *const **names, int timeout_ms)
{
    if (!self->have_info) {
        Nf__DatasetInfoRequest r = NF__DATASET_INFO_REQUEST__INIT;
        Nf__Envelope env = NF__ENVELOPE__INIT;
        env.body_case = NF__ENVELOPE__BODY_DATASET_INFO_REQUEST;
        env.dataset_info_request = &r;
        if (s_send(self, &env) != 0) {
            errno = EPIPE;
            return -1;
        }
        int64_t end = nf_now_ms() + timeout_ms;
        while (!self->have_info) {
            int64_t left = end - nf_now_ms();
            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            if (s_pump(self, (int)left) != 0) return -1;
        }
    }
    *n_classes = self->n_classes;
    *names = (const char *const *)self->classes;
    return 0;
}

int loader_consumer_start(loader_consumer_t *self, const loader_stream_request_t *req,
                          loader_epoch_plan_t *plan, int timeout_ms)
{
    int64_t end = nf_now_ms() + timeout_ms;
    uint64_t batch_bytes = (uint64_t)req->batch_size * req->presize * req->presize * 3;
    if (req->batch_size == 0 || req->presize == 0 || batch_bytes > self->max_batch_bytes) {
        nf_log_error("consumer: a batch of %u x %u px (%llu bytes) is over this consumer's limit "
                     "of %llu bytes (max_batch_bytes)", req->batch_size, req->presize,
                     (unsigned long long)batch_bytes, (unsigned long long)self->max_batch_bytes);
        errno = EINVAL;
        return -1;
    }
    uint32_t nc;
    const char *const *names;
    if (loader_consumer_classes(self, &nc, &names, timeout_ms) != 0) return -1;
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
    Nf__StreamRequest r = NF__STREAM_REQUEST__INIT;
    r.stream = req->stream;
    r.split = req->split == LOADER_TRAIN ? NF__SPLIT__SPLIT_TRAIN : NF__SPLIT__SPLIT_VALID;
    r.epoch = req->epoch;
    r.batch_size = req->batch_size;
    r.shuffle = req->shuffle;
    r.drop_last = req->drop_last;
    r.presize = req->presize;
    r.crop = req->random_crop ? NF__CROP_MODE__CROP_RANDOM : NF__CROP_MODE__CROP_CENTER;
    r.sink = self->sink_ep;
    r.credits = st->req.credits;
    r.has_pass = true;
    r.pass = req->pass;
    r.has_seed = true;
    r.seed = req->seed;
    r.has_exact = true;
    r.exact = req->exact;
    r.sink_key = self->cfg.curve ? (char *)nf_curve_public_key(self->cfg.curve) : NULL;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_STREAM_REQUEST;
    env.stream_request = &r;
    if (s_send(self, &env) != 0) {
        errno = EPIPE;
        return -1;
    }
    while (st->phase == S_WAIT_PLAN) {
        int64_t left = end - nf_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (s_pump(self, (int)left) != 0) return -1;
        st = s_stream(self, req->stream);
    }
    if (plan) *plan = st->plan;
    return 0;
}

// The next deliverable batch of a stream, or NULL.
static s_batch_t *s_take(s_stream_t *st)
{
    s_batch_t *b = NULL;
    if (st->req.ordered) {
        if (st->next_seq < st->plan.n_batches && st->slots[st->next_seq]) {
            b = st->slots[st->next_seq];
            st->slots[st->next_seq++] = NULL;
        }
    } else if (st->fifo_len) {
        b = st->fifo[st->fifo_head];
        st->fifo[st->fifo_head] = NULL;
        st->fifo_head = (st->fifo_head + 1) % st->plan.n_batches;
        st->fifo_len--;
    }
    if (b) st->delivered++;
    return b;
}

int loader_consumer_next(loader_consumer_t *self, uint32_t stream, loader_batch_t **out,
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
        s_batch_t *b = s_take(st);
        if (b) {
            *out = &b->pub;
            return 1;
        }
        if (st->delivered == st->plan.n_batches && st->stats.done) return 0;
        int64_t left = end - nf_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (s_pump(self, (int)left) != 0) return -1;
    }
}

void loader_consumer_release(loader_consumer_t *self, loader_batch_t **batch_p)
{
    if (!batch_p || !*batch_p) return;
    s_batch_t *b = (s_batch_t *)*batch_p;
    s_stream_t *st = s_stream(self, b->pub.stream);
    if (st && st->phase == S_RUNNING && st->req.epoch == b->pub.epoch &&
        st->delivered < st->plan.n_batches) {
        Nf__Credit c = NF__CREDIT__INIT;
        c.stream = b->pub.stream;
        c.n = 1;
        Nf__Envelope env = NF__ENVELOPE__INIT;
        env.body_case = NF__ENVELOPE__BODY_CREDIT;
        env.credit = &c;
        (void)s_send(self, &env);
    }
    s_batch_free(b);
    *batch_p = NULL;
}
