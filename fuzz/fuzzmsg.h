/*
 * fuzzmsg.h: what the socket-level fuzz targets share: the record format a
 * fuzz input is cut into, sockets in one ZeroMQ context, and envelope helpers
 * the seed generator uses.
 *
 * A fuzz input of the coordinator, consumer and worker targets is a header of
 * target-specific bytes followed by records, each one multipart message:
 *   u8   flags     bit 0: a payload frame follows; bit 1: the message goes to
 *                  the second socket of the target (the consumer's sink)
 *   u16  length    little-endian, then that many bytes: the envelope frame
 *   [u16 length + bytes: the payload frame, when bit 0]
 * A truncated record ends the input. Frames are sent as they are: the fuzzer
 * mutates the packed protobuf bytes, the seeds start from valid messages.
 *
 * Also the fixed pack of the pack target. Not product code: fuzz harnesses
 * keep their per-process state in statics.
 */
#ifndef NF_FUZZMSG_H
#define NF_FUZZMSG_H

#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { FZ_PAYLOAD = 1, FZ_SECOND = 2, FZ_MAX_RECORDS = 64 };

typedef struct {
    uint8_t flags;
    const uint8_t *env;
    size_t env_len;
    const uint8_t *payload;   // NULL without FZ_PAYLOAD
    size_t payload_len;
} fz_record_t;

// Cuts data into at most FZ_MAX_RECORDS records; returns how many.
size_t fz_records(const uint8_t *data, size_t size, fz_record_t *out);
// Sends a record on sock (prefixed by a routing id when peer is not NULL).
// Returns 0, or -1 when ZeroMQ would block or refuses.
int fz_send(void *sock, const nf_wire_peer_t *peer, const fz_record_t *r);

// Seed writing: appends one record with a packed envelope (version 1, job
// "netteflow") and an optional payload to f.
void fz_put(FILE *f, uint8_t flags, Nf__Envelope *env, const void *payload, size_t payload_len);
// Packs env (version 1, job "netteflow") into a malloc'ed buffer.
uint8_t *fz_pack(Nf__Envelope *env, size_t *len);

// The ZeroMQ context of a socket-level target. Every input makes and closes
// sockets, thousands a second; closed sockets are reaped by a libzmq thread
// that a loaded machine can starve, so the context allows 64K sockets instead
// of 1023 (a reaper behind by a second made zmq_socket fail with EMFILE).
void *fz_context(void);

// The pack fuzz target's fixed pack: a small generated dataset (good JPEGs of
// every colour kind, one bad file) packed unchanged into dir (loader/pack.h).
// Deterministic, so the seed index fuzz_seeds writes matches the shards the
// target makes. Aborts on failure.
void fz_make_pack(const char *dir);

// A dataset index over empty placeholder files (n_classes classes, n_train
// and n_valid per class, ImageFolder layout under root): for targets whose
// stages plan epochs but never open an image. Aborts on failure.
struct loader_dataset_t *fz_placeholder_dataset(const char *root, int n_classes, int n_train,
                                                int n_valid);

// A scratch folder for a target's files (mkdtemp under TMPDIR), made once and
// removed at exit.
const char *fz_tmpdir(const char *name);

#endif
