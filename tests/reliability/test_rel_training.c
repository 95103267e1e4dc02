/*
 * test_rel_training.c: faults during real training, the four stages started
 * by hand as separate processes (a `loader coordinator` with one worker, an
 * `augment serve`, a `trainer train`, an `evaluator --follow`), as a user does
 * on separate terminals. One program, three cases (three ctest entries):
 *
 *   --case resume     a run of N epochs without faults, and the same run
 *                     SIGKILLed in epoch 2 and resumed with --resume RUNDIR:
 *                     the final checkpoints' tensors are bit-identical (oneDNN,
 *                     one thread: bit-deterministic; tests/trainer/test_ckpt.c),
 *                     metrics.csv has every epoch's row exactly once with the
 *                     same train_loss, metrics.jsonl every step once, the
 *                     summary covers all N epochs; the delivery logs account
 *                     exactly (the killed run's finished epochs, then the
 *                     resumed epochs).
 *   --case augment    augment SIGKILLed mid-epoch several times (seeded gaps)
 *                     and started again at once; the trainer carries on and its
 *                     delivery log accounts exactly: every planned sample of
 *                     every epoch trained on once, no batch twice.
 *   --case evaluator  the evaluator SIGKILLed while it evaluates a checkpoint,
 *                     a new one started, twice; every epoch still gets its
 *                     valid_loss/accuracy row, the trainer ends by itself (a
 *                     watchdog fails a hang) and its log says the evaluator was
 *                     lost and replaced; its delivery log accounts exactly.
 *
 * Generated data (loader gen-synthetic), xresnet18 at 32 px: each case takes
 * 10-30 s on 2 cores. --data DIR --epochs N --kills N size a longer run on
 * real data (tests/reliability/long_run.sh); one `REL {json}` line gives the
 * figures.
 */
#include "dataset.h"
#include "fsutil.h"
#include "log.h"
#include "relharness.h"
#include "safetensors.h"
#include "testlib.h"
#include "timeutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *data;
    int epochs, kills, size, presize, bs;
    char loader_ep[600], augment_ep[600], sink_ep[600];
    rh_proc_t loader, augment;
    uint32_t augment_gen;
} s_env_t;

// An int as a string for an argv (a ring of buffers: several per call site).
static char *s_int(int v)
{
    static char buf[16][16];
    static int k;
    char *b = buf[k++ % 16];
    snprintf(b, 16, "%d", v);
    return b;
}

static void s_start_augment(s_env_t *env)
{
    char name[64];
    snprintf(name, sizeof name, "augment-%u", env->augment_gen++);
    char *argv[] = {(char *)rh_bin("augment"), "serve", "--connect", env->loader_ep, "--bind",
                    env->augment_ep, "--sink", env->sink_ep, "--threads", "1", NULL};
    rh_spawn(&env->augment, name, argv);
}

static void s_start_data(s_env_t *env)
{
    const char *t = t_tmpdir();
    snprintf(env->loader_ep, sizeof env->loader_ep, "ipc://%s/loader.ipc", t);
    snprintf(env->augment_ep, sizeof env->augment_ep, "ipc://%s/augment.ipc", t);
    snprintf(env->sink_ep, sizeof env->sink_ep, "ipc://%s/sink.ipc", t);
    char *largv[] = {(char *)rh_bin("loader"), "coordinator", "--data", (char *)env->data,
                     "--bind", env->loader_ep, "--spawn-workers", "1", "--split", "folders",
                     "--valid", "val", "--seed", "42", NULL};
    rh_spawn(&env->loader, "loader", largv);
    char line[1024];
    T_CHECK(rh_log_line(&env->loader, "coordinator ", line, sizeof line, 30000), "loader is up");
    s_start_augment(env);
}

// Starts `trainer train` with the test's recipe; extra options after them.
static void s_trainer(const s_env_t *env, rh_proc_t *p, const char *name, char **extra)
{
    char *argv[40] = {(char *)rh_bin("trainer"), "train", "--preset", "tiny", "--data",
                      (char *)env->data, "--size", s_int(env->size), "--presize",
                      s_int(env->presize), "--bs", s_int(env->bs), "--epochs",
                      s_int(env->epochs), "--threads", "1", "--augment",
                      (char *)env->augment_ep};
    int n = 18;
    for (int i = 0; extra[i]; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    rh_spawn(p, name, argv);
}

static void s_evaluator(const s_env_t *env, rh_proc_t *p, const char *name, const char *run)
{
    char follow[700];
    snprintf(follow, sizeof follow, "ipc://%s/trainer.ipc", run);
    char *argv[] = {(char *)rh_bin("evaluator"), "--augment", (char *)env->augment_ep,
                    "--follow", follow, "--threads", "1", NULL};
    rh_spawn(p, name, argv);
}

// True once `needle` is in the file.
static bool s_file_has(const char *path, const char *needle)
{
    size_t len;
    char *s = nf_is_file(path) ? nf_read_file(path, (size_t)1 << 28, &len) : NULL;
    bool has = s && strstr(s, needle);
    free(s);
    return has;
}

static bool s_wait_file_has(const char *path, const char *needle, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 20) {
        if (s_file_has(path, needle)) return true;
        nf_sleep_ms(20);
    }
    return false;
}

