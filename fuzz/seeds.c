/*
 * seeds.c: writes the seed corpus of every fuzz target (not committed: made
 * by `./run.sh fuzz` and by the replay tests' setup):
 *   fuzz_seeds OUTDIR [--data IMAGENETTE]
 * OUTDIR/<target>/<name> for wire, coordinator, consumer, worker,
 * augment_server, augment_client, announce, eval_announce, safetensors, jpeg
 * and pack: valid messages of every body and realistic message
 * sequences (a worker joining, an epoch requested, credited, acked), corrupt
 * variants of them, safetensors files of every dtype and broken ones, JPEGs
 * of every colour kind and every bad kind the loader knows, and with --data
 * a few dozen real Imagenette files, and the index of a small pack.
 */
#include "check.h"
#include "dataset.h"
#include "fsutil.h"
#include "fuzzmsg.h"
#include "jpegfix.h"
#include "pack.h"
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char s_out[1024];

static FILE *s_open(const char *target, const char *name)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", s_out, target);
    NF_CHECK(nf_mkdir_p(path) == 0, "mkdir %s", path);
    snprintf(path, sizeof path, "%s/%s/%s", s_out, target, name);
    FILE *f = fopen(path, "wb");
    NF_CHECK(f, "write %s", path);
    return f;
}

static void s_close(FILE *f) { NF_CHECK(fclose(f) == 0, "close"); }

// ---------------------------------------------------------------------------
// messages

static Nf__Envelope s_env(Nf__Envelope__BodyCase body, void *msg)
{
    Nf__Envelope e = NF__ENVELOPE__INIT;
    e.body_case = body;
    e.worker_hello = msg;  // the body is a union: any member points at it
    return e;
}

// wire: [mode][selector][u16 length][envelope][payload]
static void s_wire(const char *name, uint8_t mode, Nf__Envelope *e, const void *payload, size_t plen,
                   size_t cut)
{
    size_t len;
    uint8_t *buf = fz_pack(e, &len);
    if (cut && cut < len) len = cut;
    FILE *f = s_open("wire", name);
    uint8_t head[4] = {mode, (uint8_t)(e->body_case - 10), (uint8_t)len, (uint8_t)(len >> 8)};
    NF_CHECK(fwrite(head, 1, 4, f) == 4 && fwrite(buf, 1, len, f) == len, "write");
    if (plen) NF_CHECK(fwrite(payload, 1, plen, f) == plen, "write");
    s_close(f);
    free(buf);
}

static uint32_t s_idx[8] = {0, 1, 2, 3, 4, 5, 6, 7};
static int32_t s_lab[8] = {0, 1, 0, 1, 0, 1, 0, 1};
static char *s_paths[8] = {"train/c0/000.jpg", "train/c0/001.jpg", "train/c0/002.jpg",
                           "train/c0/003.jpg", "train/c0/bad0.jpg", "train/c0/bad4.jpg",
                           "train/c0/bad6.jpg", "train/c0/fifo.jpg"};

static Nf__BatchTask s_task(uint64_t id)
{
    Nf__BatchTask t = NF__BATCH_TASK__INIT;
    t.task_id = id;
    t.stream = 1;
    t.epoch = 0;
    t.seq = 0;
    t.split = NF__SPLIT__SPLIT_TRAIN;
    t.n_indices = 6;
    t.indices = s_idx;
    t.n_spares = 2;
    t.spares = s_idx + 6;
    t.n_paths = t.n_labels = 8;
    t.paths = s_paths;
    t.labels = s_lab;
    t.presize = 24;
    t.crop = NF__CROP_MODE__CROP_RANDOM;
    t.seed = 7;
    t.sink = "inproc://replaced-by-the-harness";
    t.has_strict_jpeg = true;
    return t;
}

static Nf__RawBatch s_batch(uint32_t seq, uint32_t n, uint32_t side)
{
    Nf__RawBatch b = NF__RAW_BATCH__INIT;
    b.stream = 3;
    b.epoch = 1;
    b.seq = seq;
    b.split = NF__SPLIT__SPLIT_VALID;
    b.n = n;
    b.h = b.w = side;
    b.c = 3;
    b.n_labels = b.n_indices = n;
    b.labels = s_lab;
    b.indices = s_idx;
    b.payload_bytes = (uint64_t)n * side * side * 3;
    return b;
}

