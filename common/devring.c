/*
 * devring.c: see devring.h. The protocol (slot states in a shared control
 * block, moved with C11 atomics, which are address-free and so work between
 * processes), the POSIX shared memory, the descriptor and its validation,
 * and the host kind; the CUDA kind's device memory and events are in
 * devring_cuda.c.
 */
#include "devring.h"

#include "check.h"
#include "devring_cuda.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_MAGIC "NFRING01"
#define S_VERSION 1u
#define S_CTL_BYTES 4096           // the control block's page; host slots follow it
#define S_SLOT_ALIGN 256
#define S_MAX_SLOT_BYTES ((uint64_t)1 << 40)
#define S_SHM_PREFIX "/nf-devring-"

enum { S_FREE = 0, S_WRITING = 1, S_PUBLISHED = 2, S_RELEASED = 3 };

// The shared control block (first page of the shared memory).
typedef struct {
    uint64_t ring_id;
    uint64_t slot_bytes;
    uint32_t slots;
    uint32_t kind;
    _Atomic uint32_t state[DEVRING_MAX_SLOTS];
} s_ctl_t;

// The descriptor: this struct's bytes (both processes are on one host and
// built from this file).
typedef struct {
    char magic[8];
    uint32_t version;
    uint32_t kind;
    uint32_t slots;
    uint32_t device;
    uint64_t slot_bytes;
    uint64_t ring_id;
    uint32_t pid;
    uint32_t pad_;
    char shm_name[64];
    uint8_t mem[DEVRING_HANDLE_BYTES];
    uint8_t ready[DEVRING_MAX_SLOTS][DEVRING_HANDLE_BYTES];
    uint8_t done[DEVRING_MAX_SLOTS][DEVRING_HANDLE_BYTES];
} s_desc_t;

_Static_assert(sizeof(s_desc_t) <= DEVRING_DESC_MAX, "descriptor too large");
_Static_assert(sizeof(s_ctl_t) <= S_CTL_BYTES, "control block too large");

struct devring_t {
    devring_config_t cfg;
    s_desc_t desc;
    size_t stride;      // bytes between slots
    int shm_fd;
    size_t shm_bytes;
    char *shm;          // mapping: control block, then the host slots
    s_ctl_t *ctl;
    devring_cuda_t cuda;
    int next;           // where acquire starts looking
};

struct devring_peer_t {
    devring_kind_t kind;
    int slots;
    size_t stride, slot_bytes;
    uint64_t ring_id;
    s_ctl_t *ctl;
    char *shm;             // own mapping (NULL for a local view)
    size_t shm_bytes;
    const char *base;      // slot 0 (device or host memory)
    devring_cuda_t cuda;   // opened handles (CUDA, not local)
    void **ready, **done;  // per-slot events (CUDA)
    bool local;
};

static size_t s_stride(size_t slot_bytes)
{
    return (slot_bytes + S_SLOT_ALIGN - 1) / S_SLOT_ALIGN * S_SLOT_ALIGN;
}

