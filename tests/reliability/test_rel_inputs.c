/*
 * test_rel_inputs.c: files that are not files. A worker reads whatever path a
 * task names under its dataset root, and the tree can change after it was
 * indexed (or a worker may use its own copy): a FIFO, a device, a folder or a
 * sparse 300 MB file with an image name must each come back at once as a bad
 * sample with a reason, never block or read without end. A watchdog (alarm)
 * turns a hang into a failure.
 *
 * And what would need more memory than there is, in 1 GiB of address space:
 * with the pixel limit lifted (a user's --max-pixels) a JPEG whose header
 * claims 60000 x 60000 pixels is a TOO_LARGE bad file and the decoder goes on
 * with the next file (an abort would kill every worker that drew it in turn);
 * a 60-byte pack index (loader/pack.h) claiming 2^28 items, checksum right,
 * is refused with a reason (found by fuzz_pack). Skipped under
 * AddressSanitizer, which needs the address space.
 */
#include "decode.h"
#include "fsutil.h"
#include "jpegfix.h"
#include "pack.h"
#include "log.h"
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

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

#if defined(__SANITIZE_ADDRESS__)
static const bool s_asan = true;
#else
static const bool s_asan = false;
#endif

// In a child with 1 GiB of address space: returns 0 when the bomb was a
// TOO_LARGE bad file, a good file still decodes afterwards, and the
// over-claiming pack index was refused.
static int s_child_bomb(void)
{
    size_t bomb_len, good_len;
    char path[600];
    snprintf(path, sizeof path, "%s/bomb.jpg", t_tmpdir());
    jf_write_bad(path, JF_BAD_OVERSIZED);
    uint8_t *bomb = nf_read_file(path, 1 << 20, &bomb_len);
    uint8_t *good = jf_jpeg(64, 48, 1, JF_RGB, &good_len);
    NF_CHECK(bomb && good, "files");
    struct rlimit lim = {.rlim_cur = (rlim_t)1 << 30, .rlim_max = (rlim_t)1 << 30};
    NF_CHECK(setrlimit(RLIMIT_AS, &lim) == 0, "setrlimit");
    loader_decoder_t *dec = loader_decoder_new();
    NF_CHECK(dec, "decoder");
    static uint8_t out[32 * 32 * 3];
    loader_presize_params_t p = {.size = 32, .max_pixels = UINT64_MAX, .exact = true};
    loader_decode_info_t info;
    int rc = loader_decoder_presize(dec, &p, bomb, bomb_len, out, &info);
    T_CHECK(rc == -1 && info.bad == LOADER_BAD_TOO_LARGE, "bomb: %d %s (%s)", rc,
            rc ? loader_bad_name(info.bad) : "decoded", info.detail);
    rc = loader_decoder_presize(dec, &p, good, good_len, out, &info);
    T_CHECK(rc == 0, "the next file decodes (%s)", info.detail);
    loader_decoder_destroy(&dec);
    free(bomb);
    free(good);
    // a pack index that claims more items than it holds
    char dir[600], idx[700], err[256] = "";
    snprintf(dir, sizeof dir, "%s/claims", t_tmpdir());
    NF_CHECK(nf_mkdir_p(dir) == 0, "mkdir");
    snprintf(idx, sizeof idx, "%s/%s", dir, LOADER_PACK_INDEX);
    uint8_t head[64] = "NFPACK01";
    const uint32_t fields[6] = {1, 0, 90, 1, (1u << 28) - 1, 1};  // version .. shards
    memcpy(head + 8, fields, sizeof fields);
    size_t n = 8 + sizeof fields + 16;
    uint32_t crc = (uint32_t)crc32_z(0L, head, n);
    memcpy(head + n, &crc, 4);
    NF_CHECK(nf_write_file_atomic(idx, head, n + 4) == 0, "write");
    loader_pack_t *pack = loader_pack_open(dir, err, sizeof err);
    T_CHECK(!pack && strstr(err, "counts"), "a pack index claiming 2^28 items: %s", err);
    loader_pack_close(&pack);
    return t_failures() ? 1 : 0;
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
    if (s_asan) {
        printf("the out-of-memory part is skipped under AddressSanitizer (it needs the address space)\n");
    } else {
        fflush(NULL);
        pid_t pid = fork();
        NF_CHECK(pid >= 0, "fork");
        if (pid == 0) _exit(s_child_bomb());
        int status;
        NF_CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "more than the memory there is: refused, no abort (child status 0x%x)", status);
    }
    return t_done();
}