static void s_messages(void)
{
    static uint8_t px[8 * 16 * 16 * 4];
    Nf__WorkerHello wh = NF__WORKER_HELLO__INIT;
    wh.worker_id = "host:42";
    wh.slots = 2;
    Nf__Credit cr = NF__CREDIT__INIT;
    cr.stream = 1;
    cr.n = 2;
    Nf__Heartbeat hb = NF__HEARTBEAT__INIT;
    hb.wall_ms = 1700000000000;
    hb.sender = "x";
    Nf__BatchTask task = s_task(1ull << 40 | 1ull << 32);
    Nf__BadSample bs = NF__BAD_SAMPLE__INIT, *bsp[1] = {&bs};
    bs.index = 4;
    bs.reason = NF__BAD_REASON__BAD_EMPTY;
    bs.path = "train/c0/bad0.jpg";
    Nf__TaskDone td = NF__TASK_DONE__INIT;
    td.task_id = 1ull << 40 | 1ull << 32;
    td.n_bad = 1;
    td.bad = bsp;
    Nf__StreamRequest sr = NF__STREAM_REQUEST__INIT;
    sr.stream = 1;
    sr.split = NF__SPLIT__SPLIT_TRAIN;
    sr.batch_size = 4;
    sr.shuffle = sr.drop_last = true;
    sr.presize = 16;
    sr.sink = "inproc://fuzz-sink";
    sr.credits = 2;
    Nf__EpochPlan ep = NF__EPOCH_PLAN__INIT;
    ep.stream = 3;
    ep.epoch = 1;
    ep.n_samples = 8;
    ep.n_batches = 2;
    ep.batch_size = 4;
    Nf__Ack ack = NF__ACK__INIT;
    ack.stream = 1;
    Nf__EpochDone ed = NF__EPOCH_DONE__INIT;
    ed.stream = 3;
    ed.epoch = 1;
    ed.n_batches = 2;
    ed.n_samples = 8;
    ed.bad_files = 1;
    ed.n_bad = 1;
    ed.bad = bsp;
    Nf__DatasetInfoRequest dq = NF__DATASET_INFO_REQUEST__INIT;
    char *classes[2] = {"c0", "c1"};
    Nf__DatasetInfo di = NF__DATASET_INFO__INIT;
    di.n_classes = 2;
    di.classes = classes;
    di.n_train = 6;
    di.n_valid = 8;
    di.root = "/data";
    Nf__RawBatch rb = s_batch(0, 4, 4);
    Nf__TensorStreamRequest tq = NF__TENSOR_STREAM_REQUEST__INIT;
    tq.batch_size = 4;
    tq.size = 8;
    tq.presize = 8;
    tq.credits = 2;
    Nf__TensorBatch tb = NF__TENSOR_BATCH__INIT;
    tb.n = 2;
    tb.h = tb.w = 4;
    tb.c = 3;
    tb.dtype = NF__DTYPE__DTYPE_F32;
    tb.n_labels = tb.n_partner_labels = tb.n_mix_weights = 2;
    tb.labels = tb.partner_labels = s_lab;
    float mix[2] = {0.3f, 0.7f};
    tb.mix_weights = mix;
    tb.payload_bytes = 2 * 4 * 4 * 3 * 4;
    Nf__CheckpointAnnounce ca = NF__CHECKPOINT_ANNOUNCE__INIT;
    ca.path = "run/ckpt-0000000100.safetensors";
    ca.arch = "xresnet50";
    ca.step = 100;
    Nf__EvalResult er = NF__EVAL_RESULT__INIT;
    er.checkpoint = "x";
    er.n_samples = 10;
    Nf__Control ctl = NF__CONTROL__INIT;
    ctl.cmd = NF__COMMAND__CMD_STOP;
    ctl.reason = "bye";

    // wire: every body, valid; batches with their payloads
    struct {
        const char *name;
        Nf__Envelope e;
    } bodies[] = {
        {"hello", s_env(NF__ENVELOPE__BODY_WORKER_HELLO, &wh)},
        {"credit", s_env(NF__ENVELOPE__BODY_CREDIT, &cr)},
        {"heartbeat", s_env(NF__ENVELOPE__BODY_HEARTBEAT, &hb)},
        {"task", s_env(NF__ENVELOPE__BODY_BATCH_TASK, &task)},
        {"task_done", s_env(NF__ENVELOPE__BODY_TASK_DONE, &td)},
        {"stream_request", s_env(NF__ENVELOPE__BODY_STREAM_REQUEST, &sr)},
        {"epoch_plan", s_env(NF__ENVELOPE__BODY_EPOCH_PLAN, &ep)},
        {"ack", s_env(NF__ENVELOPE__BODY_ACK, &ack)},
        {"epoch_done", s_env(NF__ENVELOPE__BODY_EPOCH_DONE, &ed)},
        {"info_request", s_env(NF__ENVELOPE__BODY_DATASET_INFO_REQUEST, &dq)},
        {"info", s_env(NF__ENVELOPE__BODY_DATASET_INFO, &di)},
        {"tensor_request", s_env(NF__ENVELOPE__BODY_TENSOR_STREAM_REQUEST, &tq)},
        {"checkpoint", s_env(NF__ENVELOPE__BODY_CHECKPOINT_ANNOUNCE, &ca)},
        {"eval", s_env(NF__ENVELOPE__BODY_EVAL_RESULT, &er)},
        {"control", s_env(NF__ENVELOPE__BODY_CONTROL, &ctl)},
    };
    for (size_t i = 0; i < NF_ARRAY_LEN(bodies); i++) {
        s_wire(bodies[i].name, 16 | 1, &bodies[i].e, NULL, 0, 0);
        char cut[64];
        snprintf(cut, sizeof cut, "%s-cut", bodies[i].name);
        s_wire(cut, 16, &bodies[i].e, NULL, 0, 7);
    }
    Nf__Envelope e = s_env(NF__ENVELOPE__BODY_RAW_BATCH, &rb);
    s_wire("raw_batch", 16 | 8 | 4 | 1, &e, px, (size_t)rb.payload_bytes, 0);
    s_wire("raw_batch-short", 16 | 8 | 4, &e, px, (size_t)rb.payload_bytes - 1, 0);
    e = s_env(NF__ENVELOPE__BODY_TENSOR_BATCH, &tb);
    s_wire("tensor_batch", 16 | 8 | 4, &e, px, (size_t)tb.payload_bytes, 0);
    uint8_t huge[4] = {0xFF, 0xFF, 0xFF, 0x7F};
    s_wire("tensor_batch-declared", 32 | 16 | 8 | 4, &e, huge, 4, 0);

    // coordinator: sequences a worker and a consumer send
    FILE *f = s_open("coordinator", "worker-and-consumer");
    e = s_env(NF__ENVELOPE__BODY_WORKER_HELLO, &wh);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_DATASET_INFO_REQUEST, &dq);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_STREAM_REQUEST, &sr);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_TASK_DONE, &td);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_ACK, &ack);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_CREDIT, &cr);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_HEARTBEAT, &hb);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_CONTROL, &ctl);
    fz_put(f, 0, &e, NULL, 0);
    s_close(f);
    f = s_open("coordinator", "valid-stream");
    sr.split = NF__SPLIT__SPLIT_VALID;
    sr.shuffle = sr.drop_last = false;
    sr.crop = NF__CROP_MODE__CROP_CENTER;
    e = s_env(NF__ENVELOPE__BODY_STREAM_REQUEST, &sr);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_WORKER_HELLO, &wh);
    fz_put(f, 0, &e, NULL, 0);
    ack.seq = 1;
    e = s_env(NF__ENVELOPE__BODY_ACK, &ack);
    fz_put(f, 0, &e, NULL, 0);
    s_close(f);

    // consumer: header (batch 4, presize 4, 2 classes, 6 train, 8 valid, unordered valid)
    static const uint8_t head[8] = {3, 3, 1, 6, 0, 8, 0, 0};
    f = s_open("consumer", "epoch");
    NF_CHECK(fwrite(head, 1, 8, f) == 8, "write");
    e = s_env(NF__ENVELOPE__BODY_RAW_BATCH, &rb);
    fz_put(f, FZ_SECOND, &e, px, (size_t)rb.payload_bytes);
    Nf__RawBatch rb1 = s_batch(1, 4, 4);
    e = s_env(NF__ENVELOPE__BODY_RAW_BATCH, &rb1);
    fz_put(f, FZ_SECOND, &e, px, (size_t)rb1.payload_bytes);
    fz_put(f, FZ_SECOND, &e, px, (size_t)rb1.payload_bytes);  // a duplicate
    e = s_env(NF__ENVELOPE__BODY_EPOCH_DONE, &ed);
    fz_put(f, 0, &e, NULL, 0);
    s_close(f);
    f = s_open("consumer", "control");
    static const uint8_t head_ordered[8] = {3, 3, 1, 6, 0, 8, 0, 1};
    NF_CHECK(fwrite(head_ordered, 1, 8, f) == 8, "write");
    e = s_env(NF__ENVELOPE__BODY_EPOCH_PLAN, &ep);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_DATASET_INFO, &di);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_RAW_BATCH, &rb1);
    fz_put(f, FZ_SECOND, &e, px, (size_t)rb1.payload_bytes);
    e = s_env(NF__ENVELOPE__BODY_RAW_BATCH, &rb);
    fz_put(f, FZ_SECOND, &e, px, (size_t)rb.payload_bytes);
    e = s_env(NF__ENVELOPE__BODY_CONTROL, &ctl);
    fz_put(f, 0, &e, NULL, 0);
    s_close(f);

    // worker: tasks over good, bad and not-a-file files, then control
    f = s_open("worker", "tasks");
    e = s_env(NF__ENVELOPE__BODY_BATCH_TASK, &task);
    fz_put(f, 0, &e, NULL, 0);
    Nf__BatchTask valid = s_task(2);
    valid.split = NF__SPLIT__SPLIT_VALID;
    valid.crop = NF__CROP_MODE__CROP_CENTER;
    valid.n_indices = 8;
    valid.n_spares = 0;
    valid.has_exact = true;
    valid.exact = true;
    e = s_env(NF__ENVELOPE__BODY_BATCH_TASK, &valid);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_HEARTBEAT, &hb);
    fz_put(f, 0, &e, NULL, 0);
    s_close(f);
    f = s_open("worker", "info-and-stop");
    e = s_env(NF__ENVELOPE__BODY_DATASET_INFO, &di);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_BATCH_TASK, &task);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_CONTROL, &ctl);
    fz_put(f, 0, &e, NULL, 0);
    s_close(f);
}

