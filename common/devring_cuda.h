/*
 * devring_cuda.h: the CUDA half of common/devring.c (internal): the device
 * allocation, its IPC handle and the interprocess events of a CUDA ring.
 * Implemented by devring_cuda.c in builds with CUDA, and by devring_nocuda.c
 * (every call fails with a reason) without. Handles are opaque 64-byte blobs
 * (cudaIpcMemHandle_t, cudaIpcEventHandle_t); events and streams travel as
 * void * (cudaEvent_t, cudaStream_t).
 */
#ifndef NF_DEVRING_CUDA_H
#define NF_DEVRING_CUDA_H

#include "devring.h"

#include <stddef.h>
#include <stdint.h>

#define DEVRING_HANDLE_BYTES 64

typedef struct {
    void *mem;                                  // device allocation (slots x stride)
    void *ready[DEVRING_MAX_SLOTS], *done[DEVRING_MAX_SLOTS];  // cudaEvent_t per slot
    uint8_t mem_handle[DEVRING_HANDLE_BYTES];   // exported (producer) or imported
    uint8_t ready_handle[DEVRING_MAX_SLOTS][DEVRING_HANDLE_BYTES];
    uint8_t done_handle[DEVRING_MAX_SLOTS][DEVRING_HANDLE_BYTES];
    int slots;
    int device;
    char ipc_error[128];  // producer: why the ring cannot be exported ("" when it can)
} devring_cuda_t;

// Producer: allocates `bytes` on `device`, creates 2*slots interprocess events
// and exports every handle into c. Returns 0, or -1 with the reason. Where
// the platform refuses IPC, the events are local ones and c->ipc_error says
// why (the ring then serves its own process only).
int devring_cuda_create(devring_cuda_t *c, int device, size_t bytes, int slots, char *err,
                        size_t errlen);
// Consumer: opens the memory and events of c's handles. Returns 0 or -1.
int devring_cuda_open(devring_cuda_t *c, char *err, size_t errlen);
// Frees what create made (after waiting for the events) or closes what open opened.
void devring_cuda_destroy(devring_cuda_t *c);
void devring_cuda_close(devring_cuda_t *c);
// stream waits for event; event recorded on stream.
void devring_cuda_wait(void *stream, void *event);
void devring_cuda_record(void *event, void *stream);
// Host -> device copy queued on stream.
void devring_cuda_upload(void *dst, const void *src, size_t bytes, void *stream);

#endif
