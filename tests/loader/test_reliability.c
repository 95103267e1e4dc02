/*
 * test_reliability.c: the loader under faults, over real sockets.
 *   1. SIGKILL a worker mid-epoch, then let a new worker join: every sample
 *      index still arrives exactly once, the dead worker's tasks are re-issued.
 *   2. SIGSTOP a worker (stuck, silent) mid-epoch, SIGCONT it later: its tasks
 *      move on, its late batches are dropped as duplicates, exactly once.
 *   2b. SIGTERM a worker mid-epoch: it says it leaves and its unfinished tasks
 *      move on at once (the worker timeout is set far beyond the test).
 *   3. Malformed and hostile messages to every socket: the coordinator's
 *      ROUTER, the consumer's sink, a worker's DEALER (from a fake
 *      coordinator) and a consumer's DEALER (from a fake coordinator): each is
 *      counted and dropped, nothing crashes, and the job still completes.
 */
#include "fsutil.h"
#include "harness.h"
#include "log.h"
#include "testlib.h"
#include "timeutil.h"
#include "wire.h"
#include "worker.h"
#include "zmqutil.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *s_root;  // dataset used by every part

static loader_consumer_t *s_consumer(const char *coord, const char *name)
{
    char sink[512];
    snprintf(sink, sizeof sink, "ipc://%s/%s.ipc", t_tmpdir(), name);
    loader_consumer_config_t cc = {.coordinator = coord, .sink = sink, .heartbeat_ms = 100,
                                   .timeout_ms = 20000};
    loader_consumer_t *con = loader_consumer_new(&cc);
    NF_CHECK(con != NULL, "consumer");
    return con;
}

static uint32_t s_check_once(const h_epoch_t *e, const loader_dataset_t *ds, int split)
{
    uint32_t n, once = 0;
    const uint32_t *items = loader_dataset_split(ds, split, &n);
    for (uint32_t i = 0; i < n; i++) once += e->seen[items[i]] == 1;
    uint32_t more = 0;
    for (uint32_t i = 0; i < e->n_items; i++) more += e->seen[i] > 1;
    T_CHECK(once == n && more == 0, "%u of %u indices exactly once, %u more than once", once, n, more);
    return once;
}

// ---------------------------------------------------------------------------
// 1 + 2: dead and stuck workers

typedef struct {
    pid_t *workers;
    const char *endpoint;
    // 0: freeze worker 0 at batch 4 (so it surely holds tasks), SIGKILL it at 8,
    //    add a worker at 12; 1: SIGSTOP worker 0 at batch 8, SIGCONT it at the
    //    first batch from 20 on that comes 1 s after the stop (past the 600 ms
    //    worker timeout: on a fast run batch 20 came sooner, the worker woke
    //    up in time and nothing was re-issued); 2: SIGTERM worker 0 at batch 8
    //    (a clean leave)
    int mode;
    uint32_t killed_at;
    double stopped_at;
    bool continued;
} s_fault_t;

static void s_fault(uint32_t batches, void *arg)
{
    s_fault_t *f = arg;
    if (f->mode == 0 && batches == 4) {
        T_CHECK(kill(f->workers[0], SIGSTOP) == 0, "SIGSTOP");
    } else if (f->mode == 0 && batches == 8) {
        T_CHECK(kill(f->workers[0], SIGKILL) == 0, "SIGKILL");
        waitpid(f->workers[0], NULL, 0);
        f->workers[0] = -1;
        f->killed_at = batches;
    } else if (f->mode == 0 && batches == 12) {
        f->workers[3] = h_worker(f->endpoint);  // a worker joins mid-epoch
    } else if (f->mode == 1 && batches == 8) {
        T_CHECK(kill(f->workers[0], SIGSTOP) == 0, "SIGSTOP");
        f->killed_at = batches;
        f->stopped_at = nf_now_s();
    } else if (f->mode == 1 && batches >= 20 && !f->continued && nf_now_s() - f->stopped_at > 1.0) {
        T_CHECK(kill(f->workers[0], SIGCONT) == 0, "SIGCONT");
        f->continued = true;
    } else if (f->mode == 2 && batches == 8) {
        h_worker_stop(f->workers[0]);
        f->workers[0] = -1;
        f->killed_at = batches;
    }
}

