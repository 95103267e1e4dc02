/*
 * test_rel_curve.c: CURVE keys and our ZAP handler (common/curve.h) on real
 * sockets over tcp.
 *   1. keygen writes a public (0644) and a secret (0600) certificate in the
 *      czmq/pyzmq format, never overwrites, and loads back; a secret file
 *      readable by others, a certificate whose public key does not match its
 *      secret key, a non-Z85 key and an empty allow-list are refused with a
 *      one-line reason.
 *   2. A CURVE server with an allow-list of one client key: the allowed client
 *      gets a request through and the answer back (and ZeroMQ reports its key
 *      as the message's User-Id); an unlisted client, a plain-text client and
 *      a client with a wrong server key each get nothing through and are
 *      refused exactly once (reconnects are off), each counted under its own
 *      kind; the unlisted client's own monitor sees the refusal.
 *   3. nf_curve_endpoint_local: which bind endpoints stay on the host.
 *   4. The loader's processes with CURVE over tcp: a coordinator with an
 *      allow-list, a consumer (a CURVE client, and its sink a CURVE server)
 *      and an allowed worker run an epoch, every sample exactly once; an
 *      unlisted worker, a plain-text worker and a worker that trusts a wrong
 *      server key never join, and the coordinator logs and counts each kind
 *      of refusal; a plain-text bind on a non-loopback address is refused.
 */
#include "curve.h"
#include "harness.h"
#include "relharness.h"
#include "fsutil.h"
#include "log.h"
#include "testlib.h"
#include "timeutil.h"
#include "zmqutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char s_dir[512];

static const char *s_path(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", s_dir, name);
    return buf;
}

static mode_t s_mode(const char *path)
{
    struct stat st;
    NF_CHECK(stat(path, &st) == 0, "stat %s", path);
    return st.st_mode & 0777;
}

static void test_keys(void *ctx)
{
    char base[600], pub[700], sec[700], err[512], z85[NF_CURVE_KEY_Z85 + 1];
    s_path("alice", base, sizeof base);
    T_CHECK(nf_curve_keygen(base, z85, err, sizeof err) == 0, "keygen: %s", err);
    snprintf(pub, sizeof pub, "%s.key", base);
    snprintf(sec, sizeof sec, "%s.key_secret", base);
    T_CHECK(s_mode(sec) == 0600 && s_mode(pub) == 0644, "modes %o %o", s_mode(sec), s_mode(pub));
    T_CHECK(nf_curve_key_valid(z85), "public key is Z85");
    char *text = nf_read_file(pub, 1 << 16, NULL);
    T_CHECK(text && strstr(text, z85) && strstr(text, "public-key = \""), "public certificate format");
    free(text);
    T_CHECK(nf_curve_keygen(base, NULL, err, sizeof err) == -1 && strstr(err, "never overwritten"),
            "keygen refuses to overwrite: %s", err);

    nf_curve_config_t cc = {.zmq_ctx = ctx, .secret_file = sec, .server_file = pub};
    nf_curve_t *c = nf_curve_new(&cc, err, sizeof err);
    T_CHECK(c != NULL, "load a key pair: %s", err);
    if (c) T_CHECK(!strcmp(nf_curve_public_key(c), z85), "the loaded public key is the written one");
    nf_curve_destroy(&c);
    T_CHECK(c == NULL, "destroy nulls the pointer");

    // a secret file others can read
    NF_CHECK(chmod(sec, 0644) == 0, "chmod");
    c = nf_curve_new(&cc, err, sizeof err);
    T_CHECK(!c && strstr(err, "too open"), "a world-readable secret is refused: %s", err);
    NF_CHECK(chmod(sec, 0600) == 0, "chmod");

    // a certificate whose public key is not its secret key's
    char other[600], bad[700];
    s_path("bob", other, sizeof other);
    T_CHECK(nf_curve_keygen(other, NULL, err, sizeof err) == 0, "keygen: %s", err);
    char *alice = nf_read_file(sec, 1 << 16, NULL);
    char bob_pub[NF_CURVE_KEY_Z85 + 1];
    snprintf(bad, sizeof bad, "%s.key", other);
    char *bob_text = nf_read_file(bad, 1 << 16, NULL);
    NF_CHECK(alice && bob_text, "read keys");
    const char *q = strstr(bob_text, "public-key = \"");
    NF_CHECK(q, "bob's key");
    snprintf(bob_pub, sizeof bob_pub, "%.40s", q + 14);
    char *ap = strstr(alice, "public-key = \"");
    NF_CHECK(ap, "alice's key");
    memcpy(ap + 14, bob_pub, NF_CURVE_KEY_Z85);
    s_path("mixed.key_secret", bad, sizeof bad);
    NF_CHECK(nf_write_file_atomic(bad, alice, strlen(alice)) == 0 && chmod(bad, 0600) == 0, "write");
    cc.secret_file = bad;
    c = nf_curve_new(&cc, err, sizeof err);
    T_CHECK(!c && strstr(err, "does not belong"), "mismatched pair refused: %s", err);
    free(alice);
    free(bob_text);

    // not Z85, and an allow-list without keys
    s_path("junk.key_secret", bad, sizeof bad);
    const char *junk = "curve\n    public-key = \"not a key\"\n";
    NF_CHECK(nf_write_file_atomic(bad, junk, strlen(junk)) == 0 && chmod(bad, 0600) == 0, "write");
    c = nf_curve_new(&cc, err, sizeof err);
    T_CHECK(!c && strstr(err, "not a Z85"), "a malformed key is refused: %s", err);
    char empty[700];
    s_path("empty-allow", empty, sizeof empty);
    NF_CHECK(nf_mkdir_p(empty) == 0, "mkdir");
    cc.secret_file = sec;
    cc.allow = empty;
    c = nf_curve_new(&cc, err, sizeof err);
    T_CHECK(!c && strstr(err, "no public key"), "an empty allow-list is refused: %s", err);
}

