/*
 * safetensors.c: see safetensors.h. The JSON header is parsed and printed
 * with Debian's cJSON; every number, offset and size from a file is checked
 * before it is used, with overflow-safe arithmetic.
 */
#include "safetensors.h"

#include "check.h"
#include "fsutil.h"
#include "log.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// ---------------------------------------------------------------------------
// dtypes

static const struct {
    const char *name;
    size_t size;
} s_dtypes[SAFETENSORS_DTYPE_COUNT] = {
    [SAFETENSORS_F64] = {"F64", 8},  [SAFETENSORS_F32] = {"F32", 4},
    [SAFETENSORS_F16] = {"F16", 2},  [SAFETENSORS_BF16] = {"BF16", 2},
    [SAFETENSORS_I64] = {"I64", 8},  [SAFETENSORS_I32] = {"I32", 4},
    [SAFETENSORS_I16] = {"I16", 2},  [SAFETENSORS_I8] = {"I8", 1},
    [SAFETENSORS_U8] = {"U8", 1},    [SAFETENSORS_BOOL] = {"BOOL", 1},
};

size_t safetensors_dtype_size(safetensors_dtype_t t)
{
    NF_CHECK((unsigned)t < SAFETENSORS_DTYPE_COUNT, "bad dtype %d", (int)t);
    return s_dtypes[t].size;
}

const char *safetensors_dtype_name(safetensors_dtype_t t)
{
    NF_CHECK((unsigned)t < SAFETENSORS_DTYPE_COUNT, "bad dtype %d", (int)t);
    return s_dtypes[t].name;
}

int safetensors_dtype_parse(const char *name, safetensors_dtype_t *out)
{
    for (int i = 0; i < SAFETENSORS_DTYPE_COUNT; i++)
        if (strcmp(name, s_dtypes[i].name) == 0) {
            *out = (safetensors_dtype_t)i;
            return 0;
        }
    return -1;
}

// ---------------------------------------------------------------------------
// reader

typedef struct {
    char *key, *value;
} s_meta_t;

struct safetensors_t {
    unsigned char *buf;  // the whole file, 64-byte aligned
    size_t len;
    safetensors_tensor_t *tensors;  // sorted by data offset
    size_t count;
    s_meta_t *meta;
    size_t meta_count;
};

static void s_err(char *err, size_t err_len, const char *fmt, ...) NF_PRINTF(3, 4);
static void s_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

// A JSON number that is an integer in [0, 2^53]; false otherwise.
static bool s_json_uint(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || floor(d) != d) return false;
    *out = (uint64_t)d;
    return true;
}

static bool s_mul_ovf(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return true;
    *out = a * b;
    return false;
}

static int s_cmp_begin(const void *a, const void *b)
{
    const safetensors_tensor_t *x = a, *y = b;
    // data points into the same buffer: ordering by pointer is ordering by offset
    if ((const char *)x->data != (const char *)y->data)
        return (const char *)x->data < (const char *)y->data ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes ? 1 : 0;
}

static int s_cmp_name(const void *a, const void *b)
{
    const safetensors_tensor_t *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

// Parses one tensor entry into t (name already set). Returns 0 or -1 (err set).
static int s_parse_entry(const cJSON *e, safetensors_tensor_t *t, size_t data_len,
                         const unsigned char *data, char *err, size_t err_len)
{
    if (!cJSON_IsObject(e)) {
        s_err(err, err_len, "tensor '%s': entry is not a JSON object", t->name);
        return -1;
    }
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd) || safetensors_dtype_parse(jd->valuestring, &t->dtype) != 0) {
        s_err(err, err_len, "tensor '%s': missing or unknown dtype", t->name);
        return -1;
    }
    if (!cJSON_IsArray(js) || cJSON_GetArraySize(js) > SAFETENSORS_MAX_DIMS) {
        s_err(err, err_len, "tensor '%s': shape is not an array of at most %d dims", t->name,
              SAFETENSORS_MAX_DIMS);
        return -1;
    }
    t->ndim = cJSON_GetArraySize(js);
    size_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d;
        if (!s_json_uint(cJSON_GetArrayItem(js, i), &d)) {
            s_err(err, err_len, "tensor '%s': shape[%d] is not a non-negative integer", t->name,
                  i);
            return -1;
        }
        t->shape[i] = (int64_t)d;
        if (s_mul_ovf(numel, (size_t)d, &numel)) {
            s_err(err, err_len, "tensor '%s': element count overflows", t->name);
            return -1;
        }
    }
    uint64_t b, en;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 ||
        !s_json_uint(cJSON_GetArrayItem(jo, 0), &b) ||
        !s_json_uint(cJSON_GetArrayItem(jo, 1), &en) || b > en) {
        s_err(err, err_len, "tensor '%s': data_offsets is not [begin, end] with begin <= end",
              t->name);
        return -1;
    }
    if (en > data_len) {
        s_err(err, err_len, "tensor '%s': data_offsets end %llu past the data (%zu bytes)",
              t->name, (unsigned long long)en, data_len);
        return -1;
    }
    size_t nbytes;
    if (s_mul_ovf(numel, safetensors_dtype_size(t->dtype), &nbytes) || nbytes != en - b) {
        s_err(err, err_len, "tensor '%s': %zu elements of %s do not fill %llu bytes", t->name,
              numel, s_dtypes[t->dtype].name, (unsigned long long)(en - b));
        return -1;
    }
    t->numel = numel;
    t->nbytes = nbytes;
    t->data = data + b;
    return 0;
}

