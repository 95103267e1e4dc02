/*
 * pack.c: see pack.h. The writer indexes the source with the dataset module
 * (so a pack holds exactly the files a folder run would see), re-encodes in
 * parallel batches (TurboJPEG decode, the loader's Pillow-exact resampler,
 * TurboJPEG encode; one decoder and one compressor per thread) and appends
 * the results to the shards in index order; crc32 is zlib's. The reader maps
 * the shards read-only and never trusts the index: every count, length,
 * path and range is checked before use.
 */
#include "pack.h"

#include "check.h"
#include "dataset.h"
#include "fsutil.h"
#include "log.h"
#include "resample.h"
#include "timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

#define S_MAGIC "NFPACK01"
#define S_VERSION 1u
#define S_MAX_PATH 4096
#define S_MAX_ITEMS (1u << 28)
#define S_MAX_SHARDS 100000u

static uint32_t s_crc(const void *p, size_t n) { return (uint32_t)crc32_z(0L, p, n); }

NF_PRINTF(3, 4) static int s_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

// ---------------------------------------------------------------------------
// a growing byte buffer for the index

typedef struct {
    uint8_t *b;
    size_t n, cap;
} s_buf_t;

static void s_put(s_buf_t *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 1024;
        b->b = nf_xrealloc(b->b, b->cap);
    }
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void s_put_u16(s_buf_t *b, uint16_t v) { s_put(b, &v, 2); }
static void s_put_u32(s_buf_t *b, uint32_t v) { s_put(b, &v, 4); }
static void s_put_u64(s_buf_t *b, uint64_t v) { s_put(b, &v, 8); }

static void s_put_str(s_buf_t *b, const char *s)
{
    const size_t n = strlen(s);
    NF_CHECK(n <= S_MAX_PATH, "pack: name of %zu bytes", n);
    s_put_u16(b, (uint16_t)n);
    s_put(b, s, n);
}

// ---------------------------------------------------------------------------
// writing

typedef struct {
    loader_decoder_t *dec;
    tjhandle tj;
    uint8_t *file;     // read buffer
    size_t file_cap;
    uint8_t *rgb;      // resized image
    size_t rgb_cap;
    void *ws;          // resampler workspace
    size_t ws_cap;
} s_worker_t;

typedef struct {
    uint8_t *data;  // malloc'ed bytes to store
    size_t len;
    bool reencoded;
    bool read_failed;  // the file could not be read: stored empty (a bad file, as the folder's)
    size_t in_len;
} s_result_t;

static void *s_grow(void *p, size_t *cap, size_t need)
{
    if (need <= *cap) return p;
    free(p);
    *cap = need;
    return nf_xmalloc(need);
}

// Re-encodes one JPEG with its shorter side at `size` into r; false when it
// is better stored unchanged (already small, not decodable, not a JPEG).
static bool s_reencode(s_worker_t *w, const uint8_t *jpeg, size_t len, uint32_t size, int quality,
                       s_result_t *r)
{
    loader_decode_info_t info;
    const uint8_t *px = loader_decoder_full(w->dec, jpeg, len, false, 0, &info);
    if (!px) return false;
    const uint32_t W = info.width, H = info.height, shorter = W < H ? W : H;
    if (shorter <= size) return false;
    // fastai's resize_to(use_min=True): the shorter side to `size`, the other scaled
    const uint32_t ow = W == shorter ? size : (uint32_t)((double)W * size / shorter + 0.5);
    const uint32_t oh = H == shorter ? size : (uint32_t)((double)H * size / shorter + 0.5);
    loader_resample_params_t rp = {.in_w = W, .in_h = H, .box = {0, 0, (float)W, (float)H},
                                   .out_w = ow, .out_h = oh};
    w->ws = s_grow(w->ws, &w->ws_cap, loader_resample_workspace_bytes(&rp));
    w->rgb = s_grow(w->rgb, &w->rgb_cap, (size_t)ow * oh * 3);
    loader_resample_rgb(&rp, px, (size_t)W * 3, w->rgb, w->ws);
    const bool gray = info.colorspace == TJCS_GRAY;
    if (gray)  // the decoder expanded gray to RGB: keep one channel, store it gray again
        for (size_t i = 0; i < (size_t)ow * oh; i++) w->rgb[i] = w->rgb[i * 3];
    unsigned char *out = NULL;
    unsigned long out_len = 0;
    if (tjCompress2(w->tj, w->rgb, (int)ow, 0, (int)oh, gray ? TJPF_GRAY : TJPF_RGB, &out,
                    &out_len, gray ? TJSAMP_GRAY : TJSAMP_420, quality, 0) != 0) {
        nf_log_warn("pack: encoding failed (%s); the file is stored unchanged", tjGetErrorStr2(w->tj));
        tjFree(out);
        return false;
    }
    r->data = nf_xmalloc(out_len);
    memcpy(r->data, out, out_len);
    r->len = out_len;
    r->reencoded = true;
    tjFree(out);
    return true;
}

