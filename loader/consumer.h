/*
 * consumer.h: the loader's consumer library: ask the coordinator for epochs of
 * raw batches and receive them exactly once, in order if asked.
 *
 * A consumer owns two sockets: a DEALER connected to the coordinator (control:
 * StreamRequest, Credit, Ack, heartbeats; EpochPlan, EpochDone, DatasetInfo
 * back) and a PULL sink it binds, where workers PUSH RawBatch messages
 * (envelope + uint8 NHWC payload). The library
 *   - validates every batch (wire.h, then stream/epoch/seq, shape = the
 *     requested presize, labels < classes, indices < items) and counts drops;
 *   - acks each batch it keeps (retiring it from the coordinator's ledger) and
 *     drops duplicates by (stream, epoch, seq) after re-acking them;
 *   - grants credits: `credits` when the epoch starts, then one per released
 *     batch, so it never holds more than `credits` batches per stream;
 *   - optionally delivers in seq order (a reorder buffer within the credit
 *     window), so a training run is the same whatever the worker count;
 *   - hands out batches without copying: pixels point into the received frame
 *     until loader_consumer_release().
 * Several streams (train, valid, TTA passes) can be open at once. Not thread
 * safe: one thread drives a consumer. The same contract, in messages, is in
 * docs/loader.md for programs in other languages.
 */
#ifndef LOADER_CONSUMER_H
#define LOADER_CONSUMER_H

#include "curve.h"
#include "decode.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *coordinator;    // endpoint to connect to
    const char *sink;           // PULL endpoint to bind; NULL = tcp://127.0.0.1:*
    const char *job;            // NULL = any
    int heartbeat_ms;           // 0 = 1000
    int timeout_ms;             // coordinator silence before giving up; 0 = 30000
    uint64_t max_batch_bytes;   // largest payload accepted; 0 = 1 GiB
    void *zmq_ctx;              // NULL = own context (must be curve's when curve is set)
    nf_curve_t *curve;          // NULL = plain text: the sink must be local (ipc, loopback);
                                // else a CURVE client of the coordinator (curve's server
                                // key) and a CURVE sink for workers on curve's allow-list
} loader_consumer_config_t;

typedef struct {
    uint32_t stream;            // chosen by the caller, unique within this consumer
    int split;                  // LOADER_TRAIN or LOADER_VALID
    uint32_t epoch;             // < 2^24
    uint32_t pass;              // TTA pass (changes the crop draws), < 256
    uint32_t batch_size;
    uint32_t presize;           // output side S
    bool shuffle, drop_last;    // fastai: train true/true, valid false/false
    bool random_crop;           // train: random crop; valid: centre
    bool exact;                 // never use the DCT-scaled decode
    uint32_t credits;           // batches held at once; 0 = 4
    bool ordered;               // deliver in seq order
    uint64_t seed;              // 0 = the coordinator's seed
} loader_stream_request_t;

typedef struct {
    uint32_t n_batches, n_samples, batch_size;
} loader_epoch_plan_t;

typedef struct {
    uint32_t index;             // dataset sample index of the file
    loader_bad_t reason;        // why it was skipped (LOADER_BAD_N when the peer sent an unknown one)
} loader_bad_sample_t;

typedef struct {
    uint32_t stream, epoch, seq, pass;
    int split;
    uint32_t n, h, w, c;
    const uint8_t *pixels;      // (n, h, w, c) uint8 RGB
    const int32_t *labels;      // (n) class indices
    const uint32_t *indices;    // (n) dataset sample indices
    uint32_t n_bad;             // files of this batch skipped (and replaced on train)
    const loader_bad_sample_t *bad;  // (n_bad) which, and why
    uint32_t warnings;          // rows decoded despite a libjpeg warning
    const char *worker_id;
} loader_batch_t;

typedef struct {
    uint32_t batches, samples;  // kept and delivered so far
    uint32_t duplicates;        // dropped (already had that seq)
    uint32_t bad_files;         // from the batches kept
    uint32_t bad_by_reason[LOADER_BAD_N];
    uint32_t warnings;
    uint32_t reissued;          // from EpochDone
    bool done;                  // EpochDone received
} loader_epoch_stats_t;

typedef struct loader_consumer_t loader_consumer_t;

// Binds the sink and connects to the coordinator. NULL (logged) on failure.
loader_consumer_t *loader_consumer_new(const loader_consumer_config_t *cfg);
// Tells the coordinator it leaves, closes the sockets. Accepts NULL.
void loader_consumer_destroy(loader_consumer_t **self_p);
// The sink endpoint really bound.
const char *loader_consumer_sink(const loader_consumer_t *self);

// The dataset's vocabulary (asks the coordinator once). Returns 0, or -1
// (errno ETIMEDOUT, EPIPE when the coordinator stopped).
int loader_consumer_classes(loader_consumer_t *self, uint32_t *n_classes,
                            const char *const **names, int timeout_ms);

// Starts one epoch of a stream (replacing the stream's previous epoch) and
// waits for its plan. Returns 0, or -1 (errno EINVAL: a batch would be over
// max_batch_bytes; ETIMEDOUT: no plan (the coordinator also times out requests
// it rejects); EPIPE: coordinator lost or stopped).
int loader_consumer_start(loader_consumer_t *self, const loader_stream_request_t *req,
                          loader_epoch_plan_t *plan, int timeout_ms);

// The next batch of a stream. Returns 1 with *out set (release it), 0 when the
// epoch is complete (every batch delivered, EpochDone received), -1 on error
// (errno ETIMEDOUT: nothing within timeout_ms; EPIPE: coordinator lost or
// stopped; ENOENT: no such stream).
int loader_consumer_next(loader_consumer_t *self, uint32_t stream, loader_batch_t **out,
                         int timeout_ms);
// Gives a batch's buffer back and grants the coordinator one more credit.
void loader_consumer_release(loader_consumer_t *self, loader_batch_t **batch_p);

// Services the sockets for up to timeout_ms without delivering anything (a
// caller busy for long calls this to keep heartbeats and acks flowing).
int loader_consumer_poll(loader_consumer_t *self, int timeout_ms);

// The consumer's two sockets as zmq_poll items (ZMQ_POLLIN), for a caller that
// waits on them beside sockets of its own and then services the consumer with
// loader_consumer_poll(self, 0) (the augment stage does).
void loader_consumer_pollitems(const loader_consumer_t *self, zmq_pollitem_t items[2]);
// Split sizes of the dataset, known once loader_consumer_classes() succeeded
// (0 before).
void loader_consumer_split_sizes(const loader_consumer_t *self, uint32_t *n_train,
                                 uint32_t *n_valid);

// Counters of a stream's current epoch. Returns 0, or -1 for an unknown stream.
int loader_consumer_stats(const loader_consumer_t *self, uint32_t stream,
                          loader_epoch_stats_t *out);
// Drop counters of the sink (batches) and of the coordinator socket.
void loader_consumer_wire_stats(const loader_consumer_t *self, nf_wire_stats_t *sink,
                                nf_wire_stats_t *control);

#endif
