/*
 * test_augment_stream.c: the augment process (augment/server.h) and its client
 * (augment/client.h) over real sockets, fed by a real loader coordinator and a
 * worker process on a small generated dataset:
 *   - the dataset description comes through augment;
 *   - a training stream (Mixup): every batch once, in seq order, every sample
 *     of the epoch exactly once, Mixup arrays and Normalize stats carried;
 *   - credits bound what is in flight: holding `credits` batches stops the flow;
 *   - the tensors are exactly augment_batch() of the loader's raw batches (the
 *     same validation epoch fetched with a plain loader consumer);
 *   - max_batches ends a stream early;
 *   - an augment restart mid-epoch loses nothing and duplicates nothing: the
 *     client re-requests with the seqs it has and gets exactly the rest, bytes
 *     equal to an uninterrupted run of the same epoch;
 *   - malformed and out-of-range client messages are counted and dropped.
 */
#include "augment.h"
#include "client.h"
#include "consumer.h"
#include "harness.h"
#include "log.h"
#include "server.h"
#include "testlib.h"
#include "timeutil.h"
#include "wire.h"
#include "zmqutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    augment_server_t *srv;
    pthread_t thread;
    int stop[2];
    int rc;
    char endpoint[256];
} s_srv_t;

static void *s_srv_main(void *arg)
{
    s_srv_t *s = arg;
    s->rc = augment_server_run(s->srv);
    return NULL;
}

static void s_srv_start(s_srv_t *s, const char *coordinator, const char *endpoint)
{
    memset(s, 0, sizeof *s);
    NF_CHECK(pipe(s->stop) == 0, "pipe");
    char sink[512];
    snprintf(sink, sizeof sink, "ipc://%s/sink.ipc", t_tmpdir());
    augment_server_config_t c = {.coordinator = coordinator, .bind = endpoint, .sink = sink,
                                 .threads = 1, .heartbeat_ms = 100, .stop_fd = s->stop[0]};
    s->srv = augment_server_new(&c);
    NF_CHECK(s->srv != NULL, "augment server on %s", endpoint);
    snprintf(s->endpoint, sizeof s->endpoint, "%s", augment_server_endpoint(s->srv));
    NF_CHECK(pthread_create(&s->thread, NULL, s_srv_main, s) == 0, "pthread_create");
}

static void s_srv_stop(s_srv_t *s, augment_server_stats_t *st)
{
    NF_CHECK(write(s->stop[1], "x", 1) == 1, "write");
    NF_CHECK(pthread_join(s->thread, NULL) == 0, "join");
    T_CHECK(s->rc == 0, "server run returned %d", s->rc);
    if (st) augment_server_stats(s->srv, st);
    augment_server_destroy(&s->srv);
    close(s->stop[0]);
    close(s->stop[1]);
}

static augment_client_t *s_client(const char *endpoint)
{
    augment_client_config_t c = {.endpoint = endpoint, .name = "test", .heartbeat_ms = 100,
                                 .restart_ms = 3000, .stop_fd = -1};
    augment_client_t *cl = augment_client_new(&c);
    NF_CHECK(cl != NULL, "client");
    return cl;
}

static augment_stream_request_t s_req(uint32_t stream, int split, augment_mode_t mode,
                                      uint32_t epoch)
{
    augment_stream_request_t q = {.stream = stream, .split = split, .mode = mode, .epoch = epoch,
                                  .batch_size = 8, .size = 32, .presize = 40, .credits = 2,
                                  .normalize = true, .mean = {0.485f, 0.456f, 0.406f},
                                  .std = {0.229f, 0.224f, 0.225f}, .seed = 7};
    return q;
}

static uint64_t s_digest(const augment_tensor_batch_t *b)
{
    uint64_t h = 0xCBF29CE484222325ull;
    h = h_fnv1a(h, b->pixels, (size_t)b->n * b->h * b->w * b->c * sizeof(float));
    h = h_fnv1a(h, b->labels, (size_t)b->n * sizeof(int32_t));
    h = h_fnv1a(h, b->indices, (size_t)b->n * sizeof(uint32_t));
    if (b->weights) h = h_fnv1a(h, b->weights, (size_t)b->n * sizeof(float));
    return h;
}

