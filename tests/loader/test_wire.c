/*
 * test_wire.c: common/zmqutil + common/wire over real sockets. A valid batch
 * (envelope + payload) arrives intact without copying; every malformed kind
 * (garbage, empty, wrong version, other job, unexpected body, missing,
 * oversized or mismatched payload, overflowing shape, extra frames) is dropped
 * and counted under its own reason; ROUTER_MANDATORY reports a gone peer;
 * SIGINT arrives through the signalfd that zmq_poll watches; nf_spawn children
 * run with default signals.
 */
#include "testlib.h"
#include "wire.h"
#include "zmqutil.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static void s_send_raw(void *sock, const void *a, size_t na, const void *b, size_t nb, bool two)
{
    NF_CHECK(zmq_send(sock, a, na, two ? ZMQ_SNDMORE : 0) >= 0, "send");
    if (two) NF_CHECK(zmq_send(sock, b, nb, 0) >= 0, "send");
}

// Packs env with an arbitrary version (nf_wire_send always writes the right one).
static size_t s_pack(Nf__Envelope *env, uint32_t version, const char *job, uint8_t *buf)
{
    env->version = version;
    env->job = (char *)job;
    return nf__envelope__pack(env, buf);
}

static int s_recv(void *sock, const nf_wire_expect_t *ex, nf_wire_stats_t *st, nf_wire_msg_t *m)
{
    zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
    NF_CHECK(zmq_poll(&it, 1, 2000) == 1, "nothing arrived");
    return nf_wire_recv(sock, ex, m, st, 0);
}

