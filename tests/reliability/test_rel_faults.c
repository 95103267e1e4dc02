/*
 * test_rel_faults.c: the loader's processes under repeated faults, with exact
 * sample accounting.
 *
 * A real `loader coordinator`, three `loader worker` processes and a
 * `loader consume --log` (a slow-ish consumer) run several epochs of the
 * validation split (shuffled; every kind of bad file in it). Meanwhile the
 * harness (relharness.h) kills a random worker with SIGKILL every 100-300 ms
 * and starts a replacement at once, and in a quarter of the faults SIGSTOPs a
 * worker for 0.8 s instead (a hang that recovers; its late batches must be
 * dropped as duplicates). Then, from the consumer's delivery log, for every
 * epoch: every good sample index delivered exactly once, none lost, none
 * duplicated, no batch twice, and exactly the 6 bad files by reason (empty 1,
 * not_jpeg 2, header 1, too_large 1, unsupported 1; the truncated and corrupt
 * files decode with a warning and are delivered).
 *
 * With --data DIR (the long run, tests/reliability/long_run.sh) the dataset is
 * DIR's validation split linked into a temporary folder plus the same bad
 * files; --epochs and --workers size the run. It prints one `REL {json}` line
 * with the figures.
 */
#include "fsutil.h"
#include "harness.h"
#include "log.h"
#include "relharness.h"
#include "testlib.h"
#include "timeutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { S_MAX_WORKERS = 16 };

typedef struct {
    const char *endpoint;
    rh_proc_t *consumer;
} s_run_t;

static void s_worker(rh_proc_t *p, const char *endpoint, uint32_t generation)
{
    char name[64];
    snprintf(name, sizeof name, "faults-worker-%u", generation);
    char *argv[] = {(char *)rh_bin("loader"), "worker", "--connect", (char *)endpoint,
                    "--heartbeat-ms", "100", "--timeout-ms", "3000", "--slots", "2", NULL};
    rh_spawn(p, name, argv);
}

static void s_respawn(rh_proc_t *p, uint32_t generation, void *arg)
{
    const s_run_t *r = arg;
    s_worker(p, r->endpoint, 100 + generation);
}

static bool s_consumer_done(void *arg)
{
    const s_run_t *r = arg;
    return rh_reap(r->consumer, 0);
}

// The checker itself must see what it is there for: a crafted log with one
// lost sample, one delivered twice, one batch twice, a bad file delivered, a
// foreign index and a missing epoch line.
static void test_checker(const loader_dataset_t *ds)
{
    uint32_t n;
    const uint32_t *v = loader_dataset_split(ds, LOADER_VALID, &n);
    char path[600];
    snprintf(path, sizeof path, "%s/crafted.log", t_tmpdir());
    FILE *f = fopen(path, "w");
    NF_CHECK(f, "write %s", path);
    // epoch 0: all but v[0] (lost), v[1] twice (in two batches), batch 1 twice, v[2] bad
    fprintf(f, "batch 0 0 1 %u\nbatch 0 1 1 %u\nbatch 0 1 1 %u\n", v[1], v[1], v[3]);
    for (uint32_t i = 4; i < n; i++) fprintf(f, "batch 0 %u 1 %u\n", i, v[i]);
    fprintf(f, "batch 0 %u 1 %u\nbad 0 %u empty\n", n, v[2], v[2]);
    fprintf(f, "epoch 0 batches %u samples %u bad 1 warnings 0 duplicates 0 reissued 0\n", n, n);
    // epoch 1: an index of the training split, and no epoch line
    uint32_t nt;
    const uint32_t *t = loader_dataset_split(ds, LOADER_TRAIN, &nt);
    fprintf(f, "batch 1 0 1 %u\n", t[0]);
    NF_CHECK(fclose(f) == 0, "close");
    rh_account_t a;
    T_CHECK(rh_account_read(path, ds, LOADER_VALID, true, 1, &a) == 0 && a.n_epochs == 2,
            "crafted log read");
    if (a.n_epochs == 2) {
        const rh_epoch_account_t *e = &a.e[0];
        T_CHECK(e->done && e->lost == 1 && e->more == 1 && e->seq_repeats == 1 &&
                    e->bad_delivered == 1 && e->bad_lines == 1 && e->by_reason[LOADER_BAD_EMPTY] == 1,
                "checker: lost %u more %u repeats %u bad delivered %u", e->lost, e->more,
                e->seq_repeats, e->bad_delivered);
        T_CHECK(!a.e[1].done && a.e[1].foreign == 1, "checker: foreign %u, done %d",
                a.e[1].foreign, a.e[1].done);
    }
    rh_account_free(&a);
    snprintf(path, sizeof path, "%s/malformed.log", t_tmpdir());
    NF_CHECK(nf_write_file_atomic(path, "batch 0 zero\n", 13) == 0, "write");
    T_CHECK(rh_account_read(path, ds, LOADER_VALID, true, 1, &a) == -1, "malformed log refused");
}

