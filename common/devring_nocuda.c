/*
 * devring_nocuda.c: the CUDA half of a device ring in a build without CUDA
 * (devring_cuda.h): creating or opening a CUDA ring fails with the reason;
 * the rest is never reached (no CUDA ring can exist).
 */
#include "devring_cuda.h"

#include "check.h"

#include <stdio.h>

int devring_cuda_create(devring_cuda_t *c, int device, size_t bytes, int slots, char *err,
                        size_t errlen)
{
    snprintf(err, errlen, "this build has no CUDA (a host ring works without)");
    return -1;
}

int devring_cuda_open(devring_cuda_t *c, char *err, size_t errlen)
{
    snprintf(err, errlen, "this build has no CUDA: cannot open a CUDA ring");
    return -1;
}

void devring_cuda_destroy(devring_cuda_t *c) { NF_CHECK(0, "no CUDA ring exists in this build"); }
void devring_cuda_close(devring_cuda_t *c) { NF_CHECK(0, "no CUDA ring exists in this build"); }
void devring_cuda_wait(void *stream, void *event) { NF_CHECK(0, "no CUDA ring exists in this build"); }
void devring_cuda_record(void *event, void *stream) { NF_CHECK(0, "no CUDA ring exists in this build"); }
void devring_cuda_upload(void *dst, const void *src, size_t bytes, void *stream)
{
    NF_CHECK(0, "no CUDA ring exists in this build");
}