static void test_dead_and_stuck_workers(int mode)
{
    static const char *names[] = {"killed worker", "stuck worker", "leaving worker"};
    static const char *eps[] = {"kill", "stuck", "leave"};
    h_coord_t h;
    // a leaving worker must not need any timeout: make them longer than the test
    loader_coordinator_config_t cc = {.worker_timeout_ms = 600};
    if (mode == 2) cc.worker_timeout_ms = cc.task_timeout_ms = cc.ack_timeout_ms = 600000;
    h_coord_start(&h, eps[mode], s_root, &cc);
    pid_t w[4] = {h_worker(h.endpoint), h_worker(h.endpoint), h_worker(h.endpoint), -1};
    char sink_name[32];
    snprintf(sink_name, sizeof sink_name, "%s-sink", eps[mode]);
    loader_consumer_t *con = s_consumer(h.endpoint, sink_name);
    s_fault_t f = {.workers = w, .endpoint = h.endpoint, .mode = mode};
    // more credits than worker slots: every worker always holds tasks
    loader_stream_request_t r = {.stream = 1, .split = LOADER_VALID, .batch_size = 8,
                                 .presize = 48, .credits = 16, .ordered = mode == 1};
    h_epoch_t e;
    double t0 = nf_now_s();
    h_consume(con, &r, loader_dataset_n_items(h.ds), &e, s_fault, &f);
    double secs = nf_now_s() - t0;
    T_CHECK(f.killed_at == 8, "the fault happened mid-epoch (of %u batches)", e.n_batches);
    T_CHECK(e.ok && e.batches == e.n_batches, "%s: epoch complete: %u of %u batches",
            names[mode], e.batches, e.n_batches);
    s_check_once(&e, h.ds, LOADER_VALID);
    if (mode == 2) T_CHECK(secs < 10, "a clean leave is not waited for (%.1f s)", secs);
    fprintf(stderr, "%s: %u duplicates dropped, %u re-issued, %.2f s\n", names[mode],
            e.stats.duplicates, e.stats.reissued, secs);
    h_epoch_free(&e);
    loader_consumer_destroy(&con);
    if (mode == 1) kill(w[0], SIGCONT);
    for (int i = 0; i < 4; i++) h_worker_stop(w[i]);
    loader_coordinator_stats_t st;
    h_coord_stop(&h, &st);
    T_CHECK(st.workers_lost >= 1 && (mode == 2 || st.tasks_reissued >= 1),
            "lost %llu workers, re-issued %llu tasks", (unsigned long long)st.workers_lost,
            (unsigned long long)st.tasks_reissued);
    if (mode == 0) T_CHECK(st.workers_joined == 4, "a worker joined mid-epoch (%llu joined)",
                           (unsigned long long)st.workers_joined);
}

// ---------------------------------------------------------------------------
// 3a + 3b: hostile peers on the coordinator's ROUTER and the consumer's sink

static void s_raw(void *sock, const void *a, size_t na, const void *b, size_t nb)
{
    NF_CHECK(zmq_send(sock, a, na, b ? ZMQ_SNDMORE : 0) >= 0, "send");
    if (b) NF_CHECK(zmq_send(sock, b, nb, 0) >= 0, "send");
}

static size_t s_pack(Nf__Envelope *env, uint32_t version, const char *job, uint8_t *buf)
{
    env->version = version;
    env->job = (char *)job;
    return nf__envelope__pack(env, buf);
}

static void s_send_env(void *sock, Nf__Envelope *env, const char *job)
{
    NF_CHECK(nf_wire_send(sock, NULL, job, env, NULL, 0) == 0, "send");
}