static void test_push_pull(void *ctx)
{
    char ep[256];
    nf_zmq_socket_config_t pc = {.type = ZMQ_PULL, .maxmsgsize = 4096};
    nf_zmq_socket_config_t sc = {.type = ZMQ_PUSH};
    void *pull = nf_zmq_socket_new(ctx, &pc), *push = nf_zmq_socket_new(ctx, &sc);
    T_CHECK(pull && push, "sockets");
    T_CHECK(nf_zmq_bind(pull, "tcp://127.0.0.1:*", ep, sizeof ep) == 0, "bind");
    T_CHECK(strncmp(ep, "tcp://127.0.0.1:", 16) == 0 && strcmp(ep, "tcp://127.0.0.1:*") != 0,
            "wildcard resolved: %s", ep);
    T_CHECK(nf_zmq_connect(push, ep) == 0, "connect");
    T_CHECK(nf_zmq_bind(pull, "bogus://x", NULL, 0) == -1, "a bad endpoint is an error, not a crash");

    nf_wire_expect_t ex = {.job = "j1", .bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_RAW_BATCH) |
                                                  NF_WIRE_BODY(NF__ENVELOPE__BODY_TENSOR_BATCH),
                           .max_payload = 1000};
    nf_wire_stats_t st = {0};
    nf_wire_msg_t m;

    // a valid raw batch: 2 x 4 x 4 x 3
    int32_t labels[2] = {3, 7};
    uint32_t idx[2] = {11, 12};
    Nf__RawBatch rb = NF__RAW_BATCH__INIT;
    rb.n = 2;
    rb.h = rb.w = 4;
    rb.c = 3;
    rb.n_labels = 2;
    rb.labels = labels;
    rb.n_indices = 2;
    rb.indices = idx;
    rb.payload_bytes = 96;
    rb.seq = 5;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_RAW_BATCH;
    env.raw_batch = &rb;
    zmq_msg_t pay;
    zmq_msg_init_size(&pay, 96);
    for (int i = 0; i < 96; i++) ((uint8_t *)zmq_msg_data(&pay))[i] = (uint8_t)i;
    T_CHECK(nf_wire_send(push, NULL, "j1", &env, &pay, 0) == 0, "send");
    T_CHECK(env.job == NULL, "the caller's envelope is left as it was");
    T_CHECK(s_recv(pull, &ex, &st, &m) == 1, "valid batch accepted");
    if (m.env) {
        T_CHECK(m.env->raw_batch->seq == 5 && m.env->raw_batch->labels[1] == 7, "fields intact");
        T_CHECK(m.has_payload && zmq_msg_size(&m.payload) == 96 &&
                    ((uint8_t *)zmq_msg_data(&m.payload))[95] == 95,
                "payload intact");
    }
    nf_wire_msg_close(&m);
    nf_wire_msg_close(&m);  // idempotent

    uint8_t buf[4096], junk[200];
    size_t n;
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 37 + 11);
    uint8_t payload[200] = {0};
    // 1. garbage
    s_send_raw(push, junk, sizeof junk, NULL, 0, false);
    T_CHECK(s_recv(pull, &ex, &st, &m) == 0 && st.dropped[NF_WIRE_DROP_DECODE] == 1, "garbage");
    // 2. empty frame
    s_send_raw(push, junk, 0, NULL, 0, false);
    T_CHECK(s_recv(pull, &ex, &st, &m) == 0 && st.dropped[NF_WIRE_DROP_SIZE] == 1, "empty");
    // 3. wrong version
    n = s_pack(&env, 2, "j1", buf);
    s_send_raw(push, buf, n, payload, 96, true);
    T_CHECK(s_recv(pull, &ex, &st, &m) == 0 && st.dropped[NF_WIRE_DROP_VERSION] == 1, "version");
    // 4. another job
    n = s_pack(&env, NF_PROTOCOL_VERSION, "j2", buf);
    s_send_raw(push, buf, n, payload, 96, true);
    T_CHECK(s_recv(pull, &ex, &st, &m) == 0 && st.dropped[NF_WIRE_DROP_JOB] == 1, "job");
    // 5. missing payload
    n = s_pack(&env, NF_PROTOCOL_VERSION, "j1", buf);
    s_send_raw(push, buf, n, NULL, 0, false);
    T_CHECK(s_recv(pull, &ex, &st, &m) == 0 && st.dropped[NF_WIRE_DROP_PAYLOAD] == 1, "no payload");
    // 6. payload one byte short
    s_send_raw(push, buf, n, payload, 95, true);
    T_CHECK(s_recv(pull, &ex, &st, &m) == 0 && st.dropped[NF_WIRE_DROP_PAYLOAD] == 2, "short payload");
    // 7. payload over the socket's limit (but under MAXMSGSIZE)
    rb.n = 6;
    rb.h = rb.w = 8;
    rb.payload_bytes = 6 * 8 * 8 * 3;
    uint32_t idx6[6] = {0};
    int32_t lab6[6] = {0};
    rb.n_labels = rb.n_indices = 6;
    rb.labels = lab6;
    rb.indices = idx6;
    n = s_pack(&env, NF_PROTOCOL_VERSION, "j1", buf);
    static uint8_t big[6 * 8 * 8 * 3];
    s_send_raw(push, buf, n, big, sizeof big, true);
    T_CHECK(s_recv(pull, &ex, &st, &m) == 0 && st.dropped[NF_WIRE_DROP_SIZE] == 2, "over limit");
    // 8. absurd shape that overflows 64 bits
    rb.n = 6;
    rb.h = rb.w = 0xFFFFFFFFu;
    rb.c = 0xFFFFFFFFu;
    n = s_pack(&env, NF_PROTOCOL_VERSION, "j1", buf);
    s_send_raw(push, buf, n, payload, 10, true);
    T_CHECK(s_recv(pull, &ex, &st, &m) == 0 && st.dropped[NF_WIRE_DROP_SHAPE] == 1, "overflow");
    // 9. labels count != n
    rb.h = rb.w = 2;
    rb.c = 3;
    rb.n_labels = 4;
    rb.payload_bytes = 72;
    n = s_pack(&env, NF_PROTOCOL_VERSION, "j1", buf);
    s_send_raw(push, buf, n, payload, 72, true);
    T_CHECK(s_recv(pull, &ex, &st, &m) == 0 && st.dropped[NF_WIRE_DROP_SHAPE] == 2, "labels");
    // 10. a body this socket does not take
    Nf__Heartbeat hb = NF__HEARTBEAT__INIT;
    Nf__Envelope henv = NF__ENVELOPE__INIT;
    henv.body_case = NF__ENVELOPE__BODY_HEARTBEAT;
    henv.heartbeat = &hb;
    T_CHECK(nf_wire_send(push, NULL, "j1", &henv, NULL, 0) == 0, "send");
    T_CHECK(s_recv(pull, &ex, &st, &m) == 0 && st.dropped[NF_WIRE_DROP_BODY] == 1, "body");
    // 11. three frames
    n = s_pack(&henv, NF_PROTOCOL_VERSION, "j1", buf);
    NF_CHECK(zmq_send(push, buf, n, ZMQ_SNDMORE) >= 0 && zmq_send(push, payload, 3, ZMQ_SNDMORE) >= 0 &&
                 zmq_send(push, payload, 3, 0) >= 0,
             "send");
    T_CHECK(s_recv(pull, &ex, &st, &m) == 0 && st.dropped[NF_WIRE_DROP_FRAMES] == 1, "frames");
    // 12. tensor batch: unknown dtype, then a valid f32 one
    float lw[2] = {1, 1};
    Nf__TensorBatch tb = NF__TENSOR_BATCH__INIT;
    tb.n = 2;
    tb.h = tb.w = 2;
    tb.c = 3;
    tb.dtype = (Nf__DType)9;
    tb.layout = NF__LAYOUT__LAYOUT_NHWC;
    tb.n_labels = 2;
    tb.labels = labels;
    tb.n_mix_weights = 2;
    tb.mix_weights = lw;
    tb.payload_bytes = 96;
    Nf__Envelope tenv = NF__ENVELOPE__INIT;
    tenv.body_case = NF__ENVELOPE__BODY_TENSOR_BATCH;
    tenv.tensor_batch = &tb;
    n = s_pack(&tenv, NF_PROTOCOL_VERSION, "j1", buf);
    s_send_raw(push, buf, n, payload, 96, true);
    T_CHECK(s_recv(pull, &ex, &st, &m) == 0 && st.dropped[NF_WIRE_DROP_SHAPE] == 3, "dtype");
    tb.dtype = NF__DTYPE__DTYPE_F32;
    n = s_pack(&tenv, NF_PROTOCOL_VERSION, "j1", buf);
    s_send_raw(push, buf, n, payload, 96, true);
    T_CHECK(s_recv(pull, &ex, &st, &m) == 1, "valid tensor batch");
    nf_wire_msg_close(&m);

    T_CHECK(st.accepted == 2 && nf_wire_stats_dropped(&st) == 12, "accepted %llu dropped %llu",
            (unsigned long long)st.accepted, (unsigned long long)nf_wire_stats_dropped(&st));
    T_CHECK(strcmp(nf_wire_drop_name(NF_WIRE_DROP_SHAPE), "shape") == 0, "names");
    nf_zmq_close(&push);
    nf_zmq_close(&pull);
    T_CHECK(push == NULL, "close nulls");
}

