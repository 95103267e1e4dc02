/*
 * test_rel_backpressure.c: with a deliberately slow consumer, the resident
 * memory of every loader process stays under its documented bound
 * (docs/reliability.md), and the measurement is sensitive enough to see it
 * when the bound is raised.
 *
 * A real `loader coordinator`, two `loader worker`s (2 slots each) and a
 * `loader consume --sleep-ms` that holds every batch for a while (keeping its
 * sockets serviced, as a busy trainer does). Each process's VmRSS is sampled
 * every 10 ms and its VmHWM read at the end. With B = batch_size x S x S x 3
 * bytes and `base` each process's RSS once it is up and connected, before any
 * batch flows (for the consumer: the same program waiting for a coordinator
 * that never answers):
 *   consumer     <= base + (credits + duplicates) x B + 8 MiB
 *   worker       <= base + (slots + 1) x B + 8 MiB
 *   coordinator  <= base + 8 MiB
 * where duplicates are the batches the consumer received twice and dropped
 * (from its delivery log): a task re-issued because its worker looked dead
 * (a worker that misses its heartbeat deadline on a loaded machine) travels
 * again without a credit, the first issue spent it. Without re-issues the
 * bound is credits x B. 8 MiB covers the decoder's scratch, protobuf and
 * allocator slack; every base is at most 64 MiB. Then the same consumer with 6x the credits must
 * exceed its credits-4 bound: the consumer really buffers what credits allow,
 * and the sampling sees it. Every run's delivery is also accounted exactly.
 *
 * With --data DIR (the long run) the dataset is DIR's validation split plus
 * bad files, at presize 224 and batches of 64. Prints one `REL {json}` line.
 * Skipped in AddressSanitizer builds (the quarantine keeps freed memory).
 */
#include "harness.h"
#include "log.h"
#include "relharness.h"
#include "testlib.h"
#include "timeutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_WORKERS = 2, S_SLOTS = 2, S_SLACK_KB = 8 * 1024, S_MAX_BASE_KB = 64 * 1024 };

typedef struct {
    uint32_t credits;
    uint64_t base_kb, peak_kb;  // consumer
    uint32_t duplicates;        // batches received twice (re-issued tasks)
    bool ok;
} s_consume_run_t;

// Waits until a process's RSS settles (it is up and idle), returns it.
static uint64_t s_base_kb(const rh_proc_t *p)
{
    rh_mem_t m = {0};
    uint64_t last = 0;
    for (int i = 0; i < 100; i++) {
        nf_sleep_ms(20);
        if (rh_mem(p->pid, &m) != 0) break;
        if (i > 5 && m.rss_kb == last) break;
        last = m.rss_kb;
    }
    return m.rss_kb;
}

