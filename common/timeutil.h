/*
 * timeutil.h: clocks. Monotonic seconds for durations and deadlines, wall
 * milliseconds for messages and logs.
 */
#ifndef NF_TIMEUTIL_H
#define NF_TIMEUTIL_H

#include <stdint.h>

double nf_now_s(void);       // CLOCK_MONOTONIC in seconds
int64_t nf_now_ms(void);     // CLOCK_MONOTONIC in milliseconds
int64_t nf_wall_ms(void);    // CLOCK_REALTIME in milliseconds since the epoch
void nf_sleep_ms(int64_t ms);

// Formats seconds as fastai does (fastprogress format_time): "mm:ss", or
// "h:mm:ss" from one hour on; seconds are truncated. buf needs 16 bytes.
const char *nf_format_time(double seconds, char buf[16]);

#endif