// ---------------------------------------------------------------------------
// the end-to-end stages' sockets: augment server and client, announce, follow

static Nf__TensorStreamRequest s_tsr(uint32_t stream, Nf__Split split, Nf__AugMode mode)
{
    static float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    Nf__TensorStreamRequest r = NF__TENSOR_STREAM_REQUEST__INIT;
    r.stream = stream;
    r.split = split;
    r.mode = mode;
    r.batch_size = 4;
    r.size = 16;
    r.presize = 24;
    r.credits = 2;
    r.n_norm_mean = r.n_norm_std = 3;
    r.norm_mean = mean;
    r.norm_std = std;
    r.has_seed = true;
    r.seed = 5;
    return r;
}

static void s_augment_server(void)
{
    Nf__TensorStreamRequest tr = s_tsr(1, NF__SPLIT__SPLIT_TRAIN, NF__AUG_MODE__AUG_TRAIN);
    tr.has_mixup_alpha = true;
    tr.mixup_alpha = 0.4f;
    Nf__Credit cr = NF__CREDIT__INIT;
    cr.stream = 1;
    cr.n = 1;
    Nf__Ack ack = NF__ACK__INIT;
    ack.stream = 1;
    Nf__Heartbeat hb = NF__HEARTBEAT__INIT;
    hb.wall_ms = 1700000000000;
    hb.sender = "trainer";
    Nf__Control ctl = NF__CONTROL__INIT;
    ctl.cmd = NF__COMMAND__CMD_STOP;
    Nf__DatasetInfoRequest dq = NF__DATASET_INFO_REQUEST__INIT;
    FILE *f = s_open("augment_server", "train");
    Nf__Envelope e = s_env(NF__ENVELOPE__BODY_HEARTBEAT, &hb);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_DATASET_INFO_REQUEST, &dq);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_TENSOR_STREAM_REQUEST, &tr);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_CREDIT, &cr);
    fz_put(f, 0, &e, NULL, 0);
    for (ack.seq = 0; ack.seq < 3; ack.seq++) {
        e = s_env(NF__ENVELOPE__BODY_ACK, &ack);
        fz_put(f, 0, &e, NULL, 0);
    }
    e = s_env(NF__ENVELOPE__BODY_CONTROL, &ctl);
    fz_put(f, 0, &e, NULL, 0);
    s_close(f);

    // a valid stream re-requested with the seqs held, cut short; TTA; bf16 reference
    static uint32_t have[2] = {0, 1};
    Nf__TensorStreamRequest vr = s_tsr(2, NF__SPLIT__SPLIT_VALID, NF__AUG_MODE__AUG_VALID);
    vr.n_have = 2;
    vr.have = have;
    vr.has_max_batches = true;
    vr.max_batches = 2;
    Nf__TensorStreamRequest tta = s_tsr(3, NF__SPLIT__SPLIT_VALID, NF__AUG_MODE__AUG_TTA);
    tta.has_pass = true;
    tta.pass = 2;
    tta.has_dtype = true;
    tta.dtype = NF__DTYPE__DTYPE_BF16;
    tta.has_resample = true;
    tta.resample = NF__RESAMPLE__RESAMPLE_REFERENCE;
    f = s_open("augment_server", "resume-tta");
    e = s_env(NF__ENVELOPE__BODY_TENSOR_STREAM_REQUEST, &vr);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_TENSOR_STREAM_REQUEST, &tta);
    fz_put(f, 0, &e, NULL, 0);
    ack.stream = 2;
    ack.seq = 1;
    e = s_env(NF__ENVELOPE__BODY_ACK, &ack);
    fz_put(f, 0, &e, NULL, 0);
    s_close(f);

    // out of range: presize over the loader's, a raw batch over 1 GiB, NaN statistics
    Nf__TensorStreamRequest big = s_tsr(4, NF__SPLIT__SPLIT_VALID, NF__AUG_MODE__AUG_VALID);
    big.presize = 5000;
    Nf__TensorStreamRequest raw = s_tsr(5, NF__SPLIT__SPLIT_VALID, NF__AUG_MODE__AUG_VALID);
    raw.batch_size = 4096;
    raw.size = 2;
    raw.presize = 4096;
    f = s_open("augment_server", "out-of-range");
    e = s_env(NF__ENVELOPE__BODY_TENSOR_STREAM_REQUEST, &big);
    fz_put(f, 0, &e, NULL, 0);
    e = s_env(NF__ENVELOPE__BODY_TENSOR_STREAM_REQUEST, &raw);
    fz_put(f, 0, &e, NULL, 0);
    cr.n = 1000;
    e = s_env(NF__ENVELOPE__BODY_CREDIT, &cr);
    fz_put(f, 0, &e, NULL, 0);
    s_close(f);
}