static void s_consume(const char *ep, const loader_dataset_t *ds, uint32_t credits, int batch,
                      int presize, int sleep_ms, uint32_t expect_bad, s_consume_run_t *out)
{
    char name[64], sink[600], log[600], s_credits[16], s_batch[16], s_presize[16], s_sleep[16];
    snprintf(name, sizeof name, "bp-consumer-c%u", credits);
    snprintf(sink, sizeof sink, "ipc://%s/%s.ipc", t_tmpdir(), name);
    snprintf(log, sizeof log, "%s/%s-delivery.log", t_tmpdir(), name);
    snprintf(s_credits, sizeof s_credits, "%u", credits);
    snprintf(s_batch, sizeof s_batch, "%d", batch);
    snprintf(s_presize, sizeof s_presize, "%d", presize);
    snprintf(s_sleep, sizeof s_sleep, "%d", sleep_ms);
    char *argv[] = {(char *)rh_bin("loader"), "consume", "--connect", (char *)ep, "--sink", sink,
                    "--split", "valid", "--batch-size", s_batch, "--presize", s_presize,
                    "--credits", s_credits, "--sleep-ms", s_sleep, "--log", log,
                    "--timeout-ms", "120000", NULL};
    // the base: the same program, up and connected, before anything flows
    // (a consumer of a coordinator that never answers)
    char idle_ep[600], idle_name[80];
    snprintf(idle_ep, sizeof idle_ep, "ipc://%s/nobody.ipc", t_tmpdir());
    snprintf(idle_name, sizeof idle_name, "%s-idle", name);
    char *idle_argv[] = {(char *)rh_bin("loader"), "consume", "--connect", idle_ep, "--sink", sink,
                         "--timeout-ms", "60000", NULL};
    rh_proc_t idle;
    rh_spawn(&idle, idle_name, idle_argv);
    out->credits = credits;
    out->base_kb = s_base_kb(&idle);
    rh_stop(&idle);
    rh_proc_t con;
    rh_spawn(&con, name, argv);
    rh_mem_sampler_t s = {.procs = {&con}, .n = 1, .period_ms = 10};
    rh_mem_sampler_start(&s);
    bool done = rh_reap(&con, 180000);
    rh_mem_sampler_stop(&s);
    if (!done) rh_stop(&con);
    T_CHECK(done && rh_exit_code(&con) == 0, "consumer (credits %u) exit code %d", credits,
            rh_exit_code(&con));
    out->peak_kb = s.peak_hwm_kb[0] > s.peak_rss_kb[0] ? s.peak_hwm_kb[0] : s.peak_rss_kb[0];
    rh_account_t a;
    T_CHECK(rh_account_read(log, ds, LOADER_VALID, true, (uint32_t)batch, &a) == 0, "log %s", log);
    rh_account_check(&a, 1, expect_bad, NULL, name);
    out->duplicates = a.n_epochs ? a.e[0].duplicates_dropped : 0;
    rh_account_free(&a);
    out->ok = done;
}

#if defined(__SANITIZE_ADDRESS__)
static const bool s_asan = true;
#else
static const bool s_asan = false;
#endif

