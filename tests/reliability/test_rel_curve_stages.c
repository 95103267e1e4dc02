/*
 * test_rel_curve_stages.c: CURVE on the sockets of the stages after the
 * loader (docs/reliability.md, Security), over tcp on loopback.
 *   1. `augment serve` with keys, fed by a CURVE loader coordinator and an
 *      allow-listed worker (augment's loader link and its sink are CURVE too):
 *      an allow-listed client (augment/client.h) gets the dataset and a whole
 *      validation stream, every sample once; an unlisted client, a plain-text
 *      client and a client that trusts a wrong server key get nothing, and
 *      augment logs each under its own kind and counts them (its exit line;
 *      these clients reconnect, so at least once each); only the allowed
 *      client's stream was served.
 *   2. The bind policy and the shared options: plain text on an address other
 *      hosts reach is refused by augment serve and trainer train with the
 *      loader's one-line message; incomplete CURVE options are usage errors
 *      in every stage (common/curve_opts.h).
 * The trainer's announcement socket is test_rel_curve_announce.c's.
 */
#include "client.h"
#include "curve.h"
#include "fsutil.h"
#include "harness.h"
#include "log.h"
#include "relharness.h"
#include "testlib.h"
#include "timeutil.h"
#include "zmqutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

static unsigned long long s_field(const char *line, const char *before)
{
    const char *p = strstr(line, before);
    return p ? strtoull(p + strlen(before), NULL, 10) : 0;
}

// ---------------------------------------------------------------------------
// 1. augment serve

// An augment client with the keys of side; -1 when the dataset does not come within ms.
static int s_try_dataset(const char *ep, rh_side_t *side, int ms, augment_client_t **out)
{
    augment_client_config_t c = {.endpoint = ep, .name = "test", .heartbeat_ms = 100,
                                 .stop_fd = -1, .zmq_ctx = side->ctx, .curve = side->curve};
    augment_client_t *cl = augment_client_new(&c);
    NF_CHECK(cl, "augment client");
    uint32_t nc = 0, nt = 0, nv = 0;
    const char *const *names;
    int rc = augment_client_dataset(cl, &nc, &names, &nt, &nv, ms);
    if (rc == 0) T_CHECK(nc == 3 && nv == 3 * 4, "dataset through CURVE: %u classes, %u valid", nc, nv);
    int saved = errno;
    if (out) *out = cl;
    else augment_client_destroy(&cl);
    errno = saved;
    return rc;
}