// augment_client: header, then what a server sends after the plan
static void s_client_seed(const char *name, uint8_t flags, uint32_t n_items, bool ipc)
{
    enum { BS = 4, SIDE = 2 };
    static const uint32_t n_train = 8, n_valid = 6;
    uint8_t head[6] = {BS - 1, SIDE - 2, 2, (uint8_t)n_train, (uint8_t)n_valid, flags};
    bool train = flags & 1, bf16 = flags & 2, norm = flags & 4, mix = flags & 8;
    FILE *f = s_open("augment_client", name);
    NF_CHECK(fwrite(head, 1, sizeof head, f) == sizeof head, "write");
    static uint8_t px[BS * SIDE * SIDE * 3 * 4];
    static float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.25f, 0.25f, 0.25f};
    static float w[BS] = {0.9f, 0.6f, 0.7f, 1.0f};
    static int32_t lab[BS] = {0, 1, 2, 0}, partner[BS] = {1, 2, 0, 0};
    uint32_t idx[BS];
    uint32_t batches = (n_items + BS - 1) / BS;
    for (uint32_t seq = 0; seq < batches; seq++) {
        uint32_t n = n_items - seq * BS < BS ? n_items - seq * BS : BS;
        for (uint32_t i = 0; i < n; i++) idx[i] = (train ? 0 : n_train) + seq * BS + i;
        Nf__TensorBatch b = NF__TENSOR_BATCH__INIT;
        b.stream = 7;
        b.epoch = 3;
        b.seq = seq;
        b.split = train ? NF__SPLIT__SPLIT_TRAIN : NF__SPLIT__SPLIT_VALID;
        b.n = n;
        b.h = b.w = SIDE;
        b.c = 3;
        b.dtype = bf16 ? NF__DTYPE__DTYPE_BF16 : NF__DTYPE__DTYPE_F32;
        b.layout = NF__LAYOUT__LAYOUT_NHWC;
        b.n_labels = b.n_indices = n;
        b.labels = lab;
        b.indices = idx;
        if (mix) {
            b.n_partner_labels = b.n_mix_weights = n;
            b.partner_labels = partner;
            b.mix_weights = w;
        }
        if (norm) {
            b.n_norm_mean = b.n_norm_std = 3;
            b.norm_mean = mean;
            b.norm_std = std;
        }
        b.payload_bytes = (uint64_t)n * SIDE * SIDE * 3 * (bf16 ? 2 : 4);
        b.has_pass = true;
        Nf__Envelope e = s_env(NF__ENVELOPE__BODY_TENSOR_BATCH, &b);
        if (seq == 0 && ipc) {  // a CUDA IPC handle instead of the payload (aborted the client)
            static uint8_t handle[64] = {1};
            Nf__TensorBatch hb = b;
            hb.has_cuda_ipc_handle = true;
            hb.cuda_ipc_handle.len = sizeof handle;
            hb.cuda_ipc_handle.data = handle;
            Nf__Envelope he = s_env(NF__ENVELOPE__BODY_TENSOR_BATCH, &hb);
            fz_put(f, 0, &he, NULL, 0);
        }
        fz_put(f, FZ_PAYLOAD, &e, px, (size_t)b.payload_bytes);
        if (seq == 0) fz_put(f, FZ_PAYLOAD, &e, px, (size_t)b.payload_bytes);  // a duplicate
    }
    Nf__Heartbeat hb = NF__HEARTBEAT__INIT;
    hb.sender = "augment:host:1:2";
    Nf__Envelope e = s_env(NF__ENVELOPE__BODY_HEARTBEAT, &hb);
    fz_put(f, 0, &e, NULL, 0);
    Nf__EpochPlan p = NF__EPOCH_PLAN__INIT;
    p.stream = 7;
    p.epoch = 3;
    p.split = train ? NF__SPLIT__SPLIT_TRAIN : NF__SPLIT__SPLIT_VALID;
    p.n_samples = n_items;
    p.n_batches = batches;
    p.batch_size = BS;
    e = s_env(NF__ENVELOPE__BODY_EPOCH_PLAN, &p);
    fz_put(f, 0, &e, NULL, 0);
    Nf__EpochDone d = NF__EPOCH_DONE__INIT;
    d.stream = 7;
    d.epoch = 3;
    d.n_batches = batches;
    d.n_samples = n_items;
    e = s_env(NF__ENVELOPE__BODY_EPOCH_DONE, &d);
    fz_put(f, 0, &e, NULL, 0);
    Nf__Control ctl = NF__CONTROL__INIT;
    ctl.cmd = NF__COMMAND__CMD_STOP;
    ctl.reason = "augment stopping";
    e = s_env(NF__ENVELOPE__BODY_CONTROL, &ctl);
    fz_put(f, 0, &e, NULL, 0);
    s_close(f);
}