static int s_count(const char *path, const char *needle)
{
    size_t len;
    char *s = nf_is_file(path) ? nf_read_file(path, (size_t)1 << 28, &len) : NULL;
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, needle)); p++) n++;
    free(s);
    return n;
}

// The train_loss column of metrics.csv rows (epoch e -> loss[e]); rows per epoch in count[].
static void s_csv_rows(const char *path, int epochs, double *loss, int *count, bool *has_valid)
{
    memset(count, 0, (size_t)epochs * sizeof *count);
    FILE *f = fopen(path, "r");
    T_CHECK(f != NULL, "%s exists", path);
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        int e, fit, fe;
        double tl;
        char vl[32];
        if (sscanf(line, "%d,%d,%d,%lf,%31[^,]", &e, &fit, &fe, &tl, vl) != 5) continue;
        if (e < 0 || e >= epochs) {
            T_CHECK(0, "%s: a row of epoch %d", path, e);
            continue;
        }
        count[e]++;
        loss[e] = tl;
        has_valid[e] = strcmp(vl, "#na#") != 0;
    }
    if (f) fclose(f);
}

static void s_stop_data(s_env_t *env)
{
    rh_stop(&env->augment);
    rh_stop(&env->loader);
}

static void s_account(const char *log, const loader_dataset_t *ds, const s_env_t *env,
                      uint32_t epochs, const char *what, uint64_t *reissued)
{
    rh_account_t a;
    T_CHECK(rh_account_read(log, ds, LOADER_TRAIN, false, (uint32_t)env->bs, &a) == 0,
            "%s: delivery log %s readable", what, log);
    rh_account_check(&a, epochs, 0, NULL, what);
    for (uint32_t k = 0; k < a.n_epochs && reissued; k++) *reissued += a.e[k].reissued;
    rh_account_free(&a);
}

// ---------------------------------------------------------------------------

static bool s_tensors_equal(const char *a_path, const char *b_path, size_t *n_out)
{
    char err[256];
    safetensors_t *a = safetensors_open(a_path, err, sizeof err);
    T_CHECK(a != NULL, "%s: %s", a_path, err);
    safetensors_t *b = safetensors_open(b_path, err, sizeof err);
    T_CHECK(b != NULL, "%s: %s", b_path, err);
    bool same = a && b && safetensors_count(a) == safetensors_count(b) && safetensors_count(a) > 0;
    for (size_t i = 0; same && i < safetensors_count(a); i++) {
        const safetensors_tensor_t *x = safetensors_tensor_at(a, i);
        const safetensors_tensor_t *y = safetensors_find(b, x->name);
        same = y && x->dtype == y->dtype && x->nbytes == y->nbytes &&
               memcmp(x->data, y->data, x->nbytes) == 0;
        T_CHECK(same, "tensor %s bit-identical", x->name);
    }
    *n_out = a ? safetensors_count(a) : 0;
    safetensors_close(&a);
    safetensors_close(&b);
    return same;
}

