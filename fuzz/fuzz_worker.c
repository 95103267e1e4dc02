/*
 * fuzz_worker.c: libFuzzer target for everything a loader worker
 * (loader/worker.h) does with what its coordinator sends: per input a fresh
 * worker (in a thread) joins a fake coordinator and gets the input's records
 * (tasks, dataset info, heartbeats, control, garbage). A record that decodes
 * as a BatchTask gets the fake's sink (so batches come back here) and is
 * re-packed; the rest go as they are. Then a known-good task follows and its
 * TaskDone must come back (the worker is still working), unless the input
 * told the worker to stop. Every batch the worker sends is validated as a
 * consumer would.
 *
 * Bounds of this harness, not of the product: tasks of more than 64 files or
 * a presize over 128 are skipped (the product allows batches up to 2 GiB,
 * which would only measure the allocator).
 */
#include "check.h"
#include "fuzzmsg.h"
#include "jpegfix.h"
#include "log.h"
#include "worker.h"
#include "timeutil.h"
#include "zmqutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { S_GOOD_TASK = 0xF0222 };

static void *s_ctx;
static const char *s_root;

typedef struct {
    loader_worker_t *w;
    volatile bool done;
} s_thread_t;

static void *s_run(void *arg)
{
    s_thread_t *t = arg;
    (void)loader_worker_run(t->w);
    t->done = true;
    return NULL;
}

static void s_init(void)
{
    nf_log_init(&(nf_log_config_t){.stage = "fuzz", .level = NF_LOG_ERROR});
    s_ctx = fz_context();
    s_root = fz_tmpdir("worker");
    char path[1024];
    // the layout the seeds name: train/c0/00i.jpg, train/c0/bad<k>.jpg, train/c0/fifo.jpg
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/train/c0/%03d.jpg", s_root, i);
        jf_write_good(path, 40 + 20 * i, 64, (uint32_t)i, (jf_kind_t)(i % 4));
    }
    for (int k = 0; k < JF_BAD_N; k++) {
        snprintf(path, sizeof path, "%s/train/c0/bad%d.jpg", s_root, k);
        jf_write_bad(path, (jf_bad_t)k);
    }
    snprintf(path, sizeof path, "%s/train/c0/fifo.jpg", s_root);  // must not block a worker
    NF_CHECK(mkfifo(path, 0600) == 0, "mkfifo");
}

static void s_send(void *router, const nf_wire_peer_t *peer, Nf__Envelope *env)
{
    NF_CHECK(nf_wire_send(router, peer, "netteflow", env, NULL, ZMQ_DONTWAIT) == 0, "send");
}