static int s_parse_meta(const cJSON *m, safetensors_t *st, char *err, size_t err_len)
{
    if (!cJSON_IsObject(m)) {
        s_err(err, err_len, "__metadata__ is not a JSON object");
        return -1;
    }
    size_t n = (size_t)cJSON_GetArraySize(m);
    st->meta = nf_xcalloc(n ? n : 1, sizeof *st->meta);
    for (const cJSON *kv = m->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv)) {
            s_err(err, err_len, "__metadata__ value of '%s' is not a string", kv->string);
            return -1;
        }
        for (size_t i = 0; i < st->meta_count; i++)
            if (strcmp(st->meta[i].key, kv->string) == 0) {
                s_err(err, err_len, "__metadata__ key '%s' appears twice", kv->string);
                return -1;
            }
        st->meta[st->meta_count].key = nf_xstrdup(kv->string);
        st->meta[st->meta_count].value = nf_xstrdup(kv->valuestring);
        st->meta_count++;
    }
    return 0;
}

// Validates st->buf (st->len bytes) and fills tensors/meta. 0 or -1 (err set).
static int s_parse_buffer(safetensors_t *st, char *err, size_t err_len)
{
    if (st->len < 8) {
        s_err(err, err_len, "file of %zu bytes is too short for a header length", st->len);
        return -1;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | st->buf[i];
    if (hlen == 0 || hlen > SAFETENSORS_MAX_HEADER || hlen > st->len - 8) {
        s_err(err, err_len, "header length %llu is invalid for a file of %zu bytes",
              (unsigned long long)hlen, st->len);
        return -1;
    }
    const char *hdr = (const char *)st->buf + 8;
    if (hdr[0] != '{') {
        s_err(err, err_len, "header does not start with '{'");
        return -1;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, false);
    if (!root || !cJSON_IsObject(root)) {
        s_err(err, err_len, "header is not a JSON object");
        cJSON_Delete(root);
        return -1;
    }
    for (const char *q = end; q < hdr + hlen; q++)
        if (*q != ' ') {
            s_err(err, err_len, "header has trailing bytes after the JSON object");
            cJSON_Delete(root);
            return -1;
        }
    const unsigned char *data = st->buf + 8 + hlen;
    size_t data_len = st->len - 8 - (size_t)hlen;
    size_t n = (size_t)cJSON_GetArraySize(root);
    st->tensors = nf_xcalloc(n ? n : 1, sizeof *st->tensors);
    int rc = 0;
    for (const cJSON *e = root->child; e && rc == 0; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (st->meta) {
                s_err(err, err_len, "__metadata__ appears twice");
                rc = -1;
            } else {
                rc = s_parse_meta(e, st, err, err_len);
            }
            continue;
        }
        safetensors_tensor_t *t = &st->tensors[st->count++];
        t->name = nf_xstrdup(e->string);
        rc = s_parse_entry(e, t, data_len, data, err, err_len);
    }
    cJSON_Delete(root);
    if (rc != 0) return -1;

    // duplicate names
    if (st->count > 1) {
        const safetensors_tensor_t **byname = nf_xmalloc(st->count * sizeof *byname);
        for (size_t i = 0; i < st->count; i++) byname[i] = &st->tensors[i];
        qsort(byname, st->count, sizeof *byname, s_cmp_name);
        for (size_t i = 1; i < st->count && rc == 0; i++)
            if (strcmp(byname[i - 1]->name, byname[i]->name) == 0) {
                s_err(err, err_len, "tensor name '%s' appears twice", byname[i]->name);
                rc = -1;
            }
        free(byname);
        if (rc != 0) return -1;
    }
    // contiguous, no overlap, no hole, ending at the end of the file
    qsort(st->tensors, st->count, sizeof *st->tensors, s_cmp_begin);
    size_t pos = 0;
    for (size_t i = 0; i < st->count; i++) {
        size_t b = (size_t)((const unsigned char *)st->tensors[i].data - data);
        if (b != pos) {
            s_err(err, err_len, "tensor '%s' starts at %zu, expected %zu (%s)",
                  st->tensors[i].name, b, pos, b < pos ? "overlap" : "hole");
            return -1;
        }
        pos += st->tensors[i].nbytes;
    }
    if (pos != data_len) {
        s_err(err, err_len, "tensor data ends at %zu but the file has %zu data bytes", pos,
              data_len);
        return -1;
    }
    return 0;
}

