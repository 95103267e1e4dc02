/*
 * follow.h: what `evaluator --follow` takes from a trainer's announcements.
 *
 * A CheckpointAnnounce names a file that this process will open: the path
 * comes from the wire. An announcement is queued only when its fields are in
 * range (a path of 1..1023 printable bytes, epoch 1..2^24-1, size, presize and
 * batch size 0 = the checkpoint's own or 2..4096 / 2..4096 / 1..4096), its
 * epoch is neither evaluated nor queued, and fewer than max_pending wait.
 * Before a queued checkpoint is evaluated, eval_follow_file_ok() checks that
 * its path is a regular file (not a FIFO, whose open would block, nor a
 * device or a folder) of at most max_file_bytes; the checkpoint reader then
 * validates the file all-or-nothing (trainer/ckpt.h).
 *
 * What this module does not do: sockets (evaluator/main.c), evaluation (eval.h).
 */
#ifndef NF_EVALUATOR_FOLLOW_H
#define NF_EVALUATOR_FOLLOW_H

#include "netteflow.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// A checkpoint to evaluate.
typedef struct {
    char path[1024];
    uint32_t epoch;             // epochs completed at it
    uint32_t size, presize, bs; // 0 = the checkpoint's own
    bool final;                 // the run's last: TTA as asked
} eval_follow_item_t;

typedef struct {
    int max_pending;            // announcements queued at most; 0 = 4096
    uint64_t max_file_bytes;    // largest checkpoint file opened; 0 = 4 GiB
} eval_follow_config_t;

typedef struct eval_follow_t eval_follow_t;

eval_follow_t *eval_follow_new(const eval_follow_config_t *cfg);
void eval_follow_destroy(eval_follow_t **self_p);

// Offers a received announcement. Returns 1 when queued, 0 when its epoch
// was evaluated or is queued already (a replay), -1 when refused (*why set).
int eval_follow_offer(eval_follow_t *self, const Nf__CheckpointAnnounce *a, const char **why);
// Announcements waiting.
int eval_follow_pending(const eval_follow_t *self);
// The next checkpoint to evaluate (taken off the queue), or NULL. Valid until
// the next call on self.
const eval_follow_item_t *eval_follow_next(eval_follow_t *self);
// The checkpoint of epoch was evaluated: announcements of it and of earlier
// epochs are not queued again.
void eval_follow_done(eval_follow_t *self, uint32_t epoch);
// Whether the checkpoint at path may be opened: a regular file of at most
// max_file_bytes. Returns 0, or -1 with the reason in err.
int eval_follow_file_ok(const eval_follow_t *self, const char *path, char *err, size_t err_len);

#endif
