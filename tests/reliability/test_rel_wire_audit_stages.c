/*
 * test_rel_wire_audit_stages.c: the wire-trust audit (docs/reliability.md) of
 * the sockets the end-to-end stages added, each gap it found a regression:
 *   - augment server (ROUTER): a presize over the loader's 4096 is refused at
 *     once (it used to be forwarded, refused without an answer by the
 *     coordinator, and augment waited 60 s and exited); a raw batch over 1 GiB
 *     at the presize is refused; one client holds at most 32 streams; a
 *     goodbye from a client it does not know does not count as a client lost;
 *     after all of it the server still answers;
 *   - augment client (DEALER) against a fake server: a DatasetInfo whose item
 *     count overflows 32 bits, EpochPlans of the wrong split, of a batch count
 *     that does not follow from the samples, or of more samples than the split
 *     holds, TensorBatches without their payload frame (a CUDA IPC handle
 *     instead: the client handed out a pointer to nothing), with NaN Normalize
 *     statistics, another pass, a label >= classes, and an EpochDone before the
 *     batches arrived, are all dropped and counted; the right messages that
 *     follow are taken and the epoch ends;
 *   - trainer announce (ROUTER): results for an epoch never announced, naming
 *     another checkpoint, with an accuracy outside [0, 1], a negative loss, or
 *     TTA for a checkpoint that is not the final one are dropped and counted;
 *     a NaN loss (a diverged model) and the final TTA are taken;
 *   - evaluator --follow: announcements out of range are refused, replays are
 *     not queued twice, the pending queue is bounded, and only regular files
 *     under the size limit are opened (a FIFO would block the open forever).
 */
#include "announce.h"
#include "client.h"
#include "consumer.h"
#include "follow.h"
#include "harness.h"
#include "log.h"
#include "server.h"
#include "testlib.h"
#include "timeutil.h"
#include "wire.h"
#include "zmqutil.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void s_send(void *sock, const nf_wire_peer_t *peer, Nf__Envelope *env, zmq_msg_t *payload)
{
    NF_CHECK(nf_wire_send(sock, peer, "", env, payload, 0) == 0, "send: %s", zmq_strerror(errno));
}

// Waits up to ms for a message of body `want` on sock; others are skipped.
// Returns the message (close it), or env NULL when none came.
static nf_wire_msg_t s_wait(void *sock, const nf_wire_expect_t *ex, int want, int ms)
{
    nf_wire_stats_t st = {0};
    int64_t end = nf_now_ms() + ms;
    nf_wire_msg_t m = {0};
    while (nf_now_ms() < end) {
        zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 50) != 1) continue;
        if (nf_wire_recv(sock, ex, &m, &st, 0) != 1) continue;
        if ((int)m.env->body_case == want) return m;
        nf_wire_msg_close(&m);
    }
    memset(&m, 0, sizeof m);
    return m;
}

// ---------------------------------------------------------------------------
// augment server

typedef struct {
    augment_server_t *srv;
    pthread_t thread;
    int stop[2];
    int rc;
} s_srv_t;

static void *s_srv_main(void *arg)
{
    s_srv_t *s = arg;
    s->rc = augment_server_run(s->srv);
    return NULL;
}

static Nf__TensorStreamRequest s_request(uint32_t stream, uint32_t bs, uint32_t size, uint32_t presize)
{
    Nf__TensorStreamRequest r = NF__TENSOR_STREAM_REQUEST__INIT;
    r.stream = stream;
    r.split = NF__SPLIT__SPLIT_VALID;
    r.mode = NF__AUG_MODE__AUG_VALID;
    r.batch_size = bs;
    r.size = size;
    r.presize = presize;
    r.credits = 1;
    return r;
}