// Receives a whole stream; digests per seq into dig (n_batches). Returns the batches.
static uint32_t s_drain(augment_client_t *cl, uint32_t stream, uint64_t *dig, uint32_t n_batches,
                        uint16_t *seen, uint32_t n_items)
{
    uint32_t got = 0;
    for (;;) {
        augment_tensor_batch_t *b = NULL;
        int r = augment_client_next(cl, stream, &b, 20000);
        if (r == 0) break;
        if (r < 0) {
            T_CHECK(0, "stream %u: next failed: %s", stream, strerror(errno));
            break;
        }
        T_CHECK(b->seq < n_batches, "seq %u < %u", b->seq, n_batches);
        if (b->seq < n_batches) dig[b->seq] = s_digest(b);
        for (int i = 0; i < b->n; i++)
            if (b->indices[i] < n_items) seen[b->indices[i]]++;
        got++;
        augment_client_release(cl, &b);
    }
    return got;
}

int main(void)
{
    nf_log_config_t lc = {.stage = "test", .level = NF_LOG_WARN};
    nf_log_init(&lc);
    const char *root = h_make_dataset("ds", 3, 40, 10, false, false);
    h_coord_t co;
    h_coord_start(&co, "coord", root, NULL);
    pid_t w = h_worker(co.endpoint);
    char ep[512];
    snprintf(ep, sizeof ep, "ipc://%s/aug.ipc", t_tmpdir());
    s_srv_t srv;
    s_srv_start(&srv, co.endpoint, ep);
    augment_client_t *cl = s_client(ep);

    // --- the dataset through augment
    uint32_t nc = 0, nt = 0, nv = 0;
    const char *const *names;
    T_CHECK(augment_client_dataset(cl, &nc, &names, &nt, &nv, 20000) == 0, "dataset info");
    T_CHECK(nc == 3 && nt == 120 && nv == 30, "3 classes, 120 train, 30 valid: got %u %u %u", nc,
            nt, nv);
    uint32_t n_items = nt + nv;
    uint16_t *seen = nf_xcalloc(n_items, sizeof *seen);

    // --- a training stream with Mixup: all once, in order, backpressure by credits
    augment_stream_request_t q = s_req(1, 0, AUGMENT_MODE_TRAIN, 0);
    q.mixup_alpha = 0.4f;
    augment_stream_plan_t plan;
    T_CHECK(augment_client_start(cl, &q, &plan, 20000) == 0, "train stream starts");
    T_CHECK(plan.n_batches == 15 && plan.n_samples == 120, "plan %u batches %u samples",
            plan.n_batches, plan.n_samples);
    augment_tensor_batch_t *held[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        T_CHECK(augment_client_next(cl, 1, &held[k], 20000) == 1, "batch %d", k);
    }
    augment_tensor_batch_t *extra = NULL;
    T_CHECK(augment_client_next(cl, 1, &extra, 600) == -1 && errno == ETIMEDOUT,
            "no third batch while both credits are held");
    T_CHECK(held[0] && held[0]->seq == 0 && held[1] && held[1]->seq == 1, "seq order");
    if (held[0]) {
        augment_tensor_batch_t *b = held[0];
        T_CHECK(b->n == 8 && b->h == 32 && b->w == 32 && b->c == 3, "shape");
        T_CHECK(b->partner_labels && b->weights, "Mixup arrays present");
        T_CHECK(b->normalized && b->mean[0] == 0.485f && b->std[2] == 0.225f, "Normalize stats");
        bool mixed = false;
        for (int i = 0; i < b->n && b->weights; i++) {
            T_CHECK(b->weights[i] >= 0.5f && b->weights[i] <= 1.0f, "lambda %g", b->weights[i]);
            mixed |= b->weights[i] < 1.0f;
        }
        T_CHECK(mixed, "some row is mixed");
        for (int i = 0; i < b->n; i++) seen[b->indices[i]]++;
    }
    if (held[1])
        for (int i = 0; i < held[1]->n; i++) seen[held[1]->indices[i]]++;
    augment_client_release(cl, &held[0]);
    augment_client_release(cl, &held[1]);
    uint64_t *dig = nf_xcalloc(64, sizeof *dig);
    uint32_t got = 2 + s_drain(cl, 1, dig, plan.n_batches, seen, n_items);
    augment_stream_stats_t ss;
    T_CHECK(augment_client_stats(cl, 1, &ss) == 0 && ss.done && ss.duplicates == 0,
            "EpochDone, no duplicates");
    T_CHECK(got == 15, "15 batches, got %u", got);
    uint32_t once = 0;
    for (uint32_t i = 0; i < n_items; i++) once += seen[i] == 1;
    T_CHECK(once == 120, "every training sample exactly once (%u)", once);

    // --- the tensors are augment_batch() of the loader's raw batches (valid epoch)
    augment_stream_request_t v = s_req(2, 1, AUGMENT_MODE_VALID, 0);
    T_CHECK(augment_client_start(cl, &v, &plan, 20000) == 0 && plan.n_batches == 4,
            "valid stream: 4 batches");
    loader_consumer_config_t cc = {.coordinator = co.endpoint};
    loader_consumer_t *con = loader_consumer_new(&cc);
    NF_CHECK(con != NULL, "consumer");
    loader_stream_request_t lr = {.stream = 5, .split = LOADER_VALID, .epoch = 0,
                                  .batch_size = 8, .presize = 40, .credits = 4, .ordered = true,
                                  .seed = 7};
    loader_epoch_plan_t lp;
    T_CHECK(loader_consumer_start(con, &lr, &lp, 20000) == 0, "loader valid epoch");
    augment_config_t ac;
    augment_config_defaults(&ac);
    ac.size = 32;
    ac.presize = 40;
    ac.max_batch = 8;
    ac.seed = 7;
    ac.threads = 1;
    augment_t *aug = augment_new(&ac);
    float *ref = nf_xmalloc(augment_out_bytes(aug, 8));
    uint32_t compared = 0;
    for (;;) {
        loader_batch_t *rb = NULL;
        if (loader_consumer_next(con, 5, &rb, 20000) != 1) break;
        augment_tensor_batch_t *tb = NULL;
        T_CHECK(augment_client_next(cl, 2, &tb, 20000) == 1, "tensor batch %u", rb->seq);
        augment_raw_t raw = {.pixels = rb->pixels, .n = (int)rb->n, .h = 40, .w = 40,
                             .labels = rb->labels, .indices = rb->indices, .seq = rb->seq,
                             .mode = AUGMENT_MODE_VALID};
        augment_out_t out = {.pixels = ref};
        T_CHECK(augment_batch(aug, &out, &raw) == 0, "local augment");
        if (tb) {
            T_CHECK(tb->seq == rb->seq && tb->n == (int)rb->n, "same batch");
            T_CHECK(memcmp(tb->pixels, ref, augment_out_bytes(aug, (int)rb->n)) == 0,
                    "seq %u: served tensor == augment_batch of the raw batch", rb->seq);
            T_CHECK(!tb->partner_labels, "no Mixup on valid");
            compared++;
        }
        augment_client_release(cl, &tb);
        loader_consumer_release(con, &rb);
    }
    T_CHECK(compared == 4, "compared 4 batches (%u)", compared);
    free(ref);
    augment_destroy(&aug);
    loader_consumer_destroy(&con);

    // --- max_batches: the first 3 batches, then EpochDone
    augment_stream_request_t m = s_req(3, 0, AUGMENT_MODE_TRAIN, 2);
    m.max_batches = 3;
    T_CHECK(augment_client_start(cl, &m, &plan, 20000) == 0 && plan.n_batches == 3,
            "max_batches plan (%u)", plan.n_batches);
    memset(seen, 0, n_items * sizeof *seen);
    T_CHECK(s_drain(cl, 3, dig, 3, seen, n_items) == 3, "3 batches then the end");

    // --- restart: an uninterrupted reference epoch, then the same epoch with a
    // server restart after 5 batches
    uint64_t want[15] = {0}, have[15] = {0};
    augment_stream_request_t r = s_req(4, 0, AUGMENT_MODE_TRAIN, 1);
    r.mixup_alpha = 0.4f;
    T_CHECK(augment_client_start(cl, &r, &plan, 20000) == 0, "reference epoch");
    memset(seen, 0, n_items * sizeof *seen);
    T_CHECK(s_drain(cl, 4, want, 15, seen, n_items) == 15, "reference epoch complete");
    r.stream = 6;
    T_CHECK(augment_client_start(cl, &r, &plan, 20000) == 0, "epoch to interrupt");
    memset(seen, 0, n_items * sizeof *seen);
    uint32_t before = 0;
    for (; before < 5; before++) {
        augment_tensor_batch_t *b = NULL;
        if (augment_client_next(cl, 6, &b, 20000) != 1) break;
        have[b->seq] = s_digest(b);
        for (int i = 0; i < b->n; i++) seen[b->indices[i]]++;
        augment_client_release(cl, &b);
    }
    augment_server_stats_t st1;
    s_srv_stop(&srv, &st1);
    s_srv_start(&srv, co.endpoint, ep);
    uint32_t after = s_drain(cl, 6, have, 15, seen, n_items);
    T_CHECK(augment_client_stats(cl, 6, &ss) == 0, "stats");
    T_CHECK(ss.restarts >= 1, "the client re-requested after the restart (%u)", ss.restarts);
    T_CHECK(before + after == 15, "5 + %u batches = 15", after);
    once = 0;
    for (uint32_t i = 0; i < n_items; i++) once += seen[i] == 1;
    T_CHECK(once == 120, "every sample exactly once across the restart (%u)", once);
    bool same = true;
    for (int i = 0; i < 15; i++) same &= want[i] == have[i] && want[i] != 0;
    T_CHECK(same, "the restarted epoch is bit-identical to the uninterrupted one");

    // --- hostile client messages: counted and dropped, the server goes on
    void *ctx = zmq_ctx_new();
    nf_zmq_socket_config_t dc = {.type = ZMQ_DEALER};
    void *raw = nf_zmq_socket_new(ctx, &dc);
    NF_CHECK(raw && nf_zmq_connect(raw, ep) == 0, "raw dealer");
    NF_ZMQ_CHECK(zmq_send(raw, "garbage", 7, 0));
    Nf__TensorStreamRequest bad = NF__TENSOR_STREAM_REQUEST__INIT;
    bad.stream = 1;
    bad.batch_size = 8;
    bad.size = 32;
    bad.presize = 40;
    bad.credits = 0;  // out of range
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_TENSOR_STREAM_REQUEST;
    env.tensor_stream_request = &bad;
    T_CHECK(nf_wire_send(raw, NULL, NULL, &env, NULL, 0) == 0, "send bad request");
    bad.credits = 2;
    bad.size = 100000;  // out of range
    T_CHECK(nf_wire_send(raw, NULL, NULL, &env, NULL, 0) == 0, "send bad request");
    nf_sleep_ms(500);
    nf_zmq_close(&raw);
    T_CHECK(zmq_ctx_term(ctx) == 0, "ctx term");
    augment_stream_request_t again = s_req(7, 1, AUGMENT_MODE_TTA, 0);
    again.pass = 1;
    T_CHECK(augment_client_start(cl, &again, &plan, 20000) == 0 && plan.n_batches == 4,
            "the server still serves (a TTA pass)");
    memset(seen, 0, n_items * sizeof *seen);
    T_CHECK(s_drain(cl, 7, dig, 4, seen, n_items) == 4, "TTA pass complete");

    augment_server_stats_t st2;
    augment_client_destroy(&cl);
    s_srv_stop(&srv, &st2);
    T_CHECK(st2.rejected >= 3, "3 hostile messages rejected (%llu)",
            (unsigned long long)st2.rejected);
    T_CHECK(st1.batches + st2.batches >= 15 + 4 + 3 + 15 + 15 + 4,
            "batches served: %llu + %llu", (unsigned long long)st1.batches,
            (unsigned long long)st2.batches);
    h_worker_stop(w);
    h_coord_stop(&co, NULL);
    free(seen);
    free(dig);
    return t_done();
}