static safetensors_t *s_finish(safetensors_t *st, char *err, size_t err_len)
{
    if (s_parse_buffer(st, err, err_len) == 0) return st;
    safetensors_close(&st);
    return NULL;
}

safetensors_t *safetensors_parse(const void *buf, size_t len, char *err, size_t err_len)
{
    safetensors_t *st = nf_xcalloc(1, sizeof *st);
    st->buf = nf_xaligned(len ? len : 1);
    if (len) memcpy(st->buf, buf, len);
    st->len = len;
    return s_finish(st, err, err_len);
}

safetensors_t *safetensors_open(const char *path, char *err, size_t err_len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        s_err(err, err_len, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        s_err(err, err_len, "%s is not a regular file", path);
        fclose(fp);
        return NULL;
    }
    safetensors_t *st = nf_xcalloc(1, sizeof *st);
    st->len = (size_t)sb.st_size;
    st->buf = nf_xaligned(st->len ? st->len : 1);
    size_t got = st->len ? fread(st->buf, 1, st->len, fp) : 0;
    int read_err = ferror(fp);
    fclose(fp);
    if (got != st->len || read_err) {
        s_err(err, err_len, "cannot read %s: %s", path, read_err ? strerror(errno) : "short read");
        safetensors_close(&st);
        return NULL;
    }
    char inner[384];
    inner[0] = 0;
    st = s_finish(st, inner, sizeof inner);
    if (!st) s_err(err, err_len, "%s: %s", path, inner);
    return st;
}

void safetensors_close(safetensors_t **self_p)
{
    if (!self_p || !*self_p) return;
    safetensors_t *st = *self_p;
    for (size_t i = 0; i < st->count; i++) free((char *)st->tensors[i].name);
    for (size_t i = 0; i < st->meta_count; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->tensors);
    free(st->meta);
    free(st->buf);
    free(st);
    *self_p = NULL;
}

size_t safetensors_count(const safetensors_t *st) { return st->count; }

const safetensors_tensor_t *safetensors_tensor_at(const safetensors_t *st, size_t i)
{
    NF_CHECK(i < st->count, "tensor index %zu of %zu", i, st->count);
    return &st->tensors[i];
}

const safetensors_tensor_t *safetensors_find(const safetensors_t *st, const char *name)
{
    for (size_t i = 0; i < st->count; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

int safetensors_copy(const safetensors_tensor_t *t, safetensors_dtype_t dtype, size_t numel,
                     void *dst)
{
    if (t->dtype != dtype || t->numel != numel) return -1;
    if (t->nbytes) memcpy(dst, t->data, t->nbytes);
    return 0;
}

size_t safetensors_meta_count(const safetensors_t *st) { return st->meta_count; }

void safetensors_meta_at(const safetensors_t *st, size_t i, const char **key, const char **value)
{
    NF_CHECK(i < st->meta_count, "metadata index %zu of %zu", i, st->meta_count);
    *key = st->meta[i].key;
    *value = st->meta[i].value;
}

const char *safetensors_meta_get(const safetensors_t *st, const char *key)
{
    for (size_t i = 0; i < st->meta_count; i++)
        if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
    return NULL;
}

// ---------------------------------------------------------------------------
// writer

typedef struct {
    char *name;
    safetensors_dtype_t dtype;
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    size_t nbytes;
    const void *data;  // borrowed
    size_t order;      // insertion order, to keep the layout sort stable
} s_wtensor_t;

struct safetensors_writer_t {
    s_wtensor_t *t;
    size_t count, cap;
    s_meta_t *meta;
    size_t meta_count, meta_cap;
};

safetensors_writer_t *safetensors_writer_new(void) { return nf_xcalloc(1, sizeof(safetensors_writer_t)); }

void safetensors_writer_destroy(safetensors_writer_t **self_p)
{
    if (!self_p || !*self_p) return;
    safetensors_writer_t *w = *self_p;
    for (size_t i = 0; i < w->count; i++) free(w->t[i].name);
    for (size_t i = 0; i < w->meta_count; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->t);
    free(w->meta);
    free(w);
    *self_p = NULL;
}

int safetensors_writer_add(safetensors_writer_t *w, const char *name, safetensors_dtype_t dtype,
                           int ndim, const int64_t *shape, const void *data)
{
    NF_CHECK((unsigned)dtype < SAFETENSORS_DTYPE_COUNT, "bad dtype %d", (int)dtype);
    if (!name || !*name || strcmp(name, "__metadata__") == 0) {
        nf_log_error("safetensors: invalid tensor name '%s'", name ? name : "(null)");
        return -1;
    }
    if (ndim < 0 || ndim > SAFETENSORS_MAX_DIMS) {
        nf_log_error("safetensors: tensor '%s' has %d dims (max %d)", name, ndim,
                     SAFETENSORS_MAX_DIMS);
        return -1;
    }
    for (size_t i = 0; i < w->count; i++)
        if (strcmp(w->t[i].name, name) == 0) {
            nf_log_error("safetensors: tensor '%s' added twice", name);
            return -1;
        }
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || s_mul_ovf(numel, (size_t)shape[i], &numel)) {
            nf_log_error("safetensors: tensor '%s' has an invalid shape", name);
            return -1;
        }
    }
    if (w->count == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->t = nf_xrealloc(w->t, w->cap * sizeof *w->t);
    }
    s_wtensor_t *t = &w->t[w->count];
    memset(t, 0, sizeof *t);
    t->name = nf_xstrdup(name);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    NF_CHECK(!s_mul_ovf(numel, safetensors_dtype_size(dtype), &t->nbytes), "size overflow");
    NF_CHECK(data || t->nbytes == 0, "tensor '%s': NULL data", name);
    t->data = data;
    t->order = w->count;
    w->count++;
    return 0;
}

