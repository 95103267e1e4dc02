/*
 * check.h: the one family of always-on checks for internal invariants.
 *
 * Internal invariants (shapes, indices, our own allocations) abort loudly with
 * file, line, function and the failed expression, so a core dump points at the
 * bug. External faults (a bad JPEG, a malformed message, a dead peer) never go
 * through these macros: they return an error code and are counted and logged.
 * The checks do not depend on NDEBUG. Library-specific variants live beside
 * their library: NF_ZMQ_CHECK in zmqutil.h, CUDA_CHECK/CUDNN_CHECK/CUBLAS_CHECK
 * in kernels/cuda_check.h.
 */
#ifndef NF_CHECK_H
#define NF_CHECK_H

#include <stddef.h>

#if defined(__GNUC__)
#define NF_NORETURN __attribute__((noreturn))
#define NF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define NF_NORETURN
#define NF_PRINTF(a, b)
#endif

// Prints "FATAL file:line func: check `expr` failed: <message>" and abort()s.
NF_NORETURN void nf_die_(const char *file, int line, const char *func, const char *expr,
                         const char *fmt, ...) NF_PRINTF(5, 6);

// NF_CHECK(cond, fmt, ...): abort with a message when cond is false.
#define NF_CHECK(cond, ...)                                                                   \
    do {                                                                                      \
        if (!(cond)) nf_die_(__FILE__, __LINE__, __func__, #cond, __VA_ARGS__);               \
    } while (0)

// NF_CHECK_ERRNO(cond, what): abort with strerror(errno) when cond is false.
#define NF_CHECK_ERRNO(cond, what)                                                            \
    do {                                                                                      \
        if (!(cond)) nf_die_errno_(__FILE__, __LINE__, __func__, #cond, (what));              \
    } while (0)
NF_NORETURN void nf_die_errno_(const char *file, int line, const char *func, const char *expr,
                               const char *what);

// Allocation that never returns NULL: out of memory is an internal fault here.
void *nf_xmalloc(size_t n);
void *nf_xcalloc(size_t count, size_t size);
void *nf_xrealloc(void *p, size_t n);
char *nf_xstrdup(const char *s);
// 64-byte aligned allocation (SIMD, oneDNN); free with free().
void *nf_xaligned(size_t n);

#define NF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