// ---------------------------------------------------------------------------

typedef struct {
    void *ctx;
    nf_curve_t *curve;  // NULL: a plain-text client
    void *sock;
} s_client_t;

static s_client_t s_client(const char *name, const char *server_key, bool plain)
{
    s_client_t c = {.ctx = zmq_ctx_new()};
    NF_CHECK(c.ctx, "ctx");
    char base[600], sec[700], err[512];
    s_path(name, base, sizeof base);
    snprintf(sec, sizeof sec, "%s.key_secret", base);
    if (!plain) {
        if (!nf_is_file(sec)) NF_CHECK(nf_curve_keygen(base, NULL, err, sizeof err) == 0, "%s", err);
        nf_curve_config_t cc = {.zmq_ctx = c.ctx, .secret_file = sec};
        c.curve = nf_curve_new(&cc, err, sizeof err);
        NF_CHECK(c.curve, "client curve: %s", err);
    }
    nf_zmq_socket_config_t dc = {.type = ZMQ_DEALER};
    c.sock = nf_zmq_socket_new(c.ctx, &dc);
    int never = -1;  // one connection attempt: refusals are counted exactly
    NF_CHECK(zmq_setsockopt(c.sock, ZMQ_RECONNECT_IVL, &never, sizeof never) == 0, "ivl");
    if (c.curve) NF_CHECK(nf_curve_client(c.curve, c.sock, server_key, name) == 0, "client opts");
    return c;
}

static void s_client_close(s_client_t *c)
{
    nf_zmq_close(&c->sock);
    nf_curve_destroy(&c->curve);
    zmq_ctx_term(c->ctx);
}

// Waits up to ms for a message on sock; returns its size or -1.
static int s_recv_within(void *sock, char *buf, size_t len, int ms, char *user, size_t user_len)
{
    zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, ms) != 1) return -1;
    zmq_msg_t m;
    zmq_msg_init(&m);
    int n = zmq_msg_recv(&m, sock, 0);
    if (n >= 0) {
        memcpy(buf, zmq_msg_data(&m), (size_t)n < len ? (size_t)n : len);
        const char *u = user ? zmq_msg_gets(&m, "User-Id") : NULL;
        if (user) snprintf(user, user_len, "%s", u ? u : "");
    }
    zmq_msg_close(&m);
    return n;
}