static void s_attack_coordinator(void *ctx, const char *endpoint)
{
    nf_zmq_socket_config_t dc = {.type = ZMQ_DEALER};
    void *d = nf_zmq_socket_new(ctx, &dc);
    NF_CHECK(d && nf_zmq_connect(d, endpoint) == 0, "attacker");
    uint8_t junk[64], buf[4096];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 91 + 7);
    s_raw(d, junk, sizeof junk, NULL, 0);                         // garbage
    Nf__Heartbeat hb = NF__HEARTBEAT__INIT;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    size_t n = s_pack(&env, 7, "", buf);
    s_raw(d, buf, n, NULL, 0);                                    // wrong version
    n = s_pack(&env, NF_PROTOCOL_VERSION, "another-job", buf);
    s_raw(d, buf, n, NULL, 0);                                    // another job
    s_raw(d, buf, 0, NULL, 0);                                    // empty
    n = s_pack(&env, NF_PROTOCOL_VERSION, "", buf);
    s_raw(d, buf, n, junk, 8);                                    // payload on a heartbeat
    Nf__EpochPlan plan = NF__EPOCH_PLAN__INIT;
    Nf__Envelope penv = NF__ENVELOPE__INIT;
    penv.body_case = NF__ENVELOPE__BODY_EPOCH_PLAN;
    penv.epoch_plan = &plan;
    s_send_env(d, &penv, "");                                     // a body the coordinator never takes
    // bodies it takes, with fields out of range or from a peer it does not know
    Nf__StreamRequest sr = NF__STREAM_REQUEST__INIT;
    sr.batch_size = 0;
    sr.presize = 64;
    sr.credits = 2;
    sr.sink = "ipc:///nonexistent/x.ipc";
    Nf__Envelope senv = NF__ENVELOPE__INIT;
    senv.body_case = NF__ENVELOPE__BODY_STREAM_REQUEST;
    senv.stream_request = &sr;
    s_send_env(d, &senv, "");                                     // batch size 0
    sr.batch_size = 64;
    sr.presize = 100000;
    s_send_env(d, &senv, "");                                     // presize 100000
    sr.presize = 64;
    sr.sink = "bogus";
    s_send_env(d, &senv, "");                                     // not an endpoint
    sr.sink = "ipc:///nonexistent/x.ipc";
    sr.batch_size = 65536;
    sr.presize = 4096;
    s_send_env(d, &senv, "");                                     // a 3 TB batch
    Nf__Ack ack = NF__ACK__INIT;
    ack.seq = 123456;
    Nf__Envelope aenv = NF__ENVELOPE__INIT;
    aenv.body_case = NF__ENVELOPE__BODY_ACK;
    aenv.ack = &ack;
    s_send_env(d, &aenv, "");                                     // ack from a stranger
    Nf__Credit cr = NF__CREDIT__INIT;
    cr.n = 1000000000;
    Nf__Envelope cenv = NF__ENVELOPE__INIT;
    cenv.body_case = NF__ENVELOPE__BODY_CREDIT;
    cenv.credit = &cr;
    s_send_env(d, &cenv, "");                                     // credit from a stranger
    Nf__TaskDone td = NF__TASK_DONE__INIT;
    td.task_id = 0xFFFFFFFFFFFFull;
    Nf__Envelope tenv = NF__ENVELOPE__INIT;
    tenv.body_case = NF__ENVELOPE__BODY_TASK_DONE;
    tenv.task_done = &td;
    s_send_env(d, &tenv, "");                                     // task done from a stranger
    Nf__WorkerHello wh = NF__WORKER_HELLO__INIT;
    wh.worker_id = "evil";
    wh.slots = 0;
    Nf__Envelope wenv = NF__ENVELOPE__INIT;
    wenv.body_case = NF__ENVELOPE__BODY_WORKER_HELLO;
    wenv.worker_hello = &wh;
    s_send_env(d, &wenv, "");                                     // zero slots
    wh.slots = 100000;
    s_send_env(d, &wenv, "");                                     // absurd slots
    nf_sleep_ms(100);
    nf_zmq_close(&d);
}

