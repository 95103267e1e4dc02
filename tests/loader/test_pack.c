/*
 * test_pack.c: `loader pack` and reading from packs (label integration).
 *   1. A generated dataset with every kind of bad file, packed unchanged:
 *      the pack's dataset index is the folder's (paths, labels, splits,
 *      classes), every sample's bytes are the file's, and a coordinator + 2
 *      worker processes deliver byte-identical batches (train with random
 *      crops and spares, valid with the bad files dropped and counted by
 *      reason) from the folder and from the pack.
 *   2. Packed pre-sized (shorter side 40): images larger than that are
 *      re-encoded with the shorter side at 40 and the aspect kept (gray ones
 *      stay gray), smaller ones and undecodable files are stored unchanged;
 *      an epoch from it delivers every good sample exactly once.
 *   3. Damage: a changed index byte (checksum), a hostile path with a valid
 *      checksum, a shard of the wrong size are refused at open with a
 *      reason; a changed sample byte makes that sample a bad file of reason
 *      `io` (`loader verify` reports it), the others still read.
 *   4. Refusals: an output folder that is not empty, a source that is a pack.
 *   5. With NF_DATA_DIR: Imagenette's validation split packed at 64 px
 *      (through `loader pack`), `loader verify` finds no bad file in it.
 */
#include "fsutil.h"
#include "harness.h"
#include "jpegfix.h"
#include "pack.h"
#include "testlib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

static loader_consumer_t *s_consumer(const char *coord, const char *name)
{
    char sink[512];
    snprintf(sink, sizeof sink, "ipc://%s/%s.ipc", t_tmpdir(), name);
    loader_consumer_config_t cc = {.coordinator = coord, .sink = sink, .heartbeat_ms = 100,
                                   .timeout_ms = 20000};
    loader_consumer_t *con = loader_consumer_new(&cc);
    NF_CHECK(con != NULL, "consumer");
    return con;
}

// A train epoch (random crops, spares) and a valid epoch over root.
static void s_epochs(const char *root, const char *name, h_epoch_t *tr, h_epoch_t *va)
{
    h_coord_t h;
    h_coord_start(&h, name, root, &(loader_coordinator_config_t){.seed = 5});
    pid_t w[2] = {h_worker(h.endpoint), h_worker(h.endpoint)};
    char sink[64];
    snprintf(sink, sizeof sink, "%s-sink", name);
    loader_consumer_t *con = s_consumer(h.endpoint, sink);
    const uint32_t n_items = loader_dataset_n_items(h.ds);
    loader_stream_request_t r = {.stream = 1, .split = LOADER_TRAIN, .batch_size = 8,
                                 .presize = 32, .shuffle = true, .drop_last = true,
                                 .random_crop = true, .credits = 4};
    h_consume(con, &r, n_items, tr, NULL, NULL);
    r = (loader_stream_request_t){.stream = 2, .split = LOADER_VALID, .batch_size = 8,
                                  .presize = 32, .credits = 4};
    h_consume(con, &r, n_items, va, NULL, NULL);
    loader_consumer_destroy(&con);
    h_worker_stop(w[0]);
    h_worker_stop(w[1]);
    loader_coordinator_stats_t st;
    h_coord_stop(&h, &st);
}

static void s_same_epochs(const h_epoch_t *a, const h_epoch_t *b, const char *what)
{
    bool same = a->ok && b->ok && a->n_batches == b->n_batches && a->samples == b->samples &&
                a->stats.bad_files == b->stats.bad_files &&
                memcmp(a->stats.bad_by_reason, b->stats.bad_by_reason,
                       sizeof a->stats.bad_by_reason) == 0;
    for (uint32_t s = 0; same && s < a->n_batches; s++)
        same = a->digest[s] == b->digest[s] && a->sizes[s] == b->sizes[s];
    T_CHECK(same, "%s: folder and pack give byte-identical batches (%u/%u batches, %u/%u bad)",
            what, a->n_batches, b->n_batches, a->stats.bad_files, b->stats.bad_files);
}

static void s_pack(const char *src, const char *out, uint32_t size, loader_pack_stats_t *st)
{
    loader_pack_config_t pc = {.src = src, .out = out, .size = size, .quality = 85,
                               .shard_bytes = 20000, .threads = 2};
    char err[512];
    T_CHECK(loader_pack_write(&pc, st, err, sizeof err) == 0, "pack %s: %s", out, err);
}