// Waits until the server's counters satisfy want (up to 5 s).
static void s_wait_stats(nf_curve_t *c, nf_curve_stats_t *st, uint64_t refused)
{
    double end = nf_now_s() + 5;
    do {
        nf_curve_stats(c, st);
        if (nf_curve_stats_refused(st) >= refused) return;
        nf_sleep_ms(20);
    } while (nf_now_s() < end);
}

static void test_server(void)
{
    char err[512], sbase[600], ssec[700], spub[700], abase[600], apub[700], allow[700];
    s_path("server", sbase, sizeof sbase);
    s_path("allowed", abase, sizeof abase);
    NF_CHECK(nf_curve_keygen(sbase, NULL, err, sizeof err) == 0, "%s", err);
    NF_CHECK(nf_curve_keygen(abase, NULL, err, sizeof err) == 0, "%s", err);
    snprintf(ssec, sizeof ssec, "%s.key_secret", sbase);
    snprintf(spub, sizeof spub, "%s.key", sbase);
    snprintf(apub, sizeof apub, "%s.key", abase);
    s_path("allow", allow, sizeof allow);
    NF_CHECK(nf_mkdir_p(allow) == 0, "mkdir");
    char dst[800];
    snprintf(dst, sizeof dst, "%s/allowed.key", allow);
    size_t len;
    char *txt = nf_read_file(apub, 1 << 16, &len);
    NF_CHECK(txt && nf_write_file_atomic(dst, txt, len) == 0, "copy the allowed key");
    free(txt);

    void *ctx = zmq_ctx_new();
    nf_curve_config_t sc = {.zmq_ctx = ctx, .secret_file = ssec, .allow = allow};
    nf_curve_t *server = nf_curve_new(&sc, err, sizeof err);
    T_CHECK(server != NULL, "server: %s", err);
    if (!server) return;
    nf_curve_t *second = nf_curve_new(&sc, err, sizeof err);
    T_CHECK(!second && strstr(err, "ZAP handler"), "one ZAP handler per context: %s", err);
    nf_zmq_socket_config_t rc = {.type = ZMQ_ROUTER, .router_mandatory = true};
    void *router = nf_zmq_socket_new(ctx, &rc);
    char ep[256];
    NF_CHECK(nf_curve_server(server, router, "test-router") == 0, "server options");
    NF_CHECK(nf_zmq_bind(router, "tcp://127.0.0.1:*", ep, sizeof ep) == 0, "bind");

    char server_key[NF_CURVE_KEY_Z85 + 1] = "";
    {
        char *t = nf_read_file(spub, 1 << 16, NULL);
        const char *q = t ? strstr(t, "public-key = \"") : NULL;
        NF_CHECK(q, "server key");
        snprintf(server_key, sizeof server_key, "%.40s", q + 14);
        free(t);
    }

    // 1. the allowed client: a round trip, its key as User-Id
    s_client_t ok = s_client("allowed", server_key, false);
    NF_CHECK(nf_zmq_connect(ok.sock, ep) == 0, "connect");
    NF_CHECK(zmq_send(ok.sock, "hello", 5, 0) == 5, "send");
    char id[256], buf[64], user[64];
    int idn = s_recv_within(router, id, sizeof id, 5000, NULL, 0);
    int n = idn > 0 ? s_recv_within(router, buf, sizeof buf, 1000, user, sizeof user) : -1;
    T_CHECK(n == 5 && !memcmp(buf, "hello", 5), "the allowed client got through (%d)", n);
    T_CHECK(n == 5 && !strcmp(user, nf_curve_public_key(ok.curve)), "User-Id is the client key: %s",
            user);
    if (idn > 0) {
        NF_CHECK(zmq_send(router, id, (size_t)idn, ZMQ_SNDMORE) == idn, "send id");
        NF_CHECK(zmq_send(router, "world", 5, 0) == 5, "send");
    }
    n = s_recv_within(ok.sock, buf, sizeof buf, 5000, NULL, 0);
    T_CHECK(n == 5 && !memcmp(buf, "world", 5), "and the answer came back");

    // 2. an unlisted client key
    s_client_t stranger = s_client("stranger", server_key, false);
    NF_CHECK(nf_zmq_connect(stranger.sock, ep) == 0, "connect");
    NF_CHECK(zmq_send(stranger.sock, "let me in", 9, ZMQ_DONTWAIT) == 9 || zmq_errno() == EAGAIN,
             "send");
    nf_curve_stats_t st;
    s_wait_stats(server, &st, 1);
    T_CHECK(st.refused_key == 1, "unlisted key refused once by ZAP (%llu)",
            (unsigned long long)st.refused_key);
    nf_curve_stats_t cst;
    double end = nf_now_s() + 5;
    do {
        nf_curve_stats(stranger.curve, &cst);
        if (cst.refused_by_server) break;
        nf_sleep_ms(20);
    } while (nf_now_s() < end);
    T_CHECK(cst.refused_by_server == 1, "the stranger's monitor saw the refusal (%llu)",
            (unsigned long long)cst.refused_by_server);

    // 3. a plain-text client
    s_client_t plain = s_client("plain", NULL, true);
    NF_CHECK(nf_zmq_connect(plain.sock, ep) == 0, "connect");
    (void)zmq_send(plain.sock, "plain", 5, ZMQ_DONTWAIT);
    s_wait_stats(server, &st, 2);
    T_CHECK(st.refused_plaintext == 1, "plain-text client refused once (%llu)",
            (unsigned long long)st.refused_plaintext);

    // 4. a client that trusts another server key
    char wrong[NF_CURVE_KEY_Z85 + 1], wrong_sec[NF_CURVE_KEY_Z85 + 1];
    NF_CHECK(zmq_curve_keypair(wrong, wrong_sec) == 0, "keypair");
    s_client_t spoofed = s_client("allowed", wrong, false);  // even with an allowed key
    NF_CHECK(nf_zmq_connect(spoofed.sock, ep) == 0, "connect");
    (void)zmq_send(spoofed.sock, "spoof", 5, ZMQ_DONTWAIT);
    s_wait_stats(server, &st, 3);
    T_CHECK(st.refused_crypto == 1, "wrong-server-key client refused once (%llu)",
            (unsigned long long)st.refused_crypto);

    // nothing but the allowed client's message reached the router
    n = s_recv_within(router, buf, sizeof buf, 500, NULL, 0);
    T_CHECK(n < 0, "no refused peer's message arrived");
    nf_curve_stats(server, &st);
    T_CHECK(st.accepted == 1 && nf_curve_stats_refused(&st) == 3 && st.refused_other == 0,
            "accepted %llu, refused key %llu plain %llu crypto %llu other %llu",
            (unsigned long long)st.accepted, (unsigned long long)st.refused_key,
            (unsigned long long)st.refused_plaintext, (unsigned long long)st.refused_crypto,
            (unsigned long long)st.refused_other);

    s_client_close(&ok);
    s_client_close(&stranger);
    s_client_close(&plain);
    s_client_close(&spoofed);
    nf_zmq_close(&router);
    nf_curve_destroy(&server);
    zmq_ctx_term(ctx);
}