static void s_attack_sink(void *ctx, const char *sink, uint32_t stream, uint32_t presize)
{
    nf_zmq_socket_config_t pc = {.type = ZMQ_PUSH};
    void *p = nf_zmq_socket_new(ctx, &pc);
    NF_CHECK(p && nf_zmq_connect(p, sink) == 0, "attacker");
    // the job id is right (the coordinator's default): these get past the job check
    uint8_t junk[256], buf[4096];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 13 + 5);
    s_raw(p, junk, sizeof junk, NULL, 0);                         // garbage
    int32_t labels[2] = {0, 0};
    uint32_t idx[2] = {0, 1};
    static uint8_t px[2 * 64 * 64 * 3];
    Nf__RawBatch b = NF__RAW_BATCH__INIT;
    b.stream = stream;
    b.seq = 0;
    b.n = 2;
    b.h = b.w = presize;
    b.c = 3;
    b.n_labels = b.n_indices = 2;
    b.labels = labels;
    b.indices = idx;
    b.payload_bytes = 2ull * presize * presize * 3;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_RAW_BATCH;
    env.raw_batch = &b;
    size_t plen = (size_t)b.payload_bytes;
    NF_CHECK(plen <= sizeof px, "presize too large for the attack buffer");
    size_t n = s_pack(&env, 99, "", buf);
    s_raw(p, buf, n, px, plen);                                   // wrong version
    n = s_pack(&env, NF_PROTOCOL_VERSION, "netteflow", buf);
    s_raw(p, buf, n, px, plen - 1);                               // payload one byte short
    s_raw(p, buf, n, NULL, 0);                                    // no payload
    b.seq = 999999;
    n = s_pack(&env, NF_PROTOCOL_VERSION, "netteflow", buf);
    s_raw(p, buf, n, px, plen);                                   // seq beyond the epoch
    b.seq = 0;
    b.h = b.w = presize / 2;
    b.payload_bytes = 2ull * (presize / 2) * (presize / 2) * 3;
    n = s_pack(&env, NF_PROTOCOL_VERSION, "netteflow", buf);
    s_raw(p, buf, n, px, (size_t)b.payload_bytes);                // not the requested presize
    b.h = b.w = presize;
    b.payload_bytes = plen;
    labels[1] = 1000;
    n = s_pack(&env, NF_PROTOCOL_VERSION, "netteflow", buf);
    s_raw(p, buf, n, px, plen);                                   // label out of range
    labels[1] = 0;
    idx[0] = 4000000000u;
    n = s_pack(&env, NF_PROTOCOL_VERSION, "netteflow", buf);
    s_raw(p, buf, n, px, plen);                                   // index out of range
    idx[0] = 0;
    b.n = 0xFFFFFFFFu;
    b.h = b.w = 0xFFFFFFFFu;
    n = s_pack(&env, NF_PROTOCOL_VERSION, "netteflow", buf);
    s_raw(p, buf, n, px, 16);                                     // absurd shape
    nf_sleep_ms(100);
    nf_zmq_close(&p);
}

typedef struct {
    void *ctx;
    const char *sink;
    uint32_t presize;
    bool done;
} s_sink_attack_t;

static void s_attack_during(uint32_t batches, void *arg)
{
    s_sink_attack_t *a = arg;
    if (batches == 3 && !a->done) {
        s_attack_sink(a->ctx, a->sink, 1, a->presize);
        a->done = true;
    }
}

static void test_hostile_coordinator_and_sink(void)
{
    void *ctx = zmq_ctx_new();
    h_coord_t h;
    h_coord_start(&h, "hostile", s_root, NULL);
    s_attack_coordinator(ctx, h.endpoint);
    pid_t w[2] = {h_worker(h.endpoint), h_worker(h.endpoint)};
    loader_consumer_t *con = s_consumer(h.endpoint, "hostile-sink");
    loader_stream_request_t r = {.stream = 1, .split = LOADER_VALID, .batch_size = 8,
                                 .presize = 32, .credits = 4};
    s_sink_attack_t a = {.ctx = ctx, .sink = loader_consumer_sink(con), .presize = 32};
    h_epoch_t e;
    h_consume(con, &r, loader_dataset_n_items(h.ds), &e, s_attack_during, &a);
    T_CHECK(e.ok && e.batches == e.n_batches && a.done, "epoch complete under attack");
    s_check_once(&e, h.ds, LOADER_VALID);
    h_epoch_free(&e);
    nf_wire_stats_t sink, ctl;
    loader_consumer_wire_stats(con, &sink, &ctl);
    T_CHECK(nf_wire_stats_dropped(&sink) == 9, "consumer sink dropped %llu of 9 hostile batches",
            (unsigned long long)nf_wire_stats_dropped(&sink));
    T_CHECK(sink.dropped[NF_WIRE_DROP_DECODE] == 1 && sink.dropped[NF_WIRE_DROP_VERSION] == 1 &&
                sink.dropped[NF_WIRE_DROP_PAYLOAD] == 2 && sink.dropped[NF_WIRE_DROP_SHAPE] == 1 &&
                sink.dropped[NF_WIRE_DROP_FIELD] == 4,
            "sink drops by reason: decode %llu version %llu payload %llu shape %llu field %llu size %llu",
            (unsigned long long)sink.dropped[NF_WIRE_DROP_DECODE],
            (unsigned long long)sink.dropped[NF_WIRE_DROP_VERSION],
            (unsigned long long)sink.dropped[NF_WIRE_DROP_PAYLOAD],
            (unsigned long long)sink.dropped[NF_WIRE_DROP_SHAPE],
            (unsigned long long)sink.dropped[NF_WIRE_DROP_FIELD],
            (unsigned long long)sink.dropped[NF_WIRE_DROP_SIZE]);
    loader_consumer_destroy(&con);
    h_worker_stop(w[0]);
    h_worker_stop(w[1]);
    loader_coordinator_stats_t st;
    h_coord_stop(&h, &st);
    T_CHECK(st.messages_dropped >= 6 && st.peers_rejected >= 6,
            "coordinator dropped %llu malformed messages, rejected %llu", 
            (unsigned long long)st.messages_dropped, (unsigned long long)st.peers_rejected);
    T_CHECK(st.workers_joined == 2, "the hostile hellos did not register workers (%llu)",
            (unsigned long long)st.workers_joined);
    zmq_ctx_term(ctx);
}

