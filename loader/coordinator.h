/*
 * coordinator.h: the loader coordinator: epoch plans, credit-based dispatch of
 * batch tasks to workers, the ledger of tasks in flight, heartbeats, re-issue.
 *
 * One ROUTER socket (bind) serves workers and consumers (docs/loader.md has the
 * full socket + message contract):
 *   worker   -> WorkerHello(slots)        <- DatasetInfo (root, vocabulary)
 *            <- BatchTask                 -> TaskDone(bad samples)  frees a slot
 *   consumer -> StreamRequest(credits)    <- EpochPlan
 *            -> Credit(n) / Ack(seq)      <- EpochDone (all acked; bad counts)
 *   both     <-> Heartbeat (any message counts); Control{STOP} = leaving
 * A task is issued only when a worker has a free slot and the stream has a
 * consumer credit, so a consumer holds at most `credits` batches. The ledger
 * keeps every issued, un-acked task with a deadline: a worker silent for
 * worker_timeout_ms, or a task not done within task_timeout_ms, loses its
 * tasks to other workers; a batch done but not acked within ack_timeout_ms is
 * re-issued. Re-issued tasks are identical (pure functions of their fields),
 * so consumers simply drop duplicates by (stream, epoch, seq).
 *
 * Plans: the split's items in order, permuted per epoch from (seed, epoch)
 * when shuffled; batches of batch_size, the last one dropped or partial;
 * train batches carry `spares` replacement samples drawn from (seed, epoch,
 * seq). Several streams (train, valid, TTA passes) run at once, from one or
 * more consumers. Workers may join and leave at any time.
 *
 * Security: the socket binds to a local endpoint unless a CURVE key set is
 * given (common/curve.h); consumers' sink keys are relayed to the workers.
 *
 * It does not decode (worker.h) or receive batches (consumer.h).
 */
#ifndef LOADER_COORDINATOR_H
#define LOADER_COORDINATOR_H

#include "curve.h"
#include "dataset.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *bind;               // endpoint; NULL = tcp://127.0.0.1:5555
    const loader_dataset_t *dataset;  // caller-owned, outlives the coordinator
    uint64_t seed;                  // default seed of streams that send seed 0
    const char *job;                // job id; NULL = "netteflow"
    uint32_t spares;                // replacement samples per train batch; 0 = 8
    uint64_t max_pixels;            // 0 = LOADER_DEFAULT_MAX_PIXELS
    bool strict_jpeg;               // decode warnings make a file bad
    int heartbeat_ms;               // 0 = 1000
    int worker_timeout_ms;          // silence before a worker is dead; 0 = 5000
    int task_timeout_ms;            // issue -> TaskDone; 0 = 60000
    int ack_timeout_ms;             // TaskDone -> Ack; 0 = 60000
    int consumer_timeout_ms;        // silence before a consumer is gone; 0 = 600000 (a
                                    // trainer may be busy for long between calls)
    int stop_fd;                    // readable = stop (signalfd, pipe); -1 = none
    void *zmq_ctx;                  // NULL = own context (must be curve's when curve is set)
    nf_curve_t *curve;              // NULL = plain text, allowed only on a local endpoint
                                    // (ipc, inproc, loopback); else the socket is a CURVE
                                    // server whose clients must be on curve's allow-list
} loader_coordinator_config_t;

typedef struct {
    uint64_t tasks_issued;          // including re-issues
    uint64_t tasks_reissued;
    uint64_t workers_joined, workers_lost;
    uint64_t epochs_done;
    uint64_t bad_files, warnings;
    uint64_t max_unacked;           // most tasks in flight for one stream, ever
    uint64_t messages_dropped;      // malformed or unexpected, all reasons
    uint64_t peers_rejected;        // valid messages from unknown peers or out of bounds
} loader_coordinator_stats_t;

typedef struct loader_coordinator_t loader_coordinator_t;

// Binds the socket. NULL (logged) when the endpoint cannot be bound.
loader_coordinator_t *loader_coordinator_new(const loader_coordinator_config_t *cfg);
void loader_coordinator_destroy(loader_coordinator_t **self_p);
// The endpoint really bound (resolves tcp port 0 / *).
const char *loader_coordinator_endpoint(const loader_coordinator_t *self);
// Serves until stop_fd is readable. Returns 0, or -1 on a socket failure.
// On the way out it tells workers and consumers Control{STOP}.
int loader_coordinator_run(loader_coordinator_t *self);
// Counters; read after run() returned, or from the thread that runs it.
void loader_coordinator_stats(const loader_coordinator_t *self, loader_coordinator_stats_t *out);

#endif
