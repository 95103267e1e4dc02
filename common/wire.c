/*
 * wire.c: see wire.h. Framing, envelope packing, and the stage-independent
 * validation of every received message.
 */
#include "wire.h"

#include "check.h"
#include "log.h"
#include "zmqutil.h"

#include <errno.h>
#include <string.h>

// Warn for the first few drops of each reason on a socket, then only debug.
enum { S_WARN_FIRST = 5 };

static const char *s_drop_names[NF_WIRE_DROP_N] = {
    "frames", "size", "decode", "version", "job", "body", "payload", "shape", "field",
};

const char *nf_wire_drop_name(nf_wire_drop_t why)
{
    return (unsigned)why < NF_WIRE_DROP_N ? s_drop_names[why] : "?";
}

void nf_wire_stats_drop(nf_wire_stats_t *st, nf_wire_drop_t why)
{
    NF_CHECK((unsigned)why < NF_WIRE_DROP_N, "bad drop reason %d", (int)why);
    st->dropped[why]++;
}

uint64_t nf_wire_stats_dropped(const nf_wire_stats_t *st)
{
    uint64_t n = 0;
    for (int i = 0; i < NF_WIRE_DROP_N; i++) n += st->dropped[i];
    return n;
}

size_t nf_wire_dtype_size(int dtype)
{
    switch (dtype) {
    case NF__DTYPE__DTYPE_U8: return 1;
    case NF__DTYPE__DTYPE_F32: return 4;
    case NF__DTYPE__DTYPE_BF16: return 2;
    case NF__DTYPE__DTYPE_F16: return 2;
    default: return 0;
    }
}

void nf_wire_msg_close(nf_wire_msg_t *msg)
{
    if (msg->env) nf__envelope__free_unpacked(msg->env, NULL);
    msg->env = NULL;
    if (msg->has_payload) zmq_msg_close(&msg->payload);
    msg->has_payload = false;
}

// ---------------------------------------------------------------------------
// receive

static int s_drop(nf_wire_stats_t *st, nf_wire_drop_t why, const char *detail)
{
    st->dropped[why]++;
    nf_log_level_t level = st->dropped[why] <= S_WARN_FIRST ? NF_LOG_WARN : NF_LOG_DEBUG;
    nf_log(level, "dropped a message (%s): %s", s_drop_names[why], detail);
    return 0;
}

static bool s_more(void *sock)
{
    int more = 0;
    size_t len = sizeof more;
    return zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more;
}

// Reads and discards the rest of a multipart message.
static void s_drain(void *sock)
{
    while (s_more(sock)) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        int rc = zmq_msg_recv(&m, sock, 0);
        zmq_msg_close(&m);
        if (rc < 0) return;
    }
}

// n*h*w*c*elem without overflow; false when it overflows.
static bool s_shape_bytes(uint64_t n, uint64_t h, uint64_t w, uint64_t c, uint64_t elem,
                          uint64_t *out)
{
    uint64_t a, b, d;
    if (__builtin_mul_overflow(n, h, &a) || __builtin_mul_overflow(a, w, &b) ||
        __builtin_mul_overflow(b, c, &d) || __builtin_mul_overflow(d, elem, out))
        return false;
    return true;
}

