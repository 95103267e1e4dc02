/*
 * announce.h: the trainer's socket for evaluators: checkpoint announcements
 * out, evaluation results back.
 *
 * The trainer binds a ROUTER. An evaluator connects a DEALER and says hello
 * (any message: it sends Heartbeat{sender} every second); the trainer then
 * sends it every CheckpointAnnounce made so far whose file still exists and
 * whose result has not come back (announce_reported), so a late joiner, or an
 * evaluator that replaces one killed mid-evaluation, evaluates exactly what is
 * missing; and each new one as it is made. A socket monitor sees evaluators
 * disconnect (a process that died); the loss and the replacement are logged. Evaluators answer with EvalResult (plain results,
 * and a second one with the TTA fields for the final checkpoint). At the end
 * the trainer tells them Control{STOP}. Several evaluators may follow one
 * run (another terminal, another machine over tcp://); each gets everything.
 * A result is taken only for an epoch announced, naming that checkpoint
 * (TTA only for the final one), with accuracies in [0, 1] and losses not
 * negative (NaN and infinity are a diverged model's honest results).
 *
 * The trainer services this socket between training steps; nothing here
 * blocks longer than the timeout given. Security: plain text only on local
 * endpoints; with a CURVE key set every endpoint is a CURVE server.
 */
#ifndef NF_TRAINER_ANNOUNCE_H
#define NF_TRAINER_ANNOUNCE_H

#include "curve.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char checkpoint[1024];
    uint32_t epoch;            // epochs completed at that checkpoint
    double valid_loss, accuracy;
    bool has_tta;
    double tta_accuracy, tta_loss;
    uint32_t n_samples, bad_files;
    double wall_s;             // the evaluator's time for it
} announce_result_t;

typedef struct {
    const char *path;          // checkpoint file
    uint32_t epoch;            // epochs completed
    uint64_t step;
    const char *arch;
    const char *run_dir;
    bool is_final;
    uint32_t size, presize, batch_size;
} announce_checkpoint_t;

typedef struct {
    void *zmq_ctx;             // the context (required; curve's when curve is set)
    nf_curve_t *curve;         // NULL = plain text: every endpoint must be local (ipc,
                               // loopback); else the ROUTER is a CURVE server, on all
                               // its endpoints, for evaluators on curve's allow-list
    const char *endpoint;      // one endpoint, or a comma-separated list (ipc:// for
                               // evaluators on this host, tcp:// for others)
    const char *job;           // job id; NULL = none
} announce_config_t;

typedef struct announce_t announce_t;

// Binds the ROUTER at each endpoint. NULL (logged) when one cannot be bound
// or is refused (plain text on an endpoint other hosts can reach).
announce_t *announce_new(const announce_config_t *cfg);
// Tells every evaluator Control{STOP} (reason), closes. Accepts NULL.
void announce_destroy(announce_t **self_p, const char *reason);
const char *announce_endpoint(const announce_t *self);

// Records a checkpoint and sends it to every evaluator connected.
void announce_checkpoint(announce_t *self, const announce_checkpoint_t *c);
// The result of the checkpoint of `epoch` arrived: it is not sent to
// evaluators that join later. Accepts NULL.
void announce_reported(announce_t *self, uint32_t epoch);
// Services the socket for up to timeout_ms; results received are written to
// out (at most max). Returns their number.
int announce_poll(announce_t *self, int timeout_ms, announce_result_t *out, int max);
// What the ROUTER dropped, by reason; NF_WIRE_DROP_FIELD counts results that
// did not match an announcement (epoch, checkpoint path, final for TTA) or
// whose numbers are out of range (accuracy outside [0, 1], a negative loss).
void announce_wire_stats(const announce_t *self, nf_wire_stats_t *out);
// Evaluators heard from within the last 30 s.
int announce_evaluators(const announce_t *self);

#endif
