/*
 * fuzz_safetensors.c: libFuzzer target for the safetensors reader
 * (common/safetensors.h), which checkpoints and fixtures go through: the
 * input is a whole file. Whatever it accepts is walked (every tensor copied,
 * every metadata entry read) so a bad offset or size would be touched.
 */
#include "check.h"
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    safetensors_t *st = safetensors_parse(data, size, err, sizeof err);
    if (!st) {
        NF_CHECK(err[0], "a refusal has a reason");
        return 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const safetensors_tensor_t *t = safetensors_tensor_at(st, i);
        NF_CHECK(t && t->nbytes == t->numel * safetensors_dtype_size(t->dtype), "tensor size");
        NF_CHECK(safetensors_find(st, t->name) == t, "find by name");
        void *copy = malloc(t->nbytes + 1);
        NF_CHECK(copy, "malloc");
        NF_CHECK(safetensors_copy(t, t->dtype, t->numel, copy) == 0, "copy");
        free(copy);
        total += t->nbytes;
    }
    NF_CHECK(total <= size, "tensors larger than the file");
    for (size_t i = 0; i < safetensors_meta_count(st); i++) {
        const char *k, *v;
        safetensors_meta_at(st, i, &k, &v);
        NF_CHECK(k && v && safetensors_meta_get(st, k), "metadata");
    }
    safetensors_close(&st);
    return 0;
}
