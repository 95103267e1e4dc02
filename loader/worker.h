/*
 * worker.h: a loader worker: takes batch tasks from a coordinator, decodes and
 * presizes their files, pushes the raw batches to the task's sink.
 *
 * Protocol (docs/loader.md): a DEALER connects to the coordinator and sends
 * WorkerHello(slots); the coordinator answers DatasetInfo (the dataset root,
 * unless the worker was given its own with data_root) and then BatchTasks, at
 * most `slots` at a time. For each task the worker decodes every file
 * (decode.h), replaces a bad file of a train batch by the task's next spare
 * (so train batches keep their size), drops a bad file of a valid batch, PUSHes
 * one RawBatch (envelope + uint8 NHWC payload, built in place in the ZeroMQ
 * frame) to the task's sink, then sends TaskDone with the bad samples. A task
 * is a pure function of its fields: any worker produces the same bytes.
 *
 * One thread, one core: between images it services its socket (heartbeats,
 * queued tasks). Paranoid Pirate on the worker side: when the coordinator is
 * silent for timeout_ms the worker drops its queue, reconnects with a new
 * identity and says hello again. Control{STOP} from the coordinator, or the
 * stop fd, ends run(); the worker then tells the coordinator it leaves.
 * Tasks are validated before use (paths stay inside the root, sizes bounded,
 * a sink key is Z85 and this worker has CURVE keys); invalid ones are counted
 * and dropped.
 */
#ifndef LOADER_WORKER_H
#define LOADER_WORKER_H

#include "curve.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *coordinator;   // endpoint to connect to
    const char *data_root;     // NULL = the root the coordinator announces
    uint32_t slots;            // tasks held at once; 0 = 2
    int heartbeat_ms;          // 0 = 1000
    int timeout_ms;            // coordinator silence before reconnecting; 0 = 5000
    int send_timeout_ms;       // how long a sink may refuse a batch (heartbeats go on
                               // meanwhile) before it counts as unsent; 0 = 30000
    const char *job;           // NULL = adopt the coordinator's
    const char *worker_id;     // NULL = host:pid
    int stop_fd;               // readable = stop; -1 = none
    void *zmq_ctx;             // NULL = own context (must be curve's when curve is set)
    nf_curve_t *curve;         // NULL = plain text; else a CURVE client of the coordinator
                               // (curve's server key) and of sinks that send a key
} loader_worker_config_t;

typedef struct {
    uint64_t tasks_done, images, bad_files, warnings, refills;
    uint64_t tasks_rejected;   // invalid tasks (counted, dropped)
    uint64_t batches_unsent;   // sink did not accept the batch in time
    uint64_t reconnects;
    nf_wire_stats_t wire;      // the coordinator socket
} loader_worker_stats_t;

typedef struct loader_worker_t loader_worker_t;

// Connects and says hello. NULL (logged) on a bad endpoint.
loader_worker_t *loader_worker_new(const loader_worker_config_t *cfg);
void loader_worker_destroy(loader_worker_t **self_p);
// Works until Control{STOP} or stop_fd. Returns 0, or -1 on a socket failure.
int loader_worker_run(loader_worker_t *self);
void loader_worker_stats(const loader_worker_t *self, loader_worker_stats_t *out);

#endif
