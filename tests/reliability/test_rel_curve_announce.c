/*
 * test_rel_curve_announce.c: the trainer's announcement socket
 * (trainer/announce.h) with CURVE, over tcp on loopback, in this process.
 *   1. A CURVE server on an endpoint list (ipc + tcp): an evaluator-like
 *      client on the allow-list joins, gets the checkpoint announcement and
 *      its result comes back to the trainer; an unlisted, a plain-text and a
 *      wrong-server-key client (one connection attempt each) get nothing,
 *      never count as evaluators, and are refused exactly once each under
 *      their own kind.
 *   2. Without keys: a plain-text endpoint other hosts reach is refused, also
 *      inside a list; loopback is bound.
 */
#include "announce.h"
#include "curve.h"
#include "fsutil.h"
#include "log.h"
#include "relharness.h"
#include "testlib.h"
#include "timeutil.h"
#include "wire.h"
#include "zmqutil.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static char s_keydir[512];

typedef struct {
    char sec[700], pub[700];
} s_pair_t;

static s_pair_t s_pair(const char *name)
{
    s_pair_t p;
    rh_keys(s_keydir, name, p.sec, p.pub, sizeof p.sec);
    return p;
}

// ---------------------------------------------------------------------------
// 1. with keys

typedef struct {
    rh_side_t side;
    void *sock;
} s_follower_t;

// An evaluator-like DEALER: one connection attempt (refusals count exactly).
static s_follower_t s_follower(const char *ep, const char *secret, const char *server_pub)
{
    s_follower_t f = {.side = rh_side(secret, NULL, NULL)};
    nf_zmq_socket_config_t dc = {.type = ZMQ_DEALER, .sndhwm = 100, .rcvhwm = 100};
    f.sock = nf_zmq_socket_new(f.side.ctx, &dc);
    int never = -1;
    NF_CHECK(f.sock && zmq_setsockopt(f.sock, ZMQ_RECONNECT_IVL, &never, sizeof never) == 0, "ivl");
    if (secret) {
        char key[NF_CURVE_KEY_Z85 + 1], err[512];
        NF_CHECK(nf_curve_read_public(server_pub, key, err, sizeof err) == 0, "%s", err);
        NF_CHECK(nf_curve_client(f.side.curve, f.sock, key, "test follower") == 0, "client");
    }
    NF_CHECK(nf_zmq_connect(f.sock, ep) == 0, "connect");
    return f;
}

static void s_follower_close(s_follower_t *f)
{
    nf_zmq_close(&f->sock);
    rh_side_close(&f->side);
}

static void s_send_body(void *sock, Nf__Envelope *env)
{
    if (nf_wire_send(sock, NULL, NULL, env, NULL, ZMQ_DONTWAIT) != 0)
        NF_CHECK(errno == EAGAIN, "send: %s", strerror(errno));
}

static void s_heartbeat(void *sock)
{
    Nf__Heartbeat h = NF__HEARTBEAT__INIT;
    h.wall_ms = nf_wall_ms();
    h.sender = "test follower";
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &h;
    s_send_body(sock, &env);
}

// Heartbeats and services both sides for ms; returns the announcements the
// follower received (path of the last in path) and the results the trainer got.
static int s_exchange(announce_t *ann, s_follower_t *f, int ms, char *path, size_t len,
                      int *results)
{
    nf_wire_expect_t ex = {.bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_CHECKPOINT_ANNOUNCE) |
                                     NF_WIRE_BODY(NF__ENVELOPE__BODY_CONTROL)};
    nf_wire_stats_t st = {0};
    int got = 0;
    double end = nf_now_s() + ms / 1000.0, last_hb = 0;
    while (nf_now_s() < end) {
        if (nf_now_s() - last_hb > 0.2) {
            s_heartbeat(f->sock);
            last_hb = nf_now_s();
        }
        announce_result_t res[4];
        *results += announce_poll(ann, 20, res, 4);
        nf_wire_msg_t m;
        while (nf_wire_recv(f->sock, &ex, &m, &st, ZMQ_DONTWAIT) >= 0) {
            if (m.env && m.env->body_case == NF__ENVELOPE__BODY_CHECKPOINT_ANNOUNCE) {
                snprintf(path, len, "%s", m.env->checkpoint_announce->path);
                got++;
            }
            nf_wire_msg_close(&m);
        }
    }
    return got;
}

