/*
 * relharness.h: the fault-injection harness of the reliability tests. It
 * supervises real stage processes (the `loader` program today; augment,
 * trainer and evaluator plug in the same way), injects faults into them,
 * samples their memory, and checks exact sample accounting from a delivery
 * log.
 *
 *   datasets    rh_link_dataset(): a real validation split plus every kind of
 *               bad file, for long runs (the short tests generate theirs).
 *   processes   rh_spawn() starts a program with stdout + stderr in a log file
 *               under the test's tmpdir and a clean signal mask; rh_stop(),
 *               rh_reap(), rh_signal(), rh_log_line() (wait for a line such as
 *               the coordinator's endpoint), rh_log_find().
 *   keys        rh_keys(), rh_allow(): CURVE key pairs and allow-list folders;
 *               rh_side(): a context with a key set, for clients and servers in tests.
 *   faults      rh_chaos_run(): at random gaps (seeded), SIGKILL a random
 *               victim and start its replacement, or SIGSTOP it and SIGCONT it
 *               later, until a condition holds. Victims are any processes
 *               with a respawn callback.
 *   memory      rh_mem(): VmRSS and VmHWM from /proc/<pid>/status;
 *               rh_mem_sampler: peak RSS of several processes sampled in a
 *               thread while a run goes on.
 *   accounting  rh_account_read() reads the log `loader consume --log` writes
 *               (docs/reliability.md) and counts, per epoch, the sample indices
 *               of the split delivered once, more than once, never (lost), and
 *               the bad files; rh_account_check() asserts the exact result.
 *
 * Everything aborts (NF_CHECK) on harness faults; test verdicts go through
 * T_CHECK so a test reports every failure.
 */
#ifndef NF_REL_HARNESS_H
#define NF_REL_HARNESS_H

#include "dataset.h"
#include "decode.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

// ---------------------------------------------------------------------------
// processes

typedef struct {
    pid_t pid;          // -1 when not running
    char name[64];
    char log[600];      // stdout + stderr
    int status;         // wait status once reaped
    bool reaped;
} rh_proc_t;

// Starts argv[0] (a path) with its output in <tmpdir>/<name>.log (appended).
void rh_spawn(rh_proc_t *p, const char *name, char *const argv[]);
// Waits up to timeout_ms for the process to exit; true when it has (status set).
bool rh_reap(rh_proc_t *p, int timeout_ms);
// Sends sig when the process runs.
void rh_signal(rh_proc_t *p, int sig);
// SIGCONT + SIGTERM, then SIGKILL after 5 s; reaps. Accepts a stopped or gone process.
void rh_stop(rh_proc_t *p);
// Exit code once reaped: the exit status, 128 + signal when killed; -1 before.
int rh_exit_code(const rh_proc_t *p);
// Waits up to timeout_ms for a log line that starts with prefix; copies it
// (without the newline) to line. False on timeout.
bool rh_log_line(const rh_proc_t *p, const char *prefix, char *line, size_t len, int timeout_ms);
// The last log line that contains needle (without the newline). False when none.
bool rh_log_find(const rh_proc_t *p, const char *needle, char *line, size_t len);
// The path of a built program (NF_BIN_DIR).
const char *rh_bin(const char *name);

// ---------------------------------------------------------------------------
// CURVE keys

// The key pair NAME in folder dir, made on first use (nf_curve_keygen): sec
// gets dir/NAME.key_secret, pub dir/NAME.key (len bytes each).
void rh_keys(const char *dir, const char *name, char *sec, char *pub, size_t len);
// Copies the public certificate pub into the allow-list folder dir (made when missing).
void rh_allow(const char *dir, const char *pub);
// A ZeroMQ context and, when secret is given, a CURVE key set in it (the
// server's public key for a client, an allow-list for a server; either NULL).
typedef struct {
    void *ctx;
    struct nf_curve_t *curve;  // NULL = plain text
} rh_side_t;
rh_side_t rh_side(const char *secret, const char *server_file, const char *allow);
void rh_side_close(rh_side_t *s);

// ---------------------------------------------------------------------------
// datasets

// For long runs on real data: DIR's validation files symlinked under
// <tmpdir>/<name>/val/<class>/, a one-image train folder per class (the
// coordinator needs a vocabulary), and one file of every jf_bad_t kind in the
// first class (6 bad files, 2 decoded with warnings). Returns the root
// (static buffer).
const char *rh_link_dataset(const char *data, const char *name);

