/*
 * recorder.c: AvgSmoothLoss and fastprogress's console table (recorder.h).
 */
#include "recorder.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

recorder_smooth_t recorder_smooth_make(double beta)
{
    return (recorder_smooth_t){.beta = beta, .val = 0.0f, .count = 0};
}

void recorder_smooth_reset(recorder_smooth_t *s)
{
    s->val = 0.0f;
    s->count = 0;
}

float recorder_smooth_add(recorder_smooth_t *s, float loss)
{
    s->count++;
    // torch.lerp(loss, val, beta) in float32 (the weight rounded to float32).
    // torch's CPU kernel evaluates it as one fused multiply-add:
    // weight < 0.5: fma(weight, end - start, start); else fma(weight - 1, end - start, end)
    float w = (float)s->beta;
    s->val = w < 0.5f ? fmaf(w, s->val - loss, loss) : fmaf(w - 1.0f, s->val - loss, s->val);
    return recorder_smooth_value(s);
}

float recorder_smooth_value(const recorder_smooth_t *s)
{
    if (s->count == 0) return NAN;
    // val / (1 - beta**count): the Python double divisor meets a float32
    // tensor, so it is rounded to float32 first
    double denom = 1.0 - pow(s->beta, s->count);
    return s->val / (float)denom;
}

int recorder_table_init(recorder_table_t *t, const char *const *names, int n)
{
    if (n < 1 || n > RECORDER_MAX_COLS) return -1;
    t->n_cols = n;
    for (int i = 0; i < n; i++) {
        int len = snprintf(t->names[i], RECORDER_MAX_NAME, "%-8s", names[i]);
        if (len < 0 || len >= RECORDER_MAX_NAME) return -1;
    }
    return 0;
}

int recorder_table_header(const recorder_table_t *t, char *buf, size_t len)
{
    size_t k = 0;
    for (int i = 0; i < t->n_cols; i++) {
        int w = snprintf(buf + (k < len ? k : len), k < len ? len - k : 0, "%s%s",
                         i ? "  " : "", t->names[i]);
        if (w < 0) return -1;
        k += (size_t)w;
    }
    return (int)k;
}

int recorder_table_row(const recorder_table_t *t, const char *const *cells, char *buf,
                       size_t len)
{
    size_t k = 0;
    for (int i = 0; i < t->n_cols; i++) {
        // cell + ' ' * (2 + len(name) - len(cell)); Python repeats a negative
        // count zero times
        int pad = 2 + (int)strlen(t->names[i]) - (int)strlen(cells[i]);
        if (pad < 0) pad = 0;
        int w = snprintf(buf + (k < len ? k : len), k < len ? len - k : 0, "%s%*s", cells[i],
                         pad, "");
        if (w < 0) return -1;
        k += (size_t)w;
    }
    return (int)k;
}

const char *recorder_format_float(double v, char buf[48])
{
    if (isnan(v))
        snprintf(buf, 48, "nan");
    else if (isinf(v))
        snprintf(buf, 48, "%s", v > 0 ? "inf" : "-inf");
    else
        snprintf(buf, 48, "%.6f", v);
    return buf;
}
