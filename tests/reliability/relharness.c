/*
 * relharness.c: see relharness.h.
 */
#include "relharness.h"

#include "check.h"
#include "curve.h"
#include "fsutil.h"
#include "jpegfix.h"
#include "log.h"
#include "rng.h"
#include "testlib.h"
#include "timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

extern char **environ;

// ---------------------------------------------------------------------------
// processes

const char *rh_bin(const char *name)
{
    static char buf[8][1024];
    static int next;
    char *b = buf[next++ % 8];
    return t_bin(name, b, sizeof buf[0]);
}

void rh_spawn(rh_proc_t *p, const char *name, char *const argv[])
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->log, sizeof p->log, "%s/%s.log", t_tmpdir(), name);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    NF_CHECK(posix_spawn_file_actions_init(&fa) == 0 && posix_spawnattr_init(&at) == 0, "spawn init");
    NF_CHECK(posix_spawn_file_actions_addopen(&fa, 1, p->log, O_WRONLY | O_CREAT | O_APPEND, 0644) == 0 &&
                 posix_spawn_file_actions_adddup2(&fa, 1, 2) == 0,
             "spawn file actions");
    sigset_t empty, defaults;
    sigemptyset(&empty);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGHUP);
    sigaddset(&defaults, SIGPIPE);
    NF_CHECK(posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) == 0 &&
                 posix_spawnattr_setsigmask(&at, &empty) == 0 &&
                 posix_spawnattr_setsigdefault(&at, &defaults) == 0,
             "spawn attributes");
    int err = posix_spawn(&p->pid, argv[0], &fa, &at, argv, environ);
    NF_CHECK(err == 0, "cannot start %s: %s", argv[0], strerror(err));
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
}

bool rh_reap(rh_proc_t *p, int timeout_ms)
{
    if (p->reaped) return true;
    if (p->pid <= 0) return true;
    double end = nf_now_s() + timeout_ms / 1000.0;
    for (;;) {
        pid_t r = waitpid(p->pid, &p->status, WNOHANG);
        if (r == p->pid) {
            p->reaped = true;
            return true;
        }
        NF_CHECK(r == 0, "waitpid %s: %s", p->name, strerror(errno));
        if (nf_now_s() >= end) return false;
        nf_sleep_ms(10);
    }
}

void rh_signal(rh_proc_t *p, int sig)
{
    if (p->pid > 0 && !p->reaped && kill(p->pid, sig) != 0 && errno != ESRCH)
        NF_CHECK(0, "kill %s: %s", p->name, strerror(errno));
}

void rh_stop(rh_proc_t *p)
{
    if (p->pid <= 0 || p->reaped) return;
    rh_signal(p, SIGCONT);
    rh_signal(p, SIGTERM);
    if (!rh_reap(p, 5000)) {
        rh_signal(p, SIGKILL);
        NF_CHECK(rh_reap(p, 5000), "%s survives SIGKILL", p->name);
    }
}

int rh_exit_code(const rh_proc_t *p)
{
    if (!p->reaped) return -1;
    if (WIFEXITED(p->status)) return WEXITSTATUS(p->status);
    if (WIFSIGNALED(p->status)) return 128 + WTERMSIG(p->status);
    return -1;
}

bool rh_log_line(const rh_proc_t *p, const char *prefix, char *line, size_t len, int timeout_ms)
{
    double end = nf_now_s() + timeout_ms / 1000.0;
    size_t plen = strlen(prefix);
    do {
        FILE *f = fopen(p->log, "r");
        char buf[4096];
        while (f && fgets(buf, sizeof buf, f)) {
            if (strncmp(buf, prefix, plen) != 0) continue;
            buf[strcspn(buf, "\n")] = 0;
            snprintf(line, len, "%s", buf);
            fclose(f);
            return true;
        }
        if (f) fclose(f);
        nf_sleep_ms(20);
    } while (nf_now_s() < end);
    return false;
}