static void test_augment(void)
{
    const char *root = h_make_dataset("stages", 3, 2, 4, false, false);
    s_pair_t co = s_pair("coordinator"), aug = s_pair("augment"), wk = s_pair("worker"),
             ev = s_pair("evaluator"), st = s_pair("stranger");
    char co_allow[700], aug_allow[700], line[1024];
    snprintf(co_allow, sizeof co_allow, "%s/allow-coordinator", s_keydir);
    snprintf(aug_allow, sizeof aug_allow, "%s/allow-augment", s_keydir);
    rh_allow(co_allow, aug.pub);  // augment is the coordinator's consumer
    rh_allow(co_allow, wk.pub);
    rh_allow(aug_allow, ev.pub);  // augment's client
    rh_allow(aug_allow, wk.pub);  // the worker pushes raw batches to augment's sink

    rh_proc_t pco, pwk, paug;
    char *cargv[] = {(char *)rh_bin("loader"), "coordinator", "--data", (char *)root, "--bind",
                     "tcp://127.0.0.1:*", "--heartbeat-ms", "100", "--curve-secret", co.sec,
                     "--curve-allow", co_allow, NULL};
    rh_spawn(&pco, "s-coordinator", cargv);
    T_CHECK(rh_log_line(&pco, "coordinator tcp://", line, sizeof line, 20000), "coordinator up");
    char co_ep[256] = "", aug_ep[256] = "";
    sscanf(line, "coordinator %255s", co_ep);
    char *wargv[] = {(char *)rh_bin("loader"), "worker", "--connect", co_ep, "--heartbeat-ms",
                     "100", "--curve-secret", wk.sec, "--curve-server", co.pub, NULL};
    rh_spawn(&pwk, "s-worker", wargv);
    char *aargv[] = {(char *)rh_bin("augment"), "serve", "--connect", co_ep, "--bind",
                     "tcp://127.0.0.1:0", "--device", "cpu", "--threads", "1", "--curve-secret",
                     aug.sec, "--curve-server", co.pub, "--curve-allow", aug_allow, NULL};
    rh_spawn(&paug, "s-augment", aargv);
    T_CHECK(rh_log_line(&paug, "augment tcp://", line, sizeof line, 20000) && strstr(line, "CURVE"),
            "augment up with CURVE: %s", line);
    sscanf(line, "augment %255s", aug_ep);

    // the allow-listed client: the dataset and a whole validation epoch
    rh_side_t ok = rh_side(ev.sec, aug.pub, NULL);
    augment_client_t *cl = NULL;
    T_CHECK(s_try_dataset(aug_ep, &ok, 30000, &cl) == 0, "the allowed client gets the dataset");
    augment_stream_request_t q = {.stream = 1, .split = 1, .mode = AUGMENT_MODE_VALID,
                                  .batch_size = 5, .size = 24, .presize = 32, .credits = 2};
    augment_stream_plan_t plan;
    T_CHECK(augment_client_start(cl, &q, &plan, 30000) == 0 && plan.n_samples == 12 &&
                plan.n_batches == 3,
            "plan over CURVE (%u batches, %u samples)", plan.n_batches, plan.n_samples);
    int seen[64] = {0}, batches = 0;  // dataset indices (train + valid = 18)
    for (augment_tensor_batch_t *b = NULL; augment_client_next(cl, 1, &b, 30000) == 1;) {
        for (int i = 0; i < b->n; i++)
            if (b->indices[i] < 64) seen[b->indices[i]]++;
        T_CHECK(b->h == 24 && b->w == 24 && b->c == 3, "tensor shape");
        batches++;
        augment_client_release(cl, &b);
    }
    int once = 0;
    for (int i = 0; i < 64; i++) once += seen[i] == 1;
    T_CHECK(batches == 3 && once == 12, "a whole stream over CURVE: %d batches, %d/12 samples once",
            batches, once);

    // refused clients get nothing, one at a time (augment's log says which kind)
    struct {
        const char *what, *secret, *server, *log;
    } bad[] = {
        {"an unlisted client", st.sec, aug.pub, "not allowed"},
        {"a plain-text client", NULL, NULL, "plain text"},
        // a real key, but the coordinator's, not augment's
        {"a client trusting a wrong server key", ev.sec, co.pub, "does not decrypt"},
    };
    for (size_t i = 0; i < NF_ARRAY_LEN(bad); i++) {
        rh_side_t side = rh_side(bad[i].secret, bad[i].server, NULL);
        errno = 0;
        T_CHECK(s_try_dataset(aug_ep, &side, 1500, NULL) == -1 && errno == ETIMEDOUT,
                "%s gets nothing", bad[i].what);
        rh_side_close(&side);
        T_CHECK(rh_log_find(&paug, bad[i].log, line, sizeof line), "augment logs %s: '%s'",
                bad[i].what, bad[i].log);
    }
    augment_client_destroy(&cl);
    rh_side_close(&ok);
    rh_stop(&paug);
    T_CHECK(rh_exit_code(&paug) == 0, "augment stopped cleanly (%d)", rh_exit_code(&paug));
    char curve[1024] = "", stats[1024] = "";
    T_CHECK(rh_log_find(&paug, "clients accepted", curve, sizeof curve), "augment's curve line");
    T_CHECK(rh_log_find(&paug, "epochs done", stats, sizeof stats), "augment's stats line");
    unsigned long long acc = s_field(curve, "curve: "), key = s_field(curve, "(key "),
                       plain = s_field(curve, "plain text "),
                       crypto = s_field(curve, "wrong server key ");
    // accepted: the client and the worker's sink connection
    T_CHECK(acc >= 2 && key >= 1 && plain >= 1 && crypto >= 1, "augment's refusals by kind: %s",
            curve);
    T_CHECK(strstr(stats, "augment: 1 streams"), "only the allowed client was served: %s", stats);
    rh_stop(&pwk);
    rh_stop(&pco);
    T_CHECK(rh_log_find(&pco, "clients accepted", curve, sizeof curve) &&
                s_field(curve, "curve: ") >= 2 && s_field(curve, "(key ") == 0,
            "the coordinator accepted augment and the worker: %s", curve);
    printf("REL {\"test\": \"curve_augment\", \"accepted\": %llu, \"refused_unlisted_key\": %llu, "
           "\"refused_plain_text\": %llu, \"refused_wrong_server_key\": %llu, \"batches\": %d}\n",
           acc, key, plain, crypto, batches);
}

