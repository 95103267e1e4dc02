/*
 * fsutil.h: files written atomically, and small file helpers.
 *
 * An atomic file is written to "<path>.tmp.<pid>" in the same directory, then
 * flushed, fsync'ed, renamed over <path>, and the directory is fsync'ed, so a
 * reader (the streaming evaluator, a resumed trainer) only ever sees the old
 * complete file or the new complete file. A failed write (full disk, I/O
 * error) removes the temporary file and leaves <path> untouched. A writer
 * killed mid-write leaves its temporary file; the next nf_afile_open() of the
 * same path removes temporary files whose writer process is gone.
 */
#ifndef NF_FSUTIL_H
#define NF_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct nf_afile_t nf_afile_t;

// Opens a temporary file beside path. NULL (errno set, logged) on failure.
nf_afile_t *nf_afile_open(const char *path);
// The stream to write to. Writes are checked at commit time (ferror).
FILE *nf_afile_stream(nf_afile_t *f);
// Flushes, fsyncs, renames over the target, fsyncs the directory; frees f and
// nulls *f_p. Returns 0, or -1 (logged; target untouched, temp removed).
int nf_afile_commit(nf_afile_t **f_p);
// Discards the temporary file; frees f and nulls *f_p. Accepts NULL.
void nf_afile_abort(nf_afile_t **f_p);

// Whole-file helpers. nf_write_file_atomic returns 0 or -1 (logged).
int nf_write_file_atomic(const char *path, const void *data, size_t len);
// Reads a whole file into a malloc'ed buffer (NUL-terminated); NULL on error.
// *len_out gets the size without the terminator. max_len bounds the size read.
void *nf_read_file(const char *path, size_t max_len, size_t *len_out);

// mkdir -p. Returns 0 or -1 (errno set).
int nf_mkdir_p(const char *path);
bool nf_is_dir(const char *path);
bool nf_is_file(const char *path);

#endif