bool rh_log_find(const rh_proc_t *p, const char *needle, char *line, size_t len)
{
    FILE *f = fopen(p->log, "r");
    bool found = false;
    for (char buf[4096]; f && fgets(buf, sizeof buf, f);) {
        if (!strstr(buf, needle)) continue;
        buf[strcspn(buf, "\n")] = 0;
        snprintf(line, len, "%s", buf);
        found = true;
    }
    if (f) fclose(f);
    return found;
}

// ---------------------------------------------------------------------------
// CURVE keys

void rh_keys(const char *dir, const char *name, char *sec, char *pub, size_t len)
{
    char base[1024], err[512];
    snprintf(base, sizeof base, "%s/%s", dir, name);
    snprintf(sec, len, "%s.key_secret", base);
    snprintf(pub, len, "%s.key", base);
    NF_CHECK(nf_mkdir_p(dir) == 0, "mkdir %s", dir);
    if (!nf_is_file(sec)) NF_CHECK(nf_curve_keygen(base, NULL, err, sizeof err) == 0, "%s", err);
}

void rh_allow(const char *dir, const char *pub)
{
    NF_CHECK(nf_mkdir_p(dir) == 0, "mkdir %s", dir);
    size_t len;
    char *t = nf_read_file(pub, 1 << 16, &len);
    char dst[2048];
    const char *name = strrchr(pub, '/');
    snprintf(dst, sizeof dst, "%s%s", dir, name ? name : "/key.key");
    NF_CHECK(t && nf_write_file_atomic(dst, t, len) == 0, "allow %s", pub);
    free(t);
}

rh_side_t rh_side(const char *secret, const char *server_file, const char *allow)
{
    rh_side_t s = {.ctx = zmq_ctx_new()};
    NF_CHECK(s.ctx, "zmq_ctx_new");
    if (secret) {
        char err[512];
        nf_curve_config_t cc = {.zmq_ctx = s.ctx, .secret_file = secret,
                                .server_file = server_file, .allow = allow};
        s.curve = nf_curve_new(&cc, err, sizeof err);
        NF_CHECK(s.curve, "keys %s: %s", secret, err);
    }
    return s;
}

void rh_side_close(rh_side_t *s)
{
    nf_curve_destroy(&s->curve);
    NF_CHECK(zmq_ctx_term(s->ctx) == 0, "zmq_ctx_term");
}

// ---------------------------------------------------------------------------
// datasets

const char *rh_link_dataset(const char *data, const char *name)
{
    static char root[600];
    snprintf(root, sizeof root, "%s/%s", t_tmpdir(), name);
    char src[1200], dst[1200], first_class[256] = "";
    snprintf(src, sizeof src, "%s/val", data);
    DIR *d = opendir(src);
    NF_CHECK(d, "open %s", src);
    struct dirent *c;
    while ((c = readdir(d)) != NULL) {
        if (c->d_name[0] == '.') continue;
        char cdir[1600];
        snprintf(cdir, sizeof cdir, "%s/%s", src, c->d_name);
        DIR *f = opendir(cdir);
        if (!f) continue;
        if (!first_class[0] || strcmp(c->d_name, first_class) < 0)
            snprintf(first_class, sizeof first_class, "%s", c->d_name);
        snprintf(dst, sizeof dst, "%s/val/%s", root, c->d_name);
        NF_CHECK(nf_mkdir_p(dst) == 0, "mkdir %s", dst);
        snprintf(dst, sizeof dst, "%s/train/%s", root, c->d_name);
        NF_CHECK(nf_mkdir_p(dst) == 0, "mkdir %s", dst);
        snprintf(dst, sizeof dst, "%s/train/%s/0.jpg", root, c->d_name);
        jf_write_good(dst, 64, 64, 1, JF_RGB);
        struct dirent *e;
        while ((e = readdir(f)) != NULL) {
            if (e->d_name[0] == '.') continue;
            char s[2000], t[2000];
            snprintf(s, sizeof s, "%s/%s", cdir, e->d_name);
            snprintf(t, sizeof t, "%s/val/%s/%s", root, c->d_name, e->d_name);
            NF_CHECK(symlink(s, t) == 0, "symlink %s", t);
        }
        closedir(f);
    }
    closedir(d);
    NF_CHECK(first_class[0], "no class folders in %s", src);
    for (int k = 0; k < JF_BAD_N; k++) {
        snprintf(dst, sizeof dst, "%s/val/%s/bad%d.jpg", root, first_class, k);
        jf_write_bad(dst, (jf_bad_t)k);
    }
    return root;
}