static void test_server(void *ctx)
{
    const char *root = h_make_dataset("ds", 2, 4, 4, false, false);
    h_coord_t co;
    h_coord_start(&co, "coord", root, NULL);
    s_srv_t s = {0};
    NF_CHECK(pipe(s.stop) == 0, "pipe");
    char ep[600], sink[600];
    snprintf(ep, sizeof ep, "ipc://%s/aug.ipc", t_tmpdir());
    snprintf(sink, sizeof sink, "ipc://%s/aug-sink.ipc", t_tmpdir());
    augment_server_config_t c = {.coordinator = co.endpoint, .bind = ep, .sink = sink,
                                 .threads = 1, .heartbeat_ms = 100, .stop_fd = s.stop[0],
                                 .zmq_ctx = ctx};
    s.srv = augment_server_new(&c);
    NF_CHECK(s.srv && pthread_create(&s.thread, NULL, s_srv_main, &s) == 0, "augment server");

    nf_zmq_socket_config_t dc = {.type = ZMQ_DEALER, .sndhwm = 1000, .rcvhwm = 1000};
    void *d = nf_zmq_socket_new(ctx, &dc);
    NF_CHECK(d && nf_zmq_connect(d, ep) == 0, "dealer");
    nf_wire_expect_t ex = {.bodies = ~(uint64_t)0};
    // a goodbye first: no client of this server yet, none is lost
    Nf__Control ctl = NF__CONTROL__INIT;
    ctl.cmd = NF__COMMAND__CMD_STOP;
    Nf__Envelope e = NF__ENVELOPE__INIT;
    e.body_case = NF__ENVELOPE__BODY_CONTROL;
    e.control = &ctl;
    s_send(d, NULL, &e, NULL);
    // presize over the loader's limit, and a raw batch over 1 GiB at the presize
    Nf__TensorStreamRequest big = s_request(1, 8, 32, 5000);
    e.body_case = NF__ENVELOPE__BODY_TENSOR_STREAM_REQUEST;
    e.tensor_stream_request = &big;
    int64_t t0 = nf_now_ms();
    s_send(d, NULL, &e, NULL);
    Nf__TensorStreamRequest raw = s_request(2, 4096, 2, 4096);
    e.tensor_stream_request = &raw;
    s_send(d, NULL, &e, NULL);
    Nf__DatasetInfoRequest dq = NF__DATASET_INFO_REQUEST__INIT;
    Nf__Envelope de = NF__ENVELOPE__INIT;
    de.body_case = NF__ENVELOPE__BODY_DATASET_INFO_REQUEST;
    de.dataset_info_request = &dq;
    s_send(d, NULL, &de, NULL);
    nf_wire_msg_t m = s_wait(d, &ex, NF__ENVELOPE__BODY_DATASET_INFO, 20000);
    T_CHECK(m.env && nf_now_ms() - t0 < 10000,
            "the server answers at once after the refused requests (%lld ms)",
            (long long)(nf_now_ms() - t0));
    nf_wire_msg_close(&m);
    // 32 streams of one client are served, the 33rd is refused
    uint32_t plans = 0;
    for (uint32_t i = 0; i < 33; i++) {
        Nf__TensorStreamRequest ok = s_request(100 + i, 2, 16, 24);
        e.tensor_stream_request = &ok;
        s_send(d, NULL, &e, NULL);
    }
    for (nf_wire_msg_t p; (p = s_wait(d, &ex, NF__ENVELOPE__BODY_EPOCH_PLAN, 3000)).env;) {
        plans++;
        nf_wire_msg_close(&p);
    }
    T_CHECK(plans == 32, "32 streams of one client started (%u)", plans);
    NF_CHECK(write(s.stop[1], "x", 1) == 1, "write");
    NF_CHECK(pthread_join(s.thread, NULL) == 0, "join");
    T_CHECK(s.rc == 0, "the server ran until stopped (%d)", s.rc);
    augment_server_stats_t st;
    augment_server_stats(s.srv, &st);
    T_CHECK(st.rejected == 3, "3 requests refused (%llu)", (unsigned long long)st.rejected);
    T_CHECK(st.peers_lost == 0, "a goodbye of no client loses none (%llu)",
            (unsigned long long)st.peers_lost);
    augment_server_destroy(&s.srv);
    nf_zmq_close(&d);
    close(s.stop[0]);
    close(s.stop[1]);
    h_coord_stop(&co, NULL);
}

// ---------------------------------------------------------------------------
// augment client against a fake server

enum { S_CLASSES = 3, S_VALID = 10, S_BS = 4, S_SIZE = 2 };

typedef struct {
    void *router;
    bool ok;
} s_fake_t;

