/*
 * devring.h: a ring of batch buffers shared by two processes on one host, so
 * that a producer (the augment stage) hands tensor batches to a consumer (the
 * trainer or evaluator) without copying the bytes through a socket.
 *
 * Two kinds, one protocol:
 *   DEVRING_CUDA  the slots are one device allocation exported with
 *                 cudaIpcGetMemHandle; each slot has two interprocess events:
 *                 `ready` (recorded by the producer after its writes) and
 *                 `done` (recorded by the consumer after its reads). Nobody
 *                 waits on the host: each side's stream waits for the other's
 *                 event (cudaStreamWaitEvent).
 *   DEVRING_HOST  the slots are POSIX shared memory (the CPU fallback: same
 *                 protocol, host pointers, the reads finish before the release).
 * Both keep a small control block in POSIX shared memory: per slot a state
 * (free -> writing -> published -> released -> writing ...) that the two
 * processes move with atomic compare-and-swap, so a slot is never written
 * while the consumer may read it, whatever order the consumer releases in.
 *
 * How the processes use it (the message fields are proto/netteflow.proto's):
 *   producer                                   consumer
 *   r = devring_new(&cfg) (once)
 *   s = devring_acquire(r, stream)  (-1: none free yet; poll again later)
 *   write the batch into devring_slot(r, s) on `stream`
 *   devring_publish(r, s, stream)
 *   send TensorBatch{..., payload_bytes = 0,
 *     cuda_ipc_handle = devring_descriptor(r),
 *     cuda_offset = devring_offset(r, s)} and no payload frame
 *                                              p = devring_attach(desc) (once per ring;
 *                                                devring_peer_same() tells a new ring)
 *                                              s = devring_peer_slot(p, offset, bytes)
 *                                                (-1: a bad or stale announcement: drop it)
 *                                              read devring_peer_ptr(p, s) after waiting for
 *                                                devring_peer_ready(p, s) (exec_dev_images_t.ready)
 *                                              record devring_peer_done(p, s) after the reads
 *                                                (exec_dev_images_t.done)
 *                                              devring_peer_release(p, s); send Credit as usual
 * Across hosts (no shared memory) the producer sends the bytes as before.
 * A consumer in the producer's own process attaches with devring_attach_local
 * (CUDA IPC handles cannot be opened by the process that made them).
 *
 * A descriptor is external input: devring_attach validates every field and
 * refuses a bad one with a one-line reason (never an abort). What this does
 * not do: notice a dead peer (the processes' heartbeats do; the producer then
 * calls devring_reclaim), or move bytes between hosts.
 */
#ifndef NF_DEVRING_H
#define NF_DEVRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEVRING_MAX_SLOTS 16
#define DEVRING_DESC_MAX 4096  // bytes of the largest descriptor

typedef enum { DEVRING_HOST = 0, DEVRING_CUDA = 1 } devring_kind_t;

typedef struct {
    devring_kind_t kind;
    int slots;          // 1..DEVRING_MAX_SLOTS
    size_t slot_bytes;  // bytes of the largest batch
    int device;         // CUDA device (DEVRING_CUDA)
} devring_config_t;

typedef struct devring_t devring_t;            // the producer's ring
typedef struct devring_peer_t devring_peer_t;  // a consumer's view of it

// ---------------------------------------------------------------------------
// producer

// Creates the ring. NULL with a logged reason when shared memory or the CUDA
// device cannot be had (or the build has no CUDA for DEVRING_CUDA).
devring_t *devring_new(const devring_config_t *cfg);
// Waits for the producer's own pending work, unlinks the shared memory, frees
// everything, nulls *self_p. Accepts NULL.
void devring_destroy(devring_t **self_p);

// The descriptor to announce with every batch of this ring (the same bytes
// every time; *len gets their count). NULL (len 0, logged) for a CUDA ring
// the platform would not export (no CUDA IPC): it serves its own process.
const void *devring_descriptor(const devring_t *r, size_t *len);

// A slot to write into, or -1 when every slot is with the consumer. For a
// CUDA ring, `stream` (a cudaStream_t) is made to wait until the consumer's
// reads of the slot's previous batch are done; NULL for a host ring.
int devring_acquire(devring_t *r, void *stream);
// The slot's memory (device memory for a CUDA ring), slot_bytes long.
void *devring_slot(const devring_t *r, int slot);
// The offset to announce for the slot (TensorBatch.cuda_offset).
uint64_t devring_offset(const devring_t *r, int slot);
// Marks the slot readable. CUDA: records the slot's ready event on `stream`
// (the stream that wrote it) first.
void devring_publish(devring_t *r, int slot, void *stream);
// Copies bytes of host memory into the slot (a producer whose batch is on the
// host): memcpy for a host ring, an upload queued on `stream` (NULL: the
// default stream) for a CUDA ring; src must stay valid until the stream gets
// there (pinned memory makes the upload asynchronous).
void devring_write(devring_t *r, int slot, const void *src, size_t bytes, void *stream);
// Slots free or released now (a producer can acquire that many).
int devring_available(const devring_t *r);
// Takes every slot back (the consumer is gone).
void devring_reclaim(devring_t *r);
const devring_config_t *devring_config(const devring_t *r);

// ---------------------------------------------------------------------------
// consumer

// Attaches to a ring from its descriptor. NULL with the reason in err when
// the descriptor is malformed, of another version, from this process, or
// its memory cannot be opened.
devring_peer_t *devring_attach(const void *desc, size_t len, char *err, size_t errlen);
// A view of a ring of this process (for a consumer in the producer's process).
devring_peer_t *devring_attach_local(devring_t *r);
void devring_detach(devring_peer_t **self_p);
// True when desc describes the ring p is attached to.
bool devring_peer_same(const devring_peer_t *p, const void *desc, size_t len);

// The slot of an announced batch of `bytes` at `offset`, or -1 with the
// reason (not a slot boundary, larger than a slot, not published).
int devring_peer_slot(devring_peer_t *p, uint64_t offset, size_t bytes, char *err, size_t errlen);
const void *devring_peer_ptr(const devring_peer_t *p, int slot);
// CUDA: the events to wait for before reading (ready) and to record after
// the last read (done), as cudaEvent_t; NULL for a host ring.
void *devring_peer_ready(const devring_peer_t *p, int slot);
void *devring_peer_done(const devring_peer_t *p, int slot);
// Gives the slot back to the producer (after recording `done` on the stream
// that reads it, or, host ring, after the last read).
void devring_peer_release(devring_peer_t *p, int slot);
devring_kind_t devring_peer_kind(const devring_peer_t *p);

#endif
