/*
 * fixture.h: reads the golden fixtures of tests/fixtures/augment/, which
 * tests/reference/gen_augment.py writes as safetensors files (8-byte
 * little-endian header length, JSON header {name: {dtype, shape,
 * data_offsets}}, raw little-endian data). A small test-only reader (cJSON for
 * the header), to be replaced by common/safetensors once that library lands.
 *
 * Lookups check the dtype and the element count; a missing or mismatched
 * tensor is a test failure (reported, then the test aborts: the fixture does
 * not match the test).
 */
#ifndef NF_TEST_AUGMENT_FIXTURE_H
#define NF_TEST_AUGMENT_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

typedef struct fixture_t fixture_t;

// Loads $NF_SOURCE_DIR/tests/fixtures/augment/<name>; aborts with a hint to
// re-run the generator when it is missing or malformed.
fixture_t *fixture_load(const char *name);
void fixture_free(fixture_t **self_p);

// Tensor data copied to aligned memory owned by the fixture; n = expected
// element count (0 = any, *n_out gets the count when not NULL).
const float *fixture_f32(fixture_t *f, const char *name, size_t n);
const uint8_t *fixture_u8(fixture_t *f, const char *name, size_t n);
const int32_t *fixture_i32(fixture_t *f, const char *name, size_t n);
// Shape of a tensor: returns ndim and fills dims (up to 8).
int fixture_shape(fixture_t *f, const char *name, int64_t dims[8]);

#endif