int main(int argc, char **argv)
{
    setenv("NF_LOG_LEVEL", "warn", 0);
    nf_log_init(&(nf_log_config_t){.stage = "test", .level = NF_LOG_WARN});
    const char *data = NULL;
    int epochs = 4, n_workers = 3, presize = 64, batch = 8, sleep_ms = 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data")) data = argv[i + 1];
        else if (!strcmp(argv[i], "--epochs")) epochs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--workers")) n_workers = atoi(argv[i + 1]);
        else NF_CHECK(0, "usage: test_rel_faults [--data DIR] [--epochs N] [--workers N]");
    }
    NF_CHECK(epochs > 0 && n_workers > 0 && n_workers <= S_MAX_WORKERS, "bad sizes");
    const char *root;
    if (data) {
        root = rh_link_dataset(data, "long");
        presize = 128, batch = 32, sleep_ms = 0;
    } else {
        root = h_make_dataset("faults", 4, 20, 60, false, true);
    }
    char err[512];
    loader_dataset_config_t dc = {.root = root, .mode = LOADER_SPLIT_FOLDERS};
    loader_dataset_t *ds = loader_dataset_new(&dc, err, sizeof err);
    NF_CHECK(ds, "dataset: %s", err);
    test_checker(ds);

    char ep[600], sink[600], log[600], line[1024];
    snprintf(ep, sizeof ep, "ipc://%s/faults.ipc", t_tmpdir());
    snprintf(sink, sizeof sink, "ipc://%s/faults-sink.ipc", t_tmpdir());
    snprintf(log, sizeof log, "%s/faults-delivery.log", t_tmpdir());
    rh_proc_t co, con, workers[S_MAX_WORKERS];
    char *cargv[] = {(char *)rh_bin("loader"), "coordinator", "--data", (char *)root,
                     "--split", "folders", "--bind", ep, "--heartbeat-ms", "100",
                     "--worker-timeout-ms", "500", NULL};
    rh_spawn(&co, "faults-coordinator", cargv);
    T_CHECK(rh_log_line(&co, "coordinator ", line, sizeof line, 20000), "coordinator is up");
    for (int i = 0; i < n_workers; i++) s_worker(&workers[i], ep, (uint32_t)i);
    char s_epochs[16], s_presize[16], s_batch[16], s_sleep[16];
    snprintf(s_epochs, sizeof s_epochs, "%d", epochs);
    snprintf(s_presize, sizeof s_presize, "%d", presize);
    snprintf(s_batch, sizeof s_batch, "%d", batch);
    snprintf(s_sleep, sizeof s_sleep, "%d", sleep_ms);
    char *kargv[] = {(char *)rh_bin("loader"), "consume", "--connect", ep, "--sink", sink,
                     "--split", "valid", "--shuffle", "--batch-size", s_batch, "--presize",
                     s_presize, "--credits", "8", "--epochs", s_epochs, "--sleep-ms", s_sleep,
                     "--log", log, "--json", "--timeout-ms", "120000", NULL};
    double t0 = nf_now_s();
    rh_spawn(&con, "faults-consumer", kargv);

    s_run_t run = {.endpoint = ep, .consumer = &con};
    rh_chaos_config_t cc = {.seed = 20261128, .min_gap_ms = 100, .max_gap_ms = 300,
                            .stop_pct = 25, .stop_ms = 800, .timeout_ms = data ? 3600000 : 150000,
                            .respawn = s_respawn, .done = s_consumer_done, .arg = &run};
    rh_chaos_stats_t chaos;
    rh_chaos_run(&cc, workers, (size_t)n_workers, &chaos);
    double secs = nf_now_s() - t0;
    T_CHECK(!chaos.timed_out, "the run finished under faults (%.0f s)", secs);
    if (!rh_reap(&con, 1000)) rh_stop(&con);
    T_CHECK(rh_exit_code(&con) == 0, "consumer exit code %d (log %s)", rh_exit_code(&con), con.log);
    for (int i = 0; i < n_workers; i++) rh_stop(&workers[i]);
    rh_stop(&co);
    T_CHECK(rh_exit_code(&co) == 0, "coordinator stopped cleanly (%d)", rh_exit_code(&co));
    T_CHECK(chaos.kills >= 2u * (uint32_t)epochs, "%u kills over %d epochs: several per epoch",
            chaos.kills, epochs);

    rh_account_t acct;
    T_CHECK(rh_account_read(log, ds, LOADER_VALID, true, (uint32_t)batch, &acct) == 0,
            "delivery log %s readable", log);
    uint32_t reasons[LOADER_BAD_N] = {0};
    reasons[LOADER_BAD_EMPTY] = 1;
    reasons[LOADER_BAD_NOT_JPEG] = 2;
    reasons[LOADER_BAD_HEADER] = 1;
    reasons[LOADER_BAD_TOO_LARGE] = 1;
    reasons[LOADER_BAD_UNSUPPORTED] = 1;
    rh_account_check(&acct, (uint32_t)epochs, 6, reasons, "kill storm");
    uint64_t delivered, lost, dup, bad, dropped = 0, reissued = 0, warnings = 0;
    rh_account_totals(&acct, &delivered, &lost, &dup, &bad);
    for (uint32_t k = 0; k < acct.n_epochs; k++) {
        dropped += acct.e[k].duplicates_dropped;
        reissued += acct.e[k].reissued;
        warnings += acct.e[k].warnings;
        T_CHECK(acct.e[k].warnings == 2, "epoch %u: 2 files decoded with a warning (%u)",
                acct.e[k].epoch, acct.e[k].warnings);
    }
    T_CHECK(reissued > 0, "the coordinator re-issued the tasks of killed workers (%llu)",
            (unsigned long long)reissued);
    uint32_t n_valid;
    loader_dataset_split(ds, LOADER_VALID, &n_valid);
    printf("REL {\"test\": \"kill_storm\", \"dataset\": \"%s\", \"valid_files\": %u, \"epochs\": %u, "
           "\"workers\": %d, \"kills\": %u, \"stops\": %u, \"samples_delivered\": %llu, "
           "\"lost\": %llu, \"duplicated\": %llu, \"bad_files\": %llu, \"warnings\": %llu, "
           "\"late_duplicates_dropped\": %llu, \"tasks_reissued\": %llu, \"seconds\": %.1f}\n",
           data ? "imagenette-val+bad" : "synthetic", n_valid, acct.n_epochs, n_workers,
           chaos.kills, chaos.stops, (unsigned long long)delivered, (unsigned long long)lost,
           (unsigned long long)dup, (unsigned long long)bad, (unsigned long long)warnings,
           (unsigned long long)dropped, (unsigned long long)reissued, secs);
    rh_account_free(&acct);
    loader_dataset_destroy(&ds);
    return t_done();
}