static void s_case_resume(s_env_t *env, const loader_dataset_t *ds)
{
    const char *t = t_tmpdir();
    char full[600], res[600], dlog1[600], dlog2[600], path[700], path2[700];
    snprintf(full, sizeof full, "%s/run-full", t);
    snprintf(res, sizeof res, "%s/run-resumed", t);
    snprintf(dlog1, sizeof dlog1, "%s/resume-before.log", t);
    snprintf(dlog2, sizeof dlog2, "%s/resume-after.log", t);
    double t0 = nf_now_s();
    rh_proc_t tr;
    s_trainer(env, &tr, "trainer-full", (char *[]){"--no-eval", "--out", full, NULL});
    T_CHECK(rh_reap(&tr, env->data ? 3600000 : 300000) && rh_exit_code(&tr) == 0, "the uninterrupted run (log %s)", tr.log);
    double full_s = nf_now_s() - t0;

    s_trainer(env, &tr, "trainer-killed",
              (char *[]){"--no-eval", "--out", res, "--delivery-log", dlog1, NULL});
    // the delivery log is flushed per batch (metrics.jsonl's step lines are not)
    T_CHECK(s_wait_file_has(dlog1, "\nbatch 2 1 ", env->data ? 3600000 : 300000), "epoch 2 under way");
    rh_signal(&tr, SIGKILL);
    T_CHECK(rh_reap(&tr, 10000) && rh_exit_code(&tr) == 128 + SIGKILL, "trainer killed in epoch 2");
    // the resumed run: nothing but the run folder (and where the stages are)
    s_trainer(env, &tr, "trainer-resumed-refused",
              (char *[]){"--resume", res, "--lr", "0.1", "--no-eval", NULL});
    T_CHECK(rh_reap(&tr, 60000) && rh_exit_code(&tr) == 2, "a conflicting --lr is refused");
    T_CHECK(s_file_has(tr.log, "--lr 0.1 conflicts with the checkpoint's recipe"),
            "one line names the conflict (%s)", tr.log);
    char *rargv[] = {(char *)rh_bin("trainer"), "train", "--resume", res, "--augment",
                     env->augment_ep, "--no-eval", "--threads", "1", "--delivery-log", dlog2, NULL};
    rh_spawn(&tr, "trainer-resumed", rargv);
    T_CHECK(rh_reap(&tr, env->data ? 3600000 : 300000) && rh_exit_code(&tr) == 0, "the resumed run (log %s)", tr.log);
    T_CHECK(s_file_has(tr.log, "resumed from ") && s_file_has(tr.log, ": 2 of "),
            "it says where it resumed (%s)", tr.log);

    snprintf(path, sizeof path, "%s/checkpoints/final.safetensors", full);
    snprintf(path2, sizeof path2, "%s/checkpoints/final.safetensors", res);
    size_t n_tensors = 0;
    bool same = s_tensors_equal(path, path2, &n_tensors);
    T_CHECK(same, "final checkpoints bit-identical over %zu tensors", n_tensors);

    int n = env->epochs, cnt_a[64], cnt_b[64];
    double la[64], lb[64];
    bool va[64], vb[64];
    NF_CHECK(n <= 64, "epochs");
    snprintf(path, sizeof path, "%s/metrics.csv", full);
    s_csv_rows(path, n, la, cnt_a, va);
    snprintf(path, sizeof path, "%s/metrics.csv", res);
    s_csv_rows(path, n, lb, cnt_b, vb);
    for (int e = 0; e < n; e++)
        T_CHECK(cnt_a[e] == 1 && cnt_b[e] == 1 && la[e] == lb[e],
                "epoch %d: one row each (%d, %d), train_loss %.6f == %.6f", e, cnt_a[e], cnt_b[e],
                la[e], lb[e]);
    snprintf(path, sizeof path, "%s/metrics.jsonl", full);
    snprintf(path2, sizeof path2, "%s/metrics.jsonl", res);
    int steps_a = s_count(path, "\"type\": \"step\""), steps_b = s_count(path2, "\"type\": \"step\"");
    T_CHECK(steps_a > 0 && steps_a == steps_b, "metrics.jsonl step lines: %d and %d", steps_a,
            steps_b);
    T_CHECK(s_count(path2, "\"type\": \"epoch\"") == n, "metrics.jsonl: %d epoch rows", n);
    for (int s = 1; s <= steps_a; s++) {
        char key[48];
        snprintf(key, sizeof key, "\"step\": %d, \"epoch\"", s);
        T_CHECK(s_count(path2, key) == 1, "step %d once in the resumed metrics.jsonl", s);
    }
    snprintf(path, sizeof path, "%s/summary.json", res);
    char want[64];
    snprintf(want, sizeof want, "\"epochs\":\t%d", n);
    T_CHECK(s_file_has(path, want) && s_file_has(path, "\"interrupted\":\tfalse"),
            "summary.json covers %d epochs", n);

    // delivery: epochs 0-1 exact before the kill (epoch 2 cut short), 2..N-1 after
    rh_account_t a;
    T_CHECK(rh_account_read(dlog1, ds, LOADER_TRAIN, false, (uint32_t)env->bs, &a) == 0 &&
                a.n_epochs == 3, "killed run's delivery log: 3 epochs (%u)", a.n_epochs);
    for (uint32_t k = 0; k < 2 && k < a.n_epochs; k++)
        T_CHECK(a.e[k].done && a.e[k].lost == 0 && a.e[k].more == 0 && a.e[k].seq_repeats == 0,
                "killed run epoch %u exact", k);
    T_CHECK(a.n_epochs == 3 && !a.e[2].done, "epoch 2 was cut short");
    rh_account_free(&a);
    s_account(dlog2, ds, env, (uint32_t)n - 2, "resumed run", NULL);
    printf("REL {\"test\": \"trainer_resume\", \"epochs\": %d, \"killed_in_epoch\": 2, "
           "\"tensors_bit_identical\": %s, \"tensors\": %zu, \"steps\": %d, \"full_run_s\": %.1f}\n",
           n, same ? "true" : "false", n_tensors, steps_b, full_s);
}