static void s_batch(void *router, const nf_wire_peer_t *peer, uint32_t stream, uint32_t seq,
                    uint32_t n, int variant)
{
    int32_t labels[S_BS];
    uint32_t idx[S_BS];
    for (uint32_t i = 0; i < n; i++) {
        labels[i] = (int32_t)(i % S_CLASSES);
        idx[i] = seq * S_BS + i;
    }
    float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.25f, 0.25f, 0.25f};
    Nf__TensorBatch b = NF__TENSOR_BATCH__INIT;
    b.stream = stream;
    b.seq = seq;
    b.split = NF__SPLIT__SPLIT_VALID;
    b.n = n;
    b.h = b.w = S_SIZE;
    b.c = 3;
    b.dtype = NF__DTYPE__DTYPE_F32;
    b.layout = NF__LAYOUT__LAYOUT_NHWC;
    b.n_labels = b.n_indices = n;
    b.labels = labels;
    b.indices = idx;
    b.n_norm_mean = b.n_norm_std = 3;
    b.norm_mean = mean;
    b.norm_std = std;
    b.payload_bytes = (uint64_t)n * S_SIZE * S_SIZE * 3 * sizeof(float);
    b.has_pass = true;
    uint8_t handle[64] = {1};
    bool payload = true;
    if (variant == 1) {  // a CUDA IPC handle instead of the bytes
        b.has_cuda_ipc_handle = true;
        b.cuda_ipc_handle.len = sizeof handle;
        b.cuda_ipc_handle.data = handle;
        payload = false;
    } else if (variant == 2) {
        std[1] = NAN;
    } else if (variant == 3) {
        b.pass = 1;
    } else if (variant == 4) {
        labels[0] = S_CLASSES;
    }
    Nf__Envelope e = NF__ENVELOPE__INIT;
    e.body_case = NF__ENVELOPE__BODY_TENSOR_BATCH;
    e.tensor_batch = &b;
    zmq_msg_t pl;
    if (payload) {
        NF_CHECK(zmq_msg_init_size(&pl, b.payload_bytes) == 0, "msg");
        float *px = zmq_msg_data(&pl);
        for (size_t i = 0; i < b.payload_bytes / sizeof(float); i++) px[i] = (float)seq;
    }
    s_send(router, peer, &e, payload ? &pl : NULL);
}

static void *s_fake_server(void *arg)
{
    s_fake_t *f = arg;
    nf_wire_expect_t ex = {.router = true, .bodies = ~(uint64_t)0};
    nf_wire_stats_t st = {0};
    for (bool done = false; !done;) {
        zmq_pollitem_t it = {.socket = f->router, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 10000) != 1) return NULL;
        nf_wire_msg_t m;
        if (nf_wire_recv(f->router, &ex, &m, &st, 0) != 1) continue;
        Nf__Envelope e = NF__ENVELOPE__INIT;
        if (m.env->body_case == NF__ENVELOPE__BODY_DATASET_INFO_REQUEST) {
            char *classes[S_CLASSES] = {"a", "b", "c"};
            Nf__DatasetInfo di = NF__DATASET_INFO__INIT;
            di.n_classes = S_CLASSES;
            di.classes = classes;
            di.n_train = 0xFFFFFFF0u;  // + 0x20 wraps to 16
            di.n_valid = 0x20;
            e.body_case = NF__ENVELOPE__BODY_DATASET_INFO;
            e.dataset_info = &di;
            s_send(f->router, &m.peer, &e, NULL);
            di.n_train = 6;
            di.n_valid = S_VALID;
            s_send(f->router, &m.peer, &e, NULL);
        } else if (m.env->body_case == NF__ENVELOPE__BODY_TENSOR_STREAM_REQUEST) {
            uint32_t stream = m.env->tensor_stream_request->stream;
            Nf__EpochPlan p = NF__EPOCH_PLAN__INIT;
            p.stream = stream;
            p.batch_size = S_BS;
            p.split = NF__SPLIT__SPLIT_TRAIN;  // asked for valid
            p.n_samples = S_VALID;
            p.n_batches = 3;
            e.body_case = NF__ENVELOPE__BODY_EPOCH_PLAN;
            e.epoch_plan = &p;
            s_send(f->router, &m.peer, &e, NULL);
            p.split = NF__SPLIT__SPLIT_VALID;
            p.n_batches = 1u << 20;  // 10 samples in batches of 4 are 3 batches
            s_send(f->router, &m.peer, &e, NULL);
            p.n_samples = 40;  // more than the split holds
            p.n_batches = 10;
            s_send(f->router, &m.peer, &e, NULL);
            p.n_samples = S_VALID;
            p.n_batches = 3;
            s_send(f->router, &m.peer, &e, NULL);
            for (int v = 1; v <= 4; v++) s_batch(f->router, &m.peer, stream, 0, S_BS, v);
            Nf__EpochDone d = NF__EPOCH_DONE__INIT;
            d.stream = stream;
            d.n_batches = 3;
            d.n_samples = S_VALID;
            Nf__Envelope de = NF__ENVELOPE__INIT;
            de.body_case = NF__ENVELOPE__BODY_EPOCH_DONE;
            de.epoch_done = &d;
            s_send(f->router, &m.peer, &de, NULL);  // before any batch
            s_batch(f->router, &m.peer, stream, 0, S_BS, 0);
            s_batch(f->router, &m.peer, stream, 1, S_BS, 0);
            s_batch(f->router, &m.peer, stream, 2, S_VALID - 2 * S_BS, 0);
            s_send(f->router, &m.peer, &de, NULL);
            done = true;
        }
        nf_wire_msg_close(&m);
    }
    f->ok = true;
    return NULL;
}

