/*
 * linear.c: the fp32 reference of linear.h. Each output element is one
 * dot product in a fixed order, computed by one thread: deterministic.
 */
#include "linear.h"

#include "check.h"

#include <stddef.h>

static void s_check_cpu(const linear_params_t *p)
{
    NF_CHECK(p->n > 0 && p->in > 0 && p->out > 0, "linear: bad shape n=%d in=%d out=%d", p->n,
             p->in, p->out);
    NF_CHECK(p->dtype == KDTYPE_F32, "linear CPU ops are fp32 only (dtype %s)",
             kdtype_name(p->dtype));
}

void linear_forward_cpu(float *y, const float *x, const float *w, const float *b,
                        const linear_params_t *p)
{
    s_check_cpu(p);
    const int N = p->n, I = p->in, O = p->out;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++) {
        for (int o = 0; o < O; o++) {
            // y[n, o] = dot(x[n, :], w[o, :]) + b[o]
            const float *xr = x + (size_t)n * I, *wr = w + (size_t)o * I;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int i = 0; i < I; i++) acc += xr[i] * wr[i];
            y[(size_t)n * O + o] = b ? acc + b[o] : acc;
        }
    }
}

void linear_backward_cpu(float *dx, float *dw, float *db, const float *dy, const float *x,
                         const float *w, const linear_params_t *p)
{
    s_check_cpu(p);
    const int N = p->n, I = p->in, O = p->out;
    if (dx) {
        // dx[n, i] = sum_o dy[n, o] * w[o, i]
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            float *dxr = dx + (size_t)n * I;
            for (int i = 0; i < I; i++) dxr[i] = 0.0f;
            for (int o = 0; o < O; o++) {
                const float g = dy[(size_t)n * O + o];
                const float *wr = w + (size_t)o * I;
#pragma omp simd
                for (int i = 0; i < I; i++) dxr[i] += g * wr[i];
            }
        }
    }
    // dw[o, i] = sum_n dy[n, o] * x[n, i];  db[o] = sum_n dy[n, o]
#pragma omp parallel for schedule(static)
    for (int o = 0; o < O; o++) {
        float *dwr = dw + (size_t)o * I;
        for (int i = 0; i < I; i++) dwr[i] = 0.0f;
        float bsum = 0.0f;
        for (int n = 0; n < N; n++) {
            const float g = dy[(size_t)n * O + o];
            const float *xr = x + (size_t)n * I;
            bsum += g;
#pragma omp simd
            for (int i = 0; i < I; i++) dwr[i] += g * xr[i];
        }
        if (db) db[o] = bsum;
    }
}