// ---------------------------------------------------------------------------
// faults

typedef struct {
    uint64_t seed;
    int min_gap_ms, max_gap_ms;   // time between two faults
    int stop_pct;                 // % of faults that SIGSTOP instead of SIGKILL
    int stop_ms;                  // how long a stopped victim stays stopped
    int timeout_ms;               // give up (the run failed to finish) after this
    // Starts a replacement for a killed victim into *p (called with p reaped).
    void (*respawn)(rh_proc_t *p, uint32_t generation, void *arg);
    bool (*done)(void *arg);      // the run is over (e.g. the consumer exited)
    void *arg;
} rh_chaos_config_t;

typedef struct {
    uint32_t kills, stops;
    bool timed_out;
} rh_chaos_stats_t;

// Injects faults into victims[0..n) until done(arg). Stopped victims are
// continued before it returns.
void rh_chaos_run(const rh_chaos_config_t *cfg, rh_proc_t *victims, size_t n,
                  rh_chaos_stats_t *out);

// ---------------------------------------------------------------------------
// memory

typedef struct {
    uint64_t rss_kb, hwm_kb;
} rh_mem_t;

// Reads /proc/<pid>/status. Returns 0, or -1 when the process is gone.
int rh_mem(pid_t pid, rh_mem_t *out);

enum { RH_MAX_SAMPLED = 16 };

// Samples the RSS of up to RH_MAX_SAMPLED processes every period_ms in a thread.
typedef struct {
    const rh_proc_t *procs[RH_MAX_SAMPLED];
    size_t n;
    int period_ms;
    uint64_t peak_rss_kb[RH_MAX_SAMPLED];   // highest VmRSS seen
    uint64_t peak_hwm_kb[RH_MAX_SAMPLED];   // last VmHWM read (the kernel's peak)
    uint64_t samples;
    volatile bool stop;
    pthread_t thread;
} rh_mem_sampler_t;

void rh_mem_sampler_start(rh_mem_sampler_t *s);
void rh_mem_sampler_stop(rh_mem_sampler_t *s);

// ---------------------------------------------------------------------------
// accounting

typedef struct {
    uint32_t epoch;
    bool done;                        // the epoch line was written (EpochDone seen)
    // from the epoch line (what the consumer counted)
    uint32_t batches, samples, bad, warnings, duplicates_dropped, reissued;
    // recomputed from the batch and bad lines against the dataset split
    uint32_t batch_lines, seq_repeats;
    uint64_t delivered;               // rows delivered
    uint32_t once, more, lost;        // split indices delivered once / more than once / never
    uint32_t foreign;                 // rows whose index is not in the split
    uint32_t bad_lines, bad_delivered;  // bad files reported; of them, delivered anyway
    uint32_t by_reason[LOADER_BAD_N + 1];  // [LOADER_BAD_N]: unknown reason names
} rh_epoch_account_t;

typedef struct {
    uint32_t n_epochs;
    rh_epoch_account_t *e;            // (n_epochs) in log order
} rh_account_t;

// Reads a `loader consume --log` file for one stream over ds's split.
// exhaustive: every index of the split must arrive (valid/TTA streams: no
// shuffle drop, no substitutes); otherwise (train: drop_last, spares) the
// planned samples are floor(n / batch_size) * batch_size and `lost` counts
// planned rows that did not arrive. Returns 0, or -1 when the file is missing
// or malformed.
int rh_account_read(const char *log, const loader_dataset_t *ds, int split, bool exhaustive,
                    uint32_t batch_size, rh_account_t *out);
void rh_account_free(rh_account_t *a);
// Asserts (T_CHECK) the exact result: epochs complete, no seq twice, every
// index once, none lost or foreign, bad files exactly expect_bad per epoch
// (never delivered) and the consumer's own counts agreeing with the lines.
// expect_reason (may be NULL) gives the exact count per reason.
void rh_account_check(const rh_account_t *a, uint32_t expect_epochs, uint32_t expect_bad,
                      const uint32_t *expect_reason, const char *what);
// Totals over all epochs (for the figures).
void rh_account_totals(const rh_account_t *a, uint64_t *delivered, uint64_t *lost,
                       uint64_t *duplicated, uint64_t *bad);

#endif