static void test_client(void *ctx)
{
    char ep[600];
    snprintf(ep, sizeof ep, "ipc://%s/fake-aug.ipc", t_tmpdir());
    nf_zmq_socket_config_t rc = {.type = ZMQ_ROUTER, .router_mandatory = true, .sndhwm = 1000};
    s_fake_t f = {.router = nf_zmq_socket_new(ctx, &rc)};
    NF_CHECK(f.router && nf_zmq_bind(f.router, ep, NULL, 0) == 0, "bind");
    pthread_t th;
    NF_CHECK(pthread_create(&th, NULL, s_fake_server, &f) == 0, "thread");
    augment_client_config_t cc = {.endpoint = ep, .name = "test", .stop_fd = -1, .zmq_ctx = ctx,
                                  .max_batch_bytes = 4096};
    augment_client_t *cl = augment_client_new(&cc);
    NF_CHECK(cl, "client");
    augment_stream_request_t q = {.stream = 5, .split = 1, .mode = AUGMENT_MODE_VALID,
                                  .batch_size = S_BS, .size = S_SIZE, .presize = 4, .credits = 8};
    augment_stream_plan_t plan = {0};
    // no augment_client_dataset first: the start gets the description itself
    T_CHECK(augment_client_start(cl, &q, &plan, 10000) == 0, "the stream starts");
    T_CHECK(plan.n_batches == 3 && plan.n_samples == S_VALID, "the consistent plan (%u batches)",
            plan.n_batches);
    uint32_t got = 0, samples = 0;
    for (;;) {
        augment_tensor_batch_t *b = NULL;
        int r = augment_client_next(cl, 5, &b, 10000);
        if (r <= 0) {
            T_CHECK(r == 0, "the epoch ends (%s)", strerror(errno));
            break;
        }
        const float *px = b->pixels;
        T_CHECK(b->seq == got && px[0] == (float)b->seq && b->labels[0] < S_CLASSES &&
                    b->std[1] == 0.25f,
                "batch %u is the good one", b->seq);
        samples += (uint32_t)b->n;
        got++;
        augment_client_release(cl, &b);
    }
    T_CHECK(got == 3 && samples == S_VALID, "3 batches, %u samples (%u, %u)", S_VALID, got, samples);
    NF_CHECK(pthread_join(th, NULL) == 0, "join");
    T_CHECK(f.ok, "the fake server served");
    nf_wire_stats_t ws;
    augment_client_wire_stats(cl, &ws);
    // 1 DatasetInfo + 3 plans + 4 batches + 1 EpochDone
    T_CHECK(ws.dropped[NF_WIRE_DROP_FIELD] == 9, "9 messages dropped by the client's checks (%llu)",
            (unsigned long long)ws.dropped[NF_WIRE_DROP_FIELD]);
    augment_client_destroy(&cl);
    nf_zmq_close(&f.router);
}