static void s_announce(void)
{
    static const char *const paths[3] = {"run/checkpoints/ckpt-0000000010.safetensors",
                                         "run/checkpoints/ckpt-0000000020.safetensors",
                                         "run/checkpoints/ckpt-0000000030.safetensors"};
    Nf__Heartbeat hb = NF__HEARTBEAT__INIT;
    hb.sender = "evaluator";
    FILE *f = s_open("announce", "results");
    Nf__Envelope e = s_env(NF__ENVELOPE__BODY_HEARTBEAT, &hb);
    fz_put(f, 0, &e, NULL, 0);
    for (uint32_t ep = 1; ep <= 4; ep++) {
        Nf__EvalResult r = NF__EVAL_RESULT__INIT;
        r.checkpoint = (char *)paths[(ep - 1) % 3];
        r.epoch = ep;
        r.valid_loss = 1.0 / ep;
        r.accuracy = 0.2 * ep;
        r.n_samples = 100;
        r.has_bad_files = r.has_wall_s = true;
        r.wall_s = 1.5;
        e = s_env(NF__ENVELOPE__BODY_EVAL_RESULT, &r);
        fz_put(f, 0, &e, NULL, 0);
        if (ep == 3) {
            r.has_tta_accuracy = r.has_tta_loss = true;
            r.tta_accuracy = 0.7;
            r.tta_loss = 0.8;
            fz_put(f, 0, &e, NULL, 0);
        }
    }
    Nf__Control ctl = NF__CONTROL__INIT;
    ctl.cmd = NF__COMMAND__CMD_STOP;
    e = s_env(NF__ENVELOPE__BODY_CONTROL, &ctl);
    fz_put(f, 0, &e, NULL, 0);
    s_close(f);
}

