/*
 * test_rel_wire_audit.c: gaps the wire-trust audit (docs/reliability.md)
 * found in what a consumer believed of its coordinator, each a regression:
 *   - a DatasetInfo whose n_train + n_valid overflows 32 bits (it sizes every
 *     index bound the consumer checks) is dropped and counted;
 *   - an EpochPlan whose batch count does not follow from its samples and
 *     batch size (it sizes what the consumer allocates for the epoch: a
 *     hostile plan of 4 billion batches made it abort) is dropped and counted;
 * and the right messages that follow are taken. Also: every socket made
 * through common/zmqutil.h without explicit limits gets a 1 MiB inbound
 * message limit, small HWMs and a finite linger (the audit relies on it).
 */
#include "consumer.h"
#include "dataset.h"
#include "log.h"
#include "testlib.h"
#include "wire.h"
#include "zmqutil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    void *router;
    bool served;
} s_fake_t;

static void s_send(void *router, const nf_wire_peer_t *peer, Nf__Envelope *env)
{
    NF_CHECK(nf_wire_send(router, peer, "", env, NULL, 0) == 0, "send");
}

static void *s_fake(void *arg)
{
    s_fake_t *f = arg;
    nf_wire_expect_t ex = {.router = true, .bodies = ~(uint64_t)0};
    nf_wire_stats_t st = {0};
    for (int answered = 0; answered < 2;) {
        zmq_pollitem_t it = {.socket = f->router, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 10000) != 1) return NULL;
        nf_wire_msg_t m;
        if (nf_wire_recv(f->router, &ex, &m, &st, 0) != 1) continue;
        Nf__Envelope e = NF__ENVELOPE__INIT;
        if (m.env->body_case == NF__ENVELOPE__BODY_DATASET_INFO_REQUEST) {
            char *classes[2] = {"a", "b"};
            Nf__DatasetInfo di = NF__DATASET_INFO__INIT;
            di.n_classes = 2;
            di.classes = classes;
            di.n_train = 0xFFFFFFF0u;  // + 0x20: wraps to 16
            di.n_valid = 0x20;
            e.body_case = NF__ENVELOPE__BODY_DATASET_INFO;
            e.dataset_info = &di;
            s_send(f->router, &m.peer, &e);
            di.n_train = 6;
            di.n_valid = 8;
            s_send(f->router, &m.peer, &e);
            answered++;
        } else if (m.env->body_case == NF__ENVELOPE__BODY_STREAM_REQUEST) {
            Nf__EpochPlan p = NF__EPOCH_PLAN__INIT;
            p.stream = m.env->stream_request->stream;
            p.epoch = m.env->stream_request->epoch;
            p.batch_size = 4;
            p.n_samples = 8;
            p.n_batches = 5;  // 8 samples in batches of 4 are 2 batches
            e.body_case = NF__ENVELOPE__BODY_EPOCH_PLAN;
            e.epoch_plan = &p;
            s_send(f->router, &m.peer, &e);
            p.n_batches = 2;
            s_send(f->router, &m.peer, &e);
            answered++;
        }
        nf_wire_msg_close(&m);
    }
    f->served = true;
    return NULL;
}

static void test_socket_defaults(void *ctx)
{
    static const int types[] = {ZMQ_ROUTER, ZMQ_DEALER, ZMQ_PUSH, ZMQ_PULL, ZMQ_REP, ZMQ_PAIR};
    for (size_t i = 0; i < NF_ARRAY_LEN(types); i++) {
        nf_zmq_socket_config_t c = {.type = types[i]};
        void *sock = nf_zmq_socket_new(ctx, &c);
        NF_CHECK(sock, "socket");
        int64_t max = 0;
        int linger = -1, sndhwm = 0, rcvhwm = 0;
        size_t l8 = sizeof max, l4 = sizeof linger;
        NF_CHECK(zmq_getsockopt(sock, ZMQ_MAXMSGSIZE, &max, &l8) == 0 &&
                     zmq_getsockopt(sock, ZMQ_LINGER, &linger, &l4) == 0 &&
                     zmq_getsockopt(sock, ZMQ_SNDHWM, &sndhwm, &l4) == 0 &&
                     zmq_getsockopt(sock, ZMQ_RCVHWM, &rcvhwm, &l4) == 0,
                 "getsockopt");
        T_CHECK(max == 1 << 20 && linger >= 0 && linger <= 2000 && sndhwm == 16 && rcvhwm == 16,
                "socket type %d: maxmsgsize %lld, linger %d, hwm %d/%d", types[i], (long long)max,
                linger, sndhwm, rcvhwm);
        nf_zmq_close(&sock);
    }
}

int main(void)
{
    nf_log_init(&(nf_log_config_t){.stage = "test", .level = NF_LOG_ERROR});
    void *ctx = zmq_ctx_new();
    test_socket_defaults(ctx);
    char ep[600], sink[600];
    snprintf(ep, sizeof ep, "ipc://%s/audit.ipc", t_tmpdir());
    snprintf(sink, sizeof sink, "ipc://%s/audit-sink.ipc", t_tmpdir());
    nf_zmq_socket_config_t rc = {.type = ZMQ_ROUTER, .router_mandatory = true};
    s_fake_t f = {.router = nf_zmq_socket_new(ctx, &rc)};
    NF_CHECK(f.router && nf_zmq_bind(f.router, ep, NULL, 0) == 0, "bind");
    pthread_t th;
    NF_CHECK(pthread_create(&th, NULL, s_fake, &f) == 0, "thread");
    loader_consumer_config_t cc = {.coordinator = ep, .sink = sink, .zmq_ctx = ctx};
    loader_consumer_t *con = loader_consumer_new(&cc);
    NF_CHECK(con, "consumer");
    loader_stream_request_t r = {.stream = 1, .split = LOADER_VALID, .batch_size = 4, .presize = 8};
    loader_epoch_plan_t plan = {0};
    T_CHECK(loader_consumer_start(con, &r, &plan, 10000) == 0, "the epoch starts");
    T_CHECK(plan.n_batches == 2 && plan.n_samples == 8, "the consistent plan was taken: %u batches",
            plan.n_batches);
    NF_CHECK(pthread_join(th, NULL) == 0, "join");
    T_CHECK(f.served, "the fake coordinator served both requests");
    nf_wire_stats_t ctl;
    loader_consumer_wire_stats(con, NULL, &ctl);
    T_CHECK(ctl.dropped[NF_WIRE_DROP_FIELD] == 2, "dropped the overflowing dataset info and the "
            "inconsistent plan (%llu)", (unsigned long long)ctl.dropped[NF_WIRE_DROP_FIELD]);
    loader_consumer_destroy(&con);
    nf_zmq_close(&f.router);
    zmq_ctx_term(ctx);
    return t_done();
}
