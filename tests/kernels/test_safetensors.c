/*
 * test_safetensors.c: common/safetensors against itself and against hostile
 * files (label unit): a round trip of every dtype, scalar and empty tensors
 * and metadata; alignment of the writer's layout; the atomic write leaving
 * no temporary file; and one rejection (never a crash) per corruption:
 * truncated, huge or zero header length, bad JSON, trailing garbage, unknown
 * dtype, bad shape, bad offsets, size mismatch, overlap, hole, data not
 * ending at the end of the file, duplicate names, non-string metadata.
 */
#include "check.h"
#include "fsutil.h"
#include "safetensors.h"
#include "testlib.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The round-trip tensors (also what tests/reference/check_safetensors.py
// expects to find in a file written with --write).
static int s_write_demo(const char *path)
{
    float f32[6] = {1, -2, 3.5f, 0, 1e-30f, -7};
    double f64[2] = {3.141592653589793, -1};
    uint16_t bf16[3] = {0x3f80, 0x4000, 0xc040};
    int64_t i64[2] = {-5, 1LL << 40};
    int32_t i32[1] = {42};
    uint8_t u8[5] = {1, 2, 3, 4, 5};
    float scalar = 9.5f;
    const int64_t s23[2] = {2, 3}, s2[1] = {2}, s3[1] = {3}, s5[1] = {5}, s1[1] = {1},
                  s0[2] = {0, 4};

    safetensors_writer_t *w = safetensors_writer_new();
    T_CHECK(safetensors_writer_add(w, "u8", SAFETENSORS_U8, 1, s5, u8) == 0, "add u8");
    T_CHECK(safetensors_writer_add(w, "weight", SAFETENSORS_F32, 2, s23, f32) == 0, "add f32");
    T_CHECK(safetensors_writer_add(w, "bf", SAFETENSORS_BF16, 1, s3, bf16) == 0, "add bf16");
    T_CHECK(safetensors_writer_add(w, "d", SAFETENSORS_F64, 1, s2, f64) == 0, "add f64");
    T_CHECK(safetensors_writer_add(w, "i64", SAFETENSORS_I64, 1, s2, i64) == 0, "add i64");
    T_CHECK(safetensors_writer_add(w, "i32", SAFETENSORS_I32, 1, s1, i32) == 0, "add i32");
    T_CHECK(safetensors_writer_add(w, "scalar", SAFETENSORS_F32, 0, NULL, &scalar) == 0, "scalar");
    T_CHECK(safetensors_writer_add(w, "empty", SAFETENSORS_F32, 2, s0, NULL) == 0, "empty");
    // refused: duplicate, reserved or empty name, negative dim, too many dims
    const int64_t neg[1] = {-1}, many[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    T_CHECK(safetensors_writer_add(w, "weight", SAFETENSORS_F32, 2, s23, f32) == -1, "dup");
    T_CHECK(safetensors_writer_add(w, "__metadata__", SAFETENSORS_U8, 1, s5, u8) == -1, "reserved");
    T_CHECK(safetensors_writer_add(w, "", SAFETENSORS_U8, 1, s5, u8) == -1, "empty name");
    T_CHECK(safetensors_writer_add(w, "neg", SAFETENSORS_U8, 1, neg, u8) == -1, "negative dim");
    T_CHECK(safetensors_writer_add(w, "many", SAFETENSORS_U8, 9, many, u8) == -1, "9 dims");
    safetensors_writer_set_meta(w, "format", "pt");
    safetensors_writer_set_meta(w, "config", "{\"arch\": \"xresnet50\", \"quote\": \"a\\\"b\"}");
    safetensors_writer_set_meta(w, "format", "netteflow");  // replaces
    const int rc = safetensors_writer_write(w, path);
    safetensors_writer_destroy(&w);
    T_CHECK(w == NULL, "destroy nulls");
    safetensors_writer_destroy(&w);  // accepts NULL
    return rc;
}

static void test_round_trip(void)
{
    const char *dir = t_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    T_CHECK(s_write_demo(path) == 0, "write");
    const float f32[6] = {1, -2, 3.5f, 0, 1e-30f, -7};
    const double f64[2] = {3.141592653589793, -1};
    const uint16_t bf16[3] = {0x3f80, 0x4000, 0xc040};
    const int64_t i64[2] = {-5, 1LL << 40};
    const uint8_t u8[5] = {1, 2, 3, 4, 5};

    // no temporary file left beside it
    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') entries++;
    if (d) closedir(d);
    T_CHECK(entries == 1, "%d files in the directory after an atomic write", entries);

    char err[256];
    safetensors_t *st = safetensors_open(path, err, sizeof err);
    T_CHECK(st != NULL, "open: %s", err);
    if (!st) return;
    T_CHECK(safetensors_count(st) == 8, "count %zu", safetensors_count(st));
    const safetensors_tensor_t *t = safetensors_find(st, "weight");
    T_CHECK(t && t->dtype == SAFETENSORS_F32 && t->ndim == 2 && t->shape[0] == 2 &&
                t->shape[1] == 3 && t->numel == 6 && t->nbytes == 24,
            "weight header");
    float back[6];
    T_CHECK(t && safetensors_copy(t, SAFETENSORS_F32, 6, back) == 0 &&
                memcmp(back, f32, sizeof back) == 0,
            "weight data");
    T_CHECK(t && safetensors_copy(t, SAFETENSORS_F32, 5, back) == -1, "copy checks numel");
    T_CHECK(t && safetensors_copy(t, SAFETENSORS_I32, 6, back) == -1, "copy checks dtype");
    t = safetensors_find(st, "d");
    T_CHECK(t && memcmp(t->data, f64, 16) == 0, "f64 data");
    t = safetensors_find(st, "i64");
    T_CHECK(t && memcmp(t->data, i64, 16) == 0, "i64 data");
    t = safetensors_find(st, "bf");
    T_CHECK(t && t->dtype == SAFETENSORS_BF16 && memcmp(t->data, bf16, 6) == 0, "bf16 data");
    t = safetensors_find(st, "u8");
    T_CHECK(t && memcmp(t->data, u8, 5) == 0, "u8 data");
    t = safetensors_find(st, "scalar");
    T_CHECK(t && t->ndim == 0 && t->numel == 1 && *(const float *)t->data == 9.5f, "scalar");
    t = safetensors_find(st, "empty");
    T_CHECK(t && t->numel == 0 && t->nbytes == 0 && t->shape[1] == 4, "empty tensor");
    T_CHECK(safetensors_find(st, "nope") == NULL, "missing name");
    // the layout keeps each tensor aligned to its element size
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const safetensors_tensor_t *x = safetensors_tensor_at(st, i);
        T_CHECK((uintptr_t)x->data % safetensors_dtype_size(x->dtype) == 0, "%s misaligned",
                x->name);
    }
    const char *fmt = safetensors_meta_get(st, "format");
    T_CHECK(fmt && strcmp(fmt, "netteflow") == 0, "metadata replaced: %s", fmt ? fmt : "(null)");
    const char *cfg = safetensors_meta_get(st, "config");
    T_CHECK(cfg && strstr(cfg, "a\\\"b"), "metadata with quotes: %s", cfg ? cfg : "(null)");
    T_CHECK(safetensors_meta_count(st) == 2, "meta count");
    safetensors_close(&st);
    T_CHECK(st == NULL, "close nulls");

    // the header length is a multiple of 8 and the header is padded with spaces
    size_t len = 0;
    unsigned char *raw = nf_read_file(path, 1 << 20, &len);
    T_CHECK(raw && len > 8, "read raw");
    if (raw) {
        uint64_t h = 0;
        for (int i = 7; i >= 0; i--) h = h << 8 | raw[i];
        T_CHECK(h % 8 == 0 && raw[8] == '{', "header length %llu", (unsigned long long)h);
        free(raw);
    }
}