static void s_eval_announce(void)
{
    static const char *const paths[5] = {"ckpt.safetensors", "fifo.safetensors",
                                         "dir.safetensors", "big.safetensors", "missing.safetensors"};
    FILE *f = s_open("eval_announce", "announcements");
    for (uint32_t ep = 1; ep <= 6; ep++) {
        Nf__CheckpointAnnounce a = NF__CHECKPOINT_ANNOUNCE__INIT;
        a.path = (char *)paths[(ep - 1) % 5];
        a.epoch = ep == 6 ? 1 : ep;  // a replay of epoch 1
        a.step = 10 * ep;
        a.arch = "xresnet18";
        a.has_is_final = true;
        a.is_final = ep == 5;
        a.has_size = a.has_presize = a.has_batch_size = true;
        a.size = 32;
        a.presize = 40;
        a.batch_size = 8;
        Nf__Envelope e = s_env(NF__ENVELOPE__BODY_CHECKPOINT_ANNOUNCE, &a);
        fz_put(f, FZ_SECOND, &e, NULL, 0);
    }
    Nf__Control ctl = NF__CONTROL__INIT;
    ctl.cmd = NF__COMMAND__CMD_STOP;
    ctl.reason = "training finished";
    Nf__Envelope e = s_env(NF__ENVELOPE__BODY_CONTROL, &ctl);
    fz_put(f, 0, &e, NULL, 0);
    s_close(f);
}

