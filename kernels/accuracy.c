/*
 * accuracy.c: the fp32 reference of accuracy.h.
 */
#include "accuracy.h"

#include "check.h"

#include <math.h>
#include <stddef.h>

void accuracy_cpu(int32_t *correct, const float *logits, const int32_t *target,
                  const accuracy_params_t *p)
{
    NF_CHECK(p->n > 0 && p->c > 0, "accuracy: bad shape n=%d c=%d", p->n, p->c);
    NF_CHECK(p->dtype == KDTYPE_F32, "accuracy CPU op is fp32 only (dtype %s)",
             kdtype_name(p->dtype));
    int32_t count = 0;
    for (int j = 0; j < p->n; j++) {
        // argmax: first maximum; a NaN beats every number (torch.argmax)
        const float *r = logits + (size_t)j * p->c;
        int best = 0;
        for (int k = 1; k < p->c; k++) {
            if (isnan(r[best])) break;
            if (isnan(r[k]) || r[k] > r[best]) best = k;
        }
        count += best == target[j];
    }
    *correct = count;
}