// Builds a file image: 8-byte length + header + data bytes.
static unsigned char *s_image(const char *header, size_t data_len, size_t *len)
{
    const size_t h = strlen(header);
    *len = 8 + h + data_len;
    unsigned char *b = nf_xcalloc(1, *len);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    for (size_t i = 0; i < data_len; i++) b[8 + h + i] = (unsigned char)i;
    return b;
}

static void s_expect_reject(const char *what, const unsigned char *buf, size_t len,
                            const char *needle)
{
    char err[256] = "";
    safetensors_t *st = safetensors_parse(buf, len, err, sizeof err);
    T_CHECK(st == NULL, "%s: accepted", what);
    T_CHECK(st != NULL || (err[0] && strstr(err, needle)), "%s: error '%s' lacks '%s'", what, err,
            needle);
    if (!st) fprintf(stderr, "OK rejected %s: %s\n", what, err);
    safetensors_close(&st);
}

static void s_reject_header(const char *what, const char *header, size_t data_len,
                            const char *needle)
{
    size_t len;
    unsigned char *b = s_image(header, data_len, &len);
    s_expect_reject(what, b, len, needle);
    free(b);
}

static void test_corrupt(void)
{
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t len;
    unsigned char *good = s_image(ok, 8, &len);
    char err[256];
    safetensors_t *st = safetensors_parse(good, len, err, sizeof err);
    T_CHECK(st != NULL, "the well-formed image parses: %s", err);
    safetensors_close(&st);

    // truncated files: every prefix is rejected, none crashes
    for (size_t cut = 0; cut < len; cut++) {
        st = safetensors_parse(good, cut, err, sizeof err);
        T_CHECK(st == NULL, "prefix of %zu bytes accepted", cut);
        safetensors_close(&st);
    }
    s_expect_reject("7-byte file", good, 7, "too short");
    // header length: huge, zero, past the end
    unsigned char bad[16];
    memcpy(bad, good, 16);
    memset(bad, 0xff, 8);
    s_expect_reject("huge header length", bad, 16, "header length");
    memset(bad, 0, 8);
    s_expect_reject("zero header length", bad, 16, "header length");
    bad[0] = 200;
    s_expect_reject("header past the end", bad, 16, "header length");
    free(good);

    s_reject_header("bad JSON", "{\"a\":{\"dtype\":\"F32\",", 8, "JSON");
    s_reject_header("not an object", "[1, 2, 3]", 0, "'{'");
    s_reject_header("trailing garbage",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}xx", 8,
                    "trailing");
    s_reject_header("unknown dtype",
                    "{\"a\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype");
    s_reject_header("negative dim",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape");
    s_reject_header("fractional dim",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, "shape");
    s_reject_header("shape overflow",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                    "\"data_offsets\":[0,8]}}", 8, "overflow");
    s_reject_header("offsets reversed",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
                    "data_offsets");
    s_reject_header("offsets past the end",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "past");
    s_reject_header("size mismatch",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                    "do not fill");
    s_reject_header("overlap",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
                    "overlap");
    s_reject_header("hole",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "hole");
    s_reject_header("data longer than the tensors",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "ends at");
    s_reject_header("duplicate name",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "twice");
    s_reject_header("metadata not strings",
                    "{\"__metadata__\":{\"k\":1},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "string");
    s_reject_header("entry not an object", "{\"a\":5}", 0, "object");
    s_reject_header("missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0]}}", 0,
                    "data_offsets");

    // a missing file is an error, not a crash
    st = safetensors_open("/nonexistent/x.safetensors", err, sizeof err);
    T_CHECK(st == NULL && strstr(err, "cannot open"), "missing file: %s", err);

    // an unwritable destination: write fails (-1), nothing crashes
    safetensors_writer_t *w = safetensors_writer_new();
    T_CHECK(safetensors_writer_write(w, "/nonexistent/dir/x.safetensors") == -1,
            "write to a missing directory");
    safetensors_writer_destroy(&w);
}

// Reads a file written by tests/reference/check_safetensors.py (Python's
// safetensors package): "x" F32 (2, 3) = 0..5, "ids" I64 (4,) = 10..13,
// "h" BF16 (2,) = (1, -2), metadata {"writer": "python"}.
static void s_read_python(const char *path)
{
    char err[256];
    safetensors_t *st = safetensors_open(path, err, sizeof err);
    if (!T_CHECK(st != NULL, "open %s: %s", path, err)) return;
    const safetensors_tensor_t *x = safetensors_find(st, "x");
    float xv[6];
    T_CHECK(x && x->ndim == 2 && x->shape[0] == 2 && x->shape[1] == 3 &&
                safetensors_copy(x, SAFETENSORS_F32, 6, xv) == 0 && xv[0] == 0 && xv[5] == 5,
            "x");
    const safetensors_tensor_t *ids = safetensors_find(st, "ids");
    int64_t iv[4];
    T_CHECK(ids && safetensors_copy(ids, SAFETENSORS_I64, 4, iv) == 0 && iv[0] == 10 &&
                iv[3] == 13,
            "ids");
    const safetensors_tensor_t *h = safetensors_find(st, "h");
    uint16_t hv[2];
    T_CHECK(h && safetensors_copy(h, SAFETENSORS_BF16, 2, hv) == 0 && hv[0] == 0x3f80 &&
                hv[1] == 0xc000,
            "h");
    const char *wr = safetensors_meta_get(st, "writer");
    T_CHECK(wr && strcmp(wr, "python") == 0, "metadata");
    safetensors_close(&st);
}

int main(int argc, char **argv)
{
    // developer modes used by tests/reference/check_safetensors.py
    if (argc == 3 && strcmp(argv[1], "--write") == 0) return s_write_demo(argv[2]) == 0 ? 0 : 1;
    if (argc == 3 && strcmp(argv[1], "--read") == 0) {
        s_read_python(argv[2]);
        return t_done();
    }
    test_round_trip();
    test_corrupt();
    return t_done();
}
