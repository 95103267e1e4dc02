/*
 * testlib.h: the small test harness every ctest program uses.
 *
 * A test program calls T_CHECK/T_NEAR/t_close_f32 as often as it likes; each
 * failure is printed with file:line and counted. main() ends with
 * `return t_done();`, which prints a summary and returns 1 if anything failed.
 * t_skip() exits with 77, which ctest reports as "Skipped" (never as a pass),
 * after printing why (no GPU, no dataset).
 */
#ifndef NF_TESTLIB_H
#define NF_TESTLIB_H

#include "check.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define T_SKIP_CODE 77

// Records a failure with location and message when cond is false.
#define T_CHECK(cond, ...) t_check_((cond) ? 1 : 0, __FILE__, __LINE__, #cond, __VA_ARGS__)
// |a - b| <= tol
#define T_NEAR(a, b, tol)                                                                    \
    t_near_((double)(a), (double)(b), (double)(tol), __FILE__, __LINE__, #a, #b)

int t_check_(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
    NF_PRINTF(5, 6);
int t_near_(double a, double b, double tol, const char *file, int line, const char *ea,
            const char *eb);

// Compares two float arrays elementwise with |got - want| <= atol + rtol*|want|.
// Prints "OK"/"NOT OK", the max abs diff and the first few mismatches, as
// llm.c's check_tensor does. Returns true when all are within tolerance.
bool t_close_f32(const char *name, const float *got, const float *want, size_t n, double atol,
                 double rtol);

// Prints why and exits with the skip code.
NF_NORETURN void t_skip(const char *fmt, ...) NF_PRINTF(1, 2);
// Prints a summary line; returns 0 when no check failed, 1 otherwise.
int t_done(void);
int t_failures(void);

// The Imagenette directory (NF_DATA_DIR, set by ctest), or t_skip() when absent.
const char *t_data_dir_or_skip(void);
// A fresh private temporary directory (removed by t_done unless NF_KEEP_TMP=1).
const char *t_tmpdir(void);
// Path of a built program (NF_BIN_DIR/<name>).
const char *t_bin(const char *name, char *buf, size_t len);

#endif