// ---------------------------------------------------------------------------
// 3c: a worker facing a hostile coordinator

typedef struct {
    loader_worker_t *w;
    int rc;
} s_wthread_t;

static void *s_worker_main(void *arg)
{
    s_wthread_t *t = arg;
    t->rc = loader_worker_run(t->w);
    return NULL;
}

static int s_recv(void *sock, const nf_wire_expect_t *ex, nf_wire_msg_t *m, int timeout_ms)
{
    nf_wire_stats_t st = {0};
    double end = nf_now_s() + timeout_ms / 1000.0;
    while (nf_now_s() < end) {
        zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 50) == 1) {
            int got = nf_wire_recv(sock, ex, m, &st, 0);
            if (got == 1) return 1;
        }
    }
    return 0;
}

static void test_hostile_coordinator_to_worker(void)
{
    void *ctx = zmq_ctx_new();
    char ep[512], sink_ep[512];
    snprintf(ep, sizeof ep, "ipc://%s/fake-coord.ipc", t_tmpdir());
    snprintf(sink_ep, sizeof sink_ep, "ipc://%s/fake-sink.ipc", t_tmpdir());
    nf_zmq_socket_config_t rc = {.type = ZMQ_ROUTER, .router_mandatory = true};
    nf_zmq_socket_config_t pc = {.type = ZMQ_PULL, .maxmsgsize = -1};
    void *router = nf_zmq_socket_new(ctx, &rc), *pull = nf_zmq_socket_new(ctx, &pc);
    NF_CHECK(nf_zmq_bind(router, ep, NULL, 0) == 0 && nf_zmq_bind(pull, sink_ep, NULL, 0) == 0, "bind");
    loader_worker_config_t wc = {.coordinator = ep, .slots = 2, .heartbeat_ms = 100,
                                 .timeout_ms = 5000, .stop_fd = -1, .zmq_ctx = ctx};
    s_wthread_t t = {.w = loader_worker_new(&wc)};
    NF_CHECK(t.w != NULL, "worker");
    pthread_t th;
    NF_CHECK(pthread_create(&th, NULL, s_worker_main, &t) == 0, "thread");
    nf_wire_expect_t ex = {.router = true, .bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_WORKER_HELLO)};
    nf_wire_msg_t m;
    T_CHECK(s_recv(router, &ex, &m, 5000) == 1, "hello from the worker");
    nf_wire_peer_t peer = m.peer;
    nf_wire_msg_close(&m);

    // the dataset root, then garbage and bad tasks
    Nf__DatasetInfo info = NF__DATASET_INFO__INIT;
    info.root = (char *)s_root;
    Nf__Envelope ienv = NF__ENVELOPE__INIT;
    ienv.body_case = NF__ENVELOPE__BODY_DATASET_INFO;
    ienv.dataset_info = &info;
    NF_CHECK(nf_wire_send(router, &peer, "j", &ienv, NULL, 0) == 0, "send");
    uint8_t junk[50];
    memset(junk, 0xAB, sizeof junk);
    NF_CHECK(zmq_send(router, peer.id, peer.len, ZMQ_SNDMORE) >= 0 &&
                 zmq_send(router, junk, sizeof junk, 0) >= 0,
             "garbage");
    uint8_t buf[4096];
    size_t n = s_pack(&ienv, 3, "j", buf);
    NF_CHECK(zmq_send(router, peer.id, peer.len, ZMQ_SNDMORE) >= 0 && zmq_send(router, buf, n, 0) >= 0,
             "wrong version");
    uint32_t idx[2] = {0, 1};
    int32_t labels[2] = {0, 0};
    char *paths[2] = {"train/c0/000.jpg", "train/c0/001.jpg"};
    Nf__BatchTask task = NF__BATCH_TASK__INIT;
    task.task_id = 77;
    task.split = NF__SPLIT__SPLIT_VALID;
    task.crop = NF__CROP_MODE__CROP_CENTER;
    task.n_indices = 2;
    task.indices = idx;
    task.n_paths = 2;
    task.paths = paths;
    task.n_labels = 2;
    task.labels = labels;
    task.presize = 32;
    task.sink = sink_ep;
    Nf__Envelope tenv = NF__ENVELOPE__INIT;
    tenv.body_case = NF__ENVELOPE__BODY_BATCH_TASK;
    tenv.batch_task = &task;
    // 1. a path out of the root
    paths[1] = "../../../etc/passwd";
    NF_CHECK(nf_wire_send(router, &peer, "j", &tenv, NULL, 0) == 0, "send");
    paths[1] = "/etc/passwd";
    NF_CHECK(nf_wire_send(router, &peer, "j", &tenv, NULL, 0) == 0, "send");
    paths[1] = "train/c0/001.jpg";
    // 2. presize 0, then absurd
    task.presize = 0;
    NF_CHECK(nf_wire_send(router, &peer, "j", &tenv, NULL, 0) == 0, "send");
    task.presize = 100000;
    NF_CHECK(nf_wire_send(router, &peer, "j", &tenv, NULL, 0) == 0, "send");
    task.presize = 32;
    // 3. paths do not match indices
    task.n_paths = 1;
    NF_CHECK(nf_wire_send(router, &peer, "j", &tenv, NULL, 0) == 0, "send");
    task.n_paths = 2;
    // 4. a sink that is not an endpoint
    task.sink = "nowhere";
    NF_CHECK(nf_wire_send(router, &peer, "j", &tenv, NULL, 0) == 0, "send");
    task.sink = sink_ep;
    // and a good task: the worker is still alive and right
    NF_CHECK(nf_wire_send(router, &peer, "j", &tenv, NULL, 0) == 0, "send");
    nf_wire_expect_t bx = {.bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_RAW_BATCH), .max_payload = 1 << 20};
    T_CHECK(s_recv(pull, &bx, &m, 10000) == 1, "the good task's batch arrived");
    if (m.env) T_CHECK(m.env->raw_batch->n == 2 && m.env->raw_batch->h == 32 &&
                           m.env->raw_batch->has_task_id && m.env->raw_batch->task_id == 77,
                       "batch of the good task");
    nf_wire_msg_close(&m);
    nf_wire_expect_t dx = {.router = true, .bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_TASK_DONE)};
    T_CHECK(s_recv(router, &dx, &m, 5000) == 1 && m.env->task_done->task_id == 77, "TaskDone");
    nf_wire_msg_close(&m);
    Nf__Control ctl = NF__CONTROL__INIT;
    ctl.cmd = NF__COMMAND__CMD_STOP;
    Nf__Envelope cenv = NF__ENVELOPE__INIT;
    cenv.body_case = NF__ENVELOPE__BODY_CONTROL;
    cenv.control = &ctl;
    NF_CHECK(nf_wire_send(router, &peer, "j", &cenv, NULL, 0) == 0, "send");
    NF_CHECK(pthread_join(th, NULL) == 0, "join");
    T_CHECK(t.rc == 0, "worker stopped cleanly on CMD_STOP");
    loader_worker_stats_t ws;
    loader_worker_stats(t.w, &ws);
    T_CHECK(ws.tasks_rejected == 6 && ws.tasks_done == 1, "worker rejected %llu of 6 bad tasks, did %llu",
            (unsigned long long)ws.tasks_rejected, (unsigned long long)ws.tasks_done);
    T_CHECK(ws.wire.dropped[NF_WIRE_DROP_DECODE] == 1 && ws.wire.dropped[NF_WIRE_DROP_VERSION] == 1,
            "worker socket counted garbage and a wrong version");
    loader_worker_destroy(&t.w);
    nf_zmq_close(&router);
    nf_zmq_close(&pull);
    zmq_ctx_term(ctx);
}