static void s_process(s_worker_t *w, const char *src, const char *rel, uint32_t size, int quality,
                      s_result_t *r)
{
    char path[S_MAX_PATH + 512];
    snprintf(path, sizeof path, "%s/%s", src, rel);
    loader_bad_t bad;
    char detail[160];
    memset(r, 0, sizeof *r);
    const long len = loader_read_file(path, &w->file, &w->file_cap, &bad, detail, sizeof detail);
    if (len < 0) {
        nf_log_warn("pack: %s: %s (stored empty: a bad file, as in the folder)", rel, detail);
        r->read_failed = true;
        r->data = nf_xmalloc(1);
        return;
    }
    r->in_len = (size_t)len;
    if (size > 0 && s_reencode(w, w->file, (size_t)len, size, quality, r)) return;
    r->data = nf_xmalloc(len ? (size_t)len : 1);
    memcpy(r->data, w->file, (size_t)len);
    r->len = (size_t)len;
}

static bool s_dir_empty_or_missing(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT;
    bool empty = true;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = false;
    closedir(d);
    return empty;
}

typedef struct {
    FILE *f;
    char path[S_MAX_PATH];
    uint64_t bytes;
} s_shard_out_t;

static int s_shard_close(s_shard_out_t *s, char *err, size_t errlen)
{
    if (!s->f) return 0;
    int rc = 0;
    if (fflush(s->f) != 0 || fsync(fileno(s->f)) != 0)
        rc = s_fail(err, errlen, "writing %s: %s", s->path, strerror(errno));
    if (fclose(s->f) != 0 && rc == 0) rc = s_fail(err, errlen, "closing %s: %s", s->path, strerror(errno));
    s->f = NULL;
    return rc;
}

