/*
 * fuzz_coordinator.c: libFuzzer target for everything the loader coordinator
 * does with what arrives on its ROUTER socket (loader/coordinator.h): per
 * input a fresh coordinator (over a small dataset) runs in a thread and one
 * peer sends it the input's records (fuzzmsg.h: hellos, stream requests,
 * credits, acks, task reports, control, garbage) over inproc. Then the peer
 * asks for DatasetInfo and must get it (the coordinator is still serving),
 * draining whatever else it was sent (tasks, plans, heartbeats) meanwhile;
 * a minute without any message from it fails the input.
 */
#include "check.h"
#include "coordinator.h"
#include "fsutil.h"
#include "fuzzmsg.h"
#include "log.h"
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
    s_ds = fz_placeholder_dataset(fz_tmpdir("coordinator"), 2, 6, 4);
}

static volatile bool s_returned;  // the coordinator's run() returned (it saw its stop fd)

static void *s_run(void *arg)
{
    NF_CHECK(loader_coordinator_run(arg) == 0, "coordinator run failed");
    s_returned = true;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned serial;
    if (!s_ctx) s_init();
    fz_record_t rec[FZ_MAX_RECORDS];
    size_t n = fz_records(data, size, rec);
    int stop[2];
    NF_CHECK(pipe(stop) == 0, "pipe");
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://fuzz-coordinator-%u", serial++);
    loader_coordinator_config_t cc = {.bind = ep, .dataset = s_ds, .seed = 1, .stop_fd = stop[0],
                                      .zmq_ctx = s_ctx};
    loader_coordinator_t *co = loader_coordinator_new(&cc);
    NF_CHECK(co, "coordinator");
    pthread_t th;
    s_returned = false;
    NF_CHECK(pthread_create(&th, NULL, s_run, co) == 0, "thread");
    nf_zmq_socket_config_t dc = {.type = ZMQ_DEALER, .sndhwm = 1000, .rcvhwm = 100000};
    void *d = nf_zmq_socket_new(s_ctx, &dc);
    NF_CHECK(d && nf_zmq_connect(d, ep) == 0, "peer");
    for (size_t i = 0; i < n; i++) (void)fz_send(d, NULL, &rec[i]);
    // still serving? ask for the dataset and wait for it
    Nf__DatasetInfoRequest q = NF__DATASET_INFO_REQUEST__INIT;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_DATASET_INFO_REQUEST;
    env.dataset_info_request = &q;
    NF_CHECK(nf_wire_send(d, NULL, "netteflow", &env, NULL, 0) == 0, "send");
    nf_wire_expect_t ex = {.bodies = ~(uint64_t)0};
    nf_wire_stats_t st = {0};
    // Wait for it, draining whatever else comes. A missed wakeup must not look
    // like a hang: poll in slices and try to receive after each; only a
    // minute with nothing at all (the coordinator heartbeats every second)
    // is one.
    bool answered = false;
    int last_body = -1;
    double quiet_since = nf_now_s();
    while (!answered) {
        zmq_pollitem_t it = {.socket = d, .events = ZMQ_POLLIN};
        (void)zmq_poll(&it, 1, 100);
        nf_wire_msg_t m;
        int got = nf_wire_recv(d, &ex, &m, &st, ZMQ_DONTWAIT);
        if (got >= 0) quiet_since = nf_now_s();
        if (got == 1) {
            answered = m.env->body_case == NF__ENVELOPE__BODY_DATASET_INFO;
            last_body = m.env->body_case;
            nf_wire_msg_close(&m);
        }
        NF_CHECK(answered || nf_now_s() - quiet_since < 60,
                 "the coordinator stopped answering (its run() %s, last body %d, %llu received)",
                 s_returned ? "returned" : "is running", last_body,
                 (unsigned long long)st.accepted);
    }
    NF_CHECK(write(stop[1], "x", 1) == 1, "stop");
    NF_CHECK(pthread_join(th, NULL) == 0, "join");
    loader_coordinator_destroy(&co);
    nf_zmq_close(&d);
    close(stop[0]);
    close(stop[1]);
    return 0;
}
