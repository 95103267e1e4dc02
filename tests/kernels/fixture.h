/*
 * fixture.h: reading golden fixtures (tests/fixtures/<area>/NAME.safetensors)
 * written by the PyTorch scripts in tests/reference/, and checking results
 * against them with per-tensor tolerances from ONE table.
 *
 * Fixture format: a safetensors file (common/safetensors.h) whose
 * __metadata__ holds
 *     "magic": "netteflow-fixture", "version": "1",
 *     "generator": "<script> <case>", "torch": "<torch version>",
 * plus any integer/float case parameters as strings (read with
 * fixture_meta_int / fixture_meta_double). Tensor names:
 *     "in.<name>"   inputs, fed to the op under test;
 *     "out.<name>"  expected results, compared with fixture_expect().
 * fixture_close() fails the test for every "out." tensor that was never
 * compared, so a fixture and its test cannot drift apart silently (llm.c
 * #801), and each compared name must have its own row in the test's
 * tolerance table (no global tolerance: llm.c #223).
 *
 * Every failure is recorded through testlib (T_CHECK) with the file name and
 * a hint to re-run the generator; nothing here aborts on bad fixtures.
 */
#ifndef NF_TEST_FIXTURE_H
#define NF_TEST_FIXTURE_H

#include "safetensors.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FIXTURE_MAGIC "netteflow-fixture"
#define FIXTURE_VERSION "1"

// One row of a test's tolerance table: |got - want| <= atol + rtol*|want|.
typedef struct {
    const char *name;  // the tensor name in the fixture ("out.y")
    double atol, rtol;
} fixture_tol_t;

typedef struct fixture_t fixture_t;

// Opens $NF_SOURCE_DIR/tests/fixtures/<rel_path> (or <rel_path> when
// NF_SOURCE_DIR is unset) and checks magic and version. NULL (failure
// recorded, with a "re-run tests/reference/<generator>" hint) on any fault.
fixture_t *fixture_open(const char *rel_path);
// Records a failure for every "out." tensor not yet compared; frees; nulls.
void fixture_close(fixture_t **self_p);

// The underlying file (for listing tensors).
const safetensors_t *fixture_file(const fixture_t *f);
// An integer / float from __metadata__; records a failure and returns 0
// when missing or malformed.
long fixture_meta_int(fixture_t *f, const char *key);
double fixture_meta_double(fixture_t *f, const char *key);

// A tensor as an aligned copy owned by the fixture (freed by close), after
// checking its dtype and element count. NULL (failure recorded) otherwise.
const float *fixture_f32(fixture_t *f, const char *name, size_t numel);
const int32_t *fixture_i32(fixture_t *f, const char *name, size_t numel);

// Compares got (numel fp32 values) with the fixture tensor `name`, using the
// tolerance row for `name` in tab (a missing row is a test bug: aborts).
// Prints OK / NOT OK with the max diff. Marks the tensor as compared.
bool fixture_expect(fixture_t *f, const fixture_tol_t *tab, size_t ntab, const char *name,
                    const float *got, size_t numel);

#endif