// ---------------------------------------------------------------------------
// 3d: a consumer facing a hostile coordinator

typedef struct {
    void *ctx;
    const char *endpoint;
    int rc;
} s_fake_t;

static void *s_fake_coordinator(void *arg)
{
    s_fake_t *f = arg;
    nf_zmq_socket_config_t rc = {.type = ZMQ_ROUTER, .router_mandatory = true};
    void *router = nf_zmq_socket_new(f->ctx, &rc);
    NF_CHECK(nf_zmq_bind(router, f->endpoint, NULL, 0) == 0, "bind");
    nf_wire_expect_t ex = {.router = true, .bodies = ~(uint64_t)0};
    nf_wire_msg_t m;
    uint8_t buf[4096], junk[40];
    memset(junk, 0x5A, sizeof junk);
    void *push = NULL;
    for (int served = 0; served < 2;) {
        if (s_recv(router, &ex, &m, 10000) != 1) {
            f->rc = -1;
            break;
        }
        nf_wire_peer_t peer = m.peer;
        bool asks = m.env->body_case == NF__ENVELOPE__BODY_DATASET_INFO_REQUEST ||
                    m.env->body_case == NF__ENVELOPE__BODY_STREAM_REQUEST;
        if (!asks) {  // heartbeats, acks, credits
            nf_wire_msg_close(&m);
            continue;
        }
        // garbage, a wrong version and a body a consumer never takes, before every answer
        NF_CHECK(zmq_send(router, peer.id, peer.len, ZMQ_SNDMORE) >= 0 &&
                     zmq_send(router, junk, sizeof junk, 0) >= 0, "send");
        Nf__TaskDone td = NF__TASK_DONE__INIT;
        Nf__Envelope tenv = NF__ENVELOPE__INIT;
        tenv.body_case = NF__ENVELOPE__BODY_TASK_DONE;
        tenv.task_done = &td;
        size_t n = s_pack(&tenv, 5, "", buf);
        NF_CHECK(zmq_send(router, peer.id, peer.len, ZMQ_SNDMORE) >= 0 &&
                     zmq_send(router, buf, n, 0) >= 0, "send");
        NF_CHECK(nf_wire_send(router, &peer, "", &tenv, NULL, 0) == 0, "send");
        if (m.env->body_case == NF__ENVELOPE__BODY_DATASET_INFO_REQUEST) {
            char *classes[2] = {"a", "b"};
            Nf__DatasetInfo di = NF__DATASET_INFO__INIT;
            di.n_classes = 2;
            di.classes = classes;
            di.n_train = 10;
            di.n_valid = 10;
            Nf__Envelope env = NF__ENVELOPE__INIT;
            env.body_case = NF__ENVELOPE__BODY_DATASET_INFO;
            env.dataset_info = &di;
            NF_CHECK(nf_wire_send(router, &peer, "", &env, NULL, 0) == 0, "send");
            served++;
        } else if (m.env->body_case == NF__ENVELOPE__BODY_STREAM_REQUEST) {
            const Nf__StreamRequest *r = m.env->stream_request;
            Nf__EpochPlan bogus = NF__EPOCH_PLAN__INIT;  // a plan for a stream never asked for
            bogus.stream = r->stream + 7;
            bogus.n_batches = 1;
            bogus.n_samples = 2;
            bogus.batch_size = r->batch_size;
            Nf__Envelope env = NF__ENVELOPE__INIT;
            env.body_case = NF__ENVELOPE__BODY_EPOCH_PLAN;
            env.epoch_plan = &bogus;
            NF_CHECK(nf_wire_send(router, &peer, "", &env, NULL, 0) == 0, "send");
            Nf__EpochPlan plan = bogus;
            plan.stream = r->stream;
            plan.epoch = r->epoch;
            env.epoch_plan = &plan;
            NF_CHECK(nf_wire_send(router, &peer, "", &env, NULL, 0) == 0, "send");
            // the one batch, as a worker would send it
            nf_zmq_socket_config_t pc = {.type = ZMQ_PUSH};
            push = nf_zmq_socket_new(f->ctx, &pc);
            NF_CHECK(push && nf_zmq_connect(push, r->sink) == 0, "push");
            int32_t labels[2] = {1, 0};
            uint32_t idx[2] = {3, 4};
            Nf__RawBatch b = NF__RAW_BATCH__INIT;
            b.stream = r->stream;
            b.epoch = r->epoch;
            b.n = 2;
            b.h = b.w = r->presize;
            b.c = 3;
            b.n_labels = b.n_indices = 2;
            b.labels = labels;
            b.indices = idx;
            b.payload_bytes = 2ull * r->presize * r->presize * 3;
            Nf__Envelope benv = NF__ENVELOPE__INIT;
            benv.body_case = NF__ENVELOPE__BODY_RAW_BATCH;
            benv.raw_batch = &b;
            zmq_msg_t pay;
            zmq_msg_init_size(&pay, (size_t)b.payload_bytes);
            memset(zmq_msg_data(&pay), 9, (size_t)b.payload_bytes);
            NF_CHECK(nf_wire_send(push, NULL, "", &benv, &pay, 0) == 0, "send batch");
            nf_sleep_ms(50);
            Nf__EpochDone d = NF__EPOCH_DONE__INIT;
            d.stream = r->stream;
            d.epoch = r->epoch;
            d.n_batches = 1;
            d.n_samples = 2;
            Nf__Envelope denv = NF__ENVELOPE__INIT;
            denv.body_case = NF__ENVELOPE__BODY_EPOCH_DONE;
            denv.epoch_done = &d;
            NF_CHECK(nf_wire_send(router, &peer, "", &denv, NULL, 0) == 0, "send");
            served++;
        }
        nf_wire_msg_close(&m);
    }
    nf_sleep_ms(300);
    nf_zmq_close(&push);
    nf_zmq_close(&router);
    return NULL;
}

