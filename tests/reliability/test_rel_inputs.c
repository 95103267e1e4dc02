/*
 * test_rel_inputs.c: files that are not files. A worker reads whatever path a
 * task names under its dataset root, and the tree can change after it was
 * indexed (or a worker may use its own copy): a FIFO, a device, a folder or a
 * sparse 300 MB file with an image name must each come back at once as a bad
 * sample with a reason, never block or read without end. A watchdog (alarm)
 * turns a hang into a failure.
 */
#include "decode.h"
#include "fsutil.h"
#include "log.h"
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void s_expect(const char *path, loader_bad_t want, const char *what)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    loader_bad_t why = LOADER_BAD_NONE;
    char detail[128] = "";
    alarm(5);
    long n = loader_read_file(path, &buf, &cap, &why, detail, sizeof detail);
    alarm(0);
    T_CHECK(n == -1 && why == want && detail[0], "%s: %ld, %s (%s)", what, n,
            why == LOADER_BAD_NONE ? "read" : loader_bad_name(why), detail);
    free(buf);
}

int main(void)
{
    nf_log_init(&(nf_log_config_t){.stage = "test", .level = NF_LOG_ERROR});
    char path[600];
    snprintf(path, sizeof path, "%s/fifo.jpg", t_tmpdir());
    NF_CHECK(mkfifo(path, 0600) == 0, "mkfifo");
    s_expect(path, LOADER_BAD_IO, "a FIFO (no writer: must not wait for one)");
    snprintf(path, sizeof path, "%s/zero.jpg", t_tmpdir());
    NF_CHECK(symlink("/dev/zero", path) == 0, "symlink");
    s_expect(path, LOADER_BAD_IO, "a device (endless)");
    snprintf(path, sizeof path, "%s/dir.jpg", t_tmpdir());
    NF_CHECK(nf_mkdir_p(path) == 0, "mkdir");
    s_expect(path, LOADER_BAD_IO, "a folder");
    snprintf(path, sizeof path, "%s/huge.jpg", t_tmpdir());
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    NF_CHECK(fd >= 0 && ftruncate(fd, (off_t)300 << 20) == 0 && close(fd) == 0, "sparse file");
    s_expect(path, LOADER_BAD_TOO_LARGE, "a 300 MB file (not read)");
    snprintf(path, sizeof path, "%s/missing.jpg", t_tmpdir());
    s_expect(path, LOADER_BAD_IO, "a file that vanished");
    return t_done();
}
