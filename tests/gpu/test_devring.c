/*
 * test_devring.c: the device ring's protocol on its host kind (label unit;
 * no GPU needed), between two real processes:
 *   - a producer and a forked consumer pass 300 batches through 3 slots; the
 *     consumer checks every byte of every batch (a slot overwritten while the
 *     consumer may still read it shows as a wrong byte), sometimes reads
 *     slowly so that the producer finds every slot taken (backpressure), and
 *     releases out of order (it holds two batches at a time);
 *   - a released or never-published slot is refused, as is an offset that
 *     is not a slot boundary or a batch larger than a slot;
 *   - bad descriptors (size, magic, version, kind, geometry, shared-memory
 *     name, a ring that no longer exists, this process's own ring) are
 *     refused with a reason, never an abort;
 *   - the in-process view (devring_attach_local), availability counts,
 *     reclaim, and that destroy removes the shared memory.
 * The CUDA kind (IPC memory and events) is test_devring_cuda (label gpu).
 */
#include "devring.h"
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_SLOTS 3
#define S_SLOT_BYTES 5000
#define S_BATCHES 300

typedef struct {
    uint64_t offset;
    uint64_t bytes;
    uint64_t seq;  // UINT64_MAX ends the stream
} s_msg_t;

static void s_sleep_us(long us)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = us * 1000};
    nanosleep(&ts, NULL);
}

static size_t s_bytes_of(uint64_t seq) { return 100 + (size_t)(seq * 37 % (S_SLOT_BYTES - 100)); }

static void s_fill(uint8_t *p, uint64_t seq, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++) p[i] = (uint8_t)(seq * 131 + i);
}

static int s_check_bytes(const uint8_t *p, uint64_t seq, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        if (p[i] != (uint8_t)(seq * 131 + i)) return -1;
    return 0;
}

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

// The consumer process: exit code 0 when every batch arrived intact.
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
    if (!devring_peer_same(p, desc, len) || devring_peer_kind(p) != DEVRING_HOST) return 12;
    int held[2] = {-1, -1};
    uint64_t held_seq[2] = {0, 0};
    size_t held_bytes[2] = {0, 0};
    uint64_t expect = 0;
    for (;;) {
        s_msg_t m;
        if (s_read_full(rfd, &m, sizeof m) != 0) return 13;
        if (m.seq == UINT64_MAX) break;
        if (m.seq != expect++) return 14;
        // a bad offset and an oversized batch are refused
        if (devring_peer_slot(p, m.offset + 1, m.bytes, err, sizeof err) != -1) return 15;
        if (devring_peer_slot(p, m.offset, S_SLOT_BYTES + 1, err, sizeof err) != -1) return 16;
        const int s = devring_peer_slot(p, m.offset, m.bytes, err, sizeof err);
        if (s < 0) {
            fprintf(stderr, "consumer: batch %llu: %s\n", (unsigned long long)m.seq, err);
            return 17;
        }
        if (devring_peer_ready(p, s) || devring_peer_done(p, s)) return 18;  // host ring
        // hold two batches, release the older: out-of-order releases
        const int k = (int)(m.seq % 2);
        if (held[k] >= 0) {
            if (s_check_bytes(devring_peer_ptr(p, held[k]), held_seq[k], held_bytes[k]) != 0) {
                fprintf(stderr, "consumer: batch %llu was overwritten\n",
                        (unsigned long long)held_seq[k]);
                return 19;
            }
            devring_peer_release(p, held[k]);
        }
        held[k] = s, held_seq[k] = m.seq, held_bytes[k] = m.bytes;
        if (m.seq % 10 == 0) s_sleep_us(3000);  // a slow consumer now and then
    }
    for (int k = 0; k < 2; k++) {
        if (held[k] < 0) continue;
        if (s_check_bytes(devring_peer_ptr(p, held[k]), held_seq[k], held_bytes[k]) != 0) return 21;
        devring_peer_release(p, held[k]);
        // once released (and the producer done), the slot is no longer readable
        // (5120: the slot stride, 5000 rounded up to 256)
        char e2[128];
        if (devring_peer_slot(p, (uint64_t)held[k] * 5120, held_bytes[k], e2, sizeof e2) != -1)
            return 22;
    }
    if (expect != S_BATCHES) return 23;
    devring_detach(&p);
    return p == NULL ? 0 : 24;
}