static void test_locality(void)
{
    static const struct {
        const char *ep;
        bool local;
    } cases[] = {
        {"ipc:///tmp/x.ipc", true},        {"inproc://a", true},
        {"tcp://127.0.0.1:5555", true},    {"tcp://127.1.2.3:*", true},
        {"tcp://localhost:5555", true},    {"tcp://[::1]:5555", true},
        {"tcp://lo:5555", true},           {"tcp://0.0.0.0:5555", false},
        {"tcp://*:5555", false},           {"tcp://10.0.0.1:5555", false},
        {"tcp://eth0:5555", false},        {"tcp://128.0.0.1:1", false},
        {"tcp://127.0.0.1", false},        {"udp://127.0.0.1:5", false},
        {"tcp://localhost.evil.com:1", false},
    };
    for (size_t i = 0; i < NF_ARRAY_LEN(cases); i++)
        T_CHECK(nf_curve_endpoint_local(cases[i].ep) == cases[i].local, "%s is %s", cases[i].ep,
                cases[i].local ? "local" : "exposed");
}

// ---------------------------------------------------------------------------
// 4. the loader's processes over CURVE

static unsigned long long s_field(const char *line, const char *before)
{
    const char *p = strstr(line, before);
    return p ? strtoull(p + strlen(before), NULL, 10) : 0;
}

