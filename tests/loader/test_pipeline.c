/*
 * test_pipeline.c: coordinator + worker processes + consumer over real
 * sockets (ipc:// in a private folder).
 *   1. Imagenette, 3 workers: a valid epoch and a train epoch; every sample
 *      index arrives exactly once (train: every kept one once, drop_last),
 *      labels are the dataset's, counts are fastai's.
 *   2. Same seed, 1 worker vs 3 workers: byte-identical batches per
 *      (epoch, seq) on a generated dataset with random crops, DCT-scaled
 *      decodes and bad files; another epoch differs.
 *   3. Bad files: train batches keep their exact size (spares), no bad file in
 *      a batch; a valid epoch drops each bad file once, counted by reason;
 *      --strict-jpeg also drops the truncated and corrupt files.
 *   4. Two streams at once from one slow consumer with 2 credits each, over
 *      tcp:// (ephemeral ports): both complete exactly once and the
 *      coordinator never had more than 2 batches of a stream un-acked.
 */
#include "fsutil.h"
#include "harness.h"
#include "jpegfix.h"
#include "log.h"
#include "testlib.h"
#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static loader_consumer_t *s_consumer(const char *coord, const char *name)
{
    char sink[512];
    if (strncmp(name, "tcp", 3) == 0) snprintf(sink, sizeof sink, "tcp://127.0.0.1:*");
    else snprintf(sink, sizeof sink, "ipc://%s/%s.ipc", t_tmpdir(), name);
    loader_consumer_config_t cc = {.coordinator = coord, .sink = sink, .heartbeat_ms = 100,
                                   .timeout_ms = 20000};
    loader_consumer_t *con = loader_consumer_new(&cc);
    NF_CHECK(con != NULL, "consumer");
    return con;
}

static void test_imagenette_exactly_once(const char *data)
{
    h_coord_t h;
    h_coord_start(&h, "inet", data, NULL);
    pid_t w[3];
    for (int i = 0; i < 3; i++) w[i] = h_worker(h.endpoint);
    loader_consumer_t *con = s_consumer(h.endpoint, "inet-sink");
    uint32_t n_items = loader_dataset_n_items(h.ds), n_valid, n_train;
    const uint32_t *valid = loader_dataset_split(h.ds, LOADER_VALID, &n_valid);
    const uint32_t *train = loader_dataset_split(h.ds, LOADER_TRAIN, &n_train);
    uint32_t nc;
    const char *const *names;
    T_CHECK(loader_consumer_classes(con, &nc, &names, 10000) == 0 && nc == 10 &&
                strcmp(names[0], "n01440764") == 0,
            "vocabulary from the coordinator");

    double t0 = nf_now_s();
    loader_stream_request_t r = {.stream = 1, .split = LOADER_VALID, .batch_size = 64,
                                 .presize = 96, .credits = 6};
    h_epoch_t e;
    h_consume(con, &r, n_items, &e, NULL, NULL);
    T_CHECK(e.ok && e.n_batches == 62 && e.batches == 62 && e.samples == 3925,
            "valid epoch: %u/%u batches, %u samples", e.batches, e.n_batches, e.samples);
    uint32_t once = 0, wrong = 0;
    for (uint32_t i = 0; i < n_valid; i++) once += e.seen[valid[i]] == 1;
    for (uint32_t i = 0; i < n_items; i++) wrong += e.seen[i] > 1;
    T_CHECK(once == n_valid && wrong == 0, "valid: %u of %u indices exactly once, %u more", once,
            n_valid, wrong);
    T_CHECK(e.sizes[61] == 3925 - 61 * 64, "last valid batch partial: %u", e.sizes[61]);
    T_CHECK(e.stats.done && e.stats.bad_files == 0, "EpochDone, no bad files");
    double t_valid = nf_now_s() - t0;
    h_epoch_free(&e);

    t0 = nf_now_s();
    r = (loader_stream_request_t){.stream = 2, .split = LOADER_TRAIN, .epoch = 0, .batch_size = 64,
                                  .presize = 128, .shuffle = true, .drop_last = true,
                                  .random_crop = true, .credits = 6};
    h_consume(con, &r, n_items, &e, NULL, NULL);
    T_CHECK(e.ok && e.n_batches == 147 && e.batches == 147 && e.samples == 147 * 64,
            "train epoch: %u batches, %u samples", e.batches, e.samples);
    uint32_t kept = 0;
    wrong = 0;
    for (uint32_t i = 0; i < n_train; i++) kept += e.seen[train[i]] == 1;
    for (uint32_t i = 0; i < n_items; i++) wrong += e.seen[i] > 1;
    T_CHECK(kept == 147 * 64 && wrong == 0, "train: %u indices once (want 9408), %u repeated", kept,
            wrong);
    fprintf(stderr, "imagenette through 3 workers: valid epoch %.2f s, train epoch %.2f s\n",
            t_valid, nf_now_s() - t0);
    h_epoch_free(&e);
    loader_consumer_destroy(&con);
    for (int i = 0; i < 3; i++) h_worker_stop(w[i]);
    loader_coordinator_stats_t st;
    h_coord_stop(&h, &st);
    T_CHECK(st.workers_joined == 3 && st.epochs_done == 2 && st.messages_dropped == 0,
            "coordinator: %llu workers, %llu epochs, %llu dropped",
            (unsigned long long)st.workers_joined, (unsigned long long)st.epochs_done,
            (unsigned long long)st.messages_dropped);
}