// ---------------------------------------------------------------------------
// faults

void rh_chaos_run(const rh_chaos_config_t *cfg, rh_proc_t *victims, size_t n,
                  rh_chaos_stats_t *out)
{
    memset(out, 0, sizeof *out);
    nf_rng_t g = nf_rng_make(cfg->seed, 0x0C4A05u, 0, 0);
    double *resume_at = nf_xcalloc(n, sizeof *resume_at);  // > 0: stopped until then
    uint32_t generation = 0;
    double end = nf_now_s() + cfg->timeout_ms / 1000.0;
    double next_fault = nf_now_s();
    while (!cfg->done(cfg->arg)) {
        double now = nf_now_s();
        if (now > end) {
            out->timed_out = true;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (resume_at[i] > 0 && now >= resume_at[i]) {
                rh_signal(&victims[i], SIGCONT);
                resume_at[i] = 0;
            }
        if (now >= next_fault) {
            size_t v = nf_rng_below(&g, (uint32_t)n);
            bool stop = (int)nf_rng_below(&g, 100) < cfg->stop_pct;
            if (resume_at[v] > 0) {
                // a stopped victim is killed instead (a hung process that never recovers)
                stop = false;
            }
            if (stop) {
                rh_signal(&victims[v], SIGSTOP);
                resume_at[v] = now + cfg->stop_ms / 1000.0;
                out->stops++;
            } else {
                rh_signal(&victims[v], SIGKILL);
                NF_CHECK(rh_reap(&victims[v], 5000), "%s survives SIGKILL", victims[v].name);
                resume_at[v] = 0;
                cfg->respawn(&victims[v], ++generation, cfg->arg);
                out->kills++;
            }
            int gap = cfg->min_gap_ms +
                      (int)nf_rng_below(&g, (uint32_t)(cfg->max_gap_ms - cfg->min_gap_ms + 1));
            next_fault = now + gap / 1000.0;
        }
        nf_sleep_ms(5);
    }
    for (size_t i = 0; i < n; i++)
        if (resume_at[i] > 0) rh_signal(&victims[i], SIGCONT);
    free(resume_at);
}

// ---------------------------------------------------------------------------
// memory

int rh_mem(pid_t pid, rh_mem_t *out)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    memset(out, 0, sizeof *out);
    unsigned long long v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %llu kB", &v) == 1) out->rss_kb = v;
        else if (sscanf(line, "VmHWM: %llu kB", &v) == 1) out->hwm_kb = v;
    }
    fclose(f);
    return out->rss_kb ? 0 : -1;  // a zombie has no VmRSS line
}

static void *s_sampler(void *arg)
{
    rh_mem_sampler_t *s = arg;
    while (!s->stop) {
        for (size_t i = 0; i < s->n; i++) {
            rh_mem_t m;
            if (s->procs[i]->reaped || rh_mem(s->procs[i]->pid, &m) != 0) continue;
            if (m.rss_kb > s->peak_rss_kb[i]) s->peak_rss_kb[i] = m.rss_kb;
            if (m.hwm_kb > s->peak_hwm_kb[i]) s->peak_hwm_kb[i] = m.hwm_kb;
        }
        s->samples++;
        nf_sleep_ms(s->period_ms > 0 ? s->period_ms : 20);
    }
    return NULL;
}

void rh_mem_sampler_start(rh_mem_sampler_t *s)
{
    NF_CHECK(s->n <= RH_MAX_SAMPLED, "too many processes to sample");
    s->stop = false;
    NF_CHECK(pthread_create(&s->thread, NULL, s_sampler, s) == 0, "pthread_create");
}

void rh_mem_sampler_stop(rh_mem_sampler_t *s)
{
    s->stop = true;
    NF_CHECK(pthread_join(s->thread, NULL) == 0, "pthread_join");
}

// ---------------------------------------------------------------------------
// accounting