int loader_pack_write(const loader_pack_config_t *cfg, loader_pack_stats_t *stats, char *err,
                      size_t errlen)
{
    const double t0 = nf_now_s();
    memset(stats, 0, sizeof *stats);
    const int quality = cfg->quality > 0 ? cfg->quality : 90;
    const uint64_t shard_bytes = cfg->shard_bytes ? cfg->shard_bytes : (uint64_t)64 << 20;
    if (quality > 100) return s_fail(err, errlen, "JPEG quality %d is over 100", quality);
    if (loader_pack_exists(cfg->src)) return s_fail(err, errlen, "%s is already a pack", cfg->src);
    if (!s_dir_empty_or_missing(cfg->out))
        return s_fail(err, errlen, "output folder %s exists and is not empty", cfg->out);
    loader_dataset_config_t dc = {.root = cfg->src, .train_name = cfg->train_name,
                                  .valid_name = cfg->valid_name};
    loader_dataset_t *ds = loader_dataset_new(&dc, err, errlen);
    if (!ds) return -1;
    if (nf_mkdir_p(cfg->out) != 0) {
        loader_dataset_destroy(&ds);
        return s_fail(err, errlen, "cannot create %s: %s", cfg->out, strerror(errno));
    }
    const uint32_t n = loader_dataset_n_items(ds), nc = loader_dataset_n_classes(ds);
    const int threads = cfg->threads > 0 ? cfg->threads : omp_get_max_threads();
    s_worker_t *workers = nf_xcalloc((size_t)threads, sizeof *workers);
    for (int t = 0; t < threads; t++) {
        workers[t].dec = loader_decoder_new();
        workers[t].tj = tjInitCompress();
        NF_CHECK(workers[t].tj, "tjInitCompress: %s", tjGetErrorStr2(NULL));
    }
    s_buf_t items = {0};
    uint64_t *shard_sizes = NULL;
    uint32_t n_shards = 0;
    s_shard_out_t sh = {0};
    int rc = 0;
    const uint32_t batch = (uint32_t)threads * 64;
    s_result_t *res = nf_xcalloc(batch, sizeof *res);
    for (uint32_t b0 = 0; b0 < n && rc == 0; b0 += batch) {
        const uint32_t b1 = b0 + batch < n ? b0 + batch : n;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4)
        for (uint32_t i = b0; i < b1; i++)
            s_process(&workers[omp_get_thread_num()], cfg->src, loader_dataset_item(ds, i)->path,
                      cfg->size, quality, &res[i - b0]);
        for (uint32_t i = b0; i < b1 && rc == 0; i++) {
            s_result_t *r = &res[i - b0];
            if (!sh.f) {
                snprintf(sh.path, sizeof sh.path, "%s/shard-%05u.nfs", cfg->out, n_shards);
                sh.f = fopen(sh.path, "wb");
                sh.bytes = 0;
                if (!sh.f) {
                    rc = s_fail(err, errlen, "cannot create %s: %s", sh.path, strerror(errno));
                    break;
                }
                shard_sizes = nf_xrealloc(shard_sizes, (n_shards + 1) * sizeof *shard_sizes);
                n_shards++;
            }
            if (r->len && fwrite(r->data, 1, r->len, sh.f) != r->len) {
                rc = s_fail(err, errlen, "writing %s: %s", sh.path, strerror(errno));
                break;
            }
            const loader_item_t *it = loader_dataset_item(ds, i);
            s_put_str(&items, it->path);
            s_put_u32(&items, (uint32_t)it->label);
            s_put(&items, &it->split, 1);
            s_put_u32(&items, n_shards - 1);
            s_put_u64(&items, sh.bytes);
            s_put_u32(&items, (uint32_t)r->len);
            s_put_u32(&items, s_crc(r->data, r->len));
            sh.bytes += r->len;
            shard_sizes[n_shards - 1] = sh.bytes;
            stats->bytes_in += r->in_len;
            stats->bytes_out += r->len;
            stats->reencoded += r->reencoded;
            stats->copied += !r->reencoded;
            if (sh.bytes >= shard_bytes) rc = s_shard_close(&sh, err, errlen);
        }
        for (uint32_t i = b0; i < b1; i++) free(res[i - b0].data);
    }
    if (rc == 0) rc = s_shard_close(&sh, err, errlen);
    else s_shard_close(&sh, err, 0);
    if (rc == 0) {
        s_buf_t idx = {0};
        s_put(&idx, S_MAGIC, 8);
        s_put_u32(&idx, S_VERSION);
        s_put_u32(&idx, cfg->size);
        s_put_u32(&idx, (uint32_t)quality);
        s_put_u32(&idx, nc);
        s_put_u32(&idx, n);
        s_put_u32(&idx, n_shards);
        for (uint32_t c = 0; c < nc; c++) s_put_str(&idx, loader_dataset_class_name(ds, c));
        for (uint32_t s = 0; s < n_shards; s++) s_put_u64(&idx, shard_sizes[s]);
        s_put(&idx, items.b, items.n);
        s_put_u32(&idx, s_crc(idx.b, idx.n));
        char ipath[S_MAX_PATH];
        snprintf(ipath, sizeof ipath, "%s/%s", cfg->out, LOADER_PACK_INDEX);
        if (nf_write_file_atomic(ipath, idx.b, idx.n) != 0)
            rc = s_fail(err, errlen, "cannot write the index %s", ipath);
        free(idx.b);
    }
    if (rc != 0)  // no index: the shards are not a pack; take them away
        for (uint32_t s = 0; s < n_shards; s++) {
            char p[S_MAX_PATH];
            snprintf(p, sizeof p, "%s/shard-%05u.nfs", cfg->out, s);
            unlink(p);
        }
    stats->items = n;
    stats->shards = n_shards;
    stats->seconds = nf_now_s() - t0;
    for (int t = 0; t < threads; t++) {
        loader_decoder_destroy(&workers[t].dec);
        tjDestroy(workers[t].tj);
        free(workers[t].file), free(workers[t].rgb), free(workers[t].ws);
    }
    free(workers);
    free(res);
    free(items.b);
    free(shard_sizes);
    loader_dataset_destroy(&ds);
    return rc;
}