static void test_hostile_coordinator_to_consumer(void)
{
    void *ctx = zmq_ctx_new();
    char ep[512];
    snprintf(ep, sizeof ep, "ipc://%s/fake-coord2.ipc", t_tmpdir());
    s_fake_t f = {.ctx = ctx, .endpoint = ep};
    pthread_t th;
    NF_CHECK(pthread_create(&th, NULL, s_fake_coordinator, &f) == 0, "thread");
    nf_sleep_ms(50);
    loader_consumer_t *con = s_consumer(ep, "fake-coord2-sink");
    loader_stream_request_t r = {.stream = 5, .split = LOADER_VALID, .batch_size = 2, .presize = 16};
    loader_epoch_plan_t plan;
    T_CHECK(loader_consumer_start(con, &r, &plan, 10000) == 0 && plan.n_batches == 1,
            "epoch started despite the junk");
    loader_batch_t *b;
    T_CHECK(loader_consumer_next(con, 5, &b, 10000) == 1 && b->n == 2 && b->pixels[0] == 9,
            "the batch");
    loader_consumer_release(con, &b);
    T_CHECK(loader_consumer_next(con, 5, &b, 10000) == 0, "then the end of the epoch");
    nf_wire_stats_t ctl;
    loader_consumer_wire_stats(con, NULL, &ctl);
    T_CHECK(ctl.dropped[NF_WIRE_DROP_DECODE] == 2 && ctl.dropped[NF_WIRE_DROP_VERSION] == 2 &&
                ctl.dropped[NF_WIRE_DROP_BODY] == 2 && ctl.dropped[NF_WIRE_DROP_FIELD] == 1,
            "consumer control socket: decode %llu version %llu body %llu field %llu",
            (unsigned long long)ctl.dropped[NF_WIRE_DROP_DECODE],
            (unsigned long long)ctl.dropped[NF_WIRE_DROP_VERSION],
            (unsigned long long)ctl.dropped[NF_WIRE_DROP_BODY],
            (unsigned long long)ctl.dropped[NF_WIRE_DROP_FIELD]);
    loader_consumer_destroy(&con);
    NF_CHECK(pthread_join(th, NULL) == 0, "join");
    T_CHECK(f.rc == 0, "fake coordinator served");
    zmq_ctx_term(ctx);
}

int main(void)
{
    setenv("NF_LOG_LEVEL", "error", 0);
    nf_log_init(&(nf_log_config_t){.stage = "test", .level = NF_LOG_ERROR});
    s_root = h_make_dataset("rel", 4, 30, 60, false, false);
    test_dead_and_stuck_workers(0);
    test_dead_and_stuck_workers(1);
    test_dead_and_stuck_workers(2);
    test_hostile_coordinator_and_sink();
    test_hostile_coordinator_to_worker();
    test_hostile_coordinator_to_consumer();
    return t_done();
}