// One train epoch (and a second) of the generated dataset through n workers.
static void s_run_digests(const char *root, int n_workers, h_epoch_t *e0, h_epoch_t *e1)
{
    h_coord_t h;
    char name[32];
    snprintf(name, sizeof name, "det%d", n_workers);
    h_coord_start(&h, name, root, &(loader_coordinator_config_t){.seed = 7});
    pid_t w[3];
    for (int i = 0; i < n_workers; i++) w[i] = h_worker(h.endpoint);
    snprintf(name, sizeof name, "det%d-sink", n_workers);
    loader_consumer_t *con = s_consumer(h.endpoint, name);
    loader_stream_request_t r = {.stream = 1, .split = LOADER_TRAIN, .batch_size = 16,
                                 .presize = 40, .shuffle = true, .drop_last = true,
                                 .random_crop = true, .credits = 4, .ordered = true};
    uint32_t n_items = loader_dataset_n_items(h.ds);
    h_consume(con, &r, n_items, e0, NULL, NULL);
    r.epoch = 1;
    h_consume(con, &r, n_items, e1, NULL, NULL);
    loader_consumer_destroy(&con);
    for (int i = 0; i < n_workers; i++) h_worker_stop(w[i]);
    h_coord_stop(&h, NULL);
}

static void test_one_vs_three_workers(void)
{
    const char *root = h_make_dataset("det", 4, 40, 5, true, false);
    h_epoch_t a0, a1, b0, b1;
    s_run_digests(root, 1, &a0, &a1);
    s_run_digests(root, 3, &b0, &b1);
    T_CHECK(a0.ok && b0.ok && a0.n_batches == 10 && b0.n_batches == 10, "epochs ran: %u %u batches",
            a0.n_batches, b0.n_batches);
    uint32_t same = 0, differs_by_epoch = 0;
    for (uint32_t s = 0; s < a0.n_batches && s < b0.n_batches; s++) {
        same += a0.digest[s] == b0.digest[s] && a0.sizes[s] == 16;
        same += a1.digest[s] == b1.digest[s] && a1.sizes[s] == 16;
        differs_by_epoch += a0.digest[s] != a1.digest[s];
    }
    T_CHECK(same == 2 * a0.n_batches, "1 vs 3 workers: %u of %u batches byte-identical", same,
            2 * a0.n_batches);
    T_CHECK(differs_by_epoch == a0.n_batches, "epoch 1 differs from epoch 0 in %u of %u batches",
            differs_by_epoch, a0.n_batches);
    T_CHECK(a0.stats.bad_files > 0 && a0.stats.bad_files == b0.stats.bad_files,
            "bad files met: %u and %u", a0.stats.bad_files, b0.stats.bad_files);
    h_epoch_free(&a0);
    h_epoch_free(&a1);
    h_epoch_free(&b0);
    h_epoch_free(&b1);
}

