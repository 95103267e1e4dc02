/*
 * test_rel_full_disk.c: checkpoints on a full disk. Checkpoints are
 * safetensors files written atomically (common/safetensors.h through
 * common/fsutil.h: temp file, fsync, rename), so a failed write must leave
 * the previous checkpoint in place, valid and loadable, bit for bit.
 *   1. File size limit (portable, always runs): a child process with
 *      RLIMIT_FSIZE below the checkpoint size and SIGXFSZ ignored gets -1
 *      from the writer (EFBIG, one log line); the previous checkpoint still
 *      loads with its own step and bytes, no temporary file is left, and once
 *      the limit is lifted the next checkpoint is written.
 *   2. A really full filesystem (a 1 MiB tmpfs mounted in a private mount
 *      namespace; skipped with a message where that is not permitted): a
 *      second checkpoint does not fit (ENOSPC), the first stays valid; with
 *      the disk filled to the last byte even a small one fails cleanly.
 *   3. A writer killed mid-write (SIGXFSZ's default action): the previous
 *      checkpoint is intact, and the temporary file the dead writer left is
 *      removed by the next write (it would otherwise keep the disk full).
 *   4. Corrupt checkpoint files (cut in half, empty, a header length past the
 *      end, bytes flipped in the JSON) are refused with a one-line reason.
 *   5. The trainer's own checkpoints (trainer/ckpt.h, an xresnet18 learner:
 *      weights, BN statistics, Adam moments, 134 MB): ckpt_save under a file
 *      size limit fails with -1, the previous checkpoint's bytes are
 *      unchanged and ckpt_load restores it (its step) into a fresh learner.
 */
#include "ckpt.h"
#include "fsutil.h"
#include "learner.h"
#include "log.h"
#include "safetensors.h"
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { S_FLOATS = 150000 };  // a 600 KB checkpoint

// Writes a checkpoint whose tensor is a pattern of `step` and whose metadata
// says the step. Returns the writer's result.
static int s_write_ckpt(const char *path, int step, size_t floats)
{
    float *w = nf_xmalloc(floats * sizeof *w);  // (floats)
    for (size_t i = 0; i < floats; i++) w[i] = (float)step + (float)i * 1e-3f;
    safetensors_writer_t *wr = safetensors_writer_new();
    int64_t shape[1] = {(int64_t)floats};
    NF_CHECK(safetensors_writer_add(wr, "model.weight", SAFETENSORS_F32, 1, shape, w) == 0, "add");
    char s[16];
    snprintf(s, sizeof s, "%d", step);
    safetensors_writer_set_meta(wr, "step", s);
    int rc = safetensors_writer_write(wr, path);
    safetensors_writer_destroy(&wr);
    free(w);
    return rc;
}

// Loads a checkpoint and checks it is exactly the one of `step`.
static bool s_ckpt_is(const char *path, int step, size_t floats)
{
    char err[256];
    safetensors_t *st = safetensors_open(path, err, sizeof err);
    if (!st) {
        fprintf(stderr, "%s: %s\n", path, err);
        return false;
    }
    const char *m = safetensors_meta_get(st, "step");
    const safetensors_tensor_t *t = safetensors_find(st, "model.weight");
    bool ok = m && atoi(m) == step && t && t->numel == floats;
    float *w = nf_xmalloc(floats * sizeof *w);
    if (ok && safetensors_copy(t, SAFETENSORS_F32, floats, w) == 0) {
        for (size_t i = 0; i < floats && ok; i++) ok = w[i] == (float)step + (float)i * 1e-3f;
    } else {
        ok = false;
    }
    free(w);
    safetensors_close(&st);
    return ok;
}

// Files in dir whose name contains ".tmp.".
static int s_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    NF_CHECK(d, "opendir %s", dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

// Runs fn(arg) in a child process; returns its exit status (128 + signal).
static int s_in_child(int (*fn)(const char *), const char *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    NF_CHECK(pid >= 0, "fork");
    if (pid == 0) _exit(fn(arg));
    int status;
    NF_CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// ---------------------------------------------------------------------------
// 1. RLIMIT_FSIZE

static int s_child_fsize(const char *dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    T_CHECK(s_write_ckpt(path, 1, S_FLOATS) == 0, "first checkpoint written");
    struct rlimit old, lim;
    NF_CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0, "getrlimit");
    lim = old;
    lim.rlim_cur = 64 * 1024;
    NF_CHECK(signal(SIGXFSZ, SIG_IGN) != SIG_ERR, "signal");
    NF_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    errno = 0;
    int rc = s_write_ckpt(path, 2, S_FLOATS);
    T_CHECK(rc == -1 && errno == EFBIG, "second checkpoint refused (rc %d, %s)", rc, strerror(errno));
    T_CHECK(s_ckpt_is(path, 1, S_FLOATS), "the first checkpoint is intact");
    T_CHECK(s_temp_files(dir) == 0, "no temporary file left (%d)", s_temp_files(dir));
    NF_CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0, "setrlimit");
    T_CHECK(s_write_ckpt(path, 3, S_FLOATS) == 0 && s_ckpt_is(path, 3, S_FLOATS),
            "once there is room again the next checkpoint is written");
    return t_failures() ? 1 : 0;
}

