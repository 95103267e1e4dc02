/*
 * test_devring_cuda.c: the device ring's CUDA kind between two processes
 * (label gpu; exits 77 with the reason without a usable GPU): the memory
 * and the per-slot events travel as IPC handles in the descriptor; the
 * producer writes each batch on its stream, publishes (records `ready`) and
 * announces it; the consumer's stream waits for `ready`, copies the slot out
 * and records `done`, the consumer releases at once (before its own copy has
 * finished), and the producer's stream waits for `done` before the next
 * write into that slot. Nobody synchronises with the host inside the loop,
 * so a missing wait shows as wrong bytes in the consumer's copy. Also the
 * in-process view of a CUDA ring (devring_attach_local).
 *
 * The process forks before either side touches CUDA (a CUDA context does
 * not survive fork).
 */
#include "devring.h"
#include "testlib.h"

#include <cuda_runtime.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_SLOTS 4
#define S_BYTES ((size_t)8 << 20)
#define S_BATCHES 64

#define S_CK(call)                                                                            \
    do {                                                                                      \
        cudaError_t rc_ = (call);                                                             \
        NF_CHECK(rc_ == cudaSuccess, "%s: %s", #call, cudaGetErrorString(rc_));               \
    } while (0)

typedef struct {
    uint64_t offset, bytes, seq;
} s_msg_t;

static int s_read_full(int fd, void *buf, size_t n)
{
    char *b = buf;
    while (n) {
        ssize_t r = read(fd, b, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        b += r, n -= (size_t)r;
    }
    return 0;
}

static int s_consumer(int rfd)
{
    uint32_t len;
    uint8_t desc[DEVRING_DESC_MAX];
    if (s_read_full(rfd, &len, 4) != 0 || len > sizeof desc || s_read_full(rfd, desc, len) != 0)
        return 10;
    char err[256];
    devring_peer_t *p = devring_attach(desc, len, err, sizeof err);
    if (!p) {
        fprintf(stderr, "consumer: attach: %s\n", err);
        return 11;
    }
    cudaStream_t st;
    S_CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    uint8_t *host;
    S_CK(cudaMallocHost((void **)&host, S_BYTES));
    int bad = 0;
    for (int k = 0; k < S_BATCHES; k++) {
        s_msg_t m;
        if (s_read_full(rfd, &m, sizeof m) != 0) return 12;
        const int s = devring_peer_slot(p, m.offset, m.bytes, err, sizeof err);
        if (s < 0) {
            fprintf(stderr, "consumer: %s\n", err);
            return 13;
        }
        S_CK(cudaStreamWaitEvent(st, (cudaEvent_t)devring_peer_ready(p, s), 0));
        S_CK(cudaMemcpyAsync(host, devring_peer_ptr(p, s), m.bytes, cudaMemcpyDeviceToHost, st));
        S_CK(cudaEventRecord((cudaEvent_t)devring_peer_done(p, s), st));
        devring_peer_release(p, s);  // before our copy has run: `done` protects it
        S_CK(cudaStreamSynchronize(st));
        for (size_t i = 0; i < m.bytes; i += 4093)
            bad += host[i] != (uint8_t)(m.seq * 7 + 1) ? 1 : 0;
        bad += host[m.bytes - 1] != (uint8_t)(m.seq * 7 + 1);
    }
    if (bad) fprintf(stderr, "consumer: %d wrong bytes\n", bad);
    S_CK(cudaFreeHost(host));
    S_CK(cudaStreamDestroy(st));
    devring_detach(&p);
    return bad ? 14 : 0;
}

static void test_local(void)
{
    devring_config_t cfg = {.kind = DEVRING_CUDA, .slots = 2, .slot_bytes = 1 << 20};
    devring_t *r = devring_new(&cfg);
    T_CHECK(r != NULL, "local CUDA ring");
    if (!r) return;
    devring_peer_t *p = devring_attach_local(r);
    cudaStream_t st;
    S_CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    const int s = devring_acquire(r, st);
    S_CK(cudaMemsetAsync(devring_slot(r, s), 3, 1 << 20, st));
    devring_publish(r, s, st);
    char err[128];
    T_CHECK(devring_peer_slot(p, devring_offset(r, s), 1 << 20, err, sizeof err) == s,
            "local view: %s", err);
    T_CHECK(devring_peer_ready(p, s) && devring_peer_done(p, s), "CUDA events per slot");
    uint8_t b = 0;
    S_CK(cudaStreamWaitEvent(st, (cudaEvent_t)devring_peer_ready(p, s), 0));
    S_CK(cudaMemcpyAsync(&b, (const uint8_t *)devring_peer_ptr(p, s) + 12345, 1,
                         cudaMemcpyDeviceToHost, st));
    S_CK(cudaEventRecord((cudaEvent_t)devring_peer_done(p, s), st));
    devring_peer_release(p, s);
    S_CK(cudaStreamSynchronize(st));
    T_CHECK(b == 3, "local slot content %u", b);
    S_CK(cudaStreamDestroy(st));
    devring_detach(&p);
    devring_destroy(&r);
}

int main(void)
{
    int fds[2];
    NF_CHECK_ERRNO(pipe(fds) == 0, "pipe");
    const pid_t pid = fork();  // before any CUDA call
    NF_CHECK_ERRNO(pid >= 0, "fork");
    if (pid == 0) {
        close(fds[1]);
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) _exit(77);
        _exit(s_consumer(fds[0]));
    }
    close(fds[0]);
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) {
        close(fds[1]);
        waitpid(pid, NULL, 0);
        t_skip("no usable CUDA device (cudaGetDeviceCount reports %d)", n);
    }
    devring_config_t cfg = {.kind = DEVRING_CUDA, .slots = S_SLOTS, .slot_bytes = S_BYTES};
    devring_t *r = devring_new(&cfg);
    NF_CHECK(r, "CUDA ring (see the log line above)");
    size_t len;
    const void *desc = devring_descriptor(r, &len);
    const uint32_t l32 = (uint32_t)len;
    NF_CHECK_ERRNO(write(fds[1], &l32, 4) == 4 && write(fds[1], desc, len) == (ssize_t)len,
                   "write");
    cudaStream_t st;
    S_CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    int waits = 0;
    for (uint64_t seq = 0; seq < S_BATCHES; seq++) {
        int s;
        while ((s = devring_acquire(r, st)) < 0) {
            waits++;
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        const size_t bytes = S_BYTES - seq * 4096;
        S_CK(cudaMemsetAsync(devring_slot(r, s), (int)(uint8_t)(seq * 7 + 1), bytes, st));
        devring_publish(r, s, st);
        s_msg_t m = {.offset = devring_offset(r, s), .bytes = bytes, .seq = seq};
        NF_CHECK_ERRNO(write(fds[1], &m, sizeof m) == (ssize_t)sizeof m, "write");
    }
    close(fds[1]);
    int status = 0;
    NF_CHECK_ERRNO(waitpid(pid, &status, 0) == pid, "waitpid");
    T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "the consumer process read every batch intact over CUDA IPC (status %d)",
            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    printf("CUDA IPC: %d batches of up to %zu MB through %d slots, producer waited %d times\n",
           S_BATCHES, S_BYTES >> 20, S_SLOTS, waits);
    S_CK(cudaStreamSynchronize(st));
    S_CK(cudaStreamDestroy(st));
    devring_destroy(&r);
    test_local();
    return t_done();
}
