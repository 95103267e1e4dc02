/*
 * fixture.c: see fixture.h.
 */
#include "fixture.h"

#include "check.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture_t {
    char path[512];
    safetensors_t *st;
    bool *compared;  // per tensor (data order)
    void **copies;   // per tensor, aligned copies handed out
};

static const char *s_generator(const fixture_t *f)
{
    const char *g = safetensors_meta_get(f->st, "generator");
    return g ? g : "the generator in tests/reference/";
}

fixture_t *fixture_open(const char *rel_path)
{
    fixture_t *f = nf_xcalloc(1, sizeof *f);
    const char *src = getenv("NF_SOURCE_DIR");
    if (src && *src)
        snprintf(f->path, sizeof f->path, "%s/tests/fixtures/%s", src, rel_path);
    else
        snprintf(f->path, sizeof f->path, "%s", rel_path);
    char err[512];
    f->st = safetensors_open(f->path, err, sizeof err);
    if (!T_CHECK(f->st != NULL, "fixture unreadable: %s (HINT: re-run the script in "
                                "tests/reference/ that writes it)", err)) {
        free(f);
        return NULL;
    }
    const char *magic = safetensors_meta_get(f->st, "magic");
    const char *version = safetensors_meta_get(f->st, "version");
    if (!T_CHECK(magic && strcmp(magic, FIXTURE_MAGIC) == 0 && version &&
                     strcmp(version, FIXTURE_VERSION) == 0,
                 "%s: magic '%s' version '%s', expected '%s' version '%s' (HINT: re-run %s)",
                 f->path, magic ? magic : "(none)", version ? version : "(none)",
                 FIXTURE_MAGIC, FIXTURE_VERSION, s_generator(f))) {
        safetensors_close(&f->st);
        free(f);
        return NULL;
    }
    size_t n = safetensors_count(f->st);
    f->compared = nf_xcalloc(n ? n : 1, sizeof *f->compared);
    f->copies = nf_xcalloc(n ? n : 1, sizeof *f->copies);
    return f;
}

void fixture_close(fixture_t **self_p)
{
    if (!self_p || !*self_p) return;
    fixture_t *f = *self_p;
    size_t n = safetensors_count(f->st);
    for (size_t i = 0; i < n; i++) {
        const safetensors_tensor_t *t = safetensors_tensor_at(f->st, i);
        if (strncmp(t->name, "out.", 4) == 0)
            T_CHECK(f->compared[i], "%s: expected tensor '%s' was never compared", f->path,
                    t->name);
        free(f->copies[i]);
    }
    free(f->copies);
    free(f->compared);
    safetensors_close(&f->st);
    free(f);
    *self_p = NULL;
}

const safetensors_t *fixture_file(const fixture_t *f) { return f->st; }

static const char *s_meta(fixture_t *f, const char *key)
{
    const char *v = safetensors_meta_get(f->st, key);
    T_CHECK(v != NULL, "%s: metadata '%s' missing (HINT: re-run %s)", f->path, key,
            s_generator(f));
    return v;
}

long fixture_meta_int(fixture_t *f, const char *key)
{
    const char *v = s_meta(f, key);
    if (!v) return 0;
    char *end = NULL;
    long x = strtol(v, &end, 10);
    if (!T_CHECK(end != v && *end == 0, "%s: metadata '%s' = '%s' is not an integer", f->path,
                 key, v))
        return 0;
    return x;
}

double fixture_meta_double(fixture_t *f, const char *key)
{
    const char *v = s_meta(f, key);
    if (!v) return 0;
    char *end = NULL;
    double x = strtod(v, &end);
    if (!T_CHECK(end != v && *end == 0, "%s: metadata '%s' = '%s' is not a number", f->path, key,
                 v))
        return 0;
    return x;
}

static size_t s_index(fixture_t *f, const char *name)
{
    size_t n = safetensors_count(f->st);
    for (size_t i = 0; i < n; i++)
        if (strcmp(safetensors_tensor_at(f->st, i)->name, name) == 0) return i;
    return (size_t)-1;
}

static const void *s_get(fixture_t *f, const char *name, safetensors_dtype_t dtype, size_t numel)
{
    size_t i = s_index(f, name);
    if (!T_CHECK(i != (size_t)-1, "%s: tensor '%s' missing (HINT: re-run %s)", f->path, name,
                 s_generator(f)))
        return NULL;
    const safetensors_tensor_t *t = safetensors_tensor_at(f->st, i);
    if (!T_CHECK(t->dtype == dtype && t->numel == numel,
                 "%s: tensor '%s' is %s x %zu, the test expects %s x %zu (HINT: re-run %s)",
                 f->path, name, safetensors_dtype_name(t->dtype), t->numel,
                 safetensors_dtype_name(dtype), numel, s_generator(f)))
        return NULL;
    if (!f->copies[i]) {
        f->copies[i] = nf_xaligned(t->nbytes ? t->nbytes : 1);
        NF_CHECK(safetensors_copy(t, dtype, numel, f->copies[i]) == 0, "copy");
    }
    return f->copies[i];
}

const float *fixture_f32(fixture_t *f, const char *name, size_t numel)
{
    return s_get(f, name, SAFETENSORS_F32, numel);
}

const int32_t *fixture_i32(fixture_t *f, const char *name, size_t numel)
{
    return s_get(f, name, SAFETENSORS_I32, numel);
}

bool fixture_expect(fixture_t *f, const fixture_tol_t *tab, size_t ntab, const char *name,
                    const float *got, size_t numel)
{
    const fixture_tol_t *row = NULL;
    for (size_t i = 0; i < ntab; i++)
        if (strcmp(tab[i].name, name) == 0) row = &tab[i];
    NF_CHECK(row != NULL, "no tolerance row for '%s'", name);
    const float *want = fixture_f32(f, name, numel);
    size_t i = s_index(f, name);
    if (i != (size_t)-1) f->compared[i] = true;
    if (!want) return false;
    char label[600];
    const char *base = strrchr(f->path, '/');
    snprintf(label, sizeof label, "%s:%s", base ? base + 1 : f->path, name);
    return t_close_f32(label, got, want, numel, row->atol, row->rtol);
}