// ---------------------------------------------------------------------------
// trainer announce

static void s_result(void *d, const char *ckpt, uint32_t epoch, double loss, double acc, int tta)
{
    Nf__EvalResult r = NF__EVAL_RESULT__INIT;
    r.checkpoint = (char *)ckpt;
    r.epoch = epoch;
    r.valid_loss = loss;
    r.accuracy = acc;
    r.n_samples = 10;
    if (tta) {
        r.has_tta_accuracy = r.has_tta_loss = true;
        r.tta_accuracy = tta > 1 ? 2.0 : 0.5;
        r.tta_loss = 0.7;
    }
    Nf__Envelope e = NF__ENVELOPE__INIT;
    e.body_case = NF__ENVELOPE__BODY_EVAL_RESULT;
    e.eval_result = &r;
    s_send(d, NULL, &e, NULL);
}

static void test_announce(void *ctx)
{
    char ep[600], c1[600], c2[600];
    snprintf(ep, sizeof ep, "ipc://%s/trainer.ipc", t_tmpdir());
    snprintf(c1, sizeof c1, "%s/ckpt-1.safetensors", t_tmpdir());
    snprintf(c2, sizeof c2, "%s/ckpt-2.safetensors", t_tmpdir());
    announce_config_t ac = {.zmq_ctx = ctx, .endpoint = ep};
    announce_t *a = announce_new(&ac);
    NF_CHECK(a, "announce");
    announce_checkpoint(a, &(announce_checkpoint_t){.path = c1, .epoch = 1, .arch = "x"});
    announce_checkpoint(a, &(announce_checkpoint_t){.path = c2, .epoch = 2, .arch = "x",
                                                    .is_final = true});
    nf_zmq_socket_config_t dc = {.type = ZMQ_DEALER, .sndhwm = 1000};
    void *d = nf_zmq_socket_new(ctx, &dc);
    NF_CHECK(d && nf_zmq_connect(d, ep) == 0, "dealer");
    s_result(d, c1, 3, 0.5, 0.5, 0);        // never announced
    s_result(d, c2, 1, 0.5, 0.5, 0);        // epoch 1 is c1
    s_result(d, c1, 1, 0.5, 1.5, 0);        // accuracy > 1
    s_result(d, c1, 1, -0.5, 0.5, 0);       // negative loss
    s_result(d, c1, 1, 0.5, NAN, 0);        // NaN accuracy
    s_result(d, c1, 1, 0.5, 0.5, 1);        // TTA of a checkpoint that is not final
    s_result(d, c2, 2, 0.5, 0.5, 2);        // TTA accuracy 2
    s_result(d, c1, 1, NAN, 0.25, 0);       // a diverged model: taken
    s_result(d, c2, 2, 0.5, 0.5, 1);        // the final TTA: taken
    announce_result_t res[16];
    int n = 0;
    for (int64_t end = nf_now_ms() + 10000; n < 2 && nf_now_ms() < end;)
        n += announce_poll(a, 100, res + n, 16 - n);
    T_CHECK(n == 2, "2 results taken (%d)", n);
    T_CHECK(n >= 1 && res[0].epoch == 1 && isnan(res[0].valid_loss) && res[0].accuracy == 0.25,
            "the NaN-loss result of epoch 1");
    T_CHECK(n >= 2 && res[1].epoch == 2 && res[1].has_tta && res[1].tta_accuracy == 0.5,
            "the final TTA result");
    nf_wire_stats_t ws;
    announce_wire_stats(a, &ws);
    T_CHECK(ws.dropped[NF_WIRE_DROP_FIELD] == 7, "7 results dropped (%llu)",
            (unsigned long long)ws.dropped[NF_WIRE_DROP_FIELD]);
    nf_zmq_close(&d);
    announce_destroy(&a, NULL);
}

// ---------------------------------------------------------------------------
// evaluator --follow