// ---------------------------------------------------------------------------
// reading

typedef struct {
    const char *path;
    int32_t label;
    uint8_t split;
    uint32_t shard;
    uint64_t offset;
    uint32_t bytes;
    uint32_t crc;
} s_item_t;

typedef struct {
    uint8_t *map;
    uint64_t bytes;
} s_shard_t;

struct loader_pack_t {
    char *dir;
    uint32_t size, quality;
    uint32_t n_classes, n_items, n_shards;
    char **classes;
    s_item_t *items;
    char *paths;  // NUL-terminated paths, one after another
    s_shard_t *shards;
};

bool loader_pack_exists(const char *dir)
{
    char p[S_MAX_PATH];
    snprintf(p, sizeof p, "%s/%s", dir, LOADER_PACK_INDEX);
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

// A cursor over the index bytes; every read is bounds-checked.
typedef struct {
    const uint8_t *p, *end;
    bool bad;
} s_cur_t;

static void s_get(s_cur_t *c, void *out, size_t n)
{
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = true;
        memset(out, 0, n);
        return;
    }
    memcpy(out, c->p, n);
    c->p += n;
}

static uint16_t s_u16(s_cur_t *c)
{
    uint16_t v;
    s_get(c, &v, 2);
    return v;
}

static uint32_t s_u32(s_cur_t *c)
{
    uint32_t v;
    s_get(c, &v, 4);
    return v;
}

static uint64_t s_u64(s_cur_t *c)
{
    uint64_t v;
    s_get(c, &v, 8);
    return v;
}

// A string of the index, copied NUL-terminated to *dst (advanced).
static const char *s_str(s_cur_t *c, char **dst)
{
    const uint16_t n = s_u16(c);
    if (c->bad || (size_t)(c->end - c->p) < n || n == 0) {
        c->bad = true;
        return NULL;
    }
    char *s = *dst;
    memcpy(s, c->p, n);
    s[n] = 0;
    c->p += n;
    *dst += n + 1;
    return memchr(s, 0, n) ? NULL : s;  // an embedded NUL is a bad name
}

// Relative, no "..", no empty component, no leading slash.
static bool s_path_ok(const char *p)
{
    if (!p || p[0] == '/' || !p[0]) return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        const size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 2 && s[0] == '.' && s[1] == '.') || (n == 1 && s[0] == '.'))
            return false;
        s += n + (e ? 1 : 0);
    }
    return true;
}

static loader_pack_t *s_open_fail(loader_pack_t *p, uint8_t *buf, char *err, size_t errlen,
                                  const char *why, const char *dir)
{
    snprintf(err, errlen, "pack %s: %s", dir, why);
    free(buf);
    loader_pack_close(&p);
    return NULL;
}