// ---------------------------------------------------------------------------
// 2. the bind policy and the options

// Runs argv to its end; true when it exits with code and its output has needle.
static bool s_run_expect(const char *name, char *const argv[], int code, const char *needle)
{
    rh_proc_t p;
    rh_spawn(&p, name, argv);
    char line[1024];
    bool ended = rh_reap(&p, 30000);
    if (!ended) rh_stop(&p);
    bool said = rh_log_find(&p, needle, line, sizeof line);
    T_CHECK(ended && rh_exit_code(&p) == code && said, "%s: exit %d (want %d), says '%s'", name,
            rh_exit_code(&p), code, needle);
    return ended && rh_exit_code(&p) == code && said;
}

static void test_policy(void)
{
    const char *refusal = "refusing to bind tcp://0.0.0.0:0 in plain text";
    char *aug[] = {(char *)rh_bin("augment"), "serve", "--connect", "tcp://127.0.0.1:9",
                   "--bind", "tcp://0.0.0.0:0", "--device", "cpu", NULL};
    s_run_expect("p-augment-plain", aug, 1, refusal);
    char out[700];
    snprintf(out, sizeof out, "%s/run-plain", t_tmpdir());
    char *tr[] = {(char *)rh_bin("trainer"), "train", "--augment", "tcp://127.0.0.1:9", "--bind",
                  "tcp://0.0.0.0:0", "--out", out, "--device", "cpu", "--preset", "tiny", NULL};
    s_run_expect("p-trainer-plain", tr, 1, refusal);

    // incomplete options: usage errors (exit 2) with the role's rule
    char *a2[] = {(char *)rh_bin("augment"), "serve", "--connect", "tcp://127.0.0.1:9",
                  "--curve-secret", "x.key_secret", NULL};
    s_run_expect("p-augment-opts", a2, 2, "CURVE needs --curve-secret and --curve-allow");
    char *t2[] = {(char *)rh_bin("trainer"), "train", "--augment", "tcp://127.0.0.1:9",
                  "--curve-allow", "keys", NULL};
    s_run_expect("p-trainer-opts", t2, 2, "CURVE needs --curve-secret");
    char *e2[] = {(char *)rh_bin("evaluator"), "--augment", "tcp://127.0.0.1:9", "--follow",
                  "tcp://127.0.0.1:8", "--curve-allow", "keys", NULL};
    s_run_expect("p-evaluator-opts", e2, 2, "--curve-allow: this stage binds no socket");
    char *w2[] = {(char *)rh_bin("loader"), "worker", "--connect", "tcp://127.0.0.1:9",
                  "--curve-secret", "x.key_secret", NULL};
    s_run_expect("p-worker-opts", w2, 2, "CURVE needs --curve-secret and --curve-server");
}

int main(void)
{
    nf_log_init(&(nf_log_config_t){.stage = "test", .level = NF_LOG_WARN});
    if (!zmq_has("curve")) t_skip("this libzmq has no CURVE support");
    snprintf(s_keydir, sizeof s_keydir, "%s/keys", t_tmpdir());
    test_augment();
    test_policy();
    return t_done();
}
