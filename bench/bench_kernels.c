/*
 * bench_kernels.c: speed of the plain-loop CPU reference convolutions
 * (kernels/conv2d.c) over xresnet18's convolution shapes: forward, backward
 * data and backward weights of every conv layer once, as one training step
 * does. Prints one JSON object. Run through bench/kernels.sh, which also runs
 * the PyTorch peer on the same shapes.
 *
 *   nf_bench_kernels [--bs N] [--size S] [--reps R]
 *
 * It measures the oracle, not the product's fast path (oneDNN, in trainer/).
 */
#include "conv2d.h"
#include "check.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int h_div, c_in, c_out, k, stride, count;  // input size = size / h_div
} s_layer_t;

// xresnet18 (fastai-spec.md 5.2): stem, 4 stages of 2 basic blocks, 1x1 shortcut convs
static const s_layer_t s_layers[] = {
    {1, 3, 32, 3, 2, 1},     {2, 32, 32, 3, 1, 1},    {2, 32, 64, 3, 1, 1},
    {4, 64, 64, 3, 1, 4},    {4, 64, 128, 3, 2, 1},   {8, 128, 128, 3, 1, 3},
    {8, 64, 128, 1, 1, 1},   {8, 128, 256, 3, 2, 1},  {16, 256, 256, 3, 1, 3},
    {16, 128, 256, 1, 1, 1}, {16, 256, 512, 3, 2, 1}, {32, 512, 512, 3, 1, 3},
    {32, 256, 512, 1, 1, 1},
};

static double s_now(void)
{
    struct timespec t;
    NF_CHECK_ERRNO(clock_gettime(CLOCK_MONOTONIC, &t) == 0, "clock_gettime");
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    int bs = 8, size = 64, reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--bs") == 0) bs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--size") == 0) size = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0) reps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--bs N] [--size S (multiple of 32)] [--reps R]\n", argv[0]);
            return 2;
        }
    }
    if (bs < 1 || size < 32 || size % 32 || reps < 1) {
        fprintf(stderr, "nf_bench_kernels: need bs >= 1, size a multiple of 32, reps >= 1\n");
        return 2;
    }
    double macs = 0, best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = 0;
        macs = 0;
        for (size_t l = 0; l < NF_ARRAY_LEN(s_layers); l++) {
            const s_layer_t *L = &s_layers[l];
            conv2d_params_t p = {.n = bs, .h = size / L->h_div, .w = size / L->h_div,
                                 .c_in = L->c_in, .c_out = L->c_out, .kh = L->k, .kw = L->k,
                                 .stride = L->stride, .pad = L->k / 2};
            float *x = nf_xcalloc(conv2d_x_count(&p), 4), *w = nf_xcalloc(conv2d_w_count(&p), 4);
            float *y = nf_xcalloc(conv2d_y_count(&p), 4), *dx = nf_xcalloc(conv2d_x_count(&p), 4);
            float *dw = nf_xcalloc(conv2d_w_count(&p), 4);
            for (size_t i = 0; i < conv2d_x_count(&p); i++) x[i] = (float)(i % 7) * 0.1f;
            for (size_t i = 0; i < conv2d_w_count(&p); i++) w[i] = (float)(i % 5) * 0.01f;
            for (int c = 0; c < L->count; c++) {
                const double t0 = s_now();
                conv2d_forward_cpu(y, x, w, &p);
                conv2d_backward_data_cpu(dx, y, w, &p);
                conv2d_backward_weights_cpu(dw, y, x, &p);
                t += s_now() - t0;
                macs += 3.0 * (double)conv2d_y_count(&p) * L->k * L->k * L->c_in;
            }
            free(x), free(w), free(y), free(dx), free(dw);
        }
        if (t < best) best = t;
    }
    printf("{\"bench\": \"kernels_conv_ref\", \"arch\": \"xresnet18 convs\", \"bs\": %d, "
           "\"size\": %d, \"threads\": %d, \"gmac\": %.4f, \"seconds\": %.4f, "
           "\"gflops\": %.2f}\n",
           bs, size, omp_get_max_threads(), macs / 1e9, best, 2 * macs / 1e9 / best);
    return 0;
}