// ---------------------------------------------------------------------------
// 2. a full tmpfs

static int s_child_tmpfs(const char *dir)
{
    if (syscall(SYS_unshare, CLONE_NEWNS) != 0) {
        printf("tmpfs part skipped: unshare(CLONE_NEWNS): %s (needs CAP_SYS_ADMIN)\n", strerror(errno));
        return 77;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") != 0) {
        printf("tmpfs part skipped: mount: %s\n", strerror(errno));
        return 77;
    }
    char path[700], fill[700];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    T_CHECK(s_write_ckpt(path, 1, S_FLOATS) == 0, "first checkpoint fits");
    errno = 0;
    int rc = s_write_ckpt(path, 2, S_FLOATS);
    T_CHECK(rc == -1 && errno == ENOSPC, "second does not fit (rc %d, %s)", rc, strerror(errno));
    T_CHECK(s_ckpt_is(path, 1, S_FLOATS), "the first checkpoint is intact");
    T_CHECK(s_temp_files(dir) == 0, "no temporary file left");
    // fill the disk to the last byte, then try a small checkpoint
    snprintf(fill, sizeof fill, "%s/filler", dir);
    FILE *f = fopen(fill, "wb");
    NF_CHECK(f, "filler");
    static char block[4096];
    while (fwrite(block, 1, sizeof block, f) == sizeof block && fflush(f) == 0) {}
    fclose(f);
    rc = s_write_ckpt(path, 4, 1000);
    T_CHECK(rc == -1 && errno == ENOSPC, "a small checkpoint on a full disk fails cleanly (%d)", rc);
    T_CHECK(s_ckpt_is(path, 1, S_FLOATS) && s_temp_files(dir) == 0, "still the first, no temp file");
    return t_failures() ? 1 : 0;
}

// ---------------------------------------------------------------------------
// 3. killed mid-write

static int s_child_killed(const char *path)
{
    struct rlimit lim;
    NF_CHECK(getrlimit(RLIMIT_FSIZE, &lim) == 0, "getrlimit");
    lim.rlim_cur = 64 * 1024;
    NF_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    signal(SIGXFSZ, SIG_DFL);  // the write past the limit kills us, mid-file
    s_write_ckpt(path, 5, S_FLOATS);
    return 0;  // not reached
}

static void test_killed_writer(const char *dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    T_CHECK(s_write_ckpt(path, 1, S_FLOATS) == 0, "first checkpoint written");
    int st = s_in_child(s_child_killed, path);
    T_CHECK(st == 128 + SIGXFSZ, "the writer was killed mid-write (status %d)", st);
    T_CHECK(s_ckpt_is(path, 1, S_FLOATS), "the previous checkpoint is intact");
    T_CHECK(s_temp_files(dir) == 1, "the dead writer left its temporary file (%d)", s_temp_files(dir));
    T_CHECK(s_write_ckpt(path, 6, S_FLOATS) == 0 && s_ckpt_is(path, 6, S_FLOATS), "next checkpoint");
    T_CHECK(s_temp_files(dir) == 0, "the next write removed the dead writer's temporary file (%d left)",
            s_temp_files(dir));
}

// ---------------------------------------------------------------------------
// 4. corrupt files