static rh_epoch_account_t *s_epoch(rh_account_t *a, uint32_t epoch, uint16_t **seen,
                                   uint8_t **seqs, uint8_t **bad, uint32_t n_items)
{
    for (uint32_t i = 0; i < a->n_epochs; i++)
        if (a->e[i].epoch == epoch) return &a->e[i];
    a->e = nf_xrealloc(a->e, (a->n_epochs + 1) * sizeof *a->e);
    *seen = nf_xrealloc(*seen, (size_t)(a->n_epochs + 1) * n_items * sizeof **seen);
    *bad = nf_xrealloc(*bad, (size_t)(a->n_epochs + 1) * n_items);
    *seqs = nf_xrealloc(*seqs, (size_t)(a->n_epochs + 1) * (1u << 20));
    memset(*seen + (size_t)a->n_epochs * n_items, 0, n_items * sizeof **seen);
    memset(*bad + (size_t)a->n_epochs * n_items, 0, n_items);
    memset(*seqs + (size_t)a->n_epochs * (1u << 20), 0, 1u << 20);
    rh_epoch_account_t *e = &a->e[a->n_epochs++];
    memset(e, 0, sizeof *e);
    e->epoch = epoch;
    return e;
}

int rh_account_read(const char *log, const loader_dataset_t *ds, int split, bool exhaustive,
                    uint32_t batch_size, rh_account_t *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(log, "r");
    if (!f) return -1;
    uint32_t n_items = loader_dataset_n_items(ds), n_split;
    const uint32_t *items = loader_dataset_split(ds, split, &n_split);
    uint8_t *in_split = nf_xcalloc(n_items + 1, 1);
    for (uint32_t i = 0; i < n_split; i++) in_split[items[i]] = 1;
    uint16_t *seen = NULL;  // (epochs, n_items)
    uint8_t *seqs = NULL;   // (epochs, 2^20) seq delivered
    uint8_t *bad = NULL;    // (epochs, n_items) reported bad
    size_t cap = 1 << 16;
    char *line = nf_xmalloc(cap);
    int rc = 0;
    while (rc == 0 && fgets(line, (int)cap, f)) {
        size_t l = strlen(line);
        while (l == cap - 1 && line[l - 1] != '\n') {  // a long batch line
            line = nf_xrealloc(line, cap * 2);
            if (!fgets(line + l, (int)(cap * 2 - l), f)) break;
            cap *= 2;
            l = strlen(line);
        }
        unsigned ep, seq, n, idx;
        char *p = line;
        int used = 0;
        if (sscanf(p, "batch %u %u %u%n", &ep, &seq, &n, &used) == 3) {
            rh_epoch_account_t *e = s_epoch(out, ep, &seen, &seqs, &bad, n_items);
            size_t k = (size_t)(e - out->e);
            e->batch_lines++;
            if (seq < (1u << 20) && seqs[k * (1u << 20) + seq]++) e->seq_repeats++;
            p += used;
            for (unsigned i = 0; i < n; i++) {
                if (sscanf(p, " %u%n", &idx, &used) != 1) {
                    rc = -1;
                    break;
                }
                p += used;
                e->delivered++;
                if (idx >= n_items || !in_split[idx]) e->foreign++;
                else if (seen[k * n_items + idx] < UINT16_MAX) seen[k * n_items + idx]++;
            }
        } else if (sscanf(p, "bad %u %u", &ep, &idx) == 2) {
            rh_epoch_account_t *e = s_epoch(out, ep, &seen, &seqs, &bad, n_items);
            size_t k = (size_t)(e - out->e);
            char reason[32] = "";
            if (sscanf(p, "bad %*u %*u %31s", reason) != 1) rc = -1;
            int r = LOADER_BAD_N;
            for (int q = 0; q < LOADER_BAD_N; q++)
                if (!strcmp(reason, loader_bad_name((loader_bad_t)q))) r = q;
            e->by_reason[r]++;
            e->bad_lines++;
            if (idx < n_items) bad[k * n_items + idx] = 1;
        } else if (sscanf(p, "epoch %u", &ep) == 1) {
            rh_epoch_account_t *e = s_epoch(out, ep, &seen, &seqs, &bad, n_items);
            e->done = sscanf(p, "epoch %*u batches %u samples %u bad %u warnings %u duplicates %u "
                                "reissued %u",
                             &e->batches, &e->samples, &e->bad, &e->warnings,
                             &e->duplicates_dropped, &e->reissued) == 6;
            if (!e->done) rc = -1;
        } else if (line[0] != '\n') {
            rc = -1;
        }
    }
    fclose(f);
    for (uint32_t k = 0; k < out->n_epochs; k++) {
        rh_epoch_account_t *e = &out->e[k];
        uint64_t distinct = 0;
        for (uint32_t i = 0; i < n_split; i++) {
            uint32_t idx = items[i], s = seen[(size_t)k * n_items + idx];
            bool is_bad = bad[(size_t)k * n_items + idx];
            if (s == 1) e->once++, distinct++;
            if (s > 1) e->more++, distinct++;
            if (is_bad && s) e->bad_delivered++;
            if (exhaustive && s == 0 && !is_bad) e->lost++;
        }
        if (!exhaustive) {
            uint64_t planned = batch_size ? (uint64_t)(n_split / batch_size) * batch_size : 0;
            e->lost = distinct < planned ? (uint32_t)(planned - distinct) : 0;
        }
    }
    free(line);
    free(in_split);
    free(seen);
    free(seqs);
    free(bad);
    if (rc != 0) rh_account_free(out);
    return rc;
}