// ---------------------------------------------------------------------------

typedef struct {
    s_env_t *env;
    rh_proc_t *trainer;
} s_chaos_arg_t;

static void s_respawn_augment(rh_proc_t *p, uint32_t generation, void *arg)
{
    (void)p;
    (void)generation;
    s_start_augment(((s_chaos_arg_t *)arg)->env);  // p is env->augment
}

static bool s_trainer_done(void *arg) { return rh_reap(((s_chaos_arg_t *)arg)->trainer, 0); }

static void s_case_augment(s_env_t *env, const loader_dataset_t *ds)
{
    const char *t = t_tmpdir();
    char run[600], dlog[600];
    snprintf(run, sizeof run, "%s/run-augment", t);
    snprintf(dlog, sizeof dlog, "%s/augment-delivery.log", t);
    rh_proc_t tr;
    double t0 = nf_now_s();
    s_trainer(env, &tr, "trainer", (char *[]){"--no-eval", "--out", run, "--delivery-log", dlog, NULL});
    T_CHECK(s_wait_file_has(dlog, "batch 0 0 ", 300000), "training started");
    // kills at seeded gaps until the trainer is done; enough epochs for --kills
    s_chaos_arg_t ca = {.env = env, .trainer = &tr};
    rh_chaos_config_t cc = {.seed = 20261129, .min_gap_ms = 1200, .max_gap_ms = 2500,
                            .stop_pct = 0, .timeout_ms = env->data ? 3600000 : 240000,
                            .respawn = s_respawn_augment, .done = s_trainer_done, .arg = &ca};
    rh_chaos_stats_t st;
    rh_chaos_run(&cc, &env->augment, 1, &st);
    double secs = nf_now_s() - t0;
    T_CHECK(!st.timed_out, "training finished under augment kills (%.0f s)", secs);
    T_CHECK(rh_reap(&tr, 1000) && rh_exit_code(&tr) == 0, "trainer exit %d (log %s)",
            rh_exit_code(&tr), tr.log);
    T_CHECK(st.kills >= (uint32_t)env->kills, "%u augment kills (>= %d)", st.kills, env->kills);
    uint64_t reissued = 0;
    s_account(dlog, ds, env, (uint32_t)env->epochs, "augment restarts", &reissued);
    T_CHECK(reissued > 0, "the trainer re-requested its stream from new augment incarnations (%llu)",
            (unsigned long long)reissued);
    printf("REL {\"test\": \"augment_restart\", \"epochs\": %d, \"kills\": %u, "
           "\"stream_rerequests\": %llu, \"seconds\": %.1f}\n",
           env->epochs, st.kills, (unsigned long long)reissued, secs);
}

// ---------------------------------------------------------------------------

