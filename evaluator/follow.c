/*
 * follow.c: see follow.h. A FIFO of announcements in a growing array (the
 * evaluated prefix is dropped as the queue moves on).
 */
#include "follow.h"

#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { S_MAX_EPOCH = 1 << 24, S_MAX_SIDE = 4096, S_MAX_BS = 4096 };

struct eval_follow_t {
    eval_follow_config_t cfg;
    eval_follow_item_t *items;  // (cap) items[head, n) wait
    int head, n, cap;
    uint32_t done_epoch;        // the latest evaluated
};

eval_follow_t *eval_follow_new(const eval_follow_config_t *cfg)
{
    eval_follow_t *self = nf_xcalloc(1, sizeof *self);
    if (cfg) self->cfg = *cfg;
    if (self->cfg.max_pending <= 0) self->cfg.max_pending = 4096;
    if (!self->cfg.max_file_bytes) self->cfg.max_file_bytes = (uint64_t)4 << 30;
    return self;
}

void eval_follow_destroy(eval_follow_t **self_p)
{
    if (!self_p || !*self_p) return;
    free((*self_p)->items);
    free(*self_p);
    *self_p = NULL;
}

static bool s_printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F) return false;
    return true;
}

// An optional side or batch size: absent or 0 (the checkpoint's), else lo..hi.
static bool s_opt(bool has, uint32_t v, uint32_t lo, uint32_t hi)
{
    return !has || v == 0 || (v >= lo && v <= hi);
}

int eval_follow_offer(eval_follow_t *self, const Nf__CheckpointAnnounce *a, const char **why)
{
    size_t len = strlen(a->path);
    if (len == 0 || len >= sizeof self->items->path || !s_printable(a->path, len)) {
        *why = "path empty, too long or not printable";
        return -1;
    }
    if (a->epoch == 0 || a->epoch >= S_MAX_EPOCH) {
        *why = "epoch out of range";
        return -1;
    }
    if (!s_opt(a->has_size, a->size, 2, S_MAX_SIDE) ||
        !s_opt(a->has_presize, a->presize, 2, S_MAX_SIDE) ||
        !s_opt(a->has_batch_size, a->batch_size, 1, S_MAX_BS)) {
        *why = "size, presize or batch size out of range";
        return -1;
    }
    if (a->epoch <= self->done_epoch) return 0;
    for (int i = self->head; i < self->n; i++)
        if (self->items[i].epoch == a->epoch) return 0;
    if (self->n - self->head >= self->cfg.max_pending) {
        *why = "too many announcements waiting";
        return -1;
    }
    if (self->head > 0 && self->n == self->cap) {  // drop the evaluated prefix
        memmove(self->items, self->items + self->head,
                (size_t)(self->n - self->head) * sizeof *self->items);
        self->n -= self->head;
        self->head = 0;
    }
    if (self->n == self->cap) {
        self->cap = self->cap ? 2 * self->cap : 16;
        self->items = nf_xrealloc(self->items, (size_t)self->cap * sizeof *self->items);
    }
    eval_follow_item_t *q = &self->items[self->n++];
    memset(q, 0, sizeof *q);
    memcpy(q->path, a->path, len + 1);
    q->epoch = a->epoch;
    q->size = a->has_size ? a->size : 0;
    q->presize = a->has_presize ? a->presize : 0;
    q->bs = a->has_batch_size ? a->batch_size : 0;
    q->final = a->has_is_final && a->is_final;
    return 1;
}

int eval_follow_pending(const eval_follow_t *self) { return self->n - self->head; }

const eval_follow_item_t *eval_follow_next(eval_follow_t *self)
{
    return self->head < self->n ? &self->items[self->head++] : NULL;
}

void eval_follow_done(eval_follow_t *self, uint32_t epoch)
{
    if (epoch > self->done_epoch) self->done_epoch = epoch;
}

int eval_follow_file_ok(const eval_follow_t *self, const char *path, char *err, size_t err_len)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, err_len, "%s is not a regular file", path);
        return -1;
    }
    if ((uint64_t)sb.st_size > self->cfg.max_file_bytes) {
        snprintf(err, err_len, "%s has %lld bytes, more than a checkpoint's limit of %llu", path,
                 (long long)sb.st_size, (unsigned long long)self->cfg.max_file_bytes);
        return -1;
    }
    return 0;
}
