/*
 * fsutil.c: see fsutil.h.
 */
#include "fsutil.h"

#include "check.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct nf_afile_t {
    FILE *fp;
    char *path;
    char *tmp;
};

// Removes "<path>.tmp.<pid>" files whose writer process is gone (killed
// mid-write): on a full disk they hold exactly the space a new write needs.
static void s_remove_dead_temps(const char *path)
{
    char *copy = nf_xstrdup(path), *copy2 = nf_xstrdup(path);
    const char *dir = dirname(copy), *base = basename(copy2);
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, base, blen) != 0 || strncmp(e->d_name + blen, ".tmp.", 5) != 0)
            continue;
        const char *digits = e->d_name + blen + 5;
        char *end;
        long pid = strtol(digits, &end, 10);
        if (end == digits || *end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
        char stale[PATH_MAX];
        if (snprintf(stale, sizeof stale, "%s/%s", dir, e->d_name) >= (int)sizeof stale) continue;
        if (unlink(stale) == 0) nf_log_warn("removed %s, left by a writer that died (pid %ld)", stale, pid);
    }
    if (d) closedir(d);
    free(copy);
    free(copy2);
}

nf_afile_t *nf_afile_open(const char *path)
{
    s_remove_dead_temps(path);
    size_t n = strlen(path) + 32;
    char *tmp = nf_xmalloc(n);
    snprintf(tmp, n, "%s.tmp.%d", path, (int)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        nf_log_error("cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return NULL;
    }
    nf_afile_t *f = nf_xcalloc(1, sizeof *f);
    f->fp = fp;
    f->path = nf_xstrdup(path);
    f->tmp = tmp;
    return f;
}

FILE *nf_afile_stream(nf_afile_t *f) { return f->fp; }

static void s_afile_free(nf_afile_t *f)
{
    free(f->path);
    free(f->tmp);
    free(f);
}

static int s_fsync_dir_of(const char *path)
{
    char *copy = nf_xstrdup(path);
    const char *dir = dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int rc = -1;
    if (fd >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    free(copy);
    return rc;
}

int nf_afile_commit(nf_afile_t **f_p)
{
    nf_afile_t *f = *f_p;
    *f_p = NULL;
    int failed = 0;
    const char *why = NULL;
    if (ferror(f->fp)) failed = 1, why = "write error";
    if (!failed && fflush(f->fp) != 0) failed = 1, why = "flush";
    if (!failed && fsync(fileno(f->fp)) != 0) failed = 1, why = "fsync";
    int saved = errno;
    if (fclose(f->fp) != 0 && !failed) failed = 1, why = "close", saved = errno;
    if (!failed && rename(f->tmp, f->path) != 0) failed = 1, why = "rename", saved = errno;
    if (failed) {
        nf_log_error("cannot write %s (%s): %s", f->path, why, strerror(saved));
        unlink(f->tmp);
        s_afile_free(f);
        errno = saved;
        return -1;
    }
    if (s_fsync_dir_of(f->path) != 0)
        nf_log_warn("fsync of the directory of %s failed: %s", f->path, strerror(errno));
    s_afile_free(f);
    return 0;
}

void nf_afile_abort(nf_afile_t **f_p)
{
    nf_afile_t *f = *f_p;
    if (!f) return;
    *f_p = NULL;
    fclose(f->fp);
    unlink(f->tmp);
    s_afile_free(f);
}

int nf_write_file_atomic(const char *path, const void *data, size_t len)
{
    nf_afile_t *f = nf_afile_open(path);
    if (!f) return -1;
    if (len && fwrite(data, 1, len, nf_afile_stream(f)) != len) {
        nf_log_error("cannot write %s: %s", path, strerror(errno));
        nf_afile_abort(&f);
        return -1;
    }
    return nf_afile_commit(&f);
}

void *nf_read_file(const char *path, size_t max_len, size_t *len_out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || (size_t)st.st_size > max_len) {
        fclose(fp);
        errno = EFBIG;
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *buf = nf_xmalloc(n + 1);
    size_t got = fread(buf, 1, n, fp);
    int err = ferror(fp);
    fclose(fp);
    if (err || got != n) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[n] = 0;
    if (len_out) *len_out = n;
    return buf;
}

int nf_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    return nf_is_dir(buf) ? 0 : -1;
}

bool nf_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool nf_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
