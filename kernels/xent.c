/*
 * xent.c: the fp32 reference of xent.h. Per row, log_softmax is computed as
 * lp[k] = o[k] - max - log(sum exp(o - max)) in double; the batch mean sums
 * the rows in order in double. Rows are independent (parallel-safe).
 */
#include "xent.h"

#include "check.h"

#include <math.h>
#include <stddef.h>

static void s_check_cpu(const xent_params_t *p, const int32_t *target, const int32_t *target_mix,
                        const float *lam)
{
    NF_CHECK(p->n > 0 && p->c > 0, "xent: bad shape n=%d c=%d", p->n, p->c);
    NF_CHECK(p->smoothing >= 0 && p->smoothing <= 1, "xent: smoothing %g", (double)p->smoothing);
    NF_CHECK(p->dtype == KDTYPE_F32, "xent CPU ops are fp32 only (dtype %s)",
             kdtype_name(p->dtype));
    NF_CHECK((target_mix == NULL) == (lam == NULL),
             "xent: Mixup needs both target_mix and lam (or neither)");
    for (int j = 0; target && j < p->n; j++) {
        NF_CHECK(target[j] >= 0 && target[j] < p->c, "xent: target[%d] = %d outside [0, %d)", j,
                 target[j], p->c);
        NF_CHECK(!target_mix || (target_mix[j] >= 0 && target_mix[j] < p->c),
                 "xent: target_mix[%d] = %d outside [0, %d)", j, target_mix[j], p->c);
    }
}

// max and log(sum exp(o - max)) of one row.
static void s_row_lse(const float *o, int c, double *mx, double *log_z)
{
    double m = o[0];
    for (int k = 1; k < c; k++)
        if (o[k] > m) m = o[k];
    double z = 0;
    for (int k = 0; k < c; k++) z += exp((double)o[k] - m);
    *mx = m;
    *log_z = log(z);
}

// Weight of target, partner, as the loss mixes them (1, 0 without Mixup).
static double s_lam(const float *lam, int j) { return lam ? (double)lam[j] : 1.0; }

void xent_forward_cpu(float *loss, float *loss_per_sample, const float *logits,
                      const int32_t *target, const int32_t *target_mix, const float *lam,
                      const xent_params_t *p)
{
    s_check_cpu(p, target, target_mix, lam);
    const int C = p->c;
    const double eps = p->smoothing;
    double total = 0;
    for (int j = 0; j < p->n; j++) {
        const float *o = logits + (size_t)j * C;
        double mx, log_z;
        s_row_lse(o, C, &mx, &log_z);
        // lp[k] = o[k] - mx - log_z;  -sum_k lp[k] = C*(mx + log_z) - sum_k o[k]
        double sum_o = 0;
        for (int k = 0; k < C; k++) sum_o += o[k];
        const double neg_sum_lp = (double)C * (mx + log_z) - sum_o;
        const double nll_y = mx + log_z - o[target[j]];  // -lp[y]
        const double l = s_lam(lam, j);
        double nll = l * nll_y;
        if (target_mix) nll += (1.0 - l) * (mx + log_z - o[target_mix[j]]);
        // L_j = (eps/C)(-sum lp) + (1 - eps)(lam (-lp[y]) + (1 - lam)(-lp[y2]))
        const double lj = eps / C * neg_sum_lp + (1.0 - eps) * nll;
        if (loss_per_sample) loss_per_sample[j] = (float)lj;
        total += lj;
    }
    *loss = (float)(total / p->n);
}

void xent_backward_cpu(float *dlogits, const float *logits, const int32_t *target,
                       const int32_t *target_mix, const float *lam, const xent_params_t *p)
{
    s_check_cpu(p, target, target_mix, lam);
    const int C = p->c;
    const double eps = p->smoothing;
#pragma omp parallel for schedule(static)
    for (int j = 0; j < p->n; j++) {
        const float *o = logits + (size_t)j * C;
        float *d = dlogits + (size_t)j * C;
        double mx, log_z;
        s_row_lse(o, C, &mx, &log_z);
        const double l = s_lam(lam, j);
        // dL/do[k] = (softmax[k] - q[k]) / N, q = eps/C + (1-eps)(lam [k=y] + (1-lam) [k=y2])
        for (int k = 0; k < C; k++) {
            double q = eps / C;
            if (k == target[j]) q += (1.0 - eps) * l;
            if (target_mix && k == target_mix[j]) q += (1.0 - eps) * (1.0 - l);
            d[k] = (float)((exp((double)o[k] - mx - log_z) - q) / p->n);
        }
    }
}

void xent_softmax_cpu(float *probs, const float *logits, const xent_params_t *p)
{
    s_check_cpu(p, NULL, NULL, NULL);
    const int C = p->c;
#pragma omp parallel for schedule(static)
    for (int j = 0; j < p->n; j++) {
        double mx, log_z;
        s_row_lse(logits + (size_t)j * C, C, &mx, &log_z);
        for (int k = 0; k < C; k++)
            probs[(size_t)j * C + k] = (float)exp((double)logits[(size_t)j * C + k] - mx - log_z);
    }
}
