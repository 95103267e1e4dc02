/*
 * testlib.c: see testlib.h.
 */
#include "testlib.h"

#include "fsutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int s_checks, s_failures;
static char s_tmp[256];

int t_check_(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
{
    s_checks++;
    if (ok) return 1;
    s_failures++;
    fprintf(stderr, "FAIL %s:%d: %s: ", file, line, expr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 0;
}

int t_near_(double a, double b, double tol, const char *file, int line, const char *ea,
            const char *eb)
{
    s_checks++;
    if (fabs(a - b) <= tol) return 1;
    s_failures++;
    fprintf(stderr, "FAIL %s:%d: |%s - %s| = |%.9g - %.9g| = %.3g > %.3g\n", file, line, ea, eb,
            a, b, fabs(a - b), tol);
    return 0;
}

bool t_close_f32(const char *name, const float *got, const float *want, size_t n, double atol,
                 double rtol)
{
    double maxdiff = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= maxdiff)) maxdiff = isnan(d) ? INFINITY : d;
        if (!(d <= atol + rtol * fabs((double)want[i]))) {
            if (bad < 5)
                fprintf(stderr, "  %s[%zu]: got %.8g want %.8g (diff %.3g)\n", name, i,
                        (double)got[i], (double)want[i], d);
            bad++;
        }
    }
    s_checks++;
    if (bad) s_failures++;
    fprintf(stderr, "%s %s: %zu values, max diff %.3g (atol %.1g rtol %.1g)%s\n",
            bad ? "NOT OK" : "OK", name, n, maxdiff, atol, rtol, bad ? ", mismatches:" : "");
    if (bad) fprintf(stderr, "  %zu of %zu outside tolerance\n", bad, n);
    return bad == 0;
}

static void s_rm_tmp(void)
{
    if (!s_tmp[0]) return;
    const char *keep = getenv("NF_KEEP_TMP");
    if (keep && *keep == '1') {
        fprintf(stderr, "kept %s\n", s_tmp);
        return;
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_tmp);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", s_tmp);
    s_tmp[0] = 0;
}

void t_skip(const char *fmt, ...)
{
    fprintf(stderr, "SKIP: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    s_rm_tmp();
    exit(T_SKIP_CODE);
}

int t_done(void)
{
    s_rm_tmp();
    fprintf(stderr, "%s: %d checks, %d failed\n", s_failures ? "FAILED" : "PASSED", s_checks,
            s_failures);
    return s_failures ? 1 : 0;
}

int t_failures(void) { return s_failures; }

const char *t_data_dir_or_skip(void)
{
    const char *d = getenv("NF_DATA_DIR");
    if (!d || !*d) d = "../shared/data/imagenette2-224";
    char train[1024];
    snprintf(train, sizeof train, "%s/train", d);
    if (!nf_is_dir(train)) t_skip("Imagenette not found at %s (set NF_DATA_DIR)", d);
    return d;
}

const char *t_tmpdir(void)
{
    if (s_tmp[0]) return s_tmp;
    const char *base = getenv("TMPDIR");
    snprintf(s_tmp, sizeof s_tmp, "%s/nftest.XXXXXX", base && *base ? base : "/tmp");
    NF_CHECK_ERRNO(mkdtemp(s_tmp) != NULL, "mkdtemp");
    return s_tmp;
}

const char *t_bin(const char *name, char *buf, size_t len)
{
    const char *d = getenv("NF_BIN_DIR");
    snprintf(buf, len, "%s/%s", d && *d ? d : "bin", name);
    return buf;
}