static void test_unchanged(const char *root, const char *packdir)
{
    loader_pack_stats_t st;
    s_pack(root, packdir, 0, &st);
    T_CHECK(st.shards > 2 && st.reencoded == 0 && st.copied == st.items && st.bytes_in == st.bytes_out,
            "unchanged pack: %u items in %u shards", st.items, st.shards);
    char err[256];
    loader_dataset_t *a = loader_dataset_new(&(loader_dataset_config_t){.root = root}, err, sizeof err);
    loader_dataset_t *b = loader_dataset_new(&(loader_dataset_config_t){.root = packdir}, err, sizeof err);
    NF_CHECK(a && b, "datasets: %s", err);
    bool same = loader_dataset_n_items(a) == loader_dataset_n_items(b) &&
                loader_dataset_n_classes(a) == loader_dataset_n_classes(b);
    for (uint32_t c = 0; same && c < loader_dataset_n_classes(a); c++)
        same = !strcmp(loader_dataset_class_name(a, c), loader_dataset_class_name(b, c));
    loader_pack_t *p = loader_pack_open(packdir, err, sizeof err);
    NF_CHECK(p, "open: %s", err);
    uint32_t bytes_same = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (uint32_t i = 0; same && i < loader_dataset_n_items(a); i++) {
        const loader_item_t *x = loader_dataset_item(a, i), *y = loader_dataset_item(b, i);
        same = !strcmp(x->path, y->path) && x->label == y->label && x->split == y->split &&
               !strcmp(loader_pack_path(p, i), x->path) && loader_pack_label(p, i) == x->label &&
               loader_pack_split(p, i) == x->split;
        const uint8_t *d1, *d2;
        loader_bad_t bad;
        char detail[128];
        const long l2 = loader_pack_read(p, x->path, &d2, &bad, detail, sizeof detail);
        const long l1 = loader_sample_read(NULL, root, x->path, &buf, &cap, &d1, &bad, detail,
                                           sizeof detail);
        bytes_same += l1 >= 0 && l1 == l2 && memcmp(d1, d2, (size_t)l1) == 0;
    }
    T_CHECK(same, "the pack's dataset index is the folder's");
    T_CHECK(bytes_same == loader_dataset_n_items(a), "%u of %u samples byte-identical", bytes_same,
            loader_dataset_n_items(a));
    const uint8_t *d;
    loader_bad_t bad;
    char detail[128];
    T_CHECK(loader_pack_read(p, "train/c9/none.jpg", &d, &bad, detail, sizeof detail) == -1 &&
                bad == LOADER_BAD_IO,
            "a sample the pack lacks: %s", detail);
    free(buf);
    loader_pack_close(&p);
    loader_dataset_destroy(&a);
    loader_dataset_destroy(&b);

    h_epoch_t ft, fv, pt, pv;
    s_epochs(root, "fold", &ft, &fv);
    s_epochs(packdir, "pack", &pt, &pv);
    s_same_epochs(&ft, &pt, "train epoch");
    s_same_epochs(&fv, &pv, "valid epoch");
    T_CHECK(fv.stats.bad_files > 0 && ft.n_batches > 0, "bad files were met (%u)", fv.stats.bad_files);
    h_epoch_free(&ft), h_epoch_free(&fv), h_epoch_free(&pt), h_epoch_free(&pv);
}

static void test_resized(const char *root, const char *packdir)
{
    loader_pack_stats_t st;
    s_pack(root, packdir, 40, &st);
    T_CHECK(st.reencoded > 0 && st.copied > 0 && st.bytes_out < st.bytes_in,
            "pre-sized pack: %u re-encoded, %u stored unchanged, %llu -> %llu bytes", st.reencoded,
            st.copied, (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out);
    char err[256];
    loader_pack_t *p = loader_pack_open(packdir, err, sizeof err);
    NF_CHECK(p, "open: %s", err);
    T_CHECK(loader_pack_image_size(p) == 40, "size recorded");
    tjhandle tj = tjInitDecompress();
    uint8_t *buf = NULL;
    size_t cap = 0;
    uint32_t checked = 0, bad_geometry = 0, gray_kept = 0, gray_src = 0;
    for (uint32_t i = 0; i < loader_pack_n_items(p); i++) {
        const char *rel = loader_pack_path(p, i);
        // bad files are stored unchanged (checked by the epoch below); skipping
        // them also keeps the TurboJPEG handle usable (2.1 breaks it on failure)
        if (strncmp(strrchr(rel, '/') + 1, "bad", 3) == 0) continue;
        const uint8_t *src, *dst;
        loader_bad_t bad;
        char detail[128];
        const long ls = loader_sample_read(NULL, root, rel, &buf, &cap, &src, &bad, detail, sizeof detail);
        int sw, sh, ss, scs, dw, dh, ds, dcs;
        if (ls <= 0 || tjDecompressHeader3(tj, src, (unsigned long)ls, &sw, &sh, &ss, &scs) != 0)
            continue;
        const long ld = loader_pack_read(p, rel, &dst, &bad, detail, sizeof detail);
        if (ld <= 0 || tjDecompressHeader3(tj, dst, (unsigned long)ld, &dw, &dh, &ds, &dcs) != 0)
            continue;
        const int shorter = sw < sh ? sw : sh;
        if (shorter <= 40) {
            bad_geometry += dw != sw || dh != sh;
        } else {
            const int dshort = dw < dh ? dw : dh;
            const double ar_s = (double)sw / sh, ar_d = (double)dw / dh;
            bad_geometry += dshort != 40 || ar_d / ar_s > 1.05 || ar_d / ar_s < 0.95;
            if (scs == TJCS_GRAY) gray_src++, gray_kept += dcs == TJCS_GRAY;
        }
        checked++;
    }
    T_CHECK(checked == 54 && bad_geometry == 0, "%u images checked, %u of the wrong size", checked,
            bad_geometry);
    T_CHECK(gray_src > 0 && gray_kept == gray_src, "%u of %u gray images stay gray", gray_kept,
            gray_src);
    tjDestroy(tj);
    free(buf);
    loader_pack_close(&p);
    h_epoch_t tr, va;
    s_epochs(packdir, "small", &tr, &va);
    uint32_t twice = 0;
    for (uint32_t i = 0; i < va.n_items; i++) twice += va.seen[i] > 1;
    T_CHECK(tr.ok && va.ok && va.samples > 0 && twice == 0 && va.stats.bad_files > 0,
            "epochs from the pre-sized pack: %u valid samples, %u bad files", va.samples,
            va.stats.bad_files);
    h_epoch_free(&tr), h_epoch_free(&va);
}

static void s_copy_dir(const char *from, const char *to)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, from, to);
    NF_CHECK(system(cmd) == 0, "%s", cmd);
}