static int s_offer(eval_follow_t *f, const char *path, uint32_t epoch, uint32_t size)
{
    Nf__CheckpointAnnounce a = NF__CHECKPOINT_ANNOUNCE__INIT;
    a.path = (char *)path;
    a.arch = "xresnet18";
    a.epoch = epoch;
    a.has_size = size != 0;
    a.size = size;
    const char *why = NULL;
    int r = eval_follow_offer(f, &a, &why);
    T_CHECK(r >= 0 || why, "a refusal says why");
    return r;
}

static void test_follow(void)
{
    eval_follow_t *f = eval_follow_new(&(eval_follow_config_t){.max_pending = 3,
                                                               .max_file_bytes = 1 << 20});
    char good[600], fifo[600], big[600], name[1100];
    snprintf(good, sizeof good, "%s/good.safetensors", t_tmpdir());
    snprintf(fifo, sizeof fifo, "%s/fifo.safetensors", t_tmpdir());
    snprintf(big, sizeof big, "%s/big.safetensors", t_tmpdir());
    T_CHECK(s_offer(f, "", 1, 0) < 0, "an empty path is refused");
    T_CHECK(s_offer(f, "a\nb", 1, 0) < 0, "a path with a control character is refused");
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = 0;
    T_CHECK(s_offer(f, name, 1, 0) < 0, "a path of 1099 bytes is refused");
    T_CHECK(s_offer(f, good, 0, 0) < 0 && s_offer(f, good, 1u << 24, 0) < 0,
            "epochs 0 and 2^24 are refused");
    T_CHECK(s_offer(f, good, 1, 5000) < 0, "size 5000 is refused");
    T_CHECK(s_offer(f, good, 1, 32) == 1 && s_offer(f, good, 1, 32) == 0,
            "epoch 1 queued once");
    T_CHECK(s_offer(f, fifo, 2, 0) == 1 && s_offer(f, big, 3, 0) == 1, "epochs 2 and 3 queued");
    T_CHECK(s_offer(f, good, 4, 0) < 0 && eval_follow_pending(f) == 3,
            "a fourth waiting announcement is refused");

    FILE *fp = fopen(good, "wb");
    NF_CHECK(fp && fputs("x", fp) >= 0 && fclose(fp) == 0, "good file");
    NF_CHECK(mkfifo(fifo, 0600) == 0, "mkfifo: %s", strerror(errno));
    int fd = open(big, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    NF_CHECK(fd >= 0 && ftruncate(fd, 2 << 20) == 0 && close(fd) == 0, "sparse file");
    char err[1200];
    const eval_follow_item_t *q = eval_follow_next(f);
    T_CHECK(q && q->epoch == 1 && q->size == 32 && eval_follow_file_ok(f, q->path, err, sizeof err) == 0,
            "epoch 1's regular file may be opened");
    eval_follow_done(f, 1);
    int64_t t0 = nf_now_ms();
    q = eval_follow_next(f);
    T_CHECK(q && q->epoch == 2 && eval_follow_file_ok(f, q->path, err, sizeof err) != 0 &&
                strstr(err, "not a regular file") && nf_now_ms() - t0 < 1000,
            "a FIFO is refused at once: %s", err);
    q = eval_follow_next(f);
    T_CHECK(q && q->epoch == 3 && eval_follow_file_ok(f, q->path, err, sizeof err) != 0 &&
                strstr(err, "limit"),
            "a file over the size limit is refused: %s", err);
    T_CHECK(eval_follow_file_ok(f, t_tmpdir(), err, sizeof err) != 0, "a folder is refused");
    T_CHECK(!eval_follow_next(f) && s_offer(f, good, 1, 0) == 0 && s_offer(f, good, 4, 0) == 1,
            "an evaluated epoch is not queued again, a new one is");
    eval_follow_destroy(&f);
    T_CHECK(f == NULL, "destroy nulls the pointer");
}

int main(void)
{
    nf_log_init(&(nf_log_config_t){.stage = "test", .level = NF_LOG_ERROR});
    void *ctx = zmq_ctx_new();
    NF_CHECK(ctx, "zmq_ctx_new");
    test_follow();
    test_announce(ctx);
    test_client(ctx);
    test_server(ctx);
    NF_CHECK(zmq_ctx_term(ctx) == 0, "zmq_ctx_term");
    return t_done();
}
