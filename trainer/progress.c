/*
 * progress.c: see progress.h.
 */
#include "progress.h"

#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void progress_init(progress_t *p)
{
    memset(p, 0, sizeof *p);
    p->enabled = isatty(STDERR_FILENO) && !getenv("NF_NO_BAR");
}

void progress_begin(progress_t *p, const char *desc, int total)
{
    snprintf(p->desc, sizeof p->desc, "%s", desc);
    p->total = total;
    p->done = 0;
    p->images = 0;
    p->t0 = nf_now_s();
    p->last = 0;
}

void progress_update(progress_t *p, int done, double images)
{
    p->done = done;
    p->images = images;
    if (!p->enabled) return;
    double now = nf_now_s();
    if (p->drawn && now - p->last < 0.1 && done < p->total) return;
    p->last = now;
    double el = now - p->t0;
    double eta = done > 0 ? el * (p->total - done) / done : 0.0;
    enum { W = 24 };
    // eighths of a cell, as tqdm draws them
    static const char *const part[8] = {"", "\u258f", "\u258e", "\u258d",
                                        "\u258c", "\u258b", "\u258a", "\u2589"};
    int eighths = p->total > 0 ? (int)((long long)done * W * 8 / p->total) : 0;
    char bar[W * 4 + 8] = "";
    size_t len = 0;
    for (int i = 0; i < eighths / 8; i++) len += (size_t)sprintf(bar + len, "\u2588");
    int cells = eighths / 8;
    if (cells < W && eighths % 8) {
        len += (size_t)sprintf(bar + len, "%s", part[eighths % 8]);
        cells++;
    }
    for (; cells < W; cells++) bar[len++] = ' ';
    bar[len] = 0;
    char a[16], b[16], rate[32] = "";
    if (images > 0 && el > 0) snprintf(rate, sizeof rate, ", %.1f img/s", images / el);
    fprintf(stderr, "\r\033[K%s |%s| %d/%d [%s<%s%s]", p->desc, bar, done, p->total,
            nf_format_time(el, a), nf_format_time(eta, b), rate);
    fflush(stderr);
    p->drawn = true;
}

void progress_clear(progress_t *p)
{
    if (!p->enabled || !p->drawn) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    p->drawn = false;
}
