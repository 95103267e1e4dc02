/*
 * test_cli.c: the `loader` program as a user runs it.
 *   - every subcommand answers --help with exit status 0; bad usage is status 2
 *     with a one-line message;
 *   - `loader verify` lists every bad file of a dataset with its reason and
 *     exits 1, exits 0 on a clean dataset, and counts --strict-jpeg warnings;
 *   - `loader coordinator --spawn-workers 2` + `loader consume --json` run an
 *     epoch end to end, and SIGTERM stops the coordinator and its workers.
 */
#include "harness.h"
#include "testlib.h"
#include "timeutil.h"
#include "zmqutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char s_bin[1024];

// Runs a shell command; returns its exit status and its stdout in out.
static int s_run(const char *cmd, char *out, size_t out_len)
{
    FILE *p = popen(cmd, "r");
    NF_CHECK(p != NULL, "popen %s", cmd);
    size_t n = fread(out, 1, out_len - 1, p);
    out[n] = 0;
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_help(void)
{
    static const char *cmds[] = {"coordinator", "run", "worker", "verify", "consume", "bench-decode"};
    char cmd[1400], out[8192];
    for (size_t i = 0; i < NF_ARRAY_LEN(cmds); i++) {
        snprintf(cmd, sizeof cmd, "%s %s --help", s_bin, cmds[i]);
        T_CHECK(s_run(cmd, out, sizeof out) == 0 && strstr(out, "usage: loader"), "%s --help", cmds[i]);
    }
    snprintf(cmd, sizeof cmd, "%s frobnicate 2>&1", s_bin);
    T_CHECK(s_run(cmd, out, sizeof out) == 2 && strstr(out, "unknown command"), "unknown command");
    snprintf(cmd, sizeof cmd, "%s verify 2>&1", s_bin);
    T_CHECK(s_run(cmd, out, sizeof out) == 2 && strstr(out, "--data DIR is required"), "missing --data");
    snprintf(cmd, sizeof cmd, "%s verify --data /nonexistent/dir 2>&1", s_bin);
    T_CHECK(s_run(cmd, out, sizeof out) == 2 && strstr(out, "/nonexistent/dir"), "missing folder: %s", out);
    snprintf(cmd, sizeof cmd, "%s consume --connect ipc:///x --batch-size 0 2>&1", s_bin);
    T_CHECK(s_run(cmd, out, sizeof out) == 2 && strstr(out, "bad option value"), "bad value");
}

static void test_verify(void)
{
    const char *root = h_make_dataset("verify", 2, 5, 3, true, false);
    char cmd[1400], out[16384];
    snprintf(cmd, sizeof cmd, "%s verify --data %s 2>/dev/null", s_bin, root);
    T_CHECK(s_run(cmd, out, sizeof out) == 1, "bad files: exit status 1");
    static const char *want[] = {
        "bad train/c0/bad0.jpg: empty", "bad train/c0/bad1.jpg: not_jpeg",
        "bad train/c0/bad2.jpg: not_jpeg", "bad train/c0/bad3.jpg: header",
        "warning train/c0/bad4.jpg", "warning train/c0/bad5.jpg",
        "bad train/c0/bad6.jpg: too_large", "bad train/c0/bad7.jpg: unsupported",
        "verify: 24 files", "6 bad", "2 decoded with warnings",
    };
    for (size_t i = 0; i < NF_ARRAY_LEN(want); i++)
        T_CHECK(strstr(out, want[i]) != NULL, "verify output lacks `%s`:\n%s", want[i], out);
    snprintf(cmd, sizeof cmd, "%s verify --data %s --strict-jpeg --quiet 2>/dev/null", s_bin, root);
    T_CHECK(s_run(cmd, out, sizeof out) == 1 && strstr(out, "8 bad") && strstr(out, "truncated 2") &&
                !strstr(out, "bad train/"),
            "strict + quiet: %s", out);
    const char *clean = h_make_dataset("verify-clean", 2, 3, 2, false, false);
    snprintf(cmd, sizeof cmd, "%s verify --data %s 2>/dev/null", s_bin, clean);
    T_CHECK(s_run(cmd, out, sizeof out) == 0 && strstr(out, "0 bad"), "clean dataset: %s", out);
}

static void test_end_to_end(void)
{
    const char *root = h_make_dataset("e2e", 3, 20, 10, false, false);
    char ep[512], epopt[600], cmd[2000], out[8192];
    snprintf(ep, sizeof ep, "ipc://%s/e2e.ipc", t_tmpdir());
    snprintf(epopt, sizeof epopt, "%s", ep);
    char *argv[] = {s_bin, "coordinator", "--data", (char *)root, "--bind", epopt,
                    "--spawn-workers", "2", "--heartbeat-ms", "100", NULL};
    pid_t pid = nf_spawn(argv);
    T_CHECK(pid > 0, "coordinator started");
    snprintf(cmd, sizeof cmd,
             "%s consume --connect %s --split train --batch-size 8 --presize 32 --epochs 2 --json "
             "--digest %s/e2e.digest 2>/dev/null",
             s_bin, ep, t_tmpdir());
    int rc = s_run(cmd, out, sizeof out);
    T_CHECK(rc == 0 && strstr(out, "\"batches\": 14") && strstr(out, "\"images\": 112"),
            "consume: rc %d %s", rc, out);
    T_CHECK(kill(pid, SIGTERM) == 0, "SIGTERM");
    int status = 0;
    double end = nf_now_s() + 10;
    pid_t r = 0;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && nf_now_s() < end) nf_sleep_ms(20);
    T_CHECK(r == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "coordinator stopped cleanly on SIGTERM (status %d)", status);
    if (r != pid) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    snprintf(cmd, sizeof cmd, "wc -l < %s/e2e.digest", t_tmpdir());
    T_CHECK(s_run(cmd, out, sizeof out) == 0 && atoi(out) == 14, "digest lines: %s", out);
}

int main(void)
{
    setenv("NF_LOG_LEVEL", "error", 0);
    t_bin("loader", s_bin, sizeof s_bin);
    test_help();
    test_verify();
    test_end_to_end();
    return t_done();
}