// Checks a batch as a consumer would; returns the task id (0 when none).
static uint64_t s_check_batch(const nf_wire_msg_t *m)
{
    const Nf__RawBatch *b = m->env->raw_batch;
    NF_CHECK(b->c == 3 && b->h == b->w && b->n_labels == b->n && b->n_indices == b->n,
             "the worker sent a consistent batch");
    NF_CHECK(zmq_msg_size((zmq_msg_t *)&m->payload) == (size_t)b->n * b->h * b->w * 3, "payload");
    return b->has_task_id ? b->task_id : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned serial;
    if (!s_ctx) s_init();
    fz_record_t rec[FZ_MAX_RECORDS];
    size_t n = fz_records(data, size, rec);
    char ep[64], sink[64];
    snprintf(ep, sizeof ep, "inproc://fuzz-worker-coord-%u", serial);
    snprintf(sink, sizeof sink, "inproc://fuzz-worker-sink-%u", serial++);
    nf_zmq_socket_config_t rc = {.type = ZMQ_ROUTER, .sndhwm = 100000, .router_mandatory = true};
    nf_zmq_socket_config_t pc = {.type = ZMQ_PULL, .rcvhwm = 1000, .maxmsgsize = -1};
    void *router = nf_zmq_socket_new(s_ctx, &rc), *pull = nf_zmq_socket_new(s_ctx, &pc);
    NF_CHECK(nf_zmq_bind(router, ep, NULL, 0) == 0 && nf_zmq_bind(pull, sink, NULL, 0) == 0, "bind");
    loader_worker_config_t wc = {.coordinator = ep, .slots = 4, .send_timeout_ms = 2000,
                                 .stop_fd = -1, .zmq_ctx = s_ctx};
    s_thread_t t = {.w = loader_worker_new(&wc)};
    NF_CHECK(t.w, "worker");
    pthread_t th;
    NF_CHECK(pthread_create(&th, NULL, s_run, &t) == 0, "thread");
    nf_wire_expect_t rx = {.router = true, .bodies = ~(uint64_t)0};
    nf_wire_expect_t bx = {.bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_RAW_BATCH),
                           .max_payload = (uint64_t)1 << 31};
    nf_wire_stats_t st = {0};
    nf_wire_msg_t m;
    nf_wire_peer_t peer = {0};
    for (;;) {
        zmq_pollitem_t it = {.socket = router, .events = ZMQ_POLLIN};
        NF_CHECK(zmq_poll(&it, 1, 5000) == 1, "no hello from the worker");
        if (nf_wire_recv(router, &rx, &m, &st, 0) != 1) continue;
        bool hello = m.env->body_case == NF__ENVELOPE__BODY_WORKER_HELLO;
        if (hello) peer = m.peer;
        nf_wire_msg_close(&m);
        if (hello) break;
    }
    Nf__DatasetInfo di = NF__DATASET_INFO__INIT;
    di.root = (char *)s_root;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_DATASET_INFO;
    env.dataset_info = &di;
    s_send(router, &peer, &env);
    for (size_t i = 0; i < n; i++) {
        Nf__Envelope *e = nf__envelope__unpack(NULL, rec[i].env_len, rec[i].env);
        if (e && e->body_case == NF__ENVELOPE__BODY_BATCH_TASK) {
            Nf__BatchTask *bt = e->batch_task;
            if (bt->n_indices + bt->n_spares <= 64 && bt->presize <= 128) {
                char *own_sink = bt->sink, *own_key = bt->sink_key;  // freed with e
                bt->sink = sink;
                bt->sink_key = NULL;
                size_t len;
                uint8_t *buf = fz_pack(e, &len);
                bt->sink = own_sink;
                bt->sink_key = own_key;
                fz_record_t r = {.env = buf, .env_len = len};
                (void)fz_send(router, &peer, &r);
                free(buf);
            }
        } else {
            (void)fz_send(router, &peer, &rec[i]);
        }
        if (e) nf__envelope__free_unpacked(e, NULL);
    }
    // a good task last: when its TaskDone comes back, everything before was handled
    uint32_t idx[2] = {0, 1};
    int32_t labels[2] = {0, 0};
    char *paths[2] = {"train/c0/000.jpg", "train/c0/bad3.jpg"};
    Nf__BatchTask task = NF__BATCH_TASK__INIT;
    task.task_id = S_GOOD_TASK;
    task.split = NF__SPLIT__SPLIT_VALID;
    task.crop = NF__CROP_MODE__CROP_CENTER;
    task.n_indices = task.n_paths = task.n_labels = 2;
    task.indices = idx;
    task.paths = paths;
    task.labels = labels;
    task.presize = 16;
    task.sink = sink;
    env.body_case = NF__ENVELOPE__BODY_BATCH_TASK;
    env.batch_task = &task;
    s_send(router, &peer, &env);
    bool good_done = false;
    double deadline = nf_now_s() + 10;
    while (!good_done && !t.done) {  // t.done: the input told the worker to stop
        zmq_pollitem_t items[2] = {{.socket = router, .events = ZMQ_POLLIN},
                                   {.socket = pull, .events = ZMQ_POLLIN}};
        int ready = zmq_poll(items, 2, 20);
        NF_CHECK(ready > 0 || nf_now_s() < deadline, "the worker stopped working");
        if ((items[1].revents & ZMQ_POLLIN) && nf_wire_recv(pull, &bx, &m, &st, 0) == 1) {
            (void)s_check_batch(&m);
            nf_wire_msg_close(&m);
        }
        if ((items[0].revents & ZMQ_POLLIN) && nf_wire_recv(router, &rx, &m, &st, 0) == 1) {
            good_done = m.env->body_case == NF__ENVELOPE__BODY_TASK_DONE &&
                        m.env->task_done->task_id == S_GOOD_TASK;
            nf_wire_msg_close(&m);
        }
    }
    Nf__Control ctl = NF__CONTROL__INIT;
    ctl.cmd = NF__COMMAND__CMD_STOP;
    env.body_case = NF__ENVELOPE__BODY_CONTROL;
    env.control = &ctl;
    s_send(router, &peer, &env);
    NF_CHECK(pthread_join(th, NULL) == 0, "join");
    loader_worker_destroy(&t.w);
    nf_zmq_close(&router);
    nf_zmq_close(&pull);
    return 0;
}
