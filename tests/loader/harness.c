/*
 * harness.c: see harness.h.
 */
#include "harness.h"

#include "check.h"
#include "jpegfix.h"
#include "log.h"
#include "testlib.h"
#include "timeutil.h"
#include "zmqutil.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *s_coord_main(void *arg)
{
    h_coord_t *h = arg;
    h->rc = loader_coordinator_run(h->co);
    return NULL;
}

void h_coord_start(h_coord_t *h, const char *name, const char *root,
                   const loader_coordinator_config_t *cfg)
{
    memset(h, 0, sizeof *h);
    char err[512];
    loader_dataset_config_t dc = {.root = root, .mode = LOADER_SPLIT_FOLDERS};
    h->ds = loader_dataset_new(&dc, err, sizeof err);
    NF_CHECK(h->ds != NULL, "dataset %s: %s", root, err);
    NF_CHECK(pipe(h->stop_pipe) == 0, "pipe");
    loader_coordinator_config_t c = cfg ? *cfg : (loader_coordinator_config_t){0};
    if (strncmp(name, "tcp", 3) == 0) snprintf(h->endpoint, sizeof h->endpoint, "tcp://127.0.0.1:*");
    else snprintf(h->endpoint, sizeof h->endpoint, "ipc://%s/%s.ipc", t_tmpdir(), name);
    c.bind = h->endpoint;
    c.dataset = h->ds;
    c.stop_fd = h->stop_pipe[0];
    if (!c.heartbeat_ms) c.heartbeat_ms = 100;
    if (!c.worker_timeout_ms) c.worker_timeout_ms = 1500;
    if (!c.task_timeout_ms) c.task_timeout_ms = 20000;
    if (!c.ack_timeout_ms) c.ack_timeout_ms = 20000;
    if (!c.seed) c.seed = 42;
    h->co = loader_coordinator_new(&c);
    NF_CHECK(h->co != NULL, "coordinator on %s", h->endpoint);
    snprintf(h->endpoint, sizeof h->endpoint, "%s", loader_coordinator_endpoint(h->co));
    NF_CHECK(pthread_create(&h->thread, NULL, s_coord_main, h) == 0, "pthread_create");
}

void h_coord_stop(h_coord_t *h, loader_coordinator_stats_t *stats)
{
    NF_CHECK(write(h->stop_pipe[1], "x", 1) == 1, "write stop pipe");
    NF_CHECK(pthread_join(h->thread, NULL) == 0, "pthread_join");
    T_CHECK(h->rc == 0, "coordinator run returned %d", h->rc);
    if (stats) loader_coordinator_stats(h->co, stats);
    loader_coordinator_destroy(&h->co);
    loader_dataset_destroy(&h->ds);
    close(h->stop_pipe[0]);
    close(h->stop_pipe[1]);
}

pid_t h_worker(const char *endpoint)
{
    char bin[1024];
    t_bin("loader", bin, sizeof bin);
    char *argv[] = {bin, "worker", "--connect", (char *)endpoint, "--heartbeat-ms", "100",
                    "--timeout-ms", "3000", NULL};
    pid_t pid = nf_spawn(argv);
    NF_CHECK(pid > 0, "cannot start %s", bin);
    return pid;
}

void h_worker_stop(pid_t pid)
{
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    double end = nf_now_s() + 5;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) return;
        if (nf_now_s() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return;
        }
        nf_sleep_ms(10);
    }
}

const char *h_make_dataset(const char *name, uint32_t classes, uint32_t train_per_class,
                           uint32_t valid_per_class, bool bad_train, bool bad_valid)
{
    static char root[512];
    snprintf(root, sizeof root, "%s/%s", t_tmpdir(), name);
    char path[1024];
    uint32_t seed = 0;
    for (int split = 0; split < 2; split++) {
        const char *dir = split ? "val" : "train";
        uint32_t per = split ? valid_per_class : train_per_class;
        for (uint32_t c = 0; c < classes; c++)
            for (uint32_t i = 0; i < per; i++) {
                seed++;
                // sizes vary, landscape and portrait, so random crops move
                uint32_t w = 64 + (seed * 37) % 150, h = 64 + (seed * 53) % 150;
                snprintf(path, sizeof path, "%s/%s/c%u/%03u.jpg", root, dir, c, i);
                jf_write_good(path, w, h, seed, seed % 7 == 3 ? JF_GRAY : JF_RGB);
            }
        if ((split == 0 && bad_train) || (split == 1 && bad_valid))
            for (int k = 0; k < JF_BAD_N; k++) {
                snprintf(path, sizeof path, "%s/%s/c0/bad%d.jpg", root, dir, k);
                jf_write_bad(path, (jf_bad_t)k);
            }
    }
    return root;
}

uint64_t h_fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

void h_consume(loader_consumer_t *con, const loader_stream_request_t *req, uint32_t n_items,
               h_epoch_t *out, void (*after_batch)(uint32_t batches, void *arg), void *arg)
{
    memset(out, 0, sizeof *out);
    loader_epoch_plan_t plan;
    if (loader_consumer_start(con, req, &plan, 20000) != 0) {
        T_CHECK(0, "stream %u epoch %u did not start: %s", req->stream, req->epoch, strerror(errno));
        return;
    }
    out->n_batches = plan.n_batches;
    out->n_items = n_items;
    out->digest = nf_xcalloc(plan.n_batches + 1, sizeof *out->digest);
    out->sizes = nf_xcalloc(plan.n_batches + 1, sizeof *out->sizes);
    out->seen = nf_xcalloc(n_items + 1, sizeof *out->seen);
    uint32_t last_seq = 0;
    bool in_order = true;
    for (;;) {
        loader_batch_t *b;
        int got = loader_consumer_next(con, req->stream, &b, 30000);
        if (got == 0) break;
        if (got < 0) {
            T_CHECK(0, "stream %u: %s after %u batches", req->stream, strerror(errno), out->batches);
            return;
        }
        if (req->ordered && out->batches > 0 && b->seq != last_seq + 1) in_order = false;
        last_seq = b->seq;
        uint64_t d = 0xCBF29CE484222325ull;
        d = h_fnv1a(d, b->pixels, (size_t)b->n * b->h * b->w * b->c);
        d = h_fnv1a(d, b->labels, b->n * sizeof *b->labels);
        d = h_fnv1a(d, b->indices, b->n * sizeof *b->indices);
        if (b->seq < plan.n_batches) {
            out->digest[b->seq] = d;
            out->sizes[b->seq] = b->n;
        }
        for (uint32_t i = 0; i < b->n; i++)
            if (b->indices[i] < n_items) out->seen[b->indices[i]]++;
        out->batches++;
        out->samples += b->n;
        loader_consumer_release(con, &b);
        if (after_batch) after_batch(out->batches, arg);
    }
    if (req->ordered) T_CHECK(in_order, "stream %u: batches out of order", req->stream);
    loader_consumer_stats(con, req->stream, &out->stats);
    out->ok = true;
}

void h_epoch_free(h_epoch_t *e)
{
    free(e->digest);
    free(e->sizes);
    free(e->seen);
    memset(e, 0, sizeof *e);
}
