/*
 * exec_nocuda.c: the CUDA slot of the backend table in builds without nvcc:
 * there is no CUDA executor, so exec_backend(EXEC_CUDA) is NULL.
 */
#include "exec.h"

const exec_backend_t *exec_cuda_table(void) { return 0; }