static void test_router(void *ctx)
{
    char ep[256];
    nf_zmq_socket_config_t rc = {.type = ZMQ_ROUTER, .router_mandatory = true};
    nf_zmq_socket_config_t dc = {.type = ZMQ_DEALER};
    void *router = nf_zmq_socket_new(ctx, &rc), *dealer = nf_zmq_socket_new(ctx, &dc);
    snprintf(ep, sizeof ep, "ipc://%s/router.ipc", t_tmpdir());
    T_CHECK(nf_zmq_bind(router, ep, NULL, 0) == 0 && nf_zmq_connect(dealer, ep) == 0, "ipc");
    nf_wire_expect_t ex = {.router = true, .job = "j", .allow_no_job = true,
                           .bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_HEARTBEAT)};
    nf_wire_stats_t st = {0};
    nf_wire_msg_t m;
    Nf__Heartbeat hb = NF__HEARTBEAT__INIT;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    T_CHECK(nf_wire_send(dealer, NULL, NULL, &env, NULL, 0) == 0, "send");
    T_CHECK(s_recv(router, &ex, &st, &m) == 1 && m.peer.len > 0, "a joining peer without a job");
    nf_wire_peer_t peer = m.peer;
    nf_wire_msg_close(&m);
    T_CHECK(nf_wire_send(router, &peer, "j", &env, NULL, 0) == 0, "reply to the peer");
    T_CHECK(s_recv(dealer, &(nf_wire_expect_t){.bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_HEARTBEAT)},
                   &st, &m) == 1 && strcmp(m.env->job, "j") == 0,
            "reply carries the job");
    nf_wire_msg_close(&m);
    nf_wire_peer_t ghost = {.id = {1, 2, 3}, .len = 3};
    errno = 0;
    T_CHECK(nf_wire_send(router, &ghost, "j", &env, NULL, ZMQ_DONTWAIT) == -1 && errno == EHOSTUNREACH,
            "ROUTER_MANDATORY reports a gone peer (errno %d)", errno);
    // a heartbeat with a payload frame, and an empty message
    uint8_t buf[256];
    size_t n = s_pack(&env, NF_PROTOCOL_VERSION, "j", buf);
    s_send_raw(dealer, buf, n, buf, 4, true);
    T_CHECK(s_recv(router, &ex, &st, &m) == 0 && st.dropped[NF_WIRE_DROP_PAYLOAD] == 1, "payload");
    s_send_raw(dealer, buf, 0, NULL, 0, false);
    T_CHECK(s_recv(router, &ex, &st, &m) == 0 && st.dropped[NF_WIRE_DROP_SIZE] == 1, "empty");
    nf_zmq_close(&dealer);
    nf_zmq_close(&router);
}

static void test_signals(void)
{
    nf_signals_t *sig = nf_signals_new();
    T_CHECK(sig != NULL, "signals");
    if (!sig) return;
    T_CHECK(nf_signals_take(sig) == 0, "nothing pending");
    T_CHECK(raise(SIGINT) == 0, "raise");
    zmq_pollitem_t it = {.fd = nf_signals_fd(sig), .events = ZMQ_POLLIN};
    T_CHECK(zmq_poll(&it, 1, 1000) == 1, "zmq_poll wakes on SIGINT");
    T_CHECK(nf_signals_take(sig) == SIGINT, "SIGINT read");
    // a child started by nf_spawn has default signal handling again
    char *argv[] = {"/bin/sh", "-c", "kill -INT $$; exit 3", NULL};
    pid_t pid = nf_spawn(argv);
    T_CHECK(pid > 0, "spawn");
    int status = 0;
    T_CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGINT,
            "child killed by SIGINT (status %d)", status);
    char *bad[] = {"/nonexistent/program", NULL};
    pid = nf_spawn(bad);
    if (pid > 0) waitpid(pid, &status, 0);
    nf_signals_destroy(&sig);
    T_CHECK(sig == NULL, "destroy nulls");
}

int main(void)
{
    void *ctx = zmq_ctx_new();
    test_push_pull(ctx);
    test_router(ctx);
    zmq_ctx_term(ctx);
    test_signals();
    return t_done();
}
