/*
 * fuzz_augment_server.c: libFuzzer target for everything the augment server
 * (augment/server.h) does with what arrives on its ROUTER from clients: per
 * input a fresh loader coordinator (over a small dataset of files it never
 * opens; no worker runs, so streams start and no batch is produced) and a
 * fresh augment server run in threads over inproc, and one client sends the
 * input's records (fuzzmsg.h: stream requests, credits, acks, heartbeats,
 * dataset requests, control, garbage). Then the client asks for DatasetInfo
 * and must get it within 20 s (the server is still serving: a request that
 * made it wait on the coordinator, or exit, fails the input), draining plans,
 * epoch ends and heartbeats meanwhile; the server's run() must not have
 * returned before it is told to stop.
 */
#include "check.h"
#include "coordinator.h"
#include "fsutil.h"
#include "fuzzmsg.h"
#include "log.h"
#include "server.h"
#include "timeutil.h"
#include "zmqutil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *s_ctx;
static loader_dataset_t *s_ds;

static void s_init(void)
{
    nf_log_init(&(nf_log_config_t){.stage = "fuzz", .level = NF_LOG_ERROR});
    s_ctx = fz_context();
    s_ds = fz_placeholder_dataset(fz_tmpdir("augment_server"), 3, 5, 3);
}

typedef struct {
    loader_coordinator_t *co;
    augment_server_t *srv;
    int rc;
    volatile bool returned;
} s_stage_t;

static void *s_run_coordinator(void *arg)
{
    s_stage_t *s = arg;
    NF_CHECK(loader_coordinator_run(s->co) == 0, "coordinator run failed");
    return NULL;
}

static void *s_run_server(void *arg)
{
    s_stage_t *s = arg;
    s->rc = augment_server_run(s->srv);
    s->returned = true;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned serial;
    if (!s_ctx) s_init();
    fz_record_t rec[FZ_MAX_RECORDS];
    size_t n = fz_records(data, size, rec);
    int stop[2], stop_co[2];  // the server's, the coordinator's
    NF_CHECK(pipe(stop) == 0 && pipe(stop_co) == 0, "pipe");
    unsigned id = serial++;
    char co_ep[64], aug_ep[64], sink[64];
    snprintf(co_ep, sizeof co_ep, "inproc://fuzz-as-coordinator-%u", id);
    snprintf(aug_ep, sizeof aug_ep, "inproc://fuzz-as-augment-%u", id);
    snprintf(sink, sizeof sink, "inproc://fuzz-as-sink-%u", id);
    s_stage_t s = {0};
    loader_coordinator_config_t cc = {.bind = co_ep, .dataset = s_ds, .seed = 1,
                                      .stop_fd = stop_co[0], .zmq_ctx = s_ctx};
    s.co = loader_coordinator_new(&cc);
    NF_CHECK(s.co, "coordinator");
    augment_server_config_t ac = {.coordinator = co_ep, .bind = aug_ep, .sink = sink,
                                  .threads = 1, .stop_fd = stop[0], .zmq_ctx = s_ctx};
    s.srv = augment_server_new(&ac);
    NF_CHECK(s.srv, "augment server");
    pthread_t tc, ts;
    NF_CHECK(pthread_create(&tc, NULL, s_run_coordinator, &s) == 0, "thread");
    NF_CHECK(pthread_create(&ts, NULL, s_run_server, &s) == 0, "thread");

    nf_zmq_socket_config_t dc = {.type = ZMQ_DEALER, .sndhwm = 1000, .rcvhwm = 100000};
    void *d = nf_zmq_socket_new(s_ctx, &dc);
    NF_CHECK(d && nf_zmq_connect(d, aug_ep) == 0, "client");
    for (size_t i = 0; i < n; i++) (void)fz_send(d, NULL, &rec[i]);
    Nf__DatasetInfoRequest q = NF__DATASET_INFO_REQUEST__INIT;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_DATASET_INFO_REQUEST;
    env.dataset_info_request = &q;
    NF_CHECK(nf_wire_send(d, NULL, "", &env, NULL, 0) == 0, "send");
    nf_wire_expect_t ex = {.bodies = ~(uint64_t)0, .max_payload = (uint64_t)1 << 30};
    nf_wire_stats_t st = {0};
    bool answered = false;
    double t0 = nf_now_s();
    while (!answered) {
        zmq_pollitem_t it = {.socket = d, .events = ZMQ_POLLIN};
        (void)zmq_poll(&it, 1, 100);
        nf_wire_msg_t m;
        if (nf_wire_recv(d, &ex, &m, &st, ZMQ_DONTWAIT) == 1) {
            answered = m.env->body_case == NF__ENVELOPE__BODY_DATASET_INFO;
            nf_wire_msg_close(&m);
        }
        NF_CHECK(!s.returned, "the augment server's run() returned %d before it was stopped",
                 s.rc);
        NF_CHECK(answered || nf_now_s() - t0 < 20,
                 "the augment server did not answer a DatasetInfoRequest in 20 s");
    }
    NF_CHECK(write(stop[1], "x", 1) == 1, "stop");
    NF_CHECK(pthread_join(ts, NULL) == 0, "join");
    NF_CHECK(write(stop_co[1], "x", 1) == 1, "stop");
    NF_CHECK(pthread_join(tc, NULL) == 0, "join");
    NF_CHECK(s.rc == 0, "the augment server's run() returned %d", s.rc);
    nf_zmq_close(&d);
    augment_server_destroy(&s.srv);
    loader_coordinator_destroy(&s.co);
    for (int i = 0; i < 2; i++) {
        close(stop[i]);
        close(stop_co[i]);
    }
    return 0;
}