static void s_bad_epoch(const char *root, bool strict, uint32_t n_good_valid)
{
    h_coord_t h;
    h_coord_start(&h, strict ? "bad-strict" : "bad", root,
                  &(loader_coordinator_config_t){.strict_jpeg = strict});
    pid_t w[2] = {h_worker(h.endpoint), h_worker(h.endpoint)};
    loader_consumer_t *con = s_consumer(h.endpoint, strict ? "bad-strict-sink" : "bad-sink");
    uint32_t n_items = loader_dataset_n_items(h.ds);
    // every good file's index; bad files are bad%d.jpg
    uint8_t *is_bad = nf_xcalloc(n_items, 1);
    for (uint32_t i = 0; i < n_items; i++) {
        const char *p = loader_dataset_item(h.ds, i)->path;
        const char *base = strrchr(p, '/') + 1;
        int kind = -1;
        if (sscanf(base, "bad%d.jpg", &kind) == 1)
            is_bad[i] = strict || (kind != JF_BAD_TRUNCATED && kind != JF_BAD_CORRUPT);
    }
    loader_stream_request_t r = {.stream = 3, .split = LOADER_VALID, .batch_size = 8,
                                 .presize = 32, .credits = 4};
    h_epoch_t e;
    h_consume(con, &r, n_items, &e, NULL, NULL);
    uint32_t want_kept = n_good_valid + (strict ? 0 : 2);
    T_CHECK(e.ok && e.samples == want_kept, "valid%s: %u samples kept, want %u",
            strict ? " strict" : "", e.samples, want_kept);
    T_CHECK(e.stats.bad_files == (strict ? 8u : 6u), "valid: %u bad files", e.stats.bad_files);
    const uint32_t *br = e.stats.bad_by_reason;
    T_CHECK(br[LOADER_BAD_EMPTY] == 1 && br[LOADER_BAD_NOT_JPEG] == 2 && br[LOADER_BAD_HEADER] == 1 &&
                br[LOADER_BAD_TOO_LARGE] == 1 && br[LOADER_BAD_UNSUPPORTED] == 1 &&
                br[LOADER_BAD_TRUNCATED] == (strict ? 2u : 0u),
            "by reason: empty %u not_jpeg %u header %u too_large %u unsupported %u truncated %u",
            br[LOADER_BAD_EMPTY], br[LOADER_BAD_NOT_JPEG], br[LOADER_BAD_HEADER],
            br[LOADER_BAD_TOO_LARGE], br[LOADER_BAD_UNSUPPORTED], br[LOADER_BAD_TRUNCATED]);
    T_CHECK(e.stats.warnings == (strict ? 0u : 2u), "warnings %u", e.stats.warnings);
    uint32_t delivered_bad = 0;
    for (uint32_t i = 0; i < n_items; i++) delivered_bad += is_bad[i] && e.seen[i];
    T_CHECK(delivered_bad == 0, "%u bad files delivered", delivered_bad);
    h_epoch_free(&e);

    r = (loader_stream_request_t){.stream = 4, .split = LOADER_TRAIN, .batch_size = 8, .presize = 32,
                                  .shuffle = true, .drop_last = true, .random_crop = true,
                                  .credits = 4};
    h_consume(con, &r, n_items, &e, NULL, NULL);
    uint32_t exact = 0;
    for (uint32_t s = 0; s < e.n_batches; s++) exact += e.sizes[s] == 8;
    T_CHECK(e.ok && exact == e.n_batches && e.n_batches > 0, "train: %u of %u batches of exactly 8",
            exact, e.n_batches);
    delivered_bad = 0;
    for (uint32_t i = 0; i < n_items; i++) delivered_bad += is_bad[i] && e.seen[i];
    T_CHECK(delivered_bad == 0 && e.stats.bad_files > 0, "train: %u bad delivered, %u met",
            delivered_bad, e.stats.bad_files);
    h_epoch_free(&e);
    free(is_bad);
    loader_consumer_destroy(&con);
    h_worker_stop(w[0]);
    h_worker_stop(w[1]);
    loader_coordinator_stats_t st;
    h_coord_stop(&h, &st);
    T_CHECK(st.bad_files >= (strict ? 8u : 6u), "coordinator counted %llu bad files",
            (unsigned long long)st.bad_files);
}

