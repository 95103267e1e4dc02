/*
 * test_onednn_impl.c: no silent fallback to oneDNN's reference kernels.
 *
 * Plans the onednn executor for xresnet18 training steps at several batch
 * shapes (the bench's, small odd sizes with ceil-mode pooling, a partial last
 * batch) and queries dnnl_query_impl_info_str of every primitive of the
 * forward, eval and backward programs. FAILS if any is a reference
 * implementation ("ref:..."), whatever the ISA (AVX2 or AVX-512): Debian's
 * oneDNN 2.6 runs those at ~0.1 GFLOP/s.
 */
#include "exec.h"
#include "testlib.h"
#include "xresnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    bool verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    static const struct {
        const char *arch;
        int n, h, w;
    } cases[] = {
        {"xresnet18", 64, 128, 128}, {"xresnet18", 8, 64, 64}, {"xresnet18", 4, 40, 40},
        {"xresnet18", 7, 96, 96},    {"xresnet50", 8, 64, 64},
    };
    for (size_t c = 0; c < NF_ARRAY_LEN(cases); c++) {
        xresnet_config_t cfg = {.arch = cases[c].arch, .n_out = 10, .c_in = 3};
        xresnet_t *net = xresnet_new(&cfg);
        NF_CHECK(net, "net");
        const exec_backend_t *be = exec_backend(EXEC_ONEDNN);
        exec_config_t ec = {.net = net};
        exec_t *e = be->create(&ec);
        T_CHECK(be->plan(e, cases[c].n, cases[c].h, cases[c].w) == 0, "plan");
        int total = 0;
        exec_onednn_impls(e, NULL, 0, &total);
        exec_onednn_impl_t *impls = nf_xmalloc((size_t)(total ? total : 1) * sizeof(*impls));
        int n = exec_onednn_impls(e, impls, total, NULL);
        int refs = 0;
        for (int i = 0; i < n; i++) {
            bool is_ref = strncmp(impls[i].impl, "ref", 3) == 0;
            if (is_ref) refs++;
            T_CHECK(!is_ref, "%s %dx%dx%d: %s runs on %s", cases[c].arch, cases[c].n,
                    cases[c].h, cases[c].w, impls[i].what, impls[i].impl);
            if (verbose) printf("  %-48s %s\n", impls[i].what, impls[i].impl);
        }
        printf("%s %d x %dx%d: %d primitives, %d reference\n", cases[c].arch, cases[c].n,
               cases[c].h, cases[c].w, n, refs);
        T_CHECK(n > 50, "suspiciously few primitives (%d)", n);
        free(impls);
        be->destroy(&e);
        xresnet_destroy(&net);
    }
    return t_done();
}
