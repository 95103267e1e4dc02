/*
 * augment.c: the augment context (see augment.h): config checks, buffers
 * sized once, the per-batch draw -> transform -> metadata sequence, the one
 * dispatch point between the CPU and CUDA backends, and Normalize's
 * computed statistics.
 */
#include "augment.h"

#include "augment_cuda.h"
#include "check.h"
#include "log.h"
#include "transform.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct augment_t {
    augment_config_t cfg;
    augment_batch_params_t bp;    // last batch
    augment_image_params_t *img;  // (max_batch) last batch
    void *ws;                     // CPU workspace (augment_transform_workspace_bytes)
    size_t ws_bytes;
    int threads;                  // CPU threads (cfg.threads, or OpenMP's default)
    augment_cuda_t *cuda;         // CUDA backend, or NULL on CPU
    uint64_t bad_batches;
};

augment_t *augment_new(const augment_config_t *cfg)
{
    char err[200];
    if (augment_config_check(cfg, err, sizeof err) != 0) {
        nf_log_error("augment: bad config: %s", err);
        return NULL;
    }
    augment_t *self = nf_xcalloc(1, sizeof *self);
    self->cfg = *cfg;
    self->img = nf_xcalloc((size_t)cfg->max_batch, sizeof *self->img);
    if (cfg->backend == AUGMENT_BACKEND_CUDA) {
        self->cuda = augment_cuda_new(cfg);
        if (!self->cuda) {
            augment_destroy(&self);
            return NULL;
        }
    } else {
        self->threads = cfg->threads > 0 ? cfg->threads : omp_get_max_threads();
        augment_workspace_shape_t shape = {.max_n = cfg->max_batch, .presize = cfg->presize,
                                           .size = cfg->size, .threads = self->threads,
                                           .mixup = cfg->mixup_alpha > 0,
                                           .resample = cfg->resample};
        self->ws_bytes = augment_transform_workspace_bytes(AUGMENT_BACKEND_CPU, &shape);
        self->ws = nf_xaligned(self->ws_bytes);
    }
    return self;
}

void augment_destroy(augment_t **self_p)
{
    if (!self_p || !*self_p) return;
    augment_t *self = *self_p;
    augment_cuda_destroy(&self->cuda);
    free(self->ws);
    free(self->img);
    free(self);
    *self_p = NULL;
}

size_t augment_out_bytes(const augment_t *self, int n)
{
    size_t elem = self->cfg.dtype == AUGMENT_DTYPE_F32 ? sizeof(float) : sizeof(uint16_t);
    return (size_t)n * (size_t)self->cfg.size * (size_t)self->cfg.size * 3 * elem;
}

static int s_batch(augment_t *self, augment_out_t *out, const augment_raw_t *raw, bool device);

int augment_batch(augment_t *self, augment_out_t *out, const augment_raw_t *raw)
{
    return s_batch(self, out, raw, false);
}

int augment_batch_device(augment_t *self, augment_out_t *out, const augment_raw_t *raw)
{
    if (!self->cuda) {
        nf_log_error("augment: device output needs the CUDA backend");
        return -1;
    }
    return s_batch(self, out, raw, true);
}

void *augment_stream(const augment_t *self)
{
    return self->cuda ? augment_cuda_stream(self->cuda) : NULL;
}

static int s_batch(augment_t *self, augment_out_t *out, const augment_raw_t *raw, bool device)
{
    char err[200];
    if (augment_raw_check(&self->cfg, raw, err, sizeof err) != 0) {
        self->bad_batches++;
        nf_log_warn("augment: dropped raw batch (epoch %u seq %u): %s", raw->epoch, raw->seq, err);
        return -1;
    }
    NF_CHECK(out && out->pixels, "augment_batch needs an output buffer");
    augment_params_draw(&self->cfg, raw, &self->bp, self->img);

    if (device) {
        augment_cuda_run_device(self->cuda, &self->bp, self->img, raw->pixels, out->pixels,
                                self->cfg.dtype);
    } else if (self->cuda) {
        augment_cuda_run(self->cuda, &self->bp, self->img, raw->pixels, out->pixels,
                         self->cfg.dtype);
    } else {
        augment_transform_args_t a = {.batch = self->bp,
                                      .img = self->img,
                                      .src = raw->pixels,
                                      .out = out->pixels,
                                      .dtype = self->cfg.dtype,
                                      .ws = self->ws,
                                      .ws_bytes = self->ws_bytes,
                                      .threads = self->threads};
        augment_transform_cpu(&a);
    }

    for (int i = 0; i < raw->n; i++) {
        int32_t label = raw->labels ? raw->labels[i] : -1;
        int32_t partner = raw->labels ? raw->labels[self->img[i].partner] : -1;
        if (out->labels) out->labels[i] = label;
        if (out->partner_labels) out->partner_labels[i] = partner;
        if (out->weights) out->weights[i] = self->img[i].lambda;
    }
    out->n = raw->n;
    out->h = out->w = self->cfg.size;
    out->c = 3;
    out->dtype = self->cfg.dtype;
    return 0;
}