static uint64_t s_random_id(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    // splitmix64 finaliser
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// ---------------------------------------------------------------------------
// producer

devring_t *devring_new(const devring_config_t *cfg)
{
    if (cfg->slots < 1 || cfg->slots > DEVRING_MAX_SLOTS || cfg->slot_bytes == 0 ||
        cfg->slot_bytes > S_MAX_SLOT_BYTES || (cfg->kind != DEVRING_HOST && cfg->kind != DEVRING_CUDA)) {
        nf_log_error("devring: bad config (%d slots of %zu bytes, kind %d)", cfg->slots,
                     cfg->slot_bytes, (int)cfg->kind);
        return NULL;
    }
    devring_t *r = nf_xcalloc(1, sizeof *r);
    r->cfg = *cfg;
    r->stride = s_stride(cfg->slot_bytes);
    r->shm_fd = -1;
    s_desc_t *d = &r->desc;
    memcpy(d->magic, S_MAGIC, 8);
    d->version = S_VERSION;
    d->kind = (uint32_t)cfg->kind;
    d->slots = (uint32_t)cfg->slots;
    d->device = (uint32_t)(cfg->device < 0 ? 0 : cfg->device);
    d->slot_bytes = cfg->slot_bytes;
    d->ring_id = s_random_id();
    d->pid = (uint32_t)getpid();
    snprintf(d->shm_name, sizeof d->shm_name, S_SHM_PREFIX "%u-%016llx", (unsigned)getpid(),
             (unsigned long long)d->ring_id);
    r->shm_bytes = S_CTL_BYTES + (cfg->kind == DEVRING_HOST ? (size_t)cfg->slots * r->stride : 0);
    r->shm_fd = shm_open(d->shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (r->shm_fd < 0) {
        nf_log_error("devring: shm_open %s: %s", d->shm_name, strerror(errno));
        free(r);
        return NULL;
    }
    if (ftruncate(r->shm_fd, (off_t)r->shm_bytes) != 0) {
        nf_log_error("devring: %zu bytes of shared memory: %s", r->shm_bytes, strerror(errno));
        devring_destroy(&r);
        return NULL;
    }
    void *m = mmap(NULL, r->shm_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, r->shm_fd, 0);
    if (m == MAP_FAILED) {
        nf_log_error("devring: mmap of %zu bytes: %s", r->shm_bytes, strerror(errno));
        devring_destroy(&r);
        return NULL;
    }
    r->shm = m;
    r->ctl = (s_ctl_t *)r->shm;
    r->ctl->ring_id = d->ring_id;
    r->ctl->slot_bytes = d->slot_bytes;
    r->ctl->slots = d->slots;
    r->ctl->kind = d->kind;
    for (int s = 0; s < cfg->slots; s++) atomic_store(&r->ctl->state[s], S_FREE);
    if (cfg->kind == DEVRING_CUDA) {
        char err[256];
        if (devring_cuda_create(&r->cuda, (int)d->device, (size_t)cfg->slots * r->stride,
                                cfg->slots, err, sizeof err) != 0) {
            nf_log_error("devring: %s", err);
            devring_destroy(&r);
            return NULL;
        }
        if (r->cuda.ipc_error[0])
            nf_log_warn("devring: %s; the ring serves this process only", r->cuda.ipc_error);
        memcpy(d->mem, r->cuda.mem_handle, sizeof d->mem);
        memcpy(d->ready, r->cuda.ready_handle, sizeof d->ready);
        memcpy(d->done, r->cuda.done_handle, sizeof d->done);
    }
    return r;
}

void devring_destroy(devring_t **self_p)
{
    if (!self_p || !*self_p) return;
    devring_t *r = *self_p;
    if (r->cuda.mem) devring_cuda_destroy(&r->cuda);
    if (r->shm) NF_CHECK_ERRNO(munmap(r->shm, r->shm_bytes) == 0, "munmap");
    if (r->shm_fd >= 0) {
        close(r->shm_fd);
        if (shm_unlink(r->desc.shm_name) != 0)
            nf_log_warn("devring: shm_unlink %s: %s", r->desc.shm_name, strerror(errno));
    }
    free(r);
    *self_p = NULL;
}

const void *devring_descriptor(const devring_t *r, size_t *len)
{
    if (r->cuda.ipc_error[0]) {
        nf_log_error("devring: no descriptor for other processes: %s", r->cuda.ipc_error);
        *len = 0;
        return NULL;
    }
    *len = sizeof r->desc;
    return &r->desc;
}

int devring_acquire(devring_t *r, void *stream)
{
    for (int k = 0; k < r->cfg.slots; k++) {
        const int s = (r->next + k) % r->cfg.slots;
        uint32_t want = S_FREE;
        bool got = atomic_compare_exchange_strong(&r->ctl->state[s], &want, S_WRITING);
        if (!got) {
            want = S_RELEASED;
            got = atomic_compare_exchange_strong(&r->ctl->state[s], &want, S_WRITING);
            // the consumer recorded `done` before it released the slot
            if (got && r->cfg.kind == DEVRING_CUDA) devring_cuda_wait(stream, r->cuda.done[s]);
        }
        if (got) {
            r->next = (s + 1) % r->cfg.slots;
            return s;
        }
    }
    return -1;
}

void *devring_slot(const devring_t *r, int slot)
{
    NF_CHECK(slot >= 0 && slot < r->cfg.slots, "devring: slot %d", slot);
    char *base = r->cfg.kind == DEVRING_CUDA ? (char *)r->cuda.mem : r->shm + S_CTL_BYTES;
    return base + (size_t)slot * r->stride;
}

uint64_t devring_offset(const devring_t *r, int slot)
{
    NF_CHECK(slot >= 0 && slot < r->cfg.slots, "devring: slot %d", slot);
    return (uint64_t)slot * r->stride;
}

void devring_publish(devring_t *r, int slot, void *stream)
{
    NF_CHECK(slot >= 0 && slot < r->cfg.slots, "devring: slot %d", slot);
    if (r->cfg.kind == DEVRING_CUDA) devring_cuda_record(r->cuda.ready[slot], stream);
    uint32_t want = S_WRITING;
    NF_CHECK(atomic_compare_exchange_strong(&r->ctl->state[slot], &want, S_PUBLISHED),
             "devring: publishing slot %d in state %u", slot, want);
}

void devring_write(devring_t *r, int slot, const void *src, size_t bytes, void *stream)
{
    NF_CHECK(bytes <= r->cfg.slot_bytes, "devring: %zu bytes into a slot of %zu", bytes,
             r->cfg.slot_bytes);
    if (r->cfg.kind == DEVRING_CUDA)
        devring_cuda_upload(devring_slot(r, slot), src, bytes, stream);
    else
        memcpy(devring_slot(r, slot), src, bytes);
}

int devring_available(const devring_t *r)
{
    int n = 0;
    for (int s = 0; s < r->cfg.slots; s++) {
        const uint32_t st = atomic_load(&r->ctl->state[s]);
        n += st == S_FREE || st == S_RELEASED;
    }
    return n;
}

void devring_reclaim(devring_t *r)
{
    for (int s = 0; s < r->cfg.slots; s++) atomic_store(&r->ctl->state[s], S_FREE);
}

const devring_config_t *devring_config(const devring_t *r) { return &r->cfg; }

// ---------------------------------------------------------------------------
// consumer

NF_PRINTF(3, 4) static int s_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

// Every field of a descriptor from the outside world.
static int s_desc_check(const void *desc, size_t len, s_desc_t *d, char *err, size_t errlen)
{
    if (!desc || len != sizeof *d)
        return s_fail(err, errlen, "descriptor of the wrong size");
    memcpy(d, desc, sizeof *d);
    if (memcmp(d->magic, S_MAGIC, 8) != 0) return s_fail(err, errlen, "not a ring descriptor");
    if (d->version != S_VERSION) return s_fail(err, errlen, "ring descriptor of another version");
    if (d->kind != DEVRING_HOST && d->kind != DEVRING_CUDA)
        return s_fail(err, errlen, "unknown ring kind");
    if (d->slots < 1 || d->slots > DEVRING_MAX_SLOTS || d->slot_bytes == 0 ||
        d->slot_bytes > S_MAX_SLOT_BYTES)
        return s_fail(err, errlen, "bad ring geometry");
    if (memchr(d->shm_name, '\0', sizeof d->shm_name) == NULL ||
        strncmp(d->shm_name, S_SHM_PREFIX, strlen(S_SHM_PREFIX)) != 0 ||
        strchr(d->shm_name + 1, '/') != NULL)
        return s_fail(err, errlen, "bad shared memory name in the ring descriptor");
    return 0;
}

// Maps the ring's shared memory and checks it against the descriptor.
static int s_map(devring_peer_t *p, const s_desc_t *d, char *err, size_t errlen)
{
    const int fd = shm_open(d->shm_name, O_RDWR, 0);
    if (fd < 0) return s_fail(err, errlen, "cannot open the ring's shared memory: %s", strerror(errno));
    struct stat st;
    const size_t need = S_CTL_BYTES + (d->kind == DEVRING_HOST ? (size_t)d->slots * p->stride : 0);
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < need) {
        close(fd);
        return s_fail(err, errlen, "the ring's shared memory is smaller than its descriptor says");
    }
    void *m = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return s_fail(err, errlen, "mmap of the ring: %s", strerror(errno));
    p->shm = m;
    p->shm_bytes = need;
    p->ctl = (s_ctl_t *)p->shm;
    if (p->ctl->ring_id != d->ring_id || p->ctl->slots != d->slots ||
        p->ctl->slot_bytes != d->slot_bytes || p->ctl->kind != d->kind)
        return s_fail(err, errlen, "the ring's shared memory does not match its descriptor");
    return 0;
}

devring_peer_t *devring_attach(const void *desc, size_t len, char *err, size_t errlen)
{
    s_desc_t d;
    if (s_desc_check(desc, len, &d, err, errlen) != 0) return NULL;
    if (d.pid == (uint32_t)getpid()) {
        snprintf(err, errlen, "the ring belongs to this process (devring_attach_local)");
        return NULL;
    }
    devring_peer_t *p = nf_xcalloc(1, sizeof *p);
    p->kind = (devring_kind_t)d.kind;
    p->slots = (int)d.slots;
    p->slot_bytes = d.slot_bytes;
    p->stride = s_stride(d.slot_bytes);
    p->ring_id = d.ring_id;
    if (s_map(p, &d, err, errlen) != 0) {
        devring_detach(&p);
        return NULL;
    }
    if (p->kind == DEVRING_HOST) {
        p->base = p->shm + S_CTL_BYTES;
        return p;
    }
    p->cuda.slots = p->slots;
    p->cuda.device = (int)d.device;
    memcpy(p->cuda.mem_handle, d.mem, sizeof d.mem);
    memcpy(p->cuda.ready_handle, d.ready, sizeof d.ready);
    memcpy(p->cuda.done_handle, d.done, sizeof d.done);
    if (devring_cuda_open(&p->cuda, err, errlen) != 0) {
        devring_detach(&p);
        return NULL;
    }
    p->base = p->cuda.mem;
    p->ready = p->cuda.ready;
    p->done = p->cuda.done;
    return p;
}

devring_peer_t *devring_attach_local(devring_t *r)
{
    devring_peer_t *p = nf_xcalloc(1, sizeof *p);
    p->kind = r->cfg.kind;
    p->slots = r->cfg.slots;
    p->slot_bytes = r->cfg.slot_bytes;
    p->stride = r->stride;
    p->ring_id = r->desc.ring_id;
    p->ctl = r->ctl;
    p->local = true;
    p->base = devring_slot(r, 0);
    if (p->kind == DEVRING_CUDA) {
        p->ready = r->cuda.ready;
        p->done = r->cuda.done;
    }
    return p;
}

void devring_detach(devring_peer_t **self_p)
{
    if (!self_p || !*self_p) return;
    devring_peer_t *p = *self_p;
    if (!p->local && p->cuda.mem) devring_cuda_close(&p->cuda);
    if (p->shm) NF_CHECK_ERRNO(munmap(p->shm, p->shm_bytes) == 0, "munmap");
    free(p);
    *self_p = NULL;
}

bool devring_peer_same(const devring_peer_t *p, const void *desc, size_t len)
{
    s_desc_t d;
    if (!desc || len != sizeof d) return false;
    memcpy(&d, desc, sizeof d);
    return memcmp(d.magic, S_MAGIC, 8) == 0 && d.ring_id == p->ring_id;
}

int devring_peer_slot(devring_peer_t *p, uint64_t offset, size_t bytes, char *err, size_t errlen)
{
    if (offset % p->stride != 0 || offset / p->stride >= (uint64_t)p->slots) {
        snprintf(err, errlen, "offset %llu is not a slot of the ring", (unsigned long long)offset);
        return -1;
    }
    if (bytes > p->slot_bytes) {
        snprintf(err, errlen, "%zu bytes do not fit a slot of %zu", bytes, p->slot_bytes);
        return -1;
    }
    const int s = (int)(offset / p->stride);
    const uint32_t st = atomic_load(&p->ctl->state[s]);
    if (st != S_PUBLISHED) {
        snprintf(err, errlen, "slot %d was not published (state %u)", s, st);
        return -1;
    }
    return s;
}

const void *devring_peer_ptr(const devring_peer_t *p, int slot)
{
    NF_CHECK(slot >= 0 && slot < p->slots, "devring: slot %d", slot);
    return p->base + (size_t)slot * p->stride;
}

void *devring_peer_ready(const devring_peer_t *p, int slot)
{
    NF_CHECK(slot >= 0 && slot < p->slots, "devring: slot %d", slot);
    return p->ready ? p->ready[slot] : NULL;
}

void *devring_peer_done(const devring_peer_t *p, int slot)
{
    NF_CHECK(slot >= 0 && slot < p->slots, "devring: slot %d", slot);
    return p->done ? p->done[slot] : NULL;
}

void devring_peer_release(devring_peer_t *p, int slot)
{
    NF_CHECK(slot >= 0 && slot < p->slots, "devring: slot %d", slot);
    uint32_t want = S_PUBLISHED;
    NF_CHECK(atomic_compare_exchange_strong(&p->ctl->state[slot], &want, S_RELEASED),
             "devring: releasing slot %d in state %u", slot, want);
}

devring_kind_t devring_peer_kind(const devring_peer_t *p) { return p->kind; }
