/*
 * resample_nosimd.c: no vectorised horizontal pass on this architecture; the
 * scalar pass in resample.c does all the work.
 */
#include "resample_simd.h"

#include <stddef.h>

loader_hrow_fn loader_resample_simd_hrow(void) { return NULL; }
loader_hblock_fn loader_resample_simd_hblock(void) { return NULL; }
