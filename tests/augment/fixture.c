/*
 * fixture.c: see fixture.h.
 */
#include "fixture.h"

#include "check.h"
#include "fsutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_TENSORS 64

typedef struct {
    char name[64];
    char dtype[8];
    int ndim;
    int64_t dims[8];
    size_t nbytes;
    void *data;  // aligned copy
} s_tensor_t;

struct fixture_t {
    char path[512];
    int count;
    s_tensor_t t[S_MAX_TENSORS];
};

#define S_HINT "re-run /opt/venv/bin/python tests/reference/gen_augment.py"

fixture_t *fixture_load(const char *name)
{
    const char *root = getenv("NF_SOURCE_DIR");
    NF_CHECK(root && *root, "NF_SOURCE_DIR is not set (run through ctest)");
    fixture_t *f = nf_xcalloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s/tests/fixtures/augment/%s", root, name);
    size_t len = 0;
    uint8_t *buf = nf_read_file(f->path, 16u << 20, &len);
    NF_CHECK(buf, "cannot read fixture %s (" S_HINT ")", f->path);
    NF_CHECK(len >= 8, "fixture %s too short", f->path);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    NF_CHECK(hlen <= len - 8, "fixture %s: bad header length", f->path);
    char *json = nf_xmalloc(hlen + 1);
    memcpy(json, buf + 8, hlen);
    json[hlen] = 0;
    cJSON *root_obj = cJSON_Parse(json);
    NF_CHECK(root_obj, "fixture %s: bad JSON header", f->path);
    const uint8_t *data = buf + 8 + hlen;
    size_t data_len = len - 8 - hlen;
    cJSON *it;
    cJSON_ArrayForEach(it, root_obj)
    {
        if (strcmp(it->string, "__metadata__") == 0) continue;
        NF_CHECK(f->count < S_MAX_TENSORS, "fixture %s: too many tensors", f->path);
        s_tensor_t *t = &f->t[f->count++];
        snprintf(t->name, sizeof t->name, "%s", it->string);
        cJSON *dt = cJSON_GetObjectItem(it, "dtype"), *sh = cJSON_GetObjectItem(it, "shape"),
              *off = cJSON_GetObjectItem(it, "data_offsets");
        NF_CHECK(cJSON_IsString(dt) && cJSON_IsArray(sh) && cJSON_IsArray(off) &&
                     cJSON_GetArraySize(off) == 2 && cJSON_GetArraySize(sh) <= 8,
                 "fixture %s: bad entry %s", f->path, t->name);
        snprintf(t->dtype, sizeof t->dtype, "%s", dt->valuestring);
        t->ndim = cJSON_GetArraySize(sh);
        for (int d = 0; d < t->ndim; d++) t->dims[d] = (int64_t)cJSON_GetArrayItem(sh, d)->valuedouble;
        double b = cJSON_GetArrayItem(off, 0)->valuedouble, e = cJSON_GetArrayItem(off, 1)->valuedouble;
        NF_CHECK(b >= 0 && e >= b && e <= (double)data_len, "fixture %s: %s out of bounds",
                 f->path, t->name);
        t->nbytes = (size_t)(e - b);
        t->data = nf_xaligned(t->nbytes ? t->nbytes : 1);
        memcpy(t->data, data + (size_t)b, t->nbytes);
    }
    cJSON_Delete(root_obj);
    free(json);
    free(buf);
    return f;
}

void fixture_free(fixture_t **self_p)
{
    if (!self_p || !*self_p) return;
    for (int i = 0; i < (*self_p)->count; i++) free((*self_p)->t[i].data);
    free(*self_p);
    *self_p = NULL;
}

static s_tensor_t *s_find(fixture_t *f, const char *name, const char *dtype, size_t elem, size_t n)
{
    for (int i = 0; i < f->count; i++) {
        s_tensor_t *t = &f->t[i];
        if (strcmp(t->name, name) != 0) continue;
        NF_CHECK(strcmp(t->dtype, dtype) == 0, "fixture %s: %s is %s, expected %s (" S_HINT ")",
                 f->path, name, t->dtype, dtype);
        NF_CHECK(n == 0 || t->nbytes == n * elem,
                 "fixture %s: %s has %zu elements, expected %zu (" S_HINT ")", f->path, name,
                 t->nbytes / elem, n);
        return t;
    }
    NF_CHECK(0, "fixture %s has no tensor %s (" S_HINT ")", f->path, name);
    return NULL;
}

const float *fixture_f32(fixture_t *f, const char *name, size_t n)
{
    return s_find(f, name, "F32", 4, n)->data;
}

const uint8_t *fixture_u8(fixture_t *f, const char *name, size_t n)
{
    return s_find(f, name, "U8", 1, n)->data;
}

const int32_t *fixture_i32(fixture_t *f, const char *name, size_t n)
{
    return s_find(f, name, "I32", 4, n)->data;
}

int fixture_shape(fixture_t *f, const char *name, int64_t dims[8])
{
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->t[i].name, name) == 0) {
            memcpy(dims, f->t[i].dims, sizeof f->t[i].dims);
            return f->t[i].ndim;
        }
    NF_CHECK(0, "fixture %s has no tensor %s", f->path, name);
    return 0;
}