static void test_pipeline(void)
{
    const char *root = h_make_dataset("secure", 3, 4, 30, false, false);
    char err[512];
    loader_dataset_config_t dc = {.root = root, .mode = LOADER_SPLIT_FOLDERS};
    loader_dataset_t *ds = loader_dataset_new(&dc, err, sizeof err);
    NF_CHECK(ds, "%s", err);
    char co_sec[700], co_pub[700], c_sec[700], c_pub[700], a_sec[700], a_pub[700], b_sec[700],
        b_pub[700], allow[700], log[700], line[1024];
    rh_keys(s_dir, "p-coordinator", co_sec, co_pub, sizeof co_sec);
    rh_keys(s_dir, "p-consumer", c_sec, c_pub, sizeof c_sec);
    rh_keys(s_dir, "p-worker-a", a_sec, a_pub, sizeof a_sec);
    rh_keys(s_dir, "p-worker-b", b_sec, b_pub, sizeof b_sec);
    s_path("p-allow", allow, sizeof allow);
    rh_allow(allow, c_pub);
    rh_allow(allow, a_pub);
    const char *bin = rh_bin("loader");

    // plain text on an address other hosts reach: refused, one line, exit 1
    rh_proc_t plain_co;
    char *pargv[] = {(char *)bin, "coordinator", "--data", (char *)root, "--bind",
                     "tcp://0.0.0.0:0", NULL};
    rh_spawn(&plain_co, "p-plain-coordinator", pargv);
    T_CHECK(rh_reap(&plain_co, 10000) && rh_exit_code(&plain_co) == 1, "plain exposed bind: exit %d",
            rh_exit_code(&plain_co));
    T_CHECK(rh_log_line(&plain_co, "", line, sizeof line, 0) && strstr(line, "refusing to bind"),
            "its message: %s", line);

    rh_proc_t co, con, wa, wb, wc, wd;
    char *cargv[] = {(char *)bin, "coordinator", "--data", (char *)root, "--bind",
                     "tcp://127.0.0.1:*", "--heartbeat-ms", "100", "--curve-secret", co_sec,
                     "--curve-allow", allow, NULL};
    rh_spawn(&co, "p-coordinator", cargv);
    T_CHECK(rh_log_line(&co, "coordinator tcp://", line, sizeof line, 20000) && strstr(line, "CURVE"),
            "coordinator up with CURVE: %s", line);
    char ep[256] = "";
    sscanf(line, "coordinator %255s", ep);
    char *aargv[] = {(char *)bin, "worker", "--connect", ep, "--heartbeat-ms", "100",
                     "--curve-secret", a_sec, "--curve-server", co_pub, NULL};
    char *bargv[] = {(char *)bin, "worker", "--connect", ep, "--heartbeat-ms", "100",
                     "--curve-secret", b_sec, "--curve-server", co_pub, NULL};
    char *cpargv[] = {(char *)bin, "worker", "--connect", ep, "--heartbeat-ms", "100", NULL};
    char *dargv[] = {(char *)bin, "worker", "--connect", ep, "--heartbeat-ms", "100",
                     "--curve-secret", a_sec, "--curve-server", c_pub, NULL};
    rh_spawn(&wb, "p-worker-unlisted", bargv);
    rh_spawn(&wc, "p-worker-plain", cpargv);
    rh_spawn(&wd, "p-worker-wrong-server-key", dargv);
    rh_spawn(&wa, "p-worker-allowed", aargv);
    s_path("p-delivery.log", log, sizeof log);
    char *kargv[] = {(char *)bin, "consume", "--connect", ep, "--split", "valid", "--batch-size",
                     "8", "--presize", "32", "--log", log, "--timeout-ms", "30000",
                     "--curve-secret", c_sec, "--curve-server", co_pub, "--curve-allow", allow, NULL};
    rh_spawn(&con, "p-consumer", kargv);
    T_CHECK(rh_reap(&con, 60000) && rh_exit_code(&con) == 0, "consumer over CURVE: exit %d (%s)",
            rh_exit_code(&con), con.log);
    rh_account_t a;
    T_CHECK(rh_account_read(log, ds, LOADER_VALID, true, 8, &a) == 0, "delivery log");
    rh_account_check(&a, 1, 0, NULL, "secure pipeline");
    rh_account_free(&a);
    nf_sleep_ms(300);  // let the refused workers try a few more times
    rh_stop(&wa);
    rh_stop(&wb);
    rh_stop(&wc);
    rh_stop(&wd);
    rh_stop(&co);
    T_CHECK(rh_exit_code(&co) == 0, "coordinator stopped cleanly");
    T_CHECK(rh_log_line(&co, "", line, sizeof line, 0), "coordinator log");
    char stats[1024] = "", curve[1024] = "";
    FILE *f = fopen(co.log, "r");
    for (char buf[1024]; f && fgets(buf, sizeof buf, f);) {
        if (strstr(buf, "coordinator: ") && strstr(buf, "workers joined"))
            snprintf(stats, sizeof stats, "%s", buf);
        if (strstr(buf, "curve: ") && strstr(buf, "clients accepted"))
            snprintf(curve, sizeof curve, "%s", buf);
    }
    if (f) fclose(f);
    T_CHECK(strstr(stats, ", 1 epochs, 1 workers joined"), "only the allowed worker joined: %s", stats);
    unsigned long long key = s_field(curve, "(key "), plain = s_field(curve, "plain text "),
                       crypto = s_field(curve, "wrong server key ");
    T_CHECK(key >= 1 && plain >= 1 && crypto >= 1 && s_field(curve, "curve: ") >= 2,
            "refusals by kind: %s", curve);
    T_CHECK(rh_log_line(&wb, "", line, sizeof line, 0), "unlisted worker log");
    bool told = false;
    f = fopen(wb.log, "r");
    for (char buf[1024]; f && fgets(buf, sizeof buf, f);) told |= strstr(buf, "refused us") != NULL;
    if (f) fclose(f);
    T_CHECK(told, "the unlisted worker logs that the coordinator refused it");
    printf("REL {\"test\": \"curve\", \"accepted\": %llu, \"refused_unlisted_key\": %llu, "
           "\"refused_plain_text\": %llu, \"refused_wrong_server_key\": %llu, "
           "\"workers_joined\": 1, \"plain_exposed_bind_refused\": true}\n",
           s_field(curve, "curve: "), key, plain, crypto);
    loader_dataset_destroy(&ds);
}

int main(void)
{
    nf_log_init(&(nf_log_config_t){.stage = "test", .level = NF_LOG_WARN});
    if (!zmq_has("curve")) t_skip("this libzmq has no CURVE support");
    snprintf(s_dir, sizeof s_dir, "%s/keys", t_tmpdir());
    NF_CHECK(nf_mkdir_p(s_dir) == 0, "mkdir");
    void *ctx = zmq_ctx_new();
    test_keys(ctx);
    zmq_ctx_term(ctx);
    test_server();
    test_locality();
    test_pipeline();
    return t_done();
}
