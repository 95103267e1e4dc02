/*
 * client.h: the client side of the augment stage's tensor streams, what the
 * trainer and the evaluator use (the contract, in messages, is in
 * docs/augment.md; augment/server.h is the other side).
 *
 * A client owns one DEALER connected to an augment server. It
 *   - asks for the dataset description (classes, split sizes);
 *   - starts streams (one epoch, TTA pass or the first max_batches batches of
 *     one split in one mode at one size) and waits for their plan;
 *   - receives TensorBatch messages, checks them (shape = the request, labels
 *     < classes, Mixup arrays complete, seq < plan), acks each, drops
 *     duplicates, delivers in seq order and grants one credit per released
 *     batch, so it never holds more than `credits` batches of a stream;
 *   - follows the server's incarnation id (Heartbeat.sender): when it changes
 *     (augment restarted), or the server is silent for restart_ms while a
 *     stream is unfinished, it sends the stream's request again with `have` =
 *     the seqs it already holds, so nothing is lost and nothing comes twice;
 *   - hands batches out without copying: pixels point into the received frame
 *     until augment_client_release().
 * Several streams can be open at once. Not thread safe: one thread drives a
 * client.
 */
#ifndef NF_AUGMENT_CLIENT_H
#define NF_AUGMENT_CLIENT_H

#include "curve.h"
#include "params.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *endpoint;     // the augment server's ROUTER
    const char *job;          // NULL = any
    const char *name;         // shown in the server's logs ("trainer", "evaluator")
    int heartbeat_ms;         // 0 = 1000
    int restart_ms;           // server silence before re-requesting streams; 0 = 15000
    uint64_t max_batch_bytes; // largest payload accepted; 0 = 1 GiB
    int stop_fd;              // readable = stop waiting (a signalfd): the blocking calls
                              // return -1 with errno EINTR; -1 = none
    void *zmq_ctx;            // NULL = own context (must be curve's when curve is set)
    nf_curve_t *curve;        // NULL = plain text; else a CURVE client of the server
                              // whose public key is curve's server key (--curve-server)
} augment_client_config_t;

typedef struct {
    uint32_t stream;          // chosen by the caller, unique within this client
    int split;                // LOADER_TRAIN (0) or LOADER_VALID (1)
    augment_mode_t mode;
    uint32_t epoch, pass;
    uint32_t batch_size, size, presize;
    uint32_t credits;         // batches held at once; 0 = 4
    uint32_t max_batches;     // 0 = the whole epoch
    float mixup_alpha;        // train mode only; 0 = off
    float min_scale;          // 0 = 0.75 (aug_transforms' min_scale in the chapter)
    bool normalize;           // false: pixels stay in [0, 1]
    float mean[3], std[3];
    augment_dtype_t dtype;
    augment_resample_t resample;
    uint64_t seed;            // 0 = the server's
} augment_stream_request_t;

typedef struct {
    uint32_t n_batches, n_samples, batch_size;
} augment_stream_plan_t;

typedef struct {
    uint32_t stream, epoch, seq, pass;
    int n, h, w, c;
    augment_dtype_t dtype;
    const void *pixels;             // (n, h, w, c) NHWC, f32 or bf16
    const int32_t *labels;          // (n)
    const int32_t *partner_labels;  // (n) Mixup partner labels, or NULL without Mixup
    const float *weights;           // (n) Mixup lambda on labels[i], or NULL
    const uint32_t *indices;        // (n) dataset sample indices
    bool normalized;
    float mean[3], std[3];          // the Normalize statistics applied
} augment_tensor_batch_t;

typedef struct {
    uint32_t batches, samples;      // delivered so far
    uint32_t duplicates;            // dropped (already had that seq)
    uint32_t bad_files;             // from EpochDone
    uint32_t restarts;              // times the stream was re-requested
    bool done;                      // EpochDone received
} augment_stream_stats_t;

typedef struct augment_client_t augment_client_t;

// Connects (ZeroMQ connects lazily: the server may start later). NULL
// (logged) on a bad endpoint.
augment_client_t *augment_client_new(const augment_client_config_t *cfg);
// Says goodbye to the server, closes the socket. Accepts NULL.
void augment_client_destroy(augment_client_t **self_p);

// The dataset's classes and split sizes (asks once). Returns 0, or -1 with
// errno ETIMEDOUT (or EINTR: stop_fd became readable, here and below).
int augment_client_dataset(augment_client_t *self, uint32_t *n_classes,
                           const char *const **names, uint32_t *n_train, uint32_t *n_valid,
                           int timeout_ms);

// Starts a stream (replacing the stream's previous epoch) and waits for its
// plan. Returns 0, or -1 (errno EINVAL: a bad request; ETIMEDOUT: no plan).
int augment_client_start(augment_client_t *self, const augment_stream_request_t *req,
                         augment_stream_plan_t *plan, int timeout_ms);

// The next batch of a stream, in seq order. Returns 1 with *out set (release
// it), 0 when the stream is complete (every batch delivered, EpochDone
// received), -1 on error (errno ETIMEDOUT: nothing within timeout_ms;
// ENOENT: no such stream).
int augment_client_next(augment_client_t *self, uint32_t stream, augment_tensor_batch_t **out,
                        int timeout_ms);
// Gives a batch back and grants the server one more credit.
void augment_client_release(augment_client_t *self, augment_tensor_batch_t **batch_p);

// Services the socket for up to timeout_ms without delivering anything.
void augment_client_poll(augment_client_t *self, int timeout_ms);

int augment_client_stats(const augment_client_t *self, uint32_t stream,
                         augment_stream_stats_t *out);
// Drop counters of the socket.
void augment_client_wire_stats(const augment_client_t *self, nf_wire_stats_t *out);

// Copies the (n, h, w, 3) pixels of a batch as f32 (converting bf16).
void augment_tensor_to_f32(const augment_tensor_batch_t *b, float *dst);

#endif
