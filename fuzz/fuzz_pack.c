/*
 * fuzz_pack.c: libFuzzer target for the loader's pack index reader
 * (loader/pack.h: a dataset packed into shard files, which a worker may get
 * from another machine). The input is an index file without its trailing
 * crc32, which the harness appends (so the fuzzer explores what comes after
 * the checksum); the shards are a fixed small pack made at start
 * (fz_make_pack). Whatever opens is walked: every item's path, label, split,
 * class and bytes (each sample's own crc32 is checked by the reader).
 */
#include "check.h"
#include "fuzzmsg.h"
#include "log.h"
#include "pack.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// True when the relative path stays inside the pack: not absolute, no ".."
// component ("5..pg" is a file name, not a way out).
static bool s_inside(const char *rel)
{
    if (rel[0] == '/') return false;
    for (const char *c = rel; c; c = strchr(c, '/') ? strchr(c, '/') + 1 : NULL)
        if (c[0] == '.' && c[1] == '.' && (c[2] == '/' || c[2] == 0)) return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[600], idx[700];
    if (!dir[0]) {
        nf_log_init(&(nf_log_config_t){.stage = "fuzz", .level = NF_LOG_ERROR});
        snprintf(dir, sizeof dir, "%s/pack", fz_tmpdir("pack"));
        fz_make_pack(dir);
        snprintf(idx, sizeof idx, "%s/%s", dir, LOADER_PACK_INDEX);
    }
    uint32_t crc = (uint32_t)crc32_z(0L, data, size);
    uint8_t tail[4] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16), (uint8_t)(crc >> 24)};
    FILE *f = fopen(idx, "wb");
    NF_CHECK(f && (size == 0 || fwrite(data, 1, size, f) == size) && fwrite(tail, 1, 4, f) == 4 &&
                 fclose(f) == 0,
             "write %s", idx);
    char err[256] = "";
    loader_pack_t *p = loader_pack_open(dir, err, sizeof err);
    if (!p) {
        NF_CHECK(err[0], "a refusal has a reason");
        return 0;
    }
    uint32_t nc = loader_pack_n_classes(p);
    for (uint32_t i = 0; i < loader_pack_n_items(p); i++) {
        const char *rel = loader_pack_path(p, i);
        int32_t label = loader_pack_label(p, i);
        NF_CHECK(rel && s_inside(rel) && label >= 0 && (uint32_t)label < nc,
                 "an opened pack's item is in range");
        NF_CHECK(loader_pack_class(p, (uint32_t)label) != NULL, "its class");
        const uint8_t *bytes;
        loader_bad_t bad;
        char detail[128];
        long n = loader_pack_read(p, rel, &bytes, &bad, detail, sizeof detail);
        if (n > 0) {
            volatile uint8_t last = bytes[n - 1];
            (void)last;
        }
    }
    loader_pack_close(&p);
    return 0;
}
