/*
 * exec.c: the one dispatch point from a backend kind to its table.
 */
#include "exec.h"

#include <string.h>

const exec_backend_t *exec_backend(exec_kind_t kind)
{
    switch (kind) {
    case EXEC_REF:
        return &exec_ref_backend;
    case EXEC_ONEDNN:
        return &exec_onednn_backend;
    case EXEC_CUDA:
        return exec_cuda_table();
    }
    return NULL;
}

int exec_kind_parse(const char *name, exec_kind_t *out)
{
    static const struct {
        const char *name;
        exec_kind_t kind;
    } kinds[] = {{"ref", EXEC_REF}, {"onednn", EXEC_ONEDNN}, {"cuda", EXEC_CUDA}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (name && strcmp(name, kinds[i].name) == 0) {
            *out = kinds[i].kind;
            return 0;
        }
    return -1;
}
