/*
 * devring_cuda.c: the CUDA half of a device ring (devring_cuda.h): one
 * device allocation exported with cudaIpcGetMemHandle, and per slot two
 * events made with cudaEventInterprocess (timing off, as IPC requires),
 * exported with cudaIpcGetEventHandle. The importer opens them with
 * cudaIpcOpenMemHandle / cudaIpcOpenEventHandle; an imported event behaves
 * as a local one (record, wait). Every call is checked; failures to create
 * or open are reported (an unusable device, a handle from a dead process),
 * failures afterwards abort.
 */
#include "devring_cuda.h"

#include "check.h"

#include <cuda_runtime.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(cudaIpcMemHandle_t) == DEVRING_HANDLE_BYTES, "IPC handle size");
_Static_assert(sizeof(cudaIpcEventHandle_t) == DEVRING_HANDLE_BYTES, "IPC event handle size");

#define S_CK(call)                                                                            \
    do {                                                                                      \
        cudaError_t rc_ = (call);                                                             \
        NF_CHECK(rc_ == cudaSuccess, "%s: CUDA error %d: %s", #call, (int)rc_,                \
                 cudaGetErrorString(rc_));                                                    \
    } while (0)

// A failing call during set-up: the reason, and -1.
#define S_TRY(call, what)                                                                     \
    do {                                                                                      \
        cudaError_t rc_ = (call);                                                             \
        if (rc_ != cudaSuccess) {                                                             \
            snprintf(err, errlen, "%s: %s", (what), cudaGetErrorString(rc_));                 \
            (void)cudaGetLastError();                                                         \
            return -1;                                                                        \
        }                                                                                     \
    } while (0)

static void s_events_destroy(devring_cuda_t *c)
{
    for (int s = 0; s < c->slots; s++) {
        if (c->ready[s]) S_CK(cudaEventDestroy((cudaEvent_t)c->ready[s]));
        if (c->done[s]) S_CK(cudaEventDestroy((cudaEvent_t)c->done[s]));
        c->ready[s] = c->done[s] = NULL;
    }
}

// The per-slot events; interprocess ones with their handles exported, or local ones.
static cudaError_t s_events_create(devring_cuda_t *c, bool interprocess)
{
    const unsigned flags = cudaEventDisableTiming | (interprocess ? cudaEventInterprocess : 0);
    for (int s = 0; s < c->slots; s++) {
        cudaError_t rc = cudaEventCreateWithFlags((cudaEvent_t *)&c->ready[s], flags);
        if (rc == cudaSuccess) rc = cudaEventCreateWithFlags((cudaEvent_t *)&c->done[s], flags);
        if (rc == cudaSuccess && interprocess)
            rc = cudaIpcGetEventHandle((cudaIpcEventHandle_t *)c->ready_handle[s],
                                       (cudaEvent_t)c->ready[s]);
        if (rc == cudaSuccess && interprocess)
            rc = cudaIpcGetEventHandle((cudaIpcEventHandle_t *)c->done_handle[s],
                                       (cudaEvent_t)c->done[s]);
        if (rc != cudaSuccess) return rc;
    }
    return cudaSuccess;
}

int devring_cuda_create(devring_cuda_t *c, int device, size_t bytes, int slots, char *err,
                        size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->slots = slots;
    c->device = device;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || device < 0 || device >= n) {
        (void)cudaGetLastError();
        snprintf(err, errlen, "CUDA device %d is not available (%d devices)", device, n);
        return -1;
    }
    S_TRY(cudaSetDevice(device), "cudaSetDevice");
    S_TRY(cudaMalloc(&c->mem, bytes), "cudaMalloc of the ring");
    // Export for other processes. Where the platform refuses IPC the ring
    // still serves its own process (devring_attach_local); the reason is kept.
    cudaError_t rc = cudaIpcGetMemHandle((cudaIpcMemHandle_t *)c->mem_handle, c->mem);
    if (rc == cudaSuccess) rc = s_events_create(c, true);
    if (rc != cudaSuccess) {
        snprintf(c->ipc_error, sizeof c->ipc_error, "CUDA IPC unavailable: %s",
                 cudaGetErrorString(rc));
        (void)cudaGetLastError();
        s_events_destroy(c);
        S_TRY(s_events_create(c, false), "ring events");
    }
    return 0;
}

int devring_cuda_open(devring_cuda_t *c, char *err, size_t errlen)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || c->device < 0 || c->device >= n) {
        (void)cudaGetLastError();
        snprintf(err, errlen, "the ring's CUDA device %d is not available here (%d devices)",
                 c->device, n);
        return -1;
    }
    S_TRY(cudaSetDevice(c->device), "cudaSetDevice");
    cudaIpcMemHandle_t mh;
    memcpy(&mh, c->mem_handle, sizeof mh);
    S_TRY(cudaIpcOpenMemHandle(&c->mem, mh, cudaIpcMemLazyEnablePeerAccess),
          "cudaIpcOpenMemHandle");
    for (int s = 0; s < c->slots; s++) {
        cudaIpcEventHandle_t eh;
        memcpy(&eh, c->ready_handle[s], sizeof eh);
        S_TRY(cudaIpcOpenEventHandle((cudaEvent_t *)&c->ready[s], eh), "cudaIpcOpenEventHandle");
        memcpy(&eh, c->done_handle[s], sizeof eh);
        S_TRY(cudaIpcOpenEventHandle((cudaEvent_t *)&c->done[s], eh), "cudaIpcOpenEventHandle");
    }
    return 0;
}

// Waits for the events' last records, then destroys them.
static void s_events_free(devring_cuda_t *c)
{
    for (int s = 0; s < c->slots; s++) {
        if (c->ready[s]) S_CK(cudaEventSynchronize((cudaEvent_t)c->ready[s]));
        if (c->done[s]) S_CK(cudaEventSynchronize((cudaEvent_t)c->done[s]));
    }
    s_events_destroy(c);
}

void devring_cuda_destroy(devring_cuda_t *c)
{
    S_CK(cudaSetDevice(c->device));
    s_events_free(c);
    if (c->mem) S_CK(cudaFree(c->mem));
    c->mem = NULL;
}

void devring_cuda_close(devring_cuda_t *c)
{
    S_CK(cudaSetDevice(c->device));
    s_events_free(c);
    if (c->mem) S_CK(cudaIpcCloseMemHandle(c->mem));
    c->mem = NULL;
}

void devring_cuda_wait(void *stream, void *event)
{
    S_CK(cudaStreamWaitEvent((cudaStream_t)stream, (cudaEvent_t)event, 0));
}

void devring_cuda_record(void *event, void *stream)
{
    S_CK(cudaEventRecord((cudaEvent_t)event, (cudaStream_t)stream));
}

void devring_cuda_upload(void *dst, const void *src, size_t bytes, void *stream)
{
    S_CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, (cudaStream_t)stream));
}