static void test_two_processes(void)
{
    devring_config_t cfg = {.kind = DEVRING_HOST, .slots = S_SLOTS, .slot_bytes = S_SLOT_BYTES};
    devring_t *r = devring_new(&cfg);
    T_CHECK(r != NULL, "host ring");
    if (!r) return;
    int fds[2];
    NF_CHECK_ERRNO(pipe(fds) == 0, "pipe");
    pid_t pid = fork();
    NF_CHECK_ERRNO(pid >= 0, "fork");
    if (pid == 0) {
        close(fds[1]);
        _exit(s_consumer(fds[0]));
    }
    close(fds[0]);
    size_t len;
    const void *desc = devring_descriptor(r, &len);
    uint32_t l32 = (uint32_t)len;
    NF_CHECK_ERRNO(write(fds[1], &l32, 4) == 4 && write(fds[1], desc, len) == (ssize_t)len,
                   "write");
    int full = 0;
    for (uint64_t seq = 0; seq < S_BATCHES; seq++) {
        int s;
        while ((s = devring_acquire(r, NULL)) < 0) {
            full++;
            s_sleep_us(200);
        }
        const size_t bytes = s_bytes_of(seq);
        s_fill(devring_slot(r, s), seq, bytes);
        devring_publish(r, s, NULL);
        s_msg_t m = {.offset = devring_offset(r, s), .bytes = bytes, .seq = seq};
        NF_CHECK_ERRNO(write(fds[1], &m, sizeof m) == (ssize_t)sizeof m, "write");
    }
    s_msg_t end = {.seq = UINT64_MAX};
    NF_CHECK_ERRNO(write(fds[1], &end, sizeof end) == (ssize_t)sizeof end, "write");
    close(fds[1]);
    int status = 0;
    NF_CHECK_ERRNO(waitpid(pid, &status, 0) == pid, "waitpid");
    T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "the consumer saw every batch intact (exit status %d)", WEXITSTATUS(status));
    T_CHECK(full > 0, "the producer had to wait for slots (backpressure seen %d times)", full);
    T_CHECK(devring_available(r) == S_SLOTS, "every slot back: %d", devring_available(r));
    printf("two processes: %d batches through %d slots, producer waited %d times\n", S_BATCHES,
           S_SLOTS, full);
    devring_destroy(&r);
    T_CHECK(r == NULL, "destroy nulls");
}

// A descriptor with one field changed must be refused with a reason.
static void s_expect_refused(const uint8_t *desc, size_t len, const char *what)
{
    char err[256] = "";
    devring_peer_t *p = devring_attach(desc, len, err, sizeof err);
    T_CHECK(p == NULL && err[0], "%s: refused (%s)", what, err);
    if (p) devring_detach(&p);
}

