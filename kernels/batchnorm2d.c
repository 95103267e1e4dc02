/*
 * batchnorm2d.c: the plain-loop fp32 reference of batchnorm2d.h. Per-channel
 * sums accumulate in double, in (n, h, w) order, one channel per thread when
 * parallel, so results do not depend on the thread count. The variance is
 * computed in two passes (mean first), as the numerically safe form.
 */
#include "batchnorm2d.h"

#include "check.h"

#include <math.h>

batchnorm2d_params_t batchnorm2d_default_params(int n, int h, int w, int c)
{
    batchnorm2d_params_t p = {.n = n, .h = h, .w = w, .c = c, .eps = 1e-5f, .momentum = 0.1f,
                              .dtype = KDTYPE_F32};
    return p;
}

static size_t s_check_cpu(const batchnorm2d_params_t *p)
{
    NF_CHECK(p->n > 0 && p->h > 0 && p->w > 0 && p->c > 0, "batchnorm2d: bad shape %dx%dx%dx%d",
             p->n, p->h, p->w, p->c);
    NF_CHECK(p->eps > 0 && p->momentum >= 0 && p->momentum <= 1,
             "batchnorm2d: eps %g momentum %g", (double)p->eps, (double)p->momentum);
    NF_CHECK(p->dtype == KDTYPE_F32, "batchnorm2d CPU ops are fp32 only (dtype %s)",
             kdtype_name(p->dtype));
    return (size_t)p->n * (size_t)p->h * (size_t)p->w;  // M: elements per channel
}

void batchnorm2d_forward_train_cpu(float *y, float *save_mean, float *save_invstd,
                                   float *running_mean, float *running_var, const float *x,
                                   const float *gamma, const float *beta,
                                   const batchnorm2d_params_t *p)
{
    const size_t M = s_check_cpu(p);
    const int C = p->c;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        // mean = (1/M) sum x
        double sum = 0;
        for (size_t m = 0; m < M; m++) sum += x[m * C + c];
        const double mean = sum / (double)M;
        // biased variance = (1/M) sum (x - mean)^2
        double ss = 0;
        for (size_t m = 0; m < M; m++) {
            const double d = x[m * C + c] - mean;
            ss += d * d;
        }
        const double var = ss / (double)M;
        const double invstd = 1.0 / sqrt(var + (double)p->eps);
        // y = gamma * (x - mean) * invstd + beta, as scale * x + shift
        const float scale = (float)((double)gamma[c] * invstd);
        const float shift = (float)((double)beta[c] - mean * (double)gamma[c] * invstd);
        for (size_t m = 0; m < M; m++) y[m * C + c] = x[m * C + c] * scale + shift;
        save_mean[c] = (float)mean;
        save_invstd[c] = (float)invstd;
        // running stats: momentum blend; the variance term is unbiased (M/(M-1)),
        // and for M = 1 PyTorch's unbiased variance is NaN: so is ours.
        const double unbiased = M > 1 ? ss / (double)(M - 1) : NAN;
        const double mom = p->momentum;
        running_mean[c] = (float)((1.0 - mom) * running_mean[c] + mom * mean);
        running_var[c] = (float)((1.0 - mom) * running_var[c] + mom * unbiased);
    }
}

void batchnorm2d_forward_eval_cpu(float *y, const float *x, const float *gamma, const float *beta,
                                  const float *running_mean, const float *running_var,
                                  const batchnorm2d_params_t *p)
{
    const size_t M = s_check_cpu(p);
    const int C = p->c;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        // y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
        const double invstd = 1.0 / sqrt((double)running_var[c] + (double)p->eps);
        const float scale = (float)((double)gamma[c] * invstd);
        const float shift = (float)((double)beta[c] - (double)running_mean[c] * gamma[c] * invstd);
        for (size_t m = 0; m < M; m++) y[m * C + c] = x[m * C + c] * scale + shift;
    }
}

void batchnorm2d_backward_cpu(float *dx, float *dgamma, float *dbeta, const float *dy,
                              const float *x, const float *gamma, const float *save_mean,
                              const float *save_invstd, const batchnorm2d_params_t *p)
{
    const size_t M = s_check_cpu(p);
    const int C = p->c;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const double mean = save_mean[c], invstd = save_invstd[c];
        // dbeta = sum dy; dgamma = sum dy * xhat, xhat = (x - mean) * invstd
        double sdy = 0, sdy_xhat = 0;
        for (size_t m = 0; m < M; m++) {
            const double g = dy[m * C + c];
            sdy += g;
            sdy_xhat += g * ((x[m * C + c] - mean) * invstd);
        }
        dbeta[c] = (float)sdy;
        dgamma[c] = (float)sdy_xhat;
        // dx = gamma * invstd / M * (M*dy - sum dy - xhat * sum(dy * xhat))
        const double k = (double)gamma[c] * invstd / (double)M;
        for (size_t m = 0; m < M; m++) {
            const double xhat = (x[m * C + c] - mean) * invstd;
            dx[m * C + c] = (float)(k * ((double)M * dy[m * C + c] - sdy - xhat * sdy_xhat));
        }
    }
}