int main(int argc, char **argv)
{
    if (s_asan)
        t_skip("resident memory is not measurable under AddressSanitizer (its quarantine keeps "
               "freed memory)");
    setenv("NF_LOG_LEVEL", "warn", 0);
    nf_log_init(&(nf_log_config_t){.stage = "test", .level = NF_LOG_WARN});
    const char *data = argc == 3 && !strcmp(argv[1], "--data") ? argv[2] : NULL;
    NF_CHECK(argc == 1 || data, "usage: test_rel_backpressure [--data DIR]");
    int presize = 224, batch = 16, sleep_ms = 40;
    const uint32_t credits = 4, credits_high = 24;
    const char *root;
    if (data) {
        root = rh_link_dataset(data, "bp");
        batch = 64, sleep_ms = 100;
    } else {
        root = h_make_dataset("bp", 4, 4, 120, false, true);
    }
    char err[512];
    loader_dataset_config_t dc = {.root = root, .mode = LOADER_SPLIT_FOLDERS};
    loader_dataset_t *ds = loader_dataset_new(&dc, err, sizeof err);
    NF_CHECK(ds, "dataset: %s", err);
    uint32_t n_valid;
    loader_dataset_split(ds, LOADER_VALID, &n_valid);
    const uint64_t batch_kb = (uint64_t)batch * presize * presize * 3 / 1024;
    NF_CHECK((n_valid + batch - 1) / batch > credits_high + 4, "enough batches to fill the credits");

    char ep[600], line[1024];
    snprintf(ep, sizeof ep, "ipc://%s/bp.ipc", t_tmpdir());
    rh_proc_t co, w[S_WORKERS];
    char *cargv[] = {(char *)rh_bin("loader"), "coordinator", "--data", (char *)root, "--split",
                     "folders", "--bind", ep, NULL};
    rh_spawn(&co, "bp-coordinator", cargv);
    T_CHECK(rh_log_line(&co, "coordinator ", line, sizeof line, 20000), "coordinator is up");
    char slots[8];
    snprintf(slots, sizeof slots, "%d", S_SLOTS);
    for (int i = 0; i < S_WORKERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "bp-worker-%d", i);
        char *wargv[] = {(char *)rh_bin("loader"), "worker", "--connect", ep, "--slots", slots, NULL};
        rh_spawn(&w[i], name, wargv);
    }
    uint64_t co_base = s_base_kb(&co), w_base[S_WORKERS];
    for (int i = 0; i < S_WORKERS; i++) w_base[i] = s_base_kb(&w[i]);
    rh_mem_sampler_t s = {.procs = {&co, &w[0], &w[1]}, .n = 1 + S_WORKERS, .period_ms = 10};
    rh_mem_sampler_start(&s);
    s_consume_run_t low, high;
    s_consume(ep, ds, credits, batch, presize, sleep_ms, 6, &low);
    rh_mem_sampler_stop(&s);
    s_consume(ep, ds, credits_high, batch, presize, sleep_ms, 6, &high);
    for (int i = 0; i < S_WORKERS; i++) rh_stop(&w[i]);
    rh_stop(&co);

    // the bounds
    uint64_t co_peak = s.peak_hwm_kb[0] > s.peak_rss_kb[0] ? s.peak_hwm_kb[0] : s.peak_rss_kb[0];
    uint64_t co_bound = co_base + S_SLACK_KB;
    T_CHECK(co_base <= S_MAX_BASE_KB && co_peak <= co_bound,
            "coordinator: base %llu KiB, peak %llu KiB, bound %llu KiB", (unsigned long long)co_base,
            (unsigned long long)co_peak, (unsigned long long)co_bound);
    uint64_t w_peak_max = 0, w_bound_max = 0;
    for (int i = 0; i < S_WORKERS; i++) {
        uint64_t peak = s.peak_hwm_kb[1 + i] > s.peak_rss_kb[1 + i] ? s.peak_hwm_kb[1 + i]
                                                                      : s.peak_rss_kb[1 + i];
        uint64_t bound = w_base[i] + (S_SLOTS + 1) * batch_kb + S_SLACK_KB;
        T_CHECK(w_base[i] <= S_MAX_BASE_KB && peak <= bound,
                "worker %d: base %llu KiB, peak %llu KiB, bound %llu KiB", i,
                (unsigned long long)w_base[i], (unsigned long long)peak, (unsigned long long)bound);
        if (peak > w_peak_max) w_peak_max = peak;
        if (bound > w_bound_max) w_bound_max = bound;
    }
    uint64_t con_bound = low.base_kb + (credits + low.duplicates) * batch_kb + S_SLACK_KB;
    T_CHECK(low.base_kb <= S_MAX_BASE_KB && low.peak_kb <= con_bound,
            "consumer, %u credits, %u duplicates: base %llu KiB, peak %llu KiB, bound %llu KiB",
            credits, low.duplicates, (unsigned long long)low.base_kb,
            (unsigned long long)low.peak_kb, (unsigned long long)con_bound);
    T_CHECK(high.peak_kb > high.base_kb + (credits + high.duplicates) * batch_kb + S_SLACK_KB,
            "consumer, %u credits: peak %llu KiB is over the %u-credit bound (the sampling sees "
            "buffered batches)",
            credits_high, (unsigned long long)high.peak_kb, credits);
    printf("REL {\"test\": \"backpressure\", \"dataset\": \"%s\", \"batch_bytes\": %llu, "
           "\"credits\": %u, \"slots\": %d, \"consumer_sleep_ms\": %d, \"coordinator_peak_kib\": %llu, "
           "\"coordinator_bound_kib\": %llu, \"worker_peak_kib\": %llu, \"worker_bound_kib\": %llu, "
           "\"consumer_peak_kib\": %llu, \"consumer_bound_kib\": %llu, \"consumer_base_kib\": %llu, "
           "\"consumer_duplicates\": %u, \"consumer_peak_kib_at_%u_credits\": %llu}\n",
           data ? "imagenette-val+bad" : "synthetic", (unsigned long long)batch_kb * 1024, credits,
           S_SLOTS, sleep_ms, (unsigned long long)co_peak, (unsigned long long)co_bound,
           (unsigned long long)w_peak_max, (unsigned long long)w_bound_max,
           (unsigned long long)low.peak_kb, (unsigned long long)con_bound,
           (unsigned long long)low.base_kb, low.duplicates, credits_high,
           (unsigned long long)high.peak_kb);
    loader_dataset_destroy(&ds);
    return t_done();
}