static void s_stages(void)
{
    s_augment_server();
    s_client_seed("valid", 4, 6, false);
    s_client_seed("train-mixup", 1 | 4 | 8, 8, false);
    s_client_seed("valid-bf16", 2, 6, false);
    s_client_seed("cuda-ipc", 4, 6, true);
    s_announce();
    s_eval_announce();
}

// ---------------------------------------------------------------------------
// files

static void s_safetensors(void)
{
    char dir[1200], path[1400];
    snprintf(dir, sizeof dir, "%s/safetensors", s_out);
    NF_CHECK(nf_mkdir_p(dir) == 0, "mkdir");
    static float f32[24];
    static double f64[3];
    static int64_t i64[2];
    static uint8_t u8[5];
    for (int i = 0; i < 24; i++) f32[i] = (float)i * 0.5f;
    safetensors_writer_t *w = safetensors_writer_new();
    int64_t s1[2] = {4, 6}, s2[1] = {3}, s3[1] = {2}, s4[1] = {5}, s0[1] = {0};
    NF_CHECK(safetensors_writer_add(w, "model.weight", SAFETENSORS_F32, 2, s1, f32) == 0 &&
                 safetensors_writer_add(w, "b", SAFETENSORS_F64, 1, s2, f64) == 0 &&
                 safetensors_writer_add(w, "step", SAFETENSORS_I64, 1, s3, i64) == 0 &&
                 safetensors_writer_add(w, "mask", SAFETENSORS_U8, 1, s4, u8) == 0 &&
                 safetensors_writer_add(w, "empty", SAFETENSORS_BF16, 1, s0, NULL) == 0 &&
                 safetensors_writer_add(w, "scalar", SAFETENSORS_F32, 0, NULL, f32) == 0,
             "add");
    safetensors_writer_set_meta(w, "format", "netteflow-checkpoint");
    safetensors_writer_set_meta(w, "progress", "{\"step\": 100}");
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    NF_CHECK(safetensors_writer_write(w, path) == 0, "write");
    safetensors_writer_destroy(&w);
    size_t len;
    uint8_t *buf = nf_read_file(path, 1 << 20, &len);
    NF_CHECK(buf, "read back");
    struct {
        const char *name;
        size_t len;
        int at;
        uint8_t v;
    } bad[] = {{"cut", len / 2, -1, 0}, {"header-cut", 20, -1, 0}, {"length-huge", len, 6, 0x7F},
               {"json-broken", len, 9, 'x'}, {"offset-moved", len, -2, 0}};
    for (size_t i = 0; i < NF_ARRAY_LEN(bad); i++) {
        uint8_t *copy = nf_xmalloc(len);
        memcpy(copy, buf, len);
        if (bad[i].at >= 0) copy[bad[i].at] = bad[i].v;
        if (bad[i].at == -2) {  // change the first data offset digit in the JSON
            char *p = strstr((char *)copy + 8, "data_offsets\":[");
            if (p) p[15] = '9';
        }
        snprintf(path, sizeof path, "%s/%s", dir, bad[i].name);
        NF_CHECK(nf_write_file_atomic(path, copy, bad[i].len) == 0, "write");
        free(copy);
    }
    free(buf);
}

