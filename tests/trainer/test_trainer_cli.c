/*
 * test_trainer_cli.c: the `trainer` binary's command line.
 *
 * `trainer --arch xresnet50 --n-out 10 --summary` (224 px, bs 64 by default)
 * prints fastai's learn.summary() table byte for byte (the fixture from
 * tests/reference/gen_model.py) with the total 23,547,754; `--bench --json`
 * prints one JSON object with img_per_s; bad flags exit 2 with one line.
 */
#include "fsutil.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

// Runs a shell command, captures stdout (and stderr when merge); returns
// the exit status, or -1.
static int s_run(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    NF_CHECK(p, "popen");
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void)
{
    char bin[1024], cmd[2048];
    t_bin("trainer", bin, sizeof(bin));
    static char out[1 << 16];

    snprintf(cmd, sizeof(cmd), "%s --arch xresnet50 --n-out 10 --summary", bin);
    T_CHECK(s_run(cmd, out, sizeof(out)) == 0, "summary exits 0");
    const char *src = getenv("NF_SOURCE_DIR");
    NF_CHECK(src, "NF_SOURCE_DIR not set (run through ctest)");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fixtures/trainer/summary_xresnet50_bs64_224.txt", src);
    size_t len;
    char *want = nf_read_file(path, 1 << 20, &len);
    NF_CHECK(want, "fixture %s", path);
    T_CHECK(strncmp(out, want, len) == 0, "the summary table equals fastai's");
    T_CHECK(strstr(out, "Total params: 23,547,754\n") != NULL, "total parameter count");
    free(want);

    snprintf(cmd, sizeof(cmd),
             "%s --bench --arch xresnet18 --size 32 --bs 2 --steps 1 --warmup 0 --json", bin);
    T_CHECK(s_run(cmd, out, sizeof(out)) == 0, "bench exits 0");
    T_CHECK(out[0] == '{' && strstr(out, "\"img_per_s\": ") && strstr(out, "\"peak_rss_mb\": "),
            "bench prints one JSON object: %s", out);

    static const char *bad[] = {"--summary --bench", "--summary --arch resnet9",
                                "--summary --bs 0", "--bogus", "--bench --backend tpu",
                                "--summary --size 8"};
    for (size_t i = 0; i < NF_ARRAY_LEN(bad); i++) {
        snprintf(cmd, sizeof(cmd), "%s %s 2>&1", bin, bad[i]);
        int rc = s_run(cmd, out, sizeof(out));
        T_CHECK(rc != 0 && rc != -1, "'%s' fails (exit %d)", bad[i], rc);
        T_CHECK(strchr(out, '\n') && strchr(out, '\n')[1] == '\0', "'%s': one line: %s", bad[i],
                out);
    }
    snprintf(cmd, sizeof(cmd), "%s --help", bin);
    T_CHECK(s_run(cmd, out, sizeof(out)) == 0 && strstr(out, "usage: trainer"), "--help");
    return t_done();
}