static void s_flip(const char *path, long at)
{
    FILE *f = fopen(path, "r+b");
    NF_CHECK_ERRNO(f != NULL, path);
    if (at < 0) {
        fseek(f, 0, SEEK_END);
        at += ftell(f);
    }
    fseek(f, at, SEEK_SET);
    const int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

// A one-item index holding `path` with a valid checksum.
static void s_write_index(const char *dir, const char *path)
{
    uint8_t b[512];
    size_t n = 0;
#define PUT(p, k) (memcpy(b + n, (p), (k)), n += (k))
    const uint32_t v = 1, size = 0, q = 90, nc = 1, ni = 1, ns = 1, shard = 0, bytes = 4;
    const int32_t label = 0;
    const uint64_t sb = 4, off = 0;
    const uint16_t cl = 1, pl = (uint16_t)strlen(path);
    const uint8_t split = 0;
    PUT("NFPACK01", 8), PUT(&v, 4), PUT(&size, 4), PUT(&q, 4), PUT(&nc, 4), PUT(&ni, 4), PUT(&ns, 4);
    PUT(&cl, 2), PUT("c", 1), PUT(&sb, 8);
    PUT(&pl, 2), PUT(path, pl), PUT(&label, 4), PUT(&split, 1), PUT(&shard, 4), PUT(&off, 8);
    const uint32_t crc_item = (uint32_t)crc32(0L, (const Bytef *)"abcd", 4);
    PUT(&bytes, 4), PUT(&crc_item, 4);
    const uint32_t crc = (uint32_t)crc32(0L, b, (uInt)n);
    PUT(&crc, 4);
#undef PUT
    char p[1024];
    snprintf(p, sizeof p, "%s/shard-00000.nfs", dir);
    NF_CHECK(nf_mkdir_p(dir) == 0 && nf_write_file_atomic(p, "abcd", 4) == 0, "shard");
    snprintf(p, sizeof p, "%s/%s", dir, LOADER_PACK_INDEX);
    NF_CHECK(nf_write_file_atomic(p, b, n) == 0, "index");
}

static void s_expect_open_fails(const char *dir, const char *what, const char *why)
{
    char err[512] = "";
    loader_pack_t *p = loader_pack_open(dir, err, sizeof err);
    T_CHECK(p == NULL && strstr(err, why), "%s refused: %s", what, err);
    loader_pack_close(&p);
}

static int s_run(const char *cmd)
{
    const int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_damage(const char *packdir)
{
    char d[1024], p[1200], cmd[4096], bin[512];
    snprintf(d, sizeof d, "%s/damaged", t_tmpdir());
    s_copy_dir(packdir, d);
    snprintf(p, sizeof p, "%s/%s", d, LOADER_PACK_INDEX);
    s_flip(p, 40);
    s_expect_open_fails(d, "a changed index byte", "checksum");

    s_copy_dir(packdir, d);
    snprintf(p, sizeof p, "%s/shard-00001.nfs", d);
    NF_CHECK_ERRNO(truncate(p, 100) == 0, "truncate");
    s_expect_open_fails(d, "a truncated shard", "wrong size");

    snprintf(d, sizeof d, "%s/hostile", t_tmpdir());
    s_write_index(d, "train/../../etc/passwd");
    s_expect_open_fails(d, "a path leaving the pack", "leaves the pack");
    snprintf(d, sizeof d, "%s/fine", t_tmpdir());
    s_write_index(d, "train/c/x.jpg");
    char err[256];
    loader_pack_t *ok = loader_pack_open(d, err, sizeof err);
    T_CHECK(ok != NULL, "the same index with a tidy path opens: %s", ok ? "" : err);
    loader_pack_close(&ok);

    // a damaged sample: its read fails with `io`, the pack still opens
    snprintf(d, sizeof d, "%s/damaged", t_tmpdir());
    s_copy_dir(packdir, d);
    snprintf(p, sizeof p, "%s/shard-00000.nfs", d);
    s_flip(p, 300);
    loader_pack_t *pk = loader_pack_open(d, err, sizeof err);
    NF_CHECK(pk, "open: %s", err);
    uint32_t io = 0, fine = 0;
    for (uint32_t i = 0; i < loader_pack_n_items(pk); i++) {
        const uint8_t *data;
        loader_bad_t bad;
        char detail[128];
        if (loader_pack_read(pk, loader_pack_path(pk, i), &data, &bad, detail, sizeof detail) < 0)
            io += bad == LOADER_BAD_IO && strstr(detail, "checksum") != NULL;
        else
            fine++;
    }
    T_CHECK(io == 1 && fine == loader_pack_n_items(pk) - 1, "one damaged sample (%u), %u fine", io,
            fine);
    loader_pack_close(&pk);
    snprintf(cmd, sizeof cmd, "%s verify --data '%s' --quiet > %s/verify.out 2>&1",
             t_bin("loader", bin, sizeof bin), d, t_tmpdir());
    T_CHECK(s_run(cmd) == 1, "loader verify reports the damaged pack's bad files");
    snprintf(p, sizeof p, "%s/verify.out", t_tmpdir());
    size_t len;
    char *out = nf_read_file(p, 1 << 20, &len);
    T_CHECK(out && strstr(out, "io 1"), "verify counts one io error: %s", out ? out : "(none)");
    free(out);
}

static void test_refusals(const char *root, const char *packdir)
{
    loader_pack_stats_t st;
    char err[512];
    loader_pack_config_t pc = {.src = root, .out = packdir};
    T_CHECK(loader_pack_write(&pc, &st, err, sizeof err) == -1 && strstr(err, "not empty"),
            "an output folder that is not empty: %s", err);
    char out[1024];
    snprintf(out, sizeof out, "%s/again", t_tmpdir());
    pc = (loader_pack_config_t){.src = packdir, .out = out};
    T_CHECK(loader_pack_write(&pc, &st, err, sizeof err) == -1 && strstr(err, "already a pack"),
            "a pack as the source: %s", err);
    pc = (loader_pack_config_t){.src = "/nonexistent/data", .out = out};
    T_CHECK(loader_pack_write(&pc, &st, err, sizeof err) == -1, "a missing source: %s", err);
}

static void test_imagenette(void)
{
    const char *data = getenv("NF_DATA_DIR");
    struct stat sb;
    if (!data || stat(data, &sb) != 0) {
        printf("skipping the Imagenette part: NF_DATA_DIR not set or missing\n");
        return;
    }
    // the validation split only (3,925 files), through the command line
    char src[1024], out[1024], cmd[4096], bin[512];
    snprintf(src, sizeof src, "%s/inet", t_tmpdir());
    snprintf(out, sizeof out, "%s/inet-pack", t_tmpdir());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && ln -s '%s/val' '%s/val' && ln -s '%s/val' '%s/train'",
             src, data, src, data, src);
    NF_CHECK(system(cmd) == 0, "%s", cmd);
    t_bin("loader", bin, sizeof bin);
    snprintf(cmd, sizeof cmd, "%s pack --data '%s' --out '%s' --size 64 --quality 80 > %s/pack.json",
             bin, src, out, t_tmpdir());
    T_CHECK(s_run(cmd) == 0, "loader pack on Imagenette's validation images");
    snprintf(cmd, sizeof cmd, "%s verify --data '%s' --quiet", bin, out);
    T_CHECK(s_run(cmd) == 0, "loader verify: no bad file in the pack");
}

int main(void)
{
    const char *root = h_make_dataset("src", 3, 12, 6, true, true);
    char packdir[1024], small[1024];
    snprintf(packdir, sizeof packdir, "%s/pack", t_tmpdir());
    snprintf(small, sizeof small, "%s/pack40", t_tmpdir());
    test_unchanged(root, packdir);
    test_resized(root, small);
    test_damage(packdir);
    test_refusals(root, packdir);
    test_imagenette();
    return t_done();
}
