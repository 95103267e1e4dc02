/*
 * fuzz_eval_announce.c: libFuzzer target for what `evaluator --follow` does
 * with what its trainer sends (evaluator/follow.h): each record is decoded as
 * the evaluator's socket does (nf_wire_decode: announcements and control) and
 * every announcement offered to a fresh queue; then the queue is drained as
 * the evaluator does, every checkpoint's path checked with
 * eval_follow_file_ok (in a folder holding a regular file, a FIFO, a folder
 * and a file over the size limit, under the names the seeds use: a FIFO must
 * be refused without blocking) and the evaluated epochs marked done. Every
 * item must be in range (a printable path of < 1024 bytes, epoch 1..2^24-1,
 * sizes in range) and no epoch may come out twice.
 */
#include "check.h"
#include "follow.h"
#include "fsutil.h"
#include "fuzzmsg.h"
#include "log.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char s_dir[1024];

static void s_init(void)
{
    nf_log_init(&(nf_log_config_t){.stage = "fuzz", .level = NF_LOG_ERROR});
    snprintf(s_dir, sizeof s_dir, "%s", fz_tmpdir("eval_announce"));
    char p[1200];
    snprintf(p, sizeof p, "%s/ckpt.safetensors", s_dir);
    NF_CHECK(nf_write_file_atomic(p, "x", 1) == 0, "file");
    snprintf(p, sizeof p, "%s/fifo.safetensors", s_dir);
    NF_CHECK(mkfifo(p, 0600) == 0, "mkfifo");
    snprintf(p, sizeof p, "%s/dir.safetensors", s_dir);
    NF_CHECK(nf_mkdir_p(p) == 0, "mkdir");
    snprintf(p, sizeof p, "%s/big.safetensors", s_dir);
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    NF_CHECK(fd >= 0 && ftruncate(fd, 2 << 20) == 0 && close(fd) == 0, "sparse file");
    // the seeds name the files relative to this folder
    NF_CHECK(chdir(s_dir) == 0, "chdir");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_dir[0]) s_init();
    fz_record_t rec[FZ_MAX_RECORDS];
    size_t n = fz_records(data, size, rec);
    nf_wire_expect_t ex = {.job = "netteflow",
                           .bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_CHECKPOINT_ANNOUNCE) |
                                     NF_WIRE_BODY(NF__ENVELOPE__BODY_CONTROL)};
    eval_follow_t *f = eval_follow_new(&(eval_follow_config_t){.max_pending = 16,
                                                               .max_file_bytes = 1 << 20});
    uint32_t done[FZ_MAX_RECORDS];  // epochs evaluated
    size_t n_done = 0;
    for (size_t i = 0; i < n; i++) {
        nf_wire_drop_t why;
        const char *detail;
        Nf__Envelope *env = nf_wire_decode(&ex, rec[i].env, rec[i].env_len,
                                           (rec[i].flags & FZ_PAYLOAD) != 0, rec[i].payload_len,
                                           &why, &detail);
        if (!env) continue;
        if (env->body_case == NF__ENVELOPE__BODY_CHECKPOINT_ANNOUNCE) {
            const char *reason = NULL;
            int r = eval_follow_offer(f, env->checkpoint_announce, &reason);
            NF_CHECK(r >= 0 || reason, "a refusal without a reason");
        }
        nf__envelope__free_unpacked(env, NULL);
        // the evaluator takes one checkpoint between socket rounds
        if (!(rec[i].flags & FZ_SECOND)) continue;
        const eval_follow_item_t *q = eval_follow_next(f);
        if (!q) continue;
        size_t len = strlen(q->path);
        NF_CHECK(len > 0 && len < sizeof q->path && q->epoch >= 1 && q->epoch < (1u << 24) &&
                     q->size <= 4096 && q->presize <= 4096 && q->bs <= 4096,
                 "an item out of range");
        char err[1200];
        if (eval_follow_file_ok(f, q->path, err, sizeof err) == 0) {
            struct stat sb;
            NF_CHECK(stat(q->path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size <= 1 << 20,
                     "%s was let through", q->path);
            for (size_t k = 0; k < n_done; k++)
                NF_CHECK(done[k] != q->epoch, "epoch %u evaluated twice", q->epoch);
            done[n_done++] = q->epoch;
            eval_follow_done(f, q->epoch);
        }
    }
    eval_follow_destroy(&f);
    return 0;
}
