/*
 * check.c: the abort path behind NF_CHECK and the allocation wrappers.
 */
#include "check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nf_die_(const char *file, int line, const char *func, const char *expr, const char *fmt, ...)
{
    fprintf(stderr, "FATAL %s:%d %s: check `%s` failed: ", file, line, func, expr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

void nf_die_errno_(const char *file, int line, const char *func, const char *expr, const char *what)
{
    int e = errno;
    fprintf(stderr, "FATAL %s:%d %s: check `%s` failed: %s: %s\n", file, line, func, expr, what,
            strerror(e));
    fflush(stderr);
    abort();
}

static void *s_oom(size_t n)
{
    fprintf(stderr, "FATAL: out of memory allocating %zu bytes\n", n);
    fflush(stderr);
    abort();
}

void *nf_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    return p ? p : s_oom(n);
}

void *nf_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    return p ? p : s_oom(count * size);
}

void *nf_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    return q ? q : s_oom(n);
}

char *nf_xstrdup(const char *s)
{
    char *d = strdup(s);
    return d ? d : s_oom(strlen(s) + 1);
}

void *nf_xaligned(size_t n)
{
    void *p = NULL;
    size_t rounded = (n + 63) / 64 * 64;
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0) s_oom(n);
    return p;
}
