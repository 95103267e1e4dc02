/*
 * test_augment_device.c: the augment stage's device output (label gpu;
 * exits 77 without a usable GPU). The same raw batches go through one CUDA
 * augment context twice: augment_batch (downloaded to the host) and
 * augment_batch_device into the slots of a CUDA device ring, published on
 * the augment stream and read back through the ring's consumer view after
 * waiting for its ready event. The bytes must be identical (f32 and bf16,
 * Mixup on, several batches in flight through two slots), and labels,
 * partner labels and weights too. A CPU context refuses device output.
 */
#include "augment.h"
#include "devring.h"
#include "rng.h"
#include "testlib.h"

#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_N 12
#define S_PRESIZE 96
#define S_SIZE 64
#define S_BATCHES 5

#define S_CK(call)                                                                            \
    do {                                                                                      \
        cudaError_t rc_ = (call);                                                             \
        NF_CHECK(rc_ == cudaSuccess, "%s: %s", #call, cudaGetErrorString(rc_));               \
    } while (0)

static void s_run(augment_dtype_t dtype)
{
    augment_config_t cfg;
    augment_config_defaults(&cfg);
    cfg.size = S_SIZE, cfg.presize = S_PRESIZE, cfg.max_batch = S_N;
    cfg.mixup_alpha = 0.4f, cfg.dtype = dtype, cfg.seed = 3, cfg.backend = AUGMENT_BACKEND_CUDA;
    augment_t *aug = augment_new(&cfg);
    NF_CHECK(aug, "CUDA augment context");
    const size_t bytes = augment_out_bytes(aug, S_N);
    devring_config_t rc = {.kind = DEVRING_CUDA, .slots = 2, .slot_bytes = bytes};
    devring_t *ring = devring_new(&rc);
    NF_CHECK(ring, "CUDA ring");
    devring_peer_t *peer = devring_attach_local(ring);
    uint8_t *px = nf_xmalloc((size_t)S_N * S_PRESIZE * S_PRESIZE * 3);
    int32_t labels[S_N];
    uint32_t idx[S_N];
    void *host = nf_xmalloc(bytes), *back = nf_xmalloc(bytes);
    cudaStream_t reader;
    S_CK(cudaStreamCreateWithFlags(&reader, cudaStreamNonBlocking));
    int mismatched = 0;
    for (uint32_t b = 0; b < S_BATCHES; b++) {
        nf_rng_t r = nf_rng_make(9, NF_RNG_STREAM_TEST, b, 0);
        for (size_t i = 0; i < (size_t)S_N * S_PRESIZE * S_PRESIZE * 3; i++)
            px[i] = (uint8_t)nf_rng_below(&r, 256);
        for (int i = 0; i < S_N; i++) labels[i] = (int32_t)nf_rng_below(&r, 10), idx[i] = b * 100 + i;
        augment_raw_t raw = {.pixels = px, .n = S_N, .h = S_PRESIZE, .w = S_PRESIZE,
                             .labels = labels, .indices = idx, .epoch = 1, .seq = b,
                             .mode = AUGMENT_MODE_TRAIN};
        int32_t l1[S_N], p1[S_N], l2[S_N], p2[S_N];
        float w1[S_N], w2[S_N];
        augment_out_t o1 = {.pixels = host, .labels = l1, .partner_labels = p1, .weights = w1};
        T_CHECK(augment_batch(aug, &o1, &raw) == 0, "host batch %u", b);
        const int s = devring_acquire(ring, augment_stream(aug));
        NF_CHECK(s >= 0, "a free slot");
        augment_out_t o2 = {.pixels = devring_slot(ring, s), .labels = l2, .partner_labels = p2,
                            .weights = w2};
        T_CHECK(augment_batch_device(aug, &o2, &raw) == 0, "device batch %u", b);
        devring_publish(ring, s, augment_stream(aug));
        char err[128];
        const int ps = devring_peer_slot(peer, devring_offset(ring, s), bytes, err, sizeof err);
        T_CHECK(ps == s, "announced slot: %s", err);
        S_CK(cudaStreamWaitEvent(reader, (cudaEvent_t)devring_peer_ready(peer, ps), 0));
        S_CK(cudaMemcpyAsync(back, devring_peer_ptr(peer, ps), bytes, cudaMemcpyDeviceToHost,
                             reader));
        S_CK(cudaEventRecord((cudaEvent_t)devring_peer_done(peer, ps), reader));
        devring_peer_release(peer, ps);
        S_CK(cudaStreamSynchronize(reader));
        mismatched += memcmp(host, back, bytes) != 0;
        T_CHECK(memcmp(l1, l2, sizeof l1) == 0 && memcmp(p1, p2, sizeof p1) == 0 &&
                    memcmp(w1, w2, sizeof w1) == 0,
                "batch %u: labels and Mixup arrays", b);
    }
    T_CHECK(mismatched == 0, "%s: %d of %d device batches differ from the host ones",
            dtype == AUGMENT_DTYPE_F32 ? "f32" : "bf16", mismatched, S_BATCHES);
    S_CK(cudaStreamDestroy(reader));
    devring_detach(&peer);
    devring_destroy(&ring);
    augment_destroy(&aug);
    free(px), free(host), free(back);
}

int main(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1)
        t_skip("no usable CUDA device (cudaGetDeviceCount reports %d)", n);
    s_run(AUGMENT_DTYPE_F32);
    s_run(AUGMENT_DTYPE_BF16);
    augment_config_t cfg;
    augment_config_defaults(&cfg);
    cfg.max_batch = 2;
    augment_t *cpu = augment_new(&cfg);
    uint8_t *px = nf_xmalloc(2 * 460 * 460 * 3);
    augment_raw_t raw = {.pixels = px, .n = 2, .h = 460, .w = 460, .mode = AUGMENT_MODE_VALID};
    float out[2];
    augment_out_t o = {.pixels = out};
    T_CHECK(augment_batch_device(cpu, &o, &raw) == -1, "a CPU context refuses device output");
    augment_destroy(&cpu);
    free(px);
    return t_done();
}