static void test_bad_descriptors(void)
{
    devring_config_t bad = {.kind = DEVRING_HOST, .slots = 0, .slot_bytes = 10};
    T_CHECK(devring_new(&bad) == NULL, "0 slots refused");
    bad.slots = DEVRING_MAX_SLOTS + 1;
    T_CHECK(devring_new(&bad) == NULL, "too many slots refused");
    devring_config_t cfg = {.kind = DEVRING_HOST, .slots = 2, .slot_bytes = 1000};
    devring_t *r = devring_new(&cfg);
    NF_CHECK(r, "ring");
    size_t len;
    const uint8_t *d0 = devring_descriptor(r, &len);
    uint8_t *d = malloc(len);
    // this process's own ring must be attached locally
    s_expect_refused(d0, len, "own process");
    // from a child: every corruption is refused, the intact descriptor is not
    pid_t pid = fork();
    NF_CHECK_ERRNO(pid >= 0, "fork");
    if (pid == 0) {
        int fails = 0;
        const struct {
            size_t at;
            uint8_t v;
            const char *what;
        } edits[] = {{0, 'X', "magic"},          {8, 9, "version"},         {12, 7, "kind"},
                     {16, 0, "slots"},           {16, 200, "slots"},        {24, 0, "slot bytes"},
                     {48, 'x', "shm name prefix"}, {60, '/', "shm name with a slash"},
                     {0, 0, "a ring that does not exist"}};
        for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
            memcpy(d, d0, len);
            if (edits[i].at == 24) {
                memset(d + 24, 0, 8);
            } else if (edits[i].v == 0 && edits[i].at == 0) {
                char *name = (char *)d + 48;  // the last hex digit of the name
                char *last = name + strlen(name) - 1;
                *last = *last == '0' ? '1' : '0';
            } else {
                d[edits[i].at] = edits[i].v;
            }
            const int before = t_failures();
            s_expect_refused(d, len, edits[i].what);
            fails += t_failures() != before;
        }
        const int before = t_failures();
        s_expect_refused(d0, len - 1, "truncated");
        s_expect_refused(NULL, 0, "empty");
        fails += t_failures() != before;
        char err[256];
        devring_peer_t *p = devring_attach(d0, len, err, sizeof err);
        if (!p) {
            fprintf(stderr, "intact descriptor refused: %s\n", err);
            fails++;
        }
        devring_detach(&p);
        _exit(fails ? 1 : 0);
    }
    int status = 0;
    NF_CHECK_ERRNO(waitpid(pid, &status, 0) == pid, "waitpid");
    T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "bad descriptors refused, the intact one accepted (child status %d)", status);
    // a destroyed ring cannot be attached and its shared memory is gone
    memcpy(d, d0, len);
    char name[64];
    memcpy(name, d + 48, sizeof name);
    devring_destroy(&r);
    const int fd = shm_open(name, O_RDONLY, 0);
    T_CHECK(fd < 0 && errno == ENOENT, "destroy unlinks %s", name);
    if (fd >= 0) close(fd);
    pid = fork();
    NF_CHECK_ERRNO(pid >= 0, "fork");
    if (pid == 0) {
        char err[256];
        devring_peer_t *p = devring_attach(d, len, err, sizeof err);
        _exit(p == NULL && strstr(err, "shared memory") ? 0 : 1);
    }
    NF_CHECK_ERRNO(waitpid(pid, &status, 0) == pid, "waitpid");
    T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a gone ring is refused");
    free(d);
}

static void test_local(void)
{
    devring_config_t cfg = {.kind = DEVRING_HOST, .slots = 2, .slot_bytes = 64};
    devring_t *r = devring_new(&cfg);
    NF_CHECK(r, "ring");
    devring_peer_t *p = devring_attach_local(r);
    char err[128];
    T_CHECK(devring_available(r) == 2, "two free");
    const int a = devring_acquire(r, NULL), b = devring_acquire(r, NULL);
    T_CHECK(a >= 0 && b >= 0 && a != b && devring_acquire(r, NULL) == -1, "two slots, then none");
    T_CHECK(devring_peer_slot(p, devring_offset(r, a), 64, err, sizeof err) == -1,
            "a slot being written is not readable: %s", err);
    memset(devring_slot(r, a), 7, 64);
    devring_publish(r, a, NULL);
    const int s = devring_peer_slot(p, devring_offset(r, a), 64, err, sizeof err);
    T_CHECK(s == a && ((const uint8_t *)devring_peer_ptr(p, s))[63] == 7, "local view reads it");
    devring_peer_release(p, s);
    T_CHECK(devring_available(r) == 1 && devring_acquire(r, NULL) == a, "released slot reused");
    devring_reclaim(r);
    T_CHECK(devring_available(r) == 2, "reclaim frees everything");
    devring_detach(&p);
    devring_destroy(&r);
}

int main(void)
{
    test_local();
    test_bad_descriptors();
    test_two_processes();
    return t_done();
}