loader_pack_t *loader_pack_open(const char *dir, char *err, size_t errlen)
{
    char ipath[S_MAX_PATH];
    snprintf(ipath, sizeof ipath, "%s/%s", dir, LOADER_PACK_INDEX);
    size_t len = 0;
    uint8_t *buf = nf_read_file(ipath, (size_t)1 << 31, &len);
    if (!buf) {
        snprintf(err, errlen, "pack %s: cannot read %s: %s", dir, LOADER_PACK_INDEX,
                 strerror(errno));
        return NULL;
    }
    loader_pack_t *p = nf_xcalloc(1, sizeof *p);
    p->dir = nf_xstrdup(dir);
    if (len < 8 + 6 * 4 + 4 || memcmp(buf, S_MAGIC, 8) != 0)
        return s_open_fail(p, buf, err, errlen, "not a netteflow pack index", dir);
    uint32_t stored;
    memcpy(&stored, buf + len - 4, 4);
    if (stored != s_crc(buf, len - 4))
        return s_open_fail(p, buf, err, errlen, "index checksum mismatch (damaged index)", dir);
    s_cur_t c = {.p = buf + 8, .end = buf + len - 4};
    const uint32_t version = s_u32(&c);
    if (version != S_VERSION) return s_open_fail(p, buf, err, errlen, "index of another version", dir);
    p->size = s_u32(&c);
    p->quality = s_u32(&c);
    p->n_classes = s_u32(&c);
    p->n_items = s_u32(&c);
    p->n_shards = s_u32(&c);
    if (p->n_classes == 0 || p->n_classes > p->n_items || p->n_items > S_MAX_ITEMS ||
        p->n_shards > S_MAX_SHARDS || p->n_items == 0)
        return s_open_fail(p, buf, err, errlen, "bad counts in the index", dir);
    // the counts must fit in the bytes left before anything is allocated for
    // them (a class takes >= 3 bytes, a shard 8, an item 28): a short index
    // claiming 2^28 items made the reader allocate gigabytes and abort
    uint64_t least = (uint64_t)p->n_classes * 3 + (uint64_t)p->n_shards * 8 + (uint64_t)p->n_items * 28;
    if (least > (uint64_t)(c.end - c.p))
        return s_open_fail(p, buf, err, errlen, "counts larger than the index", dir);
    // every string fits in the index itself: that bounds the blob
    p->paths = nf_xmalloc(len + (size_t)p->n_items + p->n_classes);
    char *dst = p->paths;
    p->classes = nf_xcalloc(p->n_classes, sizeof *p->classes);
    for (uint32_t k = 0; k < p->n_classes && !c.bad; k++)
        if (!(p->classes[k] = (char *)s_str(&c, &dst))) c.bad = true;
    p->shards = nf_xcalloc(p->n_shards ? p->n_shards : 1, sizeof *p->shards);
    for (uint32_t s = 0; s < p->n_shards; s++) p->shards[s].bytes = s_u64(&c);
    p->items = nf_xcalloc(p->n_items, sizeof *p->items);
    for (uint32_t i = 0; i < p->n_items && !c.bad; i++) {
        s_item_t *it = &p->items[i];
        it->path = s_str(&c, &dst);
        uint32_t label = s_u32(&c);
        memcpy(&it->label, &label, 4);
        s_get(&c, &it->split, 1);
        it->shard = s_u32(&c);
        it->offset = s_u64(&c);
        it->bytes = s_u32(&c);
        it->crc = s_u32(&c);
        if (c.bad) break;
        if (!s_path_ok(it->path))
            return s_open_fail(p, buf, err, errlen, "a path leaves the pack (absolute or ..)", dir);
        if (i > 0 && strcmp(p->items[i - 1].path, it->path) >= 0)
            return s_open_fail(p, buf, err, errlen, "paths are not sorted", dir);
        if (it->label < 0 || (uint32_t)it->label >= p->n_classes || it->split > 1 ||
            it->shard >= p->n_shards || it->offset > p->shards[it->shard].bytes ||
            it->bytes > p->shards[it->shard].bytes - it->offset)
            return s_open_fail(p, buf, err, errlen, "an item lies outside its shard", dir);
    }
    if (c.bad || c.p != c.end)
        return s_open_fail(p, buf, err, errlen, "truncated or malformed index", dir);
    free(buf);
    for (uint32_t s = 0; s < p->n_shards; s++) {
        char sp[S_MAX_PATH];
        snprintf(sp, sizeof sp, "%s/shard-%05u.nfs", dir, s);
        const int fd = open(sp, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size != p->shards[s].bytes) {
            snprintf(err, errlen, "pack %s: shard %s is missing or of the wrong size", dir, sp);
            if (fd >= 0) close(fd);
            loader_pack_close(&p);
            return NULL;
        }
        if (p->shards[s].bytes) {
            void *m = mmap(NULL, p->shards[s].bytes, PROT_READ, MAP_SHARED, fd, 0);
            if (m == MAP_FAILED) {
                snprintf(err, errlen, "pack %s: mmap %s: %s", dir, sp, strerror(errno));
                close(fd);
                loader_pack_close(&p);
                return NULL;
            }
            p->shards[s].map = m;
        }
        close(fd);
    }
    return p;
}

