/*
 * fuzz_announce.c: libFuzzer target for everything the trainer's announcement
 * socket (trainer/announce.h) does with what evaluators send it: per input a
 * fresh announce ROUTER over inproc with three checkpoints announced (epochs
 * 1 and 2, and the final epoch 3), and one evaluator that sends the input's
 * records (fuzzmsg.h: results, heartbeats, control, garbage). The socket is
 * polled until everything was taken; every result it returns must be of an
 * announced epoch, name that checkpoint, have accuracies in [0, 1] and no
 * negative loss, and carry TTA only for the final checkpoint.
 */
#include "announce.h"
#include "check.h"
#include "fuzzmsg.h"
#include "log.h"
#include "zmqutil.h"

#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *s_ctx;
static const char *const s_paths[3] = {"run/checkpoints/ckpt-0000000010.safetensors",
                                       "run/checkpoints/ckpt-0000000020.safetensors",
                                       "run/checkpoints/ckpt-0000000030.safetensors"};

static void s_check(const announce_result_t *r)
{
    NF_CHECK(r->epoch >= 1 && r->epoch <= 3, "a result of epoch %u, never announced", r->epoch);
    NF_CHECK(strcmp(r->checkpoint, s_paths[r->epoch - 1]) == 0, "a result naming %s",
             r->checkpoint);
    NF_CHECK(r->accuracy >= 0.0 && r->accuracy <= 1.0 && !(r->valid_loss < 0.0),
             "accuracy %g, loss %g", r->accuracy, r->valid_loss);
    if (r->has_tta)
        NF_CHECK(r->epoch == 3 && r->tta_accuracy >= 0.0 && r->tta_accuracy <= 1.0 &&
                     !(r->tta_loss < 0.0),
                 "TTA of epoch %u: accuracy %g", r->epoch, r->tta_accuracy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned serial;
    if (!s_ctx) {
        nf_log_init(&(nf_log_config_t){.stage = "fuzz", .level = NF_LOG_ERROR});
        s_ctx = fz_context();
    }
    fz_record_t rec[FZ_MAX_RECORDS];
    size_t n = fz_records(data, size, rec);
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://fuzz-announce-%u", serial++);
    announce_config_t ac = {.zmq_ctx = s_ctx, .endpoint = ep, .job = "netteflow"};
    announce_t *a = announce_new(&ac);
    NF_CHECK(a, "announce");
    for (uint32_t e = 1; e <= 3; e++)
        announce_checkpoint(a, &(announce_checkpoint_t){.path = s_paths[e - 1], .epoch = e,
                                                        .step = 10 * e, .arch = "xresnet18",
                                                        .is_final = e == 3, .size = 32,
                                                        .presize = 40, .batch_size = 8});
    nf_zmq_socket_config_t dc = {.type = ZMQ_DEALER, .sndhwm = 1000, .rcvhwm = 100000};
    void *d = nf_zmq_socket_new(s_ctx, &dc);
    NF_CHECK(d && nf_zmq_connect(d, ep) == 0, "evaluator");
    for (size_t i = 0; i < n; i++) (void)fz_send(d, NULL, &rec[i]);
    // inproc: what was sent is queued at the ROUTER; poll until two rounds take nothing
    announce_result_t res[8];
    for (int idle = 0, rounds = 0; idle < 2 && rounds < 10000; rounds++) {
        int got = announce_poll(a, 1, res, 8);
        for (int i = 0; i < got; i++) s_check(&res[i]);
        idle = got == 0 ? idle + 1 : 0;
    }
    NF_CHECK(announce_evaluators(a) <= 1, "one evaluator at most");
    nf_zmq_close(&d);
    announce_destroy(&a, NULL);
    return 0;
}
