/*
 * log.c: see log.h. Each record is formatted into one buffer and written with
 * a single write(2) so records from concurrent threads never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct {
    char stage[32];
    nf_log_level_t level;
    FILE *file;
    bool quiet_stderr;
} s_log = {"netteflow", NF_LOG_INFO, NULL, false};

static nf_log_level_t s_parse_level(const char *s, nf_log_level_t dflt)
{
    if (!s || !*s) return dflt;
    if (!strcasecmp(s, "error")) return NF_LOG_ERROR;
    if (!strcasecmp(s, "warn")) return NF_LOG_WARN;
    if (!strcasecmp(s, "info")) return NF_LOG_INFO;
    if (!strcasecmp(s, "debug")) return NF_LOG_DEBUG;
    return dflt;
}

void nf_log_init(const nf_log_config_t *cfg)
{
    snprintf(s_log.stage, sizeof s_log.stage, "%s", cfg && cfg->stage ? cfg->stage : "netteflow");
    s_log.level = s_parse_level(getenv("NF_LOG_LEVEL"), cfg ? cfg->level : NF_LOG_INFO);
    nf_log_close();
    if (cfg && cfg->file) {
        s_log.file = fopen(cfg->file, "a");
        if (!s_log.file) fprintf(stderr, "warning: cannot open log file %s\n", cfg->file);
    }
    s_log.quiet_stderr = cfg && cfg->quiet_stderr && s_log.file;
}

void nf_log_close(void)
{
    if (s_log.file) fclose(s_log.file);
    s_log.file = NULL;
}

bool nf_log_enabled(nf_log_level_t level) { return level <= s_log.level; }

void nf_log(nf_log_level_t level, const char *fmt, ...)
{
    if (level > s_log.level) return;
    static const char tag[] = "EWID";
    char buf[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%d] %c ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000), s_log.stage, (int)getpid(), tag[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : ((size_t)m < sizeof buf - (size_t)n - 1 ? (size_t)m : sizeof buf - (size_t)n - 2));
    buf[len++] = '\n';
    if (!s_log.quiet_stderr || level <= NF_LOG_WARN) {
        ssize_t w = write(STDERR_FILENO, buf, len);
        (void)w;  // nowhere left to report a failed write to stderr
    }
    if (s_log.file) {
        fwrite(buf, 1, len, s_log.file);
        fflush(s_log.file);
    }
}
