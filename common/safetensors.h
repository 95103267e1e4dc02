/*
 * safetensors.h: our own reader and writer of the safetensors format
 * (checkpoints, golden fixtures), byte-compatible with the Python
 * `safetensors` package:
 *
 *   [8 bytes] N, little-endian uint64: length of the JSON header
 *   [N bytes] JSON object, UTF-8, padded with spaces to a multiple of 8:
 *             { "__metadata__": { "key": "value", ... },        (optional)
 *               "<name>": { "dtype": "F32", "shape": [2, 3],
 *                           "data_offsets": [begin, end] }, ... }
 *   [rest]    raw little-endian tensor data; offsets are relative to the
 *             start of this section.
 *
 * The reader trusts nothing in the file. It rejects, with a one-line reason:
 * a file shorter than 8 bytes; a header length of 0, over
 * SAFETENSORS_MAX_HEADER, or past the end of the file; JSON that does not
 * parse or is not an object; a tensor entry without a known dtype, a shape
 * of non-negative integers (at most SAFETENSORS_MAX_DIMS) or two integer
 * data_offsets with begin <= end; numel * dtype size != end - begin
 * (overflow-checked); duplicate names; metadata that is not a string map;
 * data regions that overlap, leave holes, or do not end exactly at the end
 * of the file.
 *
 * The writer lays tensors out with no holes, largest dtype first (so every
 * tensor is aligned to its element size in a file read into an 8-aligned
 * buffer), pads the header to 8 bytes and writes through fsutil.h's atomic
 * file (temp, fsync, rename): a reader never sees a half-written file.
 *
 * Not here: memory mapping (the reader loads the whole file into one
 * aligned buffer), big-endian hosts, dtype conversion.
 */
#ifndef NF_SAFETENSORS_H
#define NF_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SAFETENSORS_MAX_DIMS 8
#define SAFETENSORS_MAX_HEADER ((uint64_t)100000000)  // the Python package's limit

typedef enum {
    SAFETENSORS_F64 = 0,
    SAFETENSORS_F32,
    SAFETENSORS_F16,
    SAFETENSORS_BF16,
    SAFETENSORS_I64,
    SAFETENSORS_I32,
    SAFETENSORS_I16,
    SAFETENSORS_I8,
    SAFETENSORS_U8,
    SAFETENSORS_BOOL,
    SAFETENSORS_DTYPE_COUNT
} safetensors_dtype_t;

// Element size in bytes; the format's name ("F32", "BF16", ...).
size_t safetensors_dtype_size(safetensors_dtype_t t);
const char *safetensors_dtype_name(safetensors_dtype_t t);
// Parses a format name; returns 0, or -1 for an unknown name.
int safetensors_dtype_parse(const char *name, safetensors_dtype_t *out);

// ---------------------------------------------------------------------------
// Reader

typedef struct {
    const char *name;                      // NUL-terminated, owned by the file object
    safetensors_dtype_t dtype;
    int ndim;                              // 0 = scalar
    int64_t shape[SAFETENSORS_MAX_DIMS];   // first ndim entries used
    size_t numel;                          // product of shape (1 for a scalar)
    size_t nbytes;                         // numel * dtype size
    const void *data;                      // nbytes inside the loaded file (read-only)
} safetensors_tensor_t;

typedef struct safetensors_t safetensors_t;

// Loads and validates a whole file. Returns NULL on any fault (missing file,
// I/O error, any rule above) and writes a one-line reason into err.
safetensors_t *safetensors_open(const char *path, char *err, size_t err_len);
// The same from a buffer (copied; the caller keeps its buffer).
safetensors_t *safetensors_parse(const void *buf, size_t len, char *err, size_t err_len);
// Frees the file and nulls *self_p. Accepts NULL.
void safetensors_close(safetensors_t **self_p);

// Tensors, in data order (ascending offsets).
size_t safetensors_count(const safetensors_t *st);
const safetensors_tensor_t *safetensors_tensor_at(const safetensors_t *st, size_t i);
// The tensor with this name, or NULL.
const safetensors_tensor_t *safetensors_find(const safetensors_t *st, const char *name);
// Copies a tensor's bytes to dst when it has exactly this dtype and numel;
// returns 0, or -1 (nothing copied) on a mismatch. dst needs no alignment.
int safetensors_copy(const safetensors_tensor_t *t, safetensors_dtype_t dtype, size_t numel,
                     void *dst);

// Metadata (__metadata__), in file order; the value for a key, or NULL.
size_t safetensors_meta_count(const safetensors_t *st);
void safetensors_meta_at(const safetensors_t *st, size_t i, const char **key,
                         const char **value);
const char *safetensors_meta_get(const safetensors_t *st, const char *key);

// ---------------------------------------------------------------------------
// Writer

typedef struct safetensors_writer_t safetensors_writer_t;

safetensors_writer_t *safetensors_writer_new(void);
// Frees the writer (not the borrowed tensor data) and nulls *self_p. Accepts NULL.
void safetensors_writer_destroy(safetensors_writer_t **self_p);

// Adds a tensor. `data` (numel * dtype size bytes, little-endian) is
// BORROWED: it must stay valid and unchanged until safetensors_writer_write
// returns. Returns 0, or -1 (logged) for an empty or duplicate name,
// "__metadata__", ndim outside [0, SAFETENSORS_MAX_DIMS] or a negative dim.
int safetensors_writer_add(safetensors_writer_t *w, const char *name, safetensors_dtype_t dtype,
                           int ndim, const int64_t *shape, const void *data);
// Sets a metadata string (both copied; a repeated key replaces the value).
void safetensors_writer_set_meta(safetensors_writer_t *w, const char *key, const char *value);
// Writes the file atomically. Returns 0, or -1 (logged; path untouched).
int safetensors_writer_write(const safetensors_writer_t *w, const char *path);

#ifdef __cplusplus
}
#endif

#endif
