/*
 * fuzz_consumer.c: libFuzzer target for everything the consumer library
 * (loader/consumer.h) does with what arrives on its two sockets: per input a
 * fresh consumer starts an epoch against a fake coordinator (a thread answers
 * the dataset and epoch requests); then the input's records go to the
 * consumer's DEALER (plans, epoch ends, dataset info, control, garbage) or,
 * with FZ_SECOND, to its PULL sink (raw batches with payloads, garbage). The
 * consumer is then pumped and every batch it delivers is checked against the
 * epoch it asked for and released.
 *
 * Header (8 bytes) before the records: batch size (1 + b % 64), presize
 * (1 + b % 32), classes (1 + b % 16), u16 train items, u16 valid items,
 * flags (bit 0 ordered, bit 1 train split).
 */
#include "check.h"
#include "consumer.h"
#include "dataset.h"
#include "fuzzmsg.h"
#include "log.h"
#include "zmqutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *s_ctx;

typedef struct {
    uint32_t batch, classes, n_train, n_valid;
    fz_record_t rec[FZ_MAX_RECORDS];
    size_t n;
    void *router;   // bound before the consumer connects
    nf_wire_peer_t peer;  // the consumer's routing id
} s_fake_t;

static void *s_fake(void *arg)
{
    s_fake_t *f = arg;
    nf_wire_expect_t ex = {.router = true, .bodies = ~(uint64_t)0};
    nf_wire_stats_t st = {0};
    for (bool planned = false; !planned;) {
        zmq_pollitem_t it = {.socket = f->router, .events = ZMQ_POLLIN};
        NF_CHECK(zmq_poll(&it, 1, 5000) == 1, "the consumer never asked");
        nf_wire_msg_t m;
        if (nf_wire_recv(f->router, &ex, &m, &st, 0) != 1) continue;
        Nf__Envelope out = NF__ENVELOPE__INIT;
        if (m.env->body_case == NF__ENVELOPE__BODY_DATASET_INFO_REQUEST) {
            char names[16][16], *classes[16];
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
            NF_CHECK(nf_wire_send(f->router, &m.peer, "netteflow", &out, NULL, 0) == 0, "send");
        } else if (m.env->body_case == NF__ENVELOPE__BODY_STREAM_REQUEST) {
            const Nf__StreamRequest *r = m.env->stream_request;
            uint32_t items = r->split == NF__SPLIT__SPLIT_TRAIN ? f->n_train : f->n_valid;
            Nf__EpochPlan p = NF__EPOCH_PLAN__INIT;
            p.stream = r->stream;
            p.epoch = r->epoch;
            p.split = r->split;
            p.batch_size = r->batch_size;
            p.n_samples = items;
            p.n_batches = (items + r->batch_size - 1) / r->batch_size;
            out.body_case = NF__ENVELOPE__BODY_EPOCH_PLAN;
            out.epoch_plan = &p;
            NF_CHECK(nf_wire_send(f->router, &m.peer, "netteflow", &out, NULL, 0) == 0, "send");
            f->peer = m.peer;
            planned = true;
        }
        nf_wire_msg_close(&m);
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned serial;
    if (!s_ctx) {
        nf_log_init(&(nf_log_config_t){.stage = "fuzz", .level = NF_LOG_ERROR});
        s_ctx = fz_context();
    }
    if (size < 8) return 0;
    char ep[64], sink[64];
    snprintf(ep, sizeof ep, "inproc://fuzz-consumer-coord-%u", serial);
    snprintf(sink, sizeof sink, "inproc://fuzz-consumer-sink-%u", serial++);
    s_fake_t f = {.batch = 1u + data[0] % 64u,
                  .classes = 1u + data[2] % 16u,
                  .n_train = (uint32_t)data[3] | (uint32_t)data[4] << 8,
                  .n_valid = (uint32_t)data[5] | (uint32_t)data[6] << 8};
    f.n = fz_records(data + 8, size - 8, f.rec);
    loader_stream_request_t req = {.stream = 3, .split = data[7] & 2 ? LOADER_TRAIN : LOADER_VALID,
                                   .epoch = 1, .batch_size = f.batch, .presize = 1u + data[1] % 32u,
                                   .credits = 4, .ordered = data[7] & 1};
    nf_zmq_socket_config_t rc = {.type = ZMQ_ROUTER, .sndhwm = 100000, .router_mandatory = true};
    f.router = nf_zmq_socket_new(s_ctx, &rc);
    NF_CHECK(f.router && nf_zmq_bind(f.router, ep, NULL, 0) == 0, "fake coordinator");
    loader_consumer_config_t cc = {.coordinator = ep, .sink = sink, .zmq_ctx = s_ctx,
                                   .max_batch_bytes = 1 << 20};
    loader_consumer_t *con = loader_consumer_new(&cc);
    NF_CHECK(con, "consumer");
    pthread_t th;
    NF_CHECK(pthread_create(&th, NULL, s_fake, &f) == 0, "thread");
    loader_epoch_plan_t plan;
    NF_CHECK(loader_consumer_start(con, &req, &plan, 5000) == 0, "the epoch starts: %s",
             strerror(errno));
    NF_CHECK(pthread_join(th, NULL) == 0, "join");
    // the records, once the epoch runs (the router is this thread's again)
    nf_zmq_socket_config_t pc = {.type = ZMQ_PUSH, .sndhwm = 1000};
    void *push = nf_zmq_socket_new(s_ctx, &pc);
    NF_CHECK(push && nf_zmq_connect(push, sink) == 0, "push");
    for (size_t i = 0; i < f.n; i++)
        (void)fz_send(f.rec[i].flags & FZ_SECOND ? push : f.router,
                      f.rec[i].flags & FZ_SECOND ? NULL : &f.peer, &f.rec[i]);
    nf_zmq_close(&push);
    for (size_t k = 0; k < f.n / 16 + 4; k++) {
        if (loader_consumer_poll(con, 0) != 0) break;  // the fake said STOP
        loader_batch_t *b;
        while (loader_consumer_next(con, req.stream, &b, 0) == 1) {
            NF_CHECK(b->epoch == req.epoch && b->seq < plan.n_batches && b->n <= req.batch_size &&
                         b->h == req.presize && b->w == req.presize && b->c == 3,
                     "a delivered batch fits the epoch");
            for (uint32_t i = 0; i < b->n; i++)
                NF_CHECK(b->labels[i] >= 0 && (uint32_t)b->labels[i] < f.classes &&
                             b->indices[i] < f.n_train + f.n_valid,
                         "labels and indices in range");
            volatile uint8_t last = b->n ? b->pixels[(size_t)b->n * b->h * b->w * 3 - 1] : 0;
            (void)last;
            loader_consumer_release(con, &b);
        }
    }
    loader_consumer_destroy(&con);
    nf_zmq_close(&f.router);
    return 0;
}