void rh_account_free(rh_account_t *a)
{
    free(a->e);
    memset(a, 0, sizeof *a);
}

void rh_account_check(const rh_account_t *a, uint32_t expect_epochs, uint32_t expect_bad,
                      const uint32_t *expect_reason, const char *what)
{
    T_CHECK(a->n_epochs == expect_epochs, "%s: %u epochs in the log, %u expected", what,
            a->n_epochs, expect_epochs);
    for (uint32_t k = 0; k < a->n_epochs; k++) {
        const rh_epoch_account_t *e = &a->e[k];
        T_CHECK(e->done, "%s epoch %u: completed (EpochDone)", what, e->epoch);
        T_CHECK(e->seq_repeats == 0 && e->more == 0 && e->lost == 0 && e->foreign == 0 &&
                    e->bad_delivered == 0,
                "%s epoch %u: %u once, %u more than once, %u lost, %u foreign, %u seq repeats, "
                "%u bad delivered",
                what, e->epoch, e->once, e->more, e->lost, e->foreign, e->seq_repeats,
                e->bad_delivered);
        T_CHECK(e->bad_lines == expect_bad && e->bad == expect_bad,
                "%s epoch %u: %u bad files listed, consumer counted %u, %u expected", what,
                e->epoch, e->bad_lines, e->bad, expect_bad);
        T_CHECK(e->batch_lines == e->batches && e->delivered == e->samples,
                "%s epoch %u: log has %u batches / %llu rows, consumer counted %u / %u", what,
                e->epoch, e->batch_lines, (unsigned long long)e->delivered, e->batches, e->samples);
        for (int r = 0; expect_reason && r <= LOADER_BAD_N; r++)
            T_CHECK(e->by_reason[r] == (r < LOADER_BAD_N ? expect_reason[r] : 0),
                    "%s epoch %u: %u bad files of reason %s, %u expected", what, e->epoch,
                    e->by_reason[r], r < LOADER_BAD_N ? loader_bad_name((loader_bad_t)r) : "?",
                    r < LOADER_BAD_N ? expect_reason[r] : 0);
    }
}

void rh_account_totals(const rh_account_t *a, uint64_t *delivered, uint64_t *lost,
                       uint64_t *duplicated, uint64_t *bad)
{
    *delivered = *lost = *duplicated = *bad = 0;
    for (uint32_t k = 0; k < a->n_epochs; k++) {
        *delivered += a->e[k].delivered;
        *lost += a->e[k].lost;
        *duplicated += a->e[k].more + a->e[k].seq_repeats;
        *bad += a->e[k].bad_lines;
    }
}
