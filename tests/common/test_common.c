/*
 * test_common.c: the common library: Philox against its published test
 * vectors, RNG determinism and distribution, fastai's time format, atomic
 * file writes.
 */
#include "fsutil.h"
#include "rng.h"
#include "testlib.h"
#include "timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void test_philox_vectors(void)
{
    // Random123 kat_vectors: philox4x32 10 rounds.
    uint32_t out[4];
    const uint32_t c0[4] = {0, 0, 0, 0}, k0[2] = {0, 0};
    nf_philox4x32_10(c0, k0, out);
    T_CHECK(out[0] == 0x6627e8d5u && out[1] == 0xe169c58du && out[2] == 0xbc57ac4cu &&
                out[3] == 0x9b00dbd8u,
            "zero vector: %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);
    const uint32_t c1[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    const uint32_t k1[2] = {0xffffffffu, 0xffffffffu};
    nf_philox4x32_10(c1, k1, out);
    T_CHECK(out[0] == 0x408f276du && out[1] == 0x41c83b0eu && out[2] == 0xa20bc7c6u &&
                out[3] == 0x6d5451fdu,
            "ones vector: %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);
    const uint32_t c2[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
    const uint32_t k2[2] = {0xa4093822u, 0x299f31d0u};
    nf_philox4x32_10(c2, k2, out);
    T_CHECK(out[0] == 0xd16cfe09u && out[1] == 0x94fdccebu && out[2] == 0x5001e420u &&
                out[3] == 0x24126ea1u,
            "pi vector: %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);
}

static void test_rng_streams(void)
{
    nf_rng_t a = nf_rng_make(42, NF_RNG_STREAM_TEST, 3, 7);
    nf_rng_t b = nf_rng_make(42, NF_RNG_STREAM_TEST, 3, 7);
    nf_rng_t c = nf_rng_make(42, NF_RNG_STREAM_TEST, 3, 8);
    int same = 1, differ = 0;
    for (int i = 0; i < 100; i++) {
        uint32_t x = nf_rng_u32(&a), y = nf_rng_u32(&b), z = nf_rng_u32(&c);
        same &= x == y;
        differ += x != z;
    }
    T_CHECK(same, "same (seed, stream, epoch, index) gives the same sequence");
    T_CHECK(differ > 95, "a different index gives a different sequence (%d/100 differ)", differ);

    // uniform: mean and range; below: unbiased counts
    nf_rng_t r = nf_rng_make(1, NF_RNG_STREAM_TEST, 0, 0);
    double sum = 0;
    float lo = 1, hi = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        float u = nf_rng_uniform(&r);
        sum += u;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    T_NEAR(sum / n, 0.5, 0.005);
    T_CHECK(lo >= 0.0f && hi < 1.0f, "uniform in [0,1): [%g, %g]", lo, hi);
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) counts[nf_rng_below(&r, 7)]++;
    for (int k = 0; k < 7; k++) T_NEAR(counts[k], 10000, 500);
    double d = nf_rng_uniform_f64(&r);
    T_CHECK(d >= 0 && d < 1, "f64 uniform in range: %g", d);
}

static void test_format_time(void)
{
    char buf[16];
    T_CHECK(!strcmp(nf_format_time(63.9, buf), "01:03"), "63.9 s -> %s", buf);
    T_CHECK(!strcmp(nf_format_time(0.4, buf), "00:00"), "0.4 s -> %s", buf);
    T_CHECK(!strcmp(nf_format_time(3725, buf), "1:02:05"), "3725 s -> %s", buf);
}

static void test_atomic_file(void)
{
    char path[1024], dir[512];
    snprintf(dir, sizeof dir, "%s/a/b/c", t_tmpdir());
    T_CHECK(nf_mkdir_p(dir) == 0 && nf_is_dir(dir), "mkdir -p %s", dir);
    snprintf(path, sizeof path, "%s/f.txt", dir);
    T_CHECK(nf_write_file_atomic(path, "hello", 5) == 0, "write");
    size_t len = 0;
    char *got = nf_read_file(path, 1 << 20, &len);
    T_CHECK(got && len == 5 && !strcmp(got, "hello"), "read back");
    free(got);
    // an aborted write leaves the old content and no temporary file behind
    nf_afile_t *f = nf_afile_open(path);
    T_CHECK(f != NULL, "open");
    fputs("partial", nf_afile_stream(f));
    nf_afile_abort(&f);
    T_CHECK(f == NULL, "abort nulls the handle");
    got = nf_read_file(path, 1 << 20, &len);
    T_CHECK(got && !strcmp(got, "hello"), "old content kept after abort");
    free(got);
    T_CHECK(nf_read_file(path, 2, &len) == NULL, "max_len enforced");
    // a write into a missing directory fails cleanly
    char bad[600];
    snprintf(bad, sizeof bad, "%s/missing/f.txt", t_tmpdir());
    T_CHECK(nf_write_file_atomic(bad, "x", 1) == -1, "write into a missing dir fails");
}

int main(void)
{
    test_philox_vectors();
    test_rng_streams();
    test_format_time();
    test_atomic_file();
    return t_done();
}