static void test_bad_files(void)
{
    const char *root = h_make_dataset("bad", 3, 12, 10, true, true);
    s_bad_epoch(root, false, 30);
    s_bad_epoch(root, true, 30);
}

static void test_two_streams_slow_consumer(void)
{
    const char *root = h_make_dataset("two", 3, 20, 12, false, false);
    h_coord_t h;
    h_coord_start(&h, "tcp-two", root, NULL);
    T_CHECK(strncmp(h.endpoint, "tcp://127.0.0.1:", 16) == 0, "tcp endpoint %s", h.endpoint);
    pid_t w[2] = {h_worker(h.endpoint), h_worker(h.endpoint)};
    loader_consumer_t *con = s_consumer(h.endpoint, "tcp-two-sink");
    uint32_t n_items = loader_dataset_n_items(h.ds);
    loader_stream_request_t tr = {.stream = 10, .split = LOADER_TRAIN, .batch_size = 4,
                                  .presize = 24, .shuffle = true, .drop_last = true,
                                  .random_crop = true, .credits = 2, .ordered = true};
    loader_stream_request_t va = {.stream = 11, .split = LOADER_VALID, .batch_size = 4,
                                  .presize = 24, .credits = 2};
    loader_epoch_plan_t pt, pv;
    loader_stream_request_t huge = tr;
    huge.batch_size = 65536;
    huge.presize = 4096;
    errno = 0;
    T_CHECK(loader_consumer_start(con, &huge, &pt, 1000) == -1 && errno == EINVAL,
            "a batch over the consumer's limit is refused up front");
    T_CHECK(loader_consumer_start(con, &tr, &pt, 10000) == 0, "train stream");
    T_CHECK(loader_consumer_start(con, &va, &pv, 10000) == 0, "valid stream");
    uint16_t *seen = nf_xcalloc(n_items, sizeof *seen);
    uint32_t got_t = 0, got_v = 0;
    bool open_t = true, open_v = true;
    while (open_t || open_v) {
        for (int s = 0; s < 2; s++) {
            if (s == 0 ? !open_t : !open_v) continue;
            loader_batch_t *b;
            int rc = loader_consumer_next(con, s == 0 ? 10 : 11, &b, 20000);
            if (rc <= 0) {
                T_CHECK(rc == 0, "stream %d failed", s);
                if (s == 0) open_t = false;
                else open_v = false;
                continue;
            }
            for (uint32_t i = 0; i < b->n; i++) seen[b->indices[i]]++;
            if (s == 0) got_t++;
            else got_v++;
            nf_sleep_ms(15);  // a slow consumer
            loader_consumer_release(con, &b);
        }
    }
    uint32_t twice = 0, total = 0;
    for (uint32_t i = 0; i < n_items; i++) {
        twice += seen[i] > 1;
        total += seen[i];
    }
    T_CHECK(got_t == pt.n_batches && got_v == pv.n_batches, "both streams complete: %u/%u %u/%u",
            got_t, pt.n_batches, got_v, pv.n_batches);
    T_CHECK(twice == 0 && total == pt.n_batches * 4 + 36, "each index at most once: %u total", total);
    free(seen);
    loader_consumer_destroy(&con);
    h_worker_stop(w[0]);
    h_worker_stop(w[1]);
    loader_coordinator_stats_t st;
    h_coord_stop(&h, &st);
    T_CHECK(st.max_unacked <= 2, "coordinator had %llu batches of a stream un-acked (credits 2)",
            (unsigned long long)st.max_unacked);
}

int main(void)
{
    setenv("NF_LOG_LEVEL", "warn", 0);  // the worker processes too
    nf_log_init(&(nf_log_config_t){.stage = "test", .level = NF_LOG_WARN});
    test_one_vs_three_workers();
    test_bad_files();
    test_two_streams_slow_consumer();
    const char *data = getenv("NF_DATA_DIR");
    char train[1024];
    snprintf(train, sizeof train, "%s/train", data ? data : "");
    if (data && nf_is_dir(train)) test_imagenette_exactly_once(data);
    else fprintf(stderr, "SKIP (part): Imagenette not found at %s\n", data ? data : "(unset)");
    return t_done();
}