// Batch bodies: shape consistency and payload size. Returns a drop reason or -1.
static int s_check_batch(const Nf__Envelope *env, bool has_payload, size_t frame_len,
                         const char **detail)
{
    uint64_t want = 0;
    if (env->body_case == NF__ENVELOPE__BODY_RAW_BATCH) {
        const Nf__RawBatch *b = env->raw_batch;
        if (!s_shape_bytes(b->n, b->h, b->w, b->c, 1, &want)) {
            *detail = "raw batch shape overflows";
            return NF_WIRE_DROP_SHAPE;
        }
        if (b->n_labels != b->n || b->n_indices != b->n) {
            *detail = "raw batch labels/indices count != n";
            return NF_WIRE_DROP_SHAPE;
        }
        if (b->payload_bytes != want || !has_payload || frame_len != want) {
            *detail = "raw batch payload size != n*h*w*c";
            return NF_WIRE_DROP_PAYLOAD;
        }
        return -1;
    }
    const Nf__TensorBatch *b = env->tensor_batch;
    size_t elem = nf_wire_dtype_size(b->dtype);
    if (!elem || (b->layout != NF__LAYOUT__LAYOUT_NHWC && b->layout != NF__LAYOUT__LAYOUT_NCHW)) {
        *detail = "tensor batch dtype/layout unknown";
        return NF_WIRE_DROP_SHAPE;
    }
    if (!s_shape_bytes(b->n, b->h, b->w, b->c, elem, &want)) {
        *detail = "tensor batch shape overflows";
        return NF_WIRE_DROP_SHAPE;
    }
    if (b->n_labels != b->n || (b->n_indices && b->n_indices != b->n) ||
        (b->n_partner_labels && b->n_partner_labels != b->n) ||
        (b->n_mix_weights && b->n_mix_weights != b->n)) {
        *detail = "tensor batch per-sample arrays != n";
        return NF_WIRE_DROP_SHAPE;
    }
    bool ipc = b->has_cuda_ipc_handle && b->cuda_ipc_handle.len > 0;
    bool size_ok = ipc ? (frame_len == 0 && b->payload_bytes == want)
                       : (has_payload && frame_len == want && b->payload_bytes == want);
    if (!size_ok) {
        *detail = "tensor batch payload size != shape x dtype";
        return NF_WIRE_DROP_PAYLOAD;
    }
    return -1;
}

Nf__Envelope *nf_wire_decode(const nf_wire_expect_t *ex, const void *env_buf, size_t env_len,
                             bool has_payload, size_t payload_len, nf_wire_drop_t *why,
                             const char **detail)
{
    if (env_len == 0 || env_len > NF_WIRE_MAX_ENVELOPE) {
        *why = NF_WIRE_DROP_SIZE;
        *detail = "envelope empty or over 1 MiB";
        return NULL;
    }
    Nf__Envelope *env = nf__envelope__unpack(NULL, env_len, env_buf);
    int reason = -1;
    if (!env) {
        reason = NF_WIRE_DROP_DECODE;
        *detail = "envelope does not decode";
    } else if (env->version != NF_PROTOCOL_VERSION) {
        reason = NF_WIRE_DROP_VERSION;
        *detail = "protocol version mismatch";
    } else if (ex->job && ex->job[0] && !(ex->allow_no_job && (!env->job || !env->job[0])) &&
               (!env->job || strcmp(env->job, ex->job) != 0)) {
        reason = NF_WIRE_DROP_JOB;
        *detail = "message of another job";
    } else if (env->body_case == NF__ENVELOPE__BODY__NOT_SET || (unsigned)env->body_case >= 64 ||
               !(ex->bodies & NF_WIRE_BODY(env->body_case))) {
        reason = NF_WIRE_DROP_BODY;
        *detail = "body not expected on this socket";
    } else {
        bool batch = env->body_case == NF__ENVELOPE__BODY_RAW_BATCH ||
                     env->body_case == NF__ENVELOPE__BODY_TENSOR_BATCH;
        if (!batch && has_payload) {
            reason = NF_WIRE_DROP_PAYLOAD;
            *detail = "payload frame on a body that has none";
        } else if (payload_len > ex->max_payload) {
            reason = NF_WIRE_DROP_SIZE;
            *detail = "payload over this socket's limit";
        } else if (batch) {
            reason = s_check_batch(env, has_payload, payload_len, detail);
        }
    }
    if (reason >= 0) {
        if (env) nf__envelope__free_unpacked(env, NULL);
        *why = (nf_wire_drop_t)reason;
        return NULL;
    }
    return env;
}

