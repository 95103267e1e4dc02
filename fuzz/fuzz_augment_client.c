/*
 * fuzz_augment_client.c: libFuzzer target for everything the augment client
 * (augment/client.h: the trainer's and the evaluator's side) does with what
 * arrives from an augment server: per input a fresh client gets the dataset
 * description and starts a stream against a fake server (a thread answers
 * the dataset and stream requests consistently), which then sends the input's
 * records to the client (dataset infos, plans, tensor batches with payloads,
 * epoch ends, heartbeats, control, garbage). The client is pumped until the
 * fake has sent everything and nothing more arrives; every batch it delivers
 * is checked against the stream it asked for (seq < batches, n <= batch size,
 * the requested shape and dtype, labels < classes, sample indices < items,
 * Mixup arrays in range, every pixel byte read) and released.
 *
 * Header (6 bytes) before the records: batch size (1 + b % 8), size
 * (2 + b % 7), classes (1 + b % 8), train items (b), valid items (b), flags
 * (bit 0 train split, bit 1 bf16, bit 2 Normalize, bit 3 Mixup).
 */
#include "check.h"
#include "client.h"
#include "fuzzmsg.h"
#include "log.h"
#include "timeutil.h"
#include "zmqutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *s_ctx;

typedef struct {
    uint32_t classes, n_train, n_valid, bs;
    fz_record_t rec[FZ_MAX_RECORDS];
    size_t n;
    void *router;
    volatile bool sent;  // every record went out
} s_fake_t;

static void s_reply(void *router, const nf_wire_peer_t *peer, Nf__Envelope *env)
{
    NF_CHECK(nf_wire_send(router, peer, "", env, NULL, 0) == 0, "fake send");
}

static void *s_fake(void *arg)
{
    s_fake_t *f = arg;
    nf_wire_expect_t ex = {.router = true, .bodies = ~(uint64_t)0};
    nf_wire_stats_t st = {0};
    nf_wire_peer_t peer = {0};
    for (bool planned = false; !planned;) {
        zmq_pollitem_t it = {.socket = f->router, .events = ZMQ_POLLIN};
        NF_CHECK(zmq_poll(&it, 1, 10000) == 1, "the client never asked");
        nf_wire_msg_t m;
        if (nf_wire_recv(f->router, &ex, &m, &st, 0) != 1) continue;
        peer = m.peer;
        Nf__Envelope out = NF__ENVELOPE__INIT;
        if (m.env->body_case == NF__ENVELOPE__BODY_DATASET_INFO_REQUEST) {
            char names[8][8], *classes[8];
            for (uint32_t c = 0; c < f->classes; c++) {
                snprintf(names[c], sizeof names[c], "c%u", c);
                classes[c] = names[c];
            }
            Nf__DatasetInfo di = NF__DATASET_INFO__INIT;
            di.n_classes = f->classes;
            di.classes = classes;
            di.n_train = f->n_train;
            di.n_valid = f->n_valid;
            out.body_case = NF__ENVELOPE__BODY_DATASET_INFO;
            out.dataset_info = &di;
            s_reply(f->router, &peer, &out);
        } else if (m.env->body_case == NF__ENVELOPE__BODY_TENSOR_STREAM_REQUEST) {
            const Nf__TensorStreamRequest *r = m.env->tensor_stream_request;
            Nf__EpochPlan p = NF__EPOCH_PLAN__INIT;
            p.stream = r->stream;
            p.epoch = r->epoch;
            p.split = r->split;
            p.batch_size = r->batch_size;
            p.n_samples = r->split == NF__SPLIT__SPLIT_TRAIN ? f->n_train : f->n_valid;
            p.n_batches = (p.n_samples + p.batch_size - 1) / p.batch_size;
            out.body_case = NF__ENVELOPE__BODY_EPOCH_PLAN;
            out.epoch_plan = &p;
            s_reply(f->router, &peer, &out);
            planned = true;
        }
        nf_wire_msg_close(&m);
    }
    for (size_t i = 0; i < f->n; i++) (void)fz_send(f->router, &peer, &f->rec[i]);
    f->sent = true;
    return NULL;
}