// jpeg: [side][flags][u16 index][pixel limit] + the file
static void s_jpeg_seed(const char *name, uint8_t side, uint8_t flags, const uint8_t *j, size_t len)
{
    FILE *f = s_open("jpeg", name);
    uint8_t head[5] = {side, flags, 7, 0, 64};
    NF_CHECK(fwrite(head, 1, 5, f) == 5 && (len == 0 || fwrite(j, 1, len, f) == len), "write");
    s_close(f);
}

static void s_jpegs(const char *data)
{
    static const char *kinds[] = {"rgb", "gray", "cmyk", "progressive"};
    for (int k = 0; k < 4; k++)
        for (int s = 0; s < 3; s++) {
            size_t len;
            uint32_t w = 16 + 40 * (uint32_t)s, h = 24 + 17 * (uint32_t)s;
            uint8_t *j = jf_jpeg(w, h, (uint32_t)(k * 3 + s), (jf_kind_t)k, &len);
            char name[64];
            snprintf(name, sizeof name, "%s-%ux%u", kinds[k], w, h);
            s_jpeg_seed(name, (uint8_t)(8 + 20 * s), (uint8_t)s, j, len);
            free(j);
        }
    char tmp[1400];
    for (int k = 0; k < JF_BAD_N; k++) {
        snprintf(tmp, sizeof tmp, "%s/jpeg-bad.tmp", s_out);
        jf_write_bad(tmp, (jf_bad_t)k);
        size_t len;
        uint8_t *j = nf_read_file(tmp, 1 << 20, &len);
        NF_CHECK(j, "read %s", tmp);
        char name[32];
        snprintf(name, sizeof name, "bad-kind-%d", k);
        s_jpeg_seed(name, 32, (uint8_t)(k & 4), j, len);
        free(j);
        NF_CHECK(remove(tmp) == 0, "remove");
    }
    if (!data) return;
    char err[256];
    loader_dataset_config_t dc = {.root = data, .mode = LOADER_SPLIT_FOLDERS};
    loader_dataset_t *ds = loader_dataset_new(&dc, err, sizeof err);
    NF_CHECK(ds, "%s: %s", data, err);
    uint32_t n = loader_dataset_n_items(ds);
    for (uint32_t i = 0; i < 32 && n; i++) {  // spread over the whole dataset (and its classes)
        const loader_item_t *it = loader_dataset_item(ds, (uint32_t)((uint64_t)i * n / 32));
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", loader_dataset_root(ds), it->path);
        size_t len;
        uint8_t *j = nf_read_file(path, 1 << 20, &len);
        if (!j) continue;
        char name[32];
        snprintf(name, sizeof name, "real-%02u", i);
        s_jpeg_seed(name, (uint8_t)(32 + i), (uint8_t)i, j, len);
        free(j);
    }
    loader_dataset_destroy(&ds);
}

// pack: the fixed pack's index without its trailing crc32 (the target adds it)
static void s_pack(void)
{
    char dir[1200], idx[1400];
    snprintf(dir, sizeof dir, "%s/pack", fz_tmpdir("seeds"));  // removed at exit
    fz_make_pack(dir);
    snprintf(idx, sizeof idx, "%s/%s", dir, LOADER_PACK_INDEX);
    size_t len;
    uint8_t *buf = nf_read_file(idx, 1 << 20, &len);
    NF_CHECK(buf && len > 4, "read %s", idx);
    FILE *f = s_open("pack", "index");
    NF_CHECK(fwrite(buf, 1, len - 4, f) == len - 4, "write");
    s_close(f);
    f = s_open("pack", "index-cut");
    NF_CHECK(fwrite(buf, 1, len / 2, f) == len / 2, "write");
    s_close(f);
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc != 2 && !(argc == 4 && !strcmp(argv[2], "--data"))) {
        fprintf(stderr, "usage: fuzz_seeds OUTDIR [--data IMAGENETTE]\n");
        return 2;
    }
    snprintf(s_out, sizeof s_out, "%s", argv[1]);
    NF_CHECK(nf_mkdir_p(s_out) == 0, "mkdir %s", s_out);
    s_messages();
    s_stages();
    s_safetensors();
    s_jpegs(argc == 4 ? argv[3] : NULL);
    s_pack();
    printf("fuzz seeds written to %s\n", s_out);
    return 0;
}
