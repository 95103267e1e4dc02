/*
 * harness.h: pieces the loader's socket tests share: a coordinator running in
 * a thread of the test (so its counters can be read), worker processes (the
 * real `loader worker` program), small generated ImageFolder datasets, and
 * helpers to consume a whole epoch while checking exactly-once delivery.
 */
#ifndef NF_TEST_HARNESS_H
#define NF_TEST_HARNESS_H

#include "consumer.h"
#include "coordinator.h"
#include "dataset.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    loader_dataset_t *ds;
    loader_coordinator_t *co;
    pthread_t thread;
    int stop_pipe[2];
    int rc;
    char endpoint[256];
} h_coord_t;

// Starts a coordinator on ipc://<tmpdir>/<name>.ipc (or on tcp://127.0.0.1 with
// an ephemeral port when name starts with "tcp") over the dataset at root
// (folder split). cfg may override timeouts etc.; bind, dataset and stop_fd are
// set here. Short heartbeats (100 ms) unless cfg sets them.
void h_coord_start(h_coord_t *h, const char *name, const char *root,
                   const loader_coordinator_config_t *cfg);
// Stops it, joins the thread, copies its counters, frees everything.
void h_coord_stop(h_coord_t *h, loader_coordinator_stats_t *stats);

// Starts `loader worker --connect endpoint` (short heartbeats). Returns the pid.
pid_t h_worker(const char *endpoint);
// SIGTERM, then wait (SIGKILL after 5 s).
void h_worker_stop(pid_t pid);

// A dataset under <tmpdir>/<name>: <split>/c<k>/<i>.jpg, non-square images of
// varying sizes. bad_train/bad_valid add one file of every jf_bad_t kind to
// the split (class c0). Returns the root (static buffer per call site: copy it).
const char *h_make_dataset(const char *name, uint32_t classes, uint32_t train_per_class,
                           uint32_t valid_per_class, bool bad_train, bool bad_valid);

// One epoch's record: per seq a digest of the batch, and per sample index how
// often it was delivered.
typedef struct {
    uint32_t n_batches, batches, samples;
    uint64_t *digest;       // (n_batches) fnv64 over pixels, labels, indices
    uint32_t *sizes;        // (n_batches) rows per batch
    uint16_t *seen;         // (n_items) deliveries per sample index
    uint32_t n_items;
    loader_epoch_stats_t stats;
    bool ok;                // the epoch completed without an error
} h_epoch_t;

// Consumes one epoch of req on con. n_items sizes the seen counters.
// after_batch (may be NULL) runs after every batch with the batch count.
void h_consume(loader_consumer_t *con, const loader_stream_request_t *req, uint32_t n_items,
               h_epoch_t *out, void (*after_batch)(uint32_t batches, void *arg), void *arg);
void h_epoch_free(h_epoch_t *e);

uint64_t h_fnv1a(uint64_t h, const void *p, size_t n);

#endif
