/*
 * server.h: the augment process as a library: a loader consumer upstream, a
 * tensor-stream server downstream (`augment serve`, docs/augment.md).
 *
 *   loader coordinator --raw batches--> [ augment server ] --tensors--> trainer, evaluator, ...
 *
 * Upstream it is one loader consumer (loader/consumer.h): raw uint8 batches at
 * the presize arrive exactly once, in seq order, on its PULL sink. Downstream
 * it binds a ROUTER; each client (a DEALER: augment/client.h, or any program
 * that follows the contract in docs/augment.md) asks for streams:
 *
 *   client -> DatasetInfoRequest              <- DatasetInfo (classes, split sizes)
 *          -> TensorStreamRequest(credits)    <- EpochPlan
 *                                             <- TensorBatch + payload, one per credit
 *          -> Credit(n) / Ack(seq)            <- EpochDone (every batch acked)
 *          <-> Heartbeat (sender = this process's incarnation id); Control{STOP} = leaving
 *
 * Each stream is one epoch (or TTA pass, or its first max_batches batches) of
 * one split in one mode (train / valid / tta) at one size, with its own
 * Normalize stats, Mixup alpha, seed and resample mode; the server opens a
 * loader stream for it, transforms every raw batch with augment_batch()
 * straight into the outgoing ZeroMQ frame (no copy), and sends it only
 * against a credit. Several streams of several clients run at once (train
 * for the trainer, valid and TTA passes for the evaluator), served round
 * robin. Memory is bounded: per stream, credits x tensor batch bytes
 * downstream plus raw_credits x raw batch bytes upstream (printed when the
 * stream starts).
 *
 * Restarts lose nothing: a client that sees a new incarnation id in the
 * heartbeats (or hears nothing for its timeout) sends its requests again with
 * `have` = the seqs it holds; those are skipped, the rest are regenerated
 * bit-identically (all randomness is a function of seed, epoch and index).
 *
 * Security: both bound sockets (the ROUTER, the loader sink) are local unless
 * a CURVE key set is given (common/curve.h, docs/reliability.md).
 *
 * What it does not do: decode JPEGs (the loader workers do) or train.
 */
#ifndef NF_AUGMENT_SERVER_H
#define NF_AUGMENT_SERVER_H

#include "curve.h"
#include "params.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *coordinator;   // loader coordinator endpoint (required)
    const char *bind;          // downstream ROUTER endpoint; NULL = tcp://127.0.0.1:5556
    const char *sink;          // loader sink (PULL) endpoint; NULL = tcp://127.0.0.1:*. A
                               // fixed one lets workers deliver batches in flight to a
                               // restarted augment at once (else they retry for 30 s)
    const char *job;           // job id; NULL = adopt the coordinator's
    augment_backend_t backend; // CPU (OpenMP) or CUDA
    int threads;               // CPU threads; 0 = OpenMP's default
    int device;                // CUDA device
    uint64_t seed;             // seed of streams that ask for seed 0; 0 = 42
    uint32_t raw_credits;      // raw batches held per stream upstream; 0 = 2
    uint32_t max_credits;      // most credits a client may grant one stream; 0 = 32
    uint64_t max_batch_bytes;  // largest tensor batch served; 0 = 1 GiB
    int heartbeat_ms;          // 0 = 1000
    int peer_timeout_ms;       // client silence before its streams are dropped; 0 = 600000
    int coordinator_timeout_ms;  // coordinator silence before giving up; 0 = 30000
    int stop_fd;               // readable = stop (signalfd); -1 = none
    void *zmq_ctx;             // NULL = own context (must be curve's when curve is set)
    nf_curve_t *curve;         // NULL = plain text: the ROUTER and the sink must be local
                               // (ipc, loopback); else the ROUTER is a CURVE server for
                               // clients on curve's allow-list
    bool curve_loader;         // with curve: the loader link too, a CURVE client of the
                               // coordinator (curve's server key) whose sink is a CURVE
                               // server for workers on curve's allow-list
} augment_server_config_t;

typedef struct {
    uint64_t streams;          // stream requests accepted
    uint64_t batches, images;  // tensor batches sent
    uint64_t skipped;          // batches a re-requesting client already had
    uint64_t epochs_done;      // EpochDone sent
    uint64_t peers_lost;       // clients gone (unreachable or silent)
    uint64_t rejected;         // malformed or out-of-range client messages
    double busy_s;             // seconds spent in augment_batch
} augment_server_stats_t;

typedef struct augment_server_t augment_server_t;

// Binds the ROUTER and the loader sink, connects to the coordinator. NULL
// (logged) on a bad endpoint or when the backend cannot start.
augment_server_t *augment_server_new(const augment_server_config_t *cfg);
void augment_server_destroy(augment_server_t **self_p);
// The downstream endpoint really bound (resolves tcp port 0 / *).
const char *augment_server_endpoint(const augment_server_t *self);
// This process's incarnation id (sent in every Heartbeat).
const char *augment_server_incarnation(const augment_server_t *self);
// Serves until stop_fd is readable. Returns 0, or -1 when the coordinator
// is lost or stops (logged in one line).
int augment_server_run(augment_server_t *self);
void augment_server_stats(const augment_server_t *self, augment_server_stats_t *out);

#endif
