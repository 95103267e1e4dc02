/*
 * fuzzmsg.c: see fuzzmsg.h.
 */
#include "fuzzmsg.h"

#include "check.h"
#include "dataset.h"
#include "fsutil.h"
#include "jpegfix.h"
#include "pack.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static bool s_take(const uint8_t **p, const uint8_t *end, size_t n)
{
    if ((size_t)(end - *p) < n) return false;
    *p += n;
    return true;
}

size_t fz_records(const uint8_t *data, size_t size, fz_record_t *out)
{
    const uint8_t *p = data, *end = data + size;
    size_t n = 0;
    while (n < FZ_MAX_RECORDS && end - p >= 3) {
        fz_record_t r = {.flags = p[0]};
        size_t len = (size_t)p[1] | (size_t)p[2] << 8;
        p += 3;
        r.env = p;
        r.env_len = len;
        if (!s_take(&p, end, len)) break;
        if (r.flags & FZ_PAYLOAD) {
            if (end - p < 2) break;
            size_t plen = (size_t)p[0] | (size_t)p[1] << 8;
            p += 2;
            r.payload = p;
            r.payload_len = plen;
            if (!s_take(&p, end, plen)) break;
        }
        out[n++] = r;
    }
    return n;
}

int fz_send(void *sock, const nf_wire_peer_t *peer, const fz_record_t *r)
{
    int more = r->flags & FZ_PAYLOAD ? ZMQ_SNDMORE : 0;
    if (peer && zmq_send(sock, peer->id, peer->len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) return -1;
    if (zmq_send(sock, r->env, r->env_len, more | ZMQ_DONTWAIT) < 0) return -1;
    if (more && zmq_send(sock, r->payload, r->payload_len, ZMQ_DONTWAIT) < 0) return -1;
    return 0;
}

uint8_t *fz_pack(Nf__Envelope *env, size_t *len)
{
    char *own_job = env->job;  // the caller's (an unpacked envelope frees its own)
    env->version = NF_PROTOCOL_VERSION;
    env->job = "netteflow";
    *len = nf__envelope__get_packed_size(env);
    uint8_t *buf = nf_xmalloc(*len + 1);
    NF_CHECK(nf__envelope__pack(env, buf) == *len, "pack");
    env->job = own_job;
    return buf;
}

void fz_put(FILE *f, uint8_t flags, Nf__Envelope *env, const void *payload, size_t payload_len)
{
    size_t len;
    uint8_t *buf = fz_pack(env, &len);
    NF_CHECK(len < 65536 && payload_len < 65536, "seed record too large");
    if (payload) flags |= FZ_PAYLOAD;
    uint8_t head[3] = {flags, (uint8_t)len, (uint8_t)(len >> 8)};
    NF_CHECK(fwrite(head, 1, 3, f) == 3 && fwrite(buf, 1, len, f) == len, "write seed");
    if (payload) {
        uint8_t pl[2] = {(uint8_t)payload_len, (uint8_t)(payload_len >> 8)};
        NF_CHECK(fwrite(pl, 1, 2, f) == 2 && fwrite(payload, 1, payload_len, f) == payload_len,
                 "write seed");
    }
    free(buf);
}

void *fz_context(void)
{
    void *ctx = zmq_ctx_new();
    NF_CHECK(ctx && zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, 65536) == 0, "zmq context");
    return ctx;
}

void fz_make_pack(const char *dir)
{
    char src[1024], path[1200], err[256];
    snprintf(src, sizeof src, "%s-src", dir);
    for (int i = 0; i < 8; i++) {
        snprintf(path, sizeof path, "%s/%s/c%d/%d.jpg", src, i < 5 ? "train" : "val", i % 2, i);
        jf_write_good(path, 24 + 8 * (uint32_t)i, 20 + 4 * (uint32_t)i, (uint32_t)i, (jf_kind_t)(i % 4));
    }
    snprintf(path, sizeof path, "%s/val/c0/bad.jpg", src);
    jf_write_bad(path, JF_BAD_TRUNCATED);
    loader_pack_config_t pc = {.src = src, .out = dir, .threads = 1, .shard_bytes = 4096};
    loader_pack_stats_t st;
    NF_CHECK(loader_pack_write(&pc, &st, err, sizeof err) == 0, "pack %s: %s", dir, err);
}

loader_dataset_t *fz_placeholder_dataset(const char *root, int n_classes, int n_train, int n_valid)
{
    char path[1024];
    for (int split = 0; split < 2; split++)
        for (int c = 0; c < n_classes; c++)
            for (int i = 0; i < (split ? n_valid : n_train); i++) {
                snprintf(path, sizeof path, "%s/%s/c%d", root, split ? "val" : "train", c);
                NF_CHECK(nf_mkdir_p(path) == 0, "mkdir %s", path);
                snprintf(path, sizeof path, "%s/%s/c%d/%d.jpg", root, split ? "val" : "train", c, i);
                NF_CHECK(nf_write_file_atomic(path, "", 0) == 0, "file %s", path);
            }
    char err[256];
    loader_dataset_config_t dc = {.root = root, .mode = LOADER_SPLIT_FOLDERS};
    loader_dataset_t *ds = loader_dataset_new(&dc, err, sizeof err);
    NF_CHECK(ds, "dataset: %s", err);
    return ds;
}

static char s_dir[512];

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    (void)remove(path);  // best effort: a leftover file is harmless
    return 0;
}

static void s_cleanup(void)
{
    if (s_dir[0]) nftw(s_dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fz_tmpdir(const char *name)
{
    if (s_dir[0]) return s_dir;
    const char *base = getenv("TMPDIR");
    snprintf(s_dir, sizeof s_dir, "%s/nffuzz-%s.XXXXXX", base && *base ? base : "/tmp", name);
    NF_CHECK(mkdtemp(s_dir) != NULL, "mkdtemp %s", s_dir);
    NF_CHECK(atexit(s_cleanup) == 0, "atexit");
    return s_dir;
}