void loader_pack_close(loader_pack_t **self_p)
{
    if (!self_p || !*self_p) return;
    loader_pack_t *p = *self_p;
    for (uint32_t s = 0; p->shards && s < p->n_shards; s++)
        if (p->shards[s].map) NF_CHECK_ERRNO(munmap(p->shards[s].map, p->shards[s].bytes) == 0, "munmap");
    free(p->shards);
    free(p->items);
    free(p->classes);
    free(p->paths);
    free(p->dir);
    free(p);
    *self_p = NULL;
}

uint32_t loader_pack_n_items(const loader_pack_t *p) { return p->n_items; }
uint32_t loader_pack_n_classes(const loader_pack_t *p) { return p->n_classes; }
uint32_t loader_pack_image_size(const loader_pack_t *p) { return p->size; }

const char *loader_pack_path(const loader_pack_t *p, uint32_t i)
{
    NF_CHECK(i < p->n_items, "pack item %u of %u", i, p->n_items);
    return p->items[i].path;
}

int32_t loader_pack_label(const loader_pack_t *p, uint32_t i)
{
    NF_CHECK(i < p->n_items, "pack item %u of %u", i, p->n_items);
    return p->items[i].label;
}

int loader_pack_split(const loader_pack_t *p, uint32_t i)
{
    NF_CHECK(i < p->n_items, "pack item %u of %u", i, p->n_items);
    return p->items[i].split;
}

const char *loader_pack_class(const loader_pack_t *p, uint32_t label)
{
    NF_CHECK(label < p->n_classes, "pack class %u of %u", label, p->n_classes);
    return p->classes[label];
}

long loader_pack_read(const loader_pack_t *p, const char *rel, const uint8_t **data,
                      loader_bad_t *bad, char *detail, size_t detail_len)
{
    uint32_t lo = 0, hi = p->n_items;
    while (lo < hi) {
        const uint32_t mid = lo + (hi - lo) / 2;
        const int c = strcmp(p->items[mid].path, rel);
        if (c == 0) {
            const s_item_t *it = &p->items[mid];
            const uint8_t *d = it->bytes ? p->shards[it->shard].map + it->offset : (const uint8_t *)"";
            if (s_crc(d, it->bytes) != it->crc) {
                *bad = LOADER_BAD_IO;
                snprintf(detail, detail_len, "checksum mismatch in shard-%05u.nfs", it->shard);
                return -1;
            }
            *data = d;
            return (long)it->bytes;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *bad = LOADER_BAD_IO;
    snprintf(detail, detail_len, "no such sample in the pack");
    return -1;
}

long loader_sample_read(const loader_pack_t *pack, const char *root, const char *rel,
                        uint8_t **buf, size_t *cap, const uint8_t **data, loader_bad_t *bad,
                        char *detail, size_t detail_len)
{
    if (pack) return loader_pack_read(pack, rel, data, bad, detail, detail_len);
    char path[S_MAX_PATH + 512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    const long len = loader_read_file(path, buf, cap, bad, detail, detail_len);
    if (len >= 0) *data = *buf;
    return len;
}