int nf_wire_recv(void *sock, const nf_wire_expect_t *ex, nf_wire_msg_t *msg,
                 nf_wire_stats_t *st, int flags)
{
    memset(msg, 0, sizeof *msg);
    zmq_msg_t frame;
    NF_ZMQ_CHECK(zmq_msg_init(&frame));
    if (zmq_msg_recv(&frame, sock, flags) < 0) {
        int err = zmq_errno();
        zmq_msg_close(&frame);
        errno = err;
        return -1;
    }
    // 1. routing id
    if (ex->router) {
        size_t len = zmq_msg_size(&frame);
        NF_CHECK(len <= NF_WIRE_MAX_PEER, "routing id of %zu bytes", len);
        memcpy(msg->peer.id, zmq_msg_data(&frame), len);
        msg->peer.len = len;
        bool more = s_more(sock);
        zmq_msg_close(&frame);
        if (!more) return s_drop(st, NF_WIRE_DROP_FRAMES, "routing id without envelope");
        NF_ZMQ_CHECK(zmq_msg_init(&frame));
        if (zmq_msg_recv(&frame, sock, 0) < 0) {
            zmq_msg_close(&frame);
            return s_drop(st, NF_WIRE_DROP_FRAMES, "envelope frame lost");
        }
    }
    // 2. envelope, 3. optional payload, nothing more
    size_t env_len = zmq_msg_size(&frame);
    if (s_more(sock)) {
        NF_ZMQ_CHECK(zmq_msg_init(&msg->payload));
        msg->has_payload = true;
        if (zmq_msg_recv(&msg->payload, sock, 0) < 0) {
            zmq_msg_close(&frame);
            nf_wire_msg_close(msg);
            return s_drop(st, NF_WIRE_DROP_FRAMES, "payload frame lost");
        }
        if (s_more(sock)) {
            s_drain(sock);
            zmq_msg_close(&frame);
            nf_wire_msg_close(msg);
            return s_drop(st, NF_WIRE_DROP_FRAMES, "more than envelope + payload frames");
        }
    }
    nf_wire_drop_t why;
    const char *detail = NULL;
    size_t plen = msg->has_payload ? zmq_msg_size(&msg->payload) : 0;
    msg->env = nf_wire_decode(ex, zmq_msg_data(&frame), env_len, msg->has_payload, plen, &why,
                              &detail);
    zmq_msg_close(&frame);
    if (!msg->env) {
        nf_wire_msg_close(msg);
        return s_drop(st, why, detail);
    }
    st->accepted++;
    return 1;
}

// ---------------------------------------------------------------------------
// send

int nf_wire_send(void *sock, const nf_wire_peer_t *peer, const char *job, Nf__Envelope *env,
                 zmq_msg_t *payload, int flags)
{
    // The envelope is the caller's; its job pointer is borrowed for packing only.
    char *saved_job = env->job;
    env->version = NF_PROTOCOL_VERSION;
    env->job = (char *)(job ? job : "");
    size_t len = nf__envelope__get_packed_size(env);
    NF_CHECK(len <= NF_WIRE_MAX_ENVELOPE, "envelope of %zu bytes (body %d)", len,
             (int)env->body_case);
    int rc = -1, err = 0;
    zmq_msg_t frame;
    NF_ZMQ_CHECK(zmq_msg_init_size(&frame, len));
    size_t packed = nf__envelope__pack(env, zmq_msg_data(&frame));
    env->job = saved_job;
    NF_CHECK(packed == len, "packed %zu of %zu bytes", packed, len);
    int more = payload ? ZMQ_SNDMORE : 0;
    if (peer && zmq_send(sock, peer->id, peer->len, ZMQ_SNDMORE | flags) < 0) {
        err = zmq_errno();
        goto done;
    }
    if (zmq_msg_send(&frame, sock, more | flags) < 0) {
        err = zmq_errno();
        goto done;
    }
    if (payload && zmq_msg_send(payload, sock, flags) < 0) {
        err = zmq_errno();
        goto done;
    }
    rc = 0;
done:
    zmq_msg_close(&frame);
    if (payload) zmq_msg_close(payload);
    errno = err;
    return rc;
}