void safetensors_writer_set_meta(safetensors_writer_t *w, const char *key, const char *value)
{
    for (size_t i = 0; i < w->meta_count; i++)
        if (strcmp(w->meta[i].key, key) == 0) {
            free(w->meta[i].value);
            w->meta[i].value = nf_xstrdup(value);
            return;
        }
    if (w->meta_count == w->meta_cap) {
        w->meta_cap = w->meta_cap ? 2 * w->meta_cap : 8;
        w->meta = nf_xrealloc(w->meta, w->meta_cap * sizeof *w->meta);
    }
    w->meta[w->meta_count].key = nf_xstrdup(key);
    w->meta[w->meta_count].value = nf_xstrdup(value);
    w->meta_count++;
}

// Largest element first, then insertion order: keeps every tensor aligned.
static int s_cmp_layout(const void *a, const void *b)
{
    const s_wtensor_t *const *x = a, *const *y = b;
    size_t sx = safetensors_dtype_size((*x)->dtype), sy = safetensors_dtype_size((*y)->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return (*x)->order < (*y)->order ? -1 : (*x)->order > (*y)->order ? 1 : 0;
}

int safetensors_writer_write(const safetensors_writer_t *w, const char *path)
{
    const s_wtensor_t **lay = nf_xmalloc((w->count ? w->count : 1) * sizeof *lay);
    for (size_t i = 0; i < w->count; i++) lay[i] = &w->t[i];
    qsort(lay, w->count, sizeof *lay, s_cmp_layout);

    cJSON *root = cJSON_CreateObject();
    NF_CHECK(root, "cJSON out of memory");
    if (w->meta_count) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        NF_CHECK(m, "cJSON out of memory");
        for (size_t i = 0; i < w->meta_count; i++)
            NF_CHECK(cJSON_AddStringToObject(m, w->meta[i].key, w->meta[i].value),
                     "cJSON out of memory");
    }
    size_t off = 0;
    for (size_t i = 0; i < w->count; i++) {
        const s_wtensor_t *t = lay[i];
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        NF_CHECK(e && cJSON_AddStringToObject(e, "dtype", safetensors_dtype_name(t->dtype)),
                 "cJSON out of memory");
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        NF_CHECK(shape && offs, "cJSON out of memory");
        for (int d = 0; d < t->ndim; d++)
            NF_CHECK(cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d])),
                     "cJSON out of memory");
        NF_CHECK(cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off)) &&
                     cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + t->nbytes))),
                 "cJSON out of memory");
        off += t->nbytes;
        NF_CHECK(off <= (size_t)9007199254740992.0, "file larger than 2^53 bytes");
    }
    char *json = cJSON_PrintUnformatted(root);
    NF_CHECK(json, "cJSON out of memory");
    cJSON_Delete(root);
    size_t jlen = strlen(json);
    size_t hlen = (jlen + 7) / 8 * 8;

    int rc = -1;
    nf_afile_t *f = nf_afile_open(path);
    if (f) {
        FILE *fp = nf_afile_stream(f);
        unsigned char len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
        fwrite(len8, 1, 8, fp);
        fwrite(json, 1, jlen, fp);
        for (size_t i = jlen; i < hlen; i++) fputc(' ', fp);
        for (size_t i = 0; i < w->count; i++)
            if (lay[i]->nbytes) fwrite(lay[i]->data, 1, lay[i]->nbytes, fp);
        rc = nf_afile_commit(&f);  // checks ferror, flush, fsync, rename
    }
    cJSON_free(json);
    free(lay);
    return rc;
}