static void test_announce(void)
{
    s_pair_t tr = s_pair("trainer"), ev = s_pair("evaluator"), st = s_pair("stranger"),
             other = s_pair("augment");
    char ckpt[700], path[1024] = "";
    snprintf(ckpt, sizeof ckpt, "%s/epoch-1.safetensors", t_tmpdir());
    NF_CHECK(nf_write_file_atomic(ckpt, "x", 1) == 0, "checkpoint file");

    rh_side_t trainer = rh_side(tr.sec, NULL, ev.pub);  // allow-list: a file with the evaluator's key
    nf_curve_t *curve = trainer.curve;
    char eps[700];
    snprintf(eps, sizeof eps, "ipc://%s/trainer.ipc,tcp://127.0.0.1:*", t_tmpdir());
    announce_config_t ac = {.zmq_ctx = trainer.ctx, .curve = curve, .endpoint = eps, .job = "j"};
    announce_t *ann = announce_new(&ac);
    T_CHECK(ann != NULL, "a CURVE announcement socket on %s", eps);
    if (!ann) {
        rh_side_close(&trainer);
        return;
    }
    const char *tcp = strstr(announce_endpoint(ann), "tcp://");
    NF_CHECK(tcp, "tcp endpoint in %s", announce_endpoint(ann));
    announce_checkpoint_t c = {.path = ckpt, .epoch = 1, .step = 10, .arch = "xresnet18",
                               .size = 64, .presize = 80, .batch_size = 8};
    announce_checkpoint(ann, &c);

    // the allow-listed evaluator: the announcement, and its result back
    s_follower_t ok = s_follower(tcp, ev.sec, tr.pub);
    int results = 0;
    int anns = s_exchange(ann, &ok, 1500, path, sizeof path, &results);
    T_CHECK(anns == 1 && !strcmp(path, ckpt), "the allowed evaluator got the announcement (%d)", anns);
    Nf__EvalResult r = NF__EVAL_RESULT__INIT;
    r.checkpoint = ckpt;
    r.epoch = 1;
    r.valid_loss = 0.5;
    r.accuracy = 0.75;
    r.n_samples = 12;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_EVAL_RESULT;
    env.eval_result = &r;
    s_send_body(ok.sock, &env);
    (void)s_exchange(ann, &ok, 500, path, sizeof path, &results);
    T_CHECK(results == 1, "its result reached the trainer (%d)", results);
    T_CHECK(announce_evaluators(ann) == 1, "one evaluator");

    // refused followers: nothing either way, each refused once under its own kind
    struct {
        const char *what, *secret, *server;
        size_t field;  // offset of the counter that must grow by one
    } bad[] = {
        {"an unlisted evaluator", st.sec, tr.pub, offsetof(nf_curve_stats_t, refused_key)},
        {"a plain-text evaluator", NULL, NULL, offsetof(nf_curve_stats_t, refused_plaintext)},
        {"an evaluator trusting a wrong server key", ev.sec, other.pub,
         offsetof(nf_curve_stats_t, refused_crypto)},
    };
    nf_curve_stats_t before, after;
    for (size_t i = 0; i < NF_ARRAY_LEN(bad); i++) {
        nf_curve_stats(curve, &before);
        s_follower_t f = s_follower(tcp, bad[i].secret, bad[i].server);
        path[0] = 0;
        int got = s_exchange(ann, &f, 800, path, sizeof path, &results);
        s_follower_close(&f);
        nf_curve_stats(curve, &after);
        uint64_t was = *(uint64_t *)((char *)&before + bad[i].field),
                 now = *(uint64_t *)((char *)&after + bad[i].field);
        T_CHECK(got == 0 && results == 1 && announce_evaluators(ann) == 1,
                "%s gets nothing and is no evaluator", bad[i].what);
        T_CHECK(now == was + 1 && nf_curve_stats_refused(&after) == nf_curve_stats_refused(&before) + 1,
                "%s refused once under its kind (%llu -> %llu, all %llu -> %llu)", bad[i].what,
                (unsigned long long)was, (unsigned long long)now,
                (unsigned long long)nf_curve_stats_refused(&before),
                (unsigned long long)nf_curve_stats_refused(&after));
    }
    nf_curve_stats(curve, &after);
    T_CHECK(after.accepted == 1, "one evaluator accepted (%llu)", (unsigned long long)after.accepted);
    printf("REL {\"test\": \"curve_announce\", \"accepted\": %llu, \"refused_unlisted_key\": %llu, "
           "\"refused_plain_text\": %llu, \"refused_wrong_server_key\": %llu}\n",
           (unsigned long long)after.accepted, (unsigned long long)after.refused_key,
           (unsigned long long)after.refused_plaintext, (unsigned long long)after.refused_crypto);
    s_follower_close(&ok);
    announce_destroy(&ann, "test over");
    rh_side_close(&trainer);
}

// ---------------------------------------------------------------------------
// 2. without keys

static void test_plain(void)
{
    void *ctx = zmq_ctx_new();
    char eps[700];
    snprintf(eps, sizeof eps, "ipc://%s/plain.ipc,tcp://0.0.0.0:0", t_tmpdir());
    announce_config_t ac = {.zmq_ctx = ctx, .endpoint = eps};
    announce_t *ann = announce_new(&ac);
    T_CHECK(ann == NULL, "announce_new refuses a plain exposed endpoint in a list");
    announce_destroy(&ann, NULL);
    ac.endpoint = "tcp://127.0.0.1:*";
    ann = announce_new(&ac);
    T_CHECK(ann != NULL, "plain text on loopback is bound");
    announce_destroy(&ann, NULL);
    NF_CHECK(zmq_ctx_term(ctx) == 0, "zmq_ctx_term");
}

int main(void)
{
    nf_log_init(&(nf_log_config_t){.stage = "test", .level = NF_LOG_WARN});
    if (!zmq_has("curve")) t_skip("this libzmq has no CURVE support");
    snprintf(s_keydir, sizeof s_keydir, "%s/keys", t_tmpdir());
    NF_CHECK(nf_mkdir_p(s_keydir) == 0, "mkdir");
    test_announce();
    test_plain();
    return t_done();
}
