/*
 * timeutil.c: see timeutil.h.
 */
#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

double nf_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int64_t nf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t nf_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void nf_sleep_ms(int64_t ms)
{
    if (ms <= 0) return;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

const char *nf_format_time(double seconds, char buf[16])
{
    long t = seconds < 0 ? 0 : seconds > 3.6e8 ? 360000000L : (long)seconds;
    unsigned h = (unsigned)(t / 3600) % 100000u, m = (unsigned)((t % 3600) / 60) % 60u,
             s = (unsigned)(t % 60) % 60u;
    if (h > 0)
        snprintf(buf, 16, "%u:%02u:%02u", h, m, s);
    else
        snprintf(buf, 16, "%02u:%02u", m, s);
    return buf;
}