static void s_check_batch(const augment_tensor_batch_t *b, const augment_stream_request_t *q,
                          const augment_stream_plan_t *plan, const s_fake_t *f)
{
    NF_CHECK(b->stream == q->stream && b->epoch == q->epoch && b->seq < plan->n_batches,
             "a batch of another stream or epoch, or seq %u beyond %u", b->seq, plan->n_batches);
    NF_CHECK(b->n >= 0 && (uint32_t)b->n <= q->batch_size && b->h == (int)q->size &&
                 b->w == (int)q->size && b->c == 3 && b->dtype == q->dtype,
             "a batch of another shape");
    uint32_t items = f->n_train + f->n_valid;
    for (int i = 0; i < b->n; i++) {
        NF_CHECK(b->labels[i] >= 0 && (uint32_t)b->labels[i] < f->classes, "label %d", b->labels[i]);
        NF_CHECK(b->indices[i] < items, "index %u", b->indices[i]);
        if (b->partner_labels)
            NF_CHECK(b->partner_labels[i] >= 0 && (uint32_t)b->partner_labels[i] < f->classes,
                     "partner label");
        if (b->weights) NF_CHECK(b->weights[i] >= 0.0f && b->weights[i] <= 1.0f, "weight");
    }
    size_t bytes = (size_t)b->n * b->h * b->w * b->c * (b->dtype == AUGMENT_DTYPE_BF16 ? 2 : 4);
    const volatile uint8_t *px = b->pixels;
    uint8_t sum = 0;
    for (size_t i = 0; i < bytes; i++) sum ^= px[i];  // ASan: every byte is there
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned serial;
    if (!s_ctx) {
        nf_log_init(&(nf_log_config_t){.stage = "fuzz", .level = NF_LOG_ERROR});
        s_ctx = fz_context();
    }
    if (size < 6) return 0;
    s_fake_t f = {.bs = 1 + data[0] % 8, .classes = 1 + data[2] % 8, .n_train = data[3],
                  .n_valid = data[4]};
    uint32_t side = 2 + data[1] % 7;
    uint8_t flags = data[5];
    f.n = fz_records(data + 6, size - 6, f.rec);
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://fuzz-augment-client-%u", serial++);
    nf_zmq_socket_config_t rc = {.type = ZMQ_ROUTER, .sndhwm = 1000, .rcvhwm = 1000};
    f.router = nf_zmq_socket_new(s_ctx, &rc);
    NF_CHECK(f.router && nf_zmq_bind(f.router, ep, NULL, 0) == 0, "fake server");
    pthread_t th;
    NF_CHECK(pthread_create(&th, NULL, s_fake, &f) == 0, "thread");
    augment_client_config_t cc = {.endpoint = ep, .name = "fuzz", .stop_fd = -1,
                                  .zmq_ctx = s_ctx, .heartbeat_ms = 100000,
                                  .restart_ms = 100000};
    augment_client_t *cl = augment_client_new(&cc);
    NF_CHECK(cl, "client");
    augment_stream_request_t q = {
        .stream = 7, .split = flags & 1 ? 0 : 1,
        .mode = flags & 1 ? AUGMENT_MODE_TRAIN : AUGMENT_MODE_VALID, .epoch = 3,
        .batch_size = f.bs, .size = side, .presize = side + 2, .credits = 4,
        .dtype = flags & 2 ? AUGMENT_DTYPE_BF16 : AUGMENT_DTYPE_F32,
        .normalize = (flags & 4) != 0, .mean = {0.5f, 0.5f, 0.5f}, .std = {0.25f, 0.25f, 0.25f},
        .mixup_alpha = flags & 8 ? 0.4f : 0.0f, .seed = 1};
    augment_stream_plan_t plan = {0};
    NF_CHECK(augment_client_start(cl, &q, &plan, 10000) == 0, "the stream did not start: %s",
             strerror(errno));
    // pump until the fake sent everything and two rounds bring nothing
    for (int idle = 0; idle < 2;) {
        augment_tensor_batch_t *b = NULL;
        bool sent = f.sent;
        int r = augment_client_next(cl, q.stream, &b, sent ? 1 : 2);
        if (r == 1) {
            s_check_batch(b, &q, &plan, &f);
            augment_client_release(cl, &b);
            idle = 0;
        } else if (r == 0) {
            break;  // the epoch ended (every batch delivered)
        } else {
            NF_CHECK(errno == ETIMEDOUT, "next: %s", strerror(errno));
            idle += sent;
        }
    }
    NF_CHECK(pthread_join(th, NULL) == 0, "join");
    augment_client_destroy(&cl);
    nf_zmq_close(&f.router);
    return 0;
}
