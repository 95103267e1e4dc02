/*
 * log.h: one-line log records on stderr (and optionally a log file).
 *
 *   2026-11-28T12:34:56.789Z loader[4242] W bad file train/n01440764/x.JPEG: truncated
 *
 * The logger is the one piece of process-wide state in netteflow, like stderr
 * itself: main() calls nf_log_init() once with the stage name; library code
 * only calls nf_log_*(). Level comes from the config or NF_LOG_LEVEL
 * (error|warn|info|debug).
 */
#ifndef NF_LOG_H
#define NF_LOG_H

#include "check.h"

#include <stdbool.h>

typedef enum { NF_LOG_ERROR = 0, NF_LOG_WARN = 1, NF_LOG_INFO = 2, NF_LOG_DEBUG = 3 } nf_log_level_t;

typedef struct {
    const char *stage;     // short stage name printed in every record ("loader", "trainer")
    nf_log_level_t level;  // records above this level are dropped (NF_LOG_LEVEL overrides)
    const char *file;      // also append records to this file when not NULL
    bool quiet_stderr;     // with a file: only warnings and errors also go to stderr
                           // (a stage whose stderr is a user's terminal)
} nf_log_config_t;

// Configures the process logger. Safe to call again (reopens the file).
void nf_log_init(const nf_log_config_t *cfg);
void nf_log_close(void);
bool nf_log_enabled(nf_log_level_t level);
void nf_log(nf_log_level_t level, const char *fmt, ...) NF_PRINTF(2, 3);

#define nf_log_error(...) nf_log(NF_LOG_ERROR, __VA_ARGS__)
#define nf_log_warn(...) nf_log(NF_LOG_WARN, __VA_ARGS__)
#define nf_log_info(...) nf_log(NF_LOG_INFO, __VA_ARGS__)
#define nf_log_debug(...) nf_log(NF_LOG_DEBUG, __VA_ARGS__)

#endif