static void test_corrupt(const char *dir)
{
    char path[700], bad[800], err[256];
    snprintf(path, sizeof path, "%s/good.safetensors", dir);
    NF_CHECK(s_write_ckpt(path, 7, 1000) == 0, "write");
    size_t len;
    uint8_t *buf = nf_read_file(path, 1 << 20, &len);
    NF_CHECK(buf && len > 100, "read");
    struct {
        const char *name;
        size_t len;
        int patch_at;  // -1: none
        uint8_t value;
    } cases[] = {
        {"cut in half", len / 2, -1, 0},
        {"empty", 0, -1, 0},
        {"header length past the end", len, 5, 0x7F},
        {"JSON broken", len, 12, '#'},
    };
    for (size_t i = 0; i < NF_ARRAY_LEN(cases); i++) {
        snprintf(bad, sizeof bad, "%s/bad%zu.safetensors", dir, i);
        uint8_t saved = cases[i].patch_at >= 0 ? buf[cases[i].patch_at] : 0;
        if (cases[i].patch_at >= 0) buf[cases[i].patch_at] = cases[i].value;
        NF_CHECK(nf_write_file_atomic(bad, buf, cases[i].len) == 0, "write");
        if (cases[i].patch_at >= 0) buf[cases[i].patch_at] = saved;
        err[0] = 0;
        safetensors_t *st = safetensors_open(bad, err, sizeof err);
        T_CHECK(!st && err[0] && !strchr(err, '\n'), "%s: refused: %s", cases[i].name, err);
        safetensors_close(&st);
    }
    free(buf);
}

// ---------------------------------------------------------------------------
// 5. the trainer's checkpoints

static uint64_t s_file_digest(const char *path)
{
    size_t len;
    uint8_t *b = nf_read_file(path, (size_t)1 << 30, &len);
    NF_CHECK(b, "read %s", path);
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < len; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    free(b);
    return h;
}

static learner_t *s_learner(int64_t step)
{
    learner_config_t c = learner_default_config("xresnet18", 10);
    c.backend = EXEC_REF;
    learner_t *l = learner_new(&c);
    NF_CHECK(l, "learner");
    learner_progress_t p = learner_progress(l);
    p.step = step;
    learner_set_progress(l, &p);
    return l;
}

static int s_child_trainer(const char *dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/ckpt-0000000011.safetensors", dir);
    learner_t *l = s_learner(11);
    T_CHECK(ckpt_save(l, path) == 0, "first trainer checkpoint written");
    uint64_t before = s_file_digest(path);
    struct rlimit lim;
    NF_CHECK(getrlimit(RLIMIT_FSIZE, &lim) == 0, "getrlimit");
    lim.rlim_cur = 16 << 20;
    NF_CHECK(signal(SIGXFSZ, SIG_IGN) != SIG_ERR && setrlimit(RLIMIT_FSIZE, &lim) == 0, "limit");
    learner_progress_t p = learner_progress(l);
    p.step = 22;
    learner_set_progress(l, &p);
    T_CHECK(ckpt_save(l, path) == -1, "the next one does not fit: -1");
    T_CHECK(s_file_digest(path) == before && s_temp_files(dir) == 0,
            "the previous checkpoint's bytes are unchanged, no temporary file");
    learner_t *fresh = s_learner(0);
    T_CHECK(ckpt_load(fresh, path) == 0 && learner_progress(fresh).step == 11,
            "and it loads (step %lld)", (long long)learner_progress(fresh).step);
    learner_destroy(&fresh);
    learner_destroy(&l);
    return t_failures() ? 1 : 0;
}

int main(void)
{
    nf_log_init(&(nf_log_config_t){.stage = "test", .level = NF_LOG_ERROR});
    char dir[600];
    snprintf(dir, sizeof dir, "%s/fsize", t_tmpdir());
    NF_CHECK(nf_mkdir_p(dir) == 0, "mkdir");
    T_CHECK(s_in_child(s_child_fsize, dir) == 0, "file size limit: see above");
    snprintf(dir, sizeof dir, "%s/tmpfs", t_tmpdir());
    NF_CHECK(nf_mkdir_p(dir) == 0, "mkdir");
    int st = s_in_child(s_child_tmpfs, dir);
    T_CHECK(st == 0 || st == 77, "full tmpfs: see above (%d)", st);
    if (st == 77) printf("(the full-filesystem part was skipped; the file size limit part ran)\n");
    snprintf(dir, sizeof dir, "%s/killed", t_tmpdir());
    NF_CHECK(nf_mkdir_p(dir) == 0, "mkdir");
    test_killed_writer(dir);
    snprintf(dir, sizeof dir, "%s/corrupt", t_tmpdir());
    NF_CHECK(nf_mkdir_p(dir) == 0, "mkdir");
    test_corrupt(dir);
    snprintf(dir, sizeof dir, "%s/trainer", t_tmpdir());
    NF_CHECK(nf_mkdir_p(dir) == 0, "mkdir");
    T_CHECK(s_in_child(s_child_trainer, dir) == 0, "trainer checkpoints: see above");
    return t_done();
}