static void s_case_evaluator(s_env_t *env, const loader_dataset_t *ds)
{
    const char *t = t_tmpdir();
    char run[600], dlog[600], path[700], name[64];
    snprintf(run, sizeof run, "%s/run-eval", t);
    snprintf(dlog, sizeof dlog, "%s/eval-delivery.log", t);
    NF_CHECK(nf_mkdir_p(run) == 0, "mkdir");
    rh_proc_t tr, ev;
    double t0 = nf_now_s();
    s_evaluator(env, &ev, "evaluator-0", run);
    s_trainer(env, &tr, "trainer", (char *[]){"--out", run, "--delivery-log", dlog, "--no-tta", NULL});
    // kill each evaluator soon after it is given a checkpoint (it is loading or
    // evaluating it), start the next one a little later
    int kills = 0;
    for (int k = 0; k < env->kills; k++) {
        char key[64];
        snprintf(key, sizeof key, "batch %d 0 ", k + 1);  // epoch k's checkpoint is out
        if (!s_wait_file_has(dlog, key, 300000)) break;
        nf_sleep_ms(150);
        rh_signal(&ev, SIGKILL);
        T_CHECK(rh_reap(&ev, 10000), "evaluator killed");
        kills++;
        nf_sleep_ms(500);
        snprintf(name, sizeof name, "evaluator-%d", k + 1);
        s_evaluator(env, &ev, name, run);
    }
    bool ended = rh_reap(&tr, env->data ? 3600000 : 240000);
    double secs = nf_now_s() - t0;
    T_CHECK(ended, "the trainer ended by itself (no hang) within the watchdog (%.0f s)", secs);
    if (!ended) rh_stop(&tr);
    T_CHECK(rh_exit_code(&tr) == 0, "trainer exit %d (log %s)", rh_exit_code(&tr), tr.log);
    T_CHECK(kills == env->kills, "%d evaluators killed while evaluating", kills);
    if (!rh_reap(&ev, 10000)) rh_stop(&ev);
    int n = env->epochs, cnt[64];
    double loss[64];
    bool valid[64];
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    s_csv_rows(path, n, loss, cnt, valid);
    for (int e = 0; e < n; e++)
        T_CHECK(cnt[e] == 1 && valid[e], "epoch %d: one row with valid_loss/accuracy (%d rows)", e,
                cnt[e]);
    snprintf(path, sizeof path, "%s/trainer.log", run);
    int lost = s_count(path, "an evaluator disconnected (lost");
    int replaced = s_count(path, "an evaluator joined, replacing");
    T_CHECK(lost >= 1 && replaced >= 1, "the trainer's log says evaluators were lost (%d) and "
            "replaced (%d)", lost, replaced);
    s_account(dlog, ds, env, (uint32_t)n, "evaluator restarts", NULL);
    printf("REL {\"test\": \"evaluator_restart\", \"epochs\": %d, \"kills\": %d, "
           "\"lost_logged\": %d, \"replaced_logged\": %d, \"seconds\": %.1f}\n",
           n, kills, lost, replaced, secs);
}

// ---------------------------------------------------------------------------

int main(int argc, char **argv)
{
    setenv("NF_LOG_LEVEL", "warn", 0);
    setenv("OMP_WAIT_POLICY", "passive", 0);  // four stages share two cores
    setenv("NF_NO_BAR", "1", 1);
    nf_log_init(&(nf_log_config_t){.stage = "test", .level = NF_LOG_WARN});
    s_env_t env = {.epochs = 0, .kills = 0, .size = 32, .presize = 40, .bs = 16};
    const char *which = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--case")) which = argv[i + 1];
        else if (!strcmp(argv[i], "--data")) env.data = argv[i + 1];
        else if (!strcmp(argv[i], "--epochs")) env.epochs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--kills")) env.kills = atoi(argv[i + 1]);
        else NF_CHECK(0, "usage: test_rel_training --case resume|augment|evaluator [--data DIR] "
                         "[--epochs N] [--kills N]");
    }
    NF_CHECK(which, "--case resume|augment|evaluator");
    bool resume = !strcmp(which, "resume"), aug = !strcmp(which, "augment");
    NF_CHECK(resume || aug || !strcmp(which, "evaluator"), "unknown case %s", which);
    if (!env.epochs) env.epochs = resume ? 4 : 3;
    if (!env.kills) env.kills = aug ? 3 : 2;
    NF_CHECK(env.epochs >= 3 && env.epochs <= 64, "3..64 epochs");
    char root[600];
    if (env.data) {
        snprintf(root, sizeof root, "%s", env.data);
        env.size = 64, env.presize = 96, env.bs = 32;
    } else {
        // 4 classes: 40 training pictures each (10 batches of 16 an epoch), 12 for validation
        snprintf(root, sizeof root, "%s/data", t_tmpdir());
        char *gargv[] = {(char *)rh_bin("loader"), "gen-synthetic", "--out", root, "--classes",
                         "4", "--train", "40", "--valid", "12", NULL};
        rh_proc_t g;
        rh_spawn(&g, "gen-synthetic", gargv);
        NF_CHECK(rh_reap(&g, 120000) && rh_exit_code(&g) == 0, "gen-synthetic (%s)", g.log);
    }
    env.data = root;
    char err[512];
    loader_dataset_config_t dc = {.root = root, .mode = LOADER_SPLIT_FOLDERS};
    loader_dataset_t *ds = loader_dataset_new(&dc, err, sizeof err);
    NF_CHECK(ds, "dataset: %s", err);
    s_start_data(&env);
    if (resume) s_case_resume(&env, ds);
    else if (aug) s_case_augment(&env, ds);
    else s_case_evaluator(&env, ds);
    s_stop_data(&env);
    loader_dataset_destroy(&ds);
    return t_done();
}
