/*
 * bnact.c: the plain-loop fp32 reference of bnact.h. The BatchNorm part is
 * batchnorm2d.c's arithmetic unchanged (double sums in (n, h, w) order, two
 * passes, scale/shift rounded to fp32 once), so without ReLU and residual the
 * results are bitwise those of batchnorm2d_*_cpu, and with them those of
 * batchnorm2d followed by relu_forward / relu_add_forward. One channel per
 * OpenMP thread: independent of the thread count.
 */
#include "bnact.h"

#include "check.h"

#include <math.h>

bnact_params_t bnact_default_params(int n, int h, int w, int c)
{
    bnact_params_t p = {.n = n, .h = h, .w = w, .c = c, .eps = 1e-5f, .momentum = 0.1f,
                        .dtype = KDTYPE_F32};
    return p;
}

static size_t s_check_cpu(const bnact_params_t *p)
{
    NF_CHECK(p->n > 0 && p->h > 0 && p->w > 0 && p->c > 0, "bnact: bad shape %dx%dx%dx%d", p->n,
             p->h, p->w, p->c);
    NF_CHECK(p->eps > 0 && p->momentum >= 0 && p->momentum <= 1, "bnact: eps %g momentum %g",
             (double)p->eps, (double)p->momentum);
    NF_CHECK(p->dtype == KDTYPE_F32, "bnact CPU ops are fp32 only (dtype %s)",
             kdtype_name(p->dtype));
    return (size_t)p->n * (size_t)p->h * (size_t)p->w;
}

// max(v, 0) keeping NaN (torch.relu), as relu.c.
static inline float s_relu(float v) { return isnan(v) ? v : v > 0.0f ? v : 0.0f; }

// y = act(x * scale + shift [+ r]) over one channel.
static void s_apply(float *y, const float *x, const float *r, float scale, float shift, size_t M,
                    int C, int c, bool relu)
{
    for (size_t m = 0; m < M; m++) {
        const size_t i = m * C + c;
        float v = x[i] * scale + shift;
        if (r) v = v + r[i];
        y[i] = relu ? s_relu(v) : v;
    }
}

void bnact_forward_train_cpu(float *y, float *save_mean, float *save_invstd, float *running_mean,
                             float *running_var, const float *x, const float *r,
                             const float *gamma, const float *beta, const bnact_params_t *p)
{
    const size_t M = s_check_cpu(p);
    NF_CHECK(!p->residual || r, "bnact: residual without r");
    const int C = p->c;
    const float *res = p->residual ? r : NULL;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double sum = 0;
        for (size_t m = 0; m < M; m++) sum += x[m * C + c];
        const double mean = sum / (double)M;
        double ss = 0;
        for (size_t m = 0; m < M; m++) {
            const double d = x[m * C + c] - mean;
            ss += d * d;
        }
        const double var = ss / (double)M;
        const double invstd = 1.0 / sqrt(var + (double)p->eps);
        const float scale = (float)((double)gamma[c] * invstd);
        const float shift = (float)((double)beta[c] - mean * (double)gamma[c] * invstd);
        s_apply(y, x, res, scale, shift, M, C, c, p->relu);
        save_mean[c] = (float)mean;
        save_invstd[c] = (float)invstd;
        const double unbiased = M > 1 ? ss / (double)(M - 1) : NAN;
        const double mom = p->momentum;
        running_mean[c] = (float)((1.0 - mom) * running_mean[c] + mom * mean);
        running_var[c] = (float)((1.0 - mom) * running_var[c] + mom * unbiased);
    }
}

void bnact_forward_eval_cpu(float *y, const float *x, const float *r, const float *gamma,
                            const float *beta, const float *running_mean,
                            const float *running_var, const bnact_params_t *p)
{
    const size_t M = s_check_cpu(p);
    NF_CHECK(!p->residual || r, "bnact: residual without r");
    const int C = p->c;
    const float *res = p->residual ? r : NULL;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const double invstd = 1.0 / sqrt((double)running_var[c] + (double)p->eps);
        const float scale = (float)((double)gamma[c] * invstd);
        const float shift = (float)((double)beta[c] - (double)running_mean[c] * gamma[c] * invstd);
        s_apply(y, x, res, scale, shift, M, C, c, p->relu);
    }
}

void bnact_backward_cpu(float *dx, float *dr, float *dgamma, float *dbeta, const float *dy,
                        const float *y, const float *x, const float *gamma,
                        const float *save_mean, const float *save_invstd, const bnact_params_t *p)
{
    const size_t M = s_check_cpu(p);
    NF_CHECK(!p->relu || y, "bnact: ReLU backward needs the forward output");
    NF_CHECK(!p->residual || dr, "bnact: residual backward needs dr");
    const int C = p->c;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const double mean = save_mean[c], invstd = save_invstd[c];
        double sdz = 0, sdz_xhat = 0;
        for (size_t m = 0; m < M; m++) {
            const size_t i = m * C + c;
            const double g = p->relu && !(y[i] > 0.0f) ? 0.0 : dy[i];
            sdz += g;
            sdz_xhat += g * ((x[i] - mean) * invstd);
        }
        dbeta[c] = (float)sdz;
        dgamma[c] = (float)sdz_xhat;
        const double k = (double)gamma[c] * invstd / (double)M;
        for (size_t m = 0; m < M; m++) {
            const size_t i = m * C + c;
            const float dz = p->relu && !(y[i] > 0.0f) ? 0.0f : dy[i];
            const double xhat = (x[i] - mean) * invstd;
            const float g = (float)(k * ((double)M * dz - sdz - xhat * sdz_xhat));
            dx[i] = p->accumulate_dx ? dx[i] + g : g;
            if (p->residual) dr[i] = p->accumulate_dr ? dr[i] + dz : dz;
        }
    }
}
