/*
 * rng.h: counter-based randomness (Philox4x32-10), identical on CPU and GPU.
 *
 * Every random draw in netteflow is a pure function of
 *     (seed, stream, epoch, index, draw number)
 * so the same seed yields the same crops, augmentations, Mixup partners and
 * shuffles whatever the number of workers, the process that computes them, or
 * the device (the functions compile as __host__ __device__ under nvcc).
 * There is no hidden generator state: an nf_rng_t is a small value the caller
 * owns, initialised for one (stream, epoch, index) and advanced by its draws.
 *
 * Reference: Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"
 * (SC11); constants and test vector from the Random123 distribution.
 */
#ifndef NF_RNG_H
#define NF_RNG_H

#include <stdint.h>

#ifdef __CUDACC__
#define NF_HD __host__ __device__
#else
#define NF_HD
#endif

// Streams keep unrelated uses of one seed independent. Never reuse a value.
typedef enum {
    NF_RNG_STREAM_SHUFFLE = 1,    // per-epoch permutation (index = 0)
    NF_RNG_STREAM_SPLIT = 2,      // valid_pct random split (epoch = 0, index = 0)
    NF_RNG_STREAM_PRESIZE = 3,    // presize crop position, per sample index
    NF_RNG_STREAM_SPARES = 4,     // replacement samples for bad files, per batch
    NF_RNG_STREAM_AUGMENT = 5,    // per-image affine/warp/lighting draws, per sample index
    NF_RNG_STREAM_CROP = 6,       // per-batch RandomResizedCrop box, index = batch seq
    NF_RNG_STREAM_MIXUP = 7,      // Mixup lambdas and permutation, index = batch seq
    NF_RNG_STREAM_INIT = 8,       // weight initialisation, index = parameter tensor
    NF_RNG_STREAM_DROPOUT = 9,    // dropout masks, index = step
    NF_RNG_STREAM_TTA = 10,       // TTA passes: epoch = pass number
    NF_RNG_STREAM_TEST = 99       // tests and benchmarks
} nf_rng_stream_t;

typedef struct {
    uint32_t key[2];  // seed
    uint32_t ctr[4];  // {block, index, epoch, stream}
    uint32_t buf[4];  // current output block
    uint32_t pos;     // next unused word of buf (4 = empty)
} nf_rng_t;

NF_HD static inline uint32_t nf_mulhilo32_(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

// One Philox4x32-10 block: 4 random words from a 128-bit counter and 64-bit key.
NF_HD static inline void nf_philox4x32_10(const uint32_t ctr_in[4], const uint32_t key_in[2],
                                          uint32_t out[4])
{
    uint32_t c0 = ctr_in[0], c1 = ctr_in[1], c2 = ctr_in[2], c3 = ctr_in[3];
    uint32_t k0 = key_in[0], k1 = key_in[1];
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = nf_mulhilo32_(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = nf_mulhilo32_(0xCD9E8D57u, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

// A generator for one (seed, stream, epoch, index).
NF_HD static inline nf_rng_t nf_rng_make(uint64_t seed, uint32_t stream, uint32_t epoch,
                                         uint32_t index)
{
    nf_rng_t r;
    r.key[0] = (uint32_t)seed;
    r.key[1] = (uint32_t)(seed >> 32);
    r.ctr[0] = 0;
    r.ctr[1] = index;
    r.ctr[2] = epoch;
    r.ctr[3] = stream;
    r.buf[0] = r.buf[1] = r.buf[2] = r.buf[3] = 0;
    r.pos = 4;
    return r;
}

NF_HD static inline uint32_t nf_rng_u32(nf_rng_t *r)
{
    if (r->pos >= 4) {
        nf_philox4x32_10(r->ctr, r->key, r->buf);
        r->ctr[0]++;
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

// Uniform float in [0, 1) with 24 random bits.
NF_HD static inline float nf_rng_uniform(nf_rng_t *r)
{
    return (float)(nf_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

// Uniform float in [lo, hi).
NF_HD static inline float nf_rng_range(nf_rng_t *r, float lo, float hi)
{
    return lo + (hi - lo) * nf_rng_uniform(r);
}

// Uniform double in [0, 1) with 53 random bits.
NF_HD static inline double nf_rng_uniform_f64(nf_rng_t *r)
{
    uint64_t a = nf_rng_u32(r) >> 5, b = nf_rng_u32(r) >> 6;
    return ((double)a * 67108864.0 + (double)b) * (1.0 / 9007199254740992.0);
}

// Uniform integer in [0, n) (n > 0), without modulo bias (Lemire's method).
NF_HD static inline uint32_t nf_rng_below(nf_rng_t *r, uint32_t n)
{
    uint64_t m = (uint64_t)nf_rng_u32(r) * n;
    uint32_t lo = (uint32_t)m;
    if (lo < n) {
        uint32_t t = (0u - n) % n;
        while (lo < t) {
            m = (uint64_t)nf_rng_u32(r) * n;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

// Bernoulli(p).
NF_HD static inline int nf_rng_bernoulli(nf_rng_t *r, float p) { return nf_rng_uniform(r) < p; }

#endif