uint64_t augment_bad_batches(const augment_t *self) { return self->bad_batches; }

int augment_compute_stats(augment_t *self, const augment_raw_t *raw, float mean[3], float std[3])
{
    // run the pipeline up to (not including) Normalize, in f32, without Mixup
    augment_config_t saved = self->cfg;
    self->cfg.normalize = false;
    self->cfg.mixup_alpha = 0.0f;
    self->cfg.dtype = AUGMENT_DTYPE_F32;
    augment_out_t out = {0};
    int n = raw->n < 1 ? 1 : raw->n > self->cfg.max_batch ? self->cfg.max_batch : raw->n;
    out.pixels = nf_xmalloc(augment_out_bytes(self, n));  // a bad n is rejected by augment_batch
    int rc = augment_batch(self, &out, raw);
    self->cfg = saved;
    if (rc == 0)
        augment_stats_f32(out.pixels, (size_t)out.n * (size_t)out.h * (size_t)out.w, mean, std);
    free(out.pixels);
    return rc;
}

void augment_stats_f32(const float *x, size_t count, float mean[3], float std[3])
{
    NF_CHECK(count >= 2, "statistics need at least two pixels");
    // two passes in double: the mean, then the sum of squared deviations
    double sum[3] = {0, 0, 0}, ss[3] = {0, 0, 0};
    for (size_t i = 0; i < count; i++)
        for (int c = 0; c < 3; c++) sum[c] += x[i * 3 + c];
    for (int c = 0; c < 3; c++) sum[c] /= (double)count;
    for (size_t i = 0; i < count; i++)
        for (int c = 0; c < 3; c++) {
            double d = x[i * 3 + c] - sum[c];
            ss[c] += d * d;
        }
    for (int c = 0; c < 3; c++) {
        mean[c] = (float)sum[c];
        std[c] = (float)sqrt(ss[c] / (double)(count - 1)) + 1e-7f;
    }
}

void augment_set_stats(augment_t *self, const float mean[3], const float std[3])
{
    for (int c = 0; c < 3; c++) {
        NF_CHECK(std[c] > 0.0f && isfinite(mean[c]), "bad stats for channel %d", c);
        self->cfg.mean[c] = mean[c];
        self->cfg.std[c] = std[c];
    }
    self->cfg.normalize = true;
}

double augment_last_kernel_ms(const augment_t *self)
{
    return self->cuda ? augment_cuda_last_kernel_ms(self->cuda) : -1.0;
}

int augment_cuda_devices(void) { return augment_cuda_device_count(); }

// ---------------------------------------------------------------------------
// names

static int s_parse(const char *s, const char *const *names, int count, int *out)
{
    for (int i = 0; i < count; i++)
        if (s && strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    return -1;
}

static const char *const s_modes[] = {"train", "valid", "tta"};
static const char *const s_resamples[] = {"fused", "reference"};
static const char *const s_dtypes[] = {"f32", "bf16"};
static const char *const s_backends[] = {"cpu", "cuda"};

int augment_mode_parse(const char *s, augment_mode_t *out)
{
    int v;
    if (s_parse(s, s_modes, 3, &v) != 0) return -1;
    *out = (augment_mode_t)v;
    return 0;
}

int augment_resample_parse(const char *s, augment_resample_t *out)
{
    int v;
    if (s_parse(s, s_resamples, 2, &v) != 0) return -1;
    *out = (augment_resample_t)v;
    return 0;
}

int augment_dtype_parse(const char *s, augment_dtype_t *out)
{
    int v;
    if (s_parse(s, s_dtypes, 2, &v) != 0) return -1;
    *out = (augment_dtype_t)v;
    return 0;
}

int augment_backend_parse(const char *s, augment_backend_t *out)
{
    int v;
    if (s_parse(s, s_backends, 2, &v) != 0) return -1;
    *out = (augment_backend_t)v;
    return 0;
}

const char *augment_resample_name(augment_resample_t r)
{
    return r == AUGMENT_RESAMPLE_REFERENCE ? "reference" : "fused";
}
