/*
 * wire.h: netteflow messages on ZeroMQ sockets (proto/netteflow.proto, v1).
 *
 * A message is multipart:
 *   [routing id]          only on ROUTER sockets (added/removed by ZeroMQ)
 *   envelope              one packed nf.Envelope (version, job, one body)
 *   [payload]             only for RawBatch / TensorBatch: the bulk bytes
 *
 * nf_wire_send() packs an envelope straight into a ZeroMQ frame and hands an
 * optional payload frame over without copying it. nf_wire_recv() takes one
 * message off a socket and validates everything that does not depend on the
 * stage: frame count, envelope decode, protocol version, job id, body type
 * expected on this socket, payload presence, and for batches the consistency
 * of shape, dtype, label/index counts and payload size (with overflow-safe
 * arithmetic). Anything else is dropped and counted by reason in an
 * nf_wire_stats_t the caller owns (one per socket). Stage-specific bounds
 * (indices < dataset size, seq < batches in the epoch) are checked by the
 * stage, which counts its rejections with nf_wire_stats_drop(.., NF_WIRE_DROP_FIELD).
 *
 * What this module does not do: retries, heartbeats, credits (the stages do).
 */
#ifndef NF_WIRE_H
#define NF_WIRE_H

#include "netteflow.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define NF_PROTOCOL_VERSION 1u
// Largest envelope frame we send or accept (the payload travels separately).
#define NF_WIRE_MAX_ENVELOPE ((size_t)1 << 20)
// Longest routing id ZeroMQ produces (255 bytes by the ZMTP spec).
#define NF_WIRE_MAX_PEER 255

// Why a message was dropped.
typedef enum {
    NF_WIRE_DROP_FRAMES = 0,  // wrong number of frames (missing or extra)
    NF_WIRE_DROP_SIZE,        // envelope or payload frame over its limit
    NF_WIRE_DROP_DECODE,      // the envelope does not unpack
    NF_WIRE_DROP_VERSION,     // version != NF_PROTOCOL_VERSION
    NF_WIRE_DROP_JOB,         // another job's message
    NF_WIRE_DROP_BODY,        // no body, or a body not expected on this socket
    NF_WIRE_DROP_PAYLOAD,     // payload missing/unexpected, or its size != the shape
    NF_WIRE_DROP_SHAPE,       // shape, dtype, or label/index counts inconsistent
    NF_WIRE_DROP_FIELD,       // a stage-specific bound (counted by the stage)
    NF_WIRE_DROP_N
} nf_wire_drop_t;

// Per-socket counters. Plain integers: owned and read by the socket's thread.
typedef struct {
    uint64_t accepted;
    uint64_t dropped[NF_WIRE_DROP_N];
} nf_wire_stats_t;

// A ROUTER routing id.
typedef struct {
    uint8_t id[NF_WIRE_MAX_PEER];
    size_t len;
} nf_wire_peer_t;

// What a socket accepts.
typedef struct {
    bool router;            // a routing id frame comes first
    const char *job;        // NULL or "" = any job; otherwise the envelope's job must match
    bool allow_no_job;      // also accept envelopes with an empty job (peers that join)
    uint64_t bodies;        // NF_WIRE_BODY(case) bits of the bodies accepted here
    uint64_t max_payload;   // payload frames above this are dropped (0 = no payload accepted)
} nf_wire_expect_t;

#define NF_WIRE_BODY(body_case) ((uint64_t)1 << (unsigned)(body_case))

// One received, validated message. Fields are owned by the message.
typedef struct {
    nf_wire_peer_t peer;    // routing id (ROUTER sockets), len 0 otherwise
    Nf__Envelope *env;      // unpacked envelope
    zmq_msg_t payload;      // payload frame (size 0 when the body has none)
    bool has_payload;
} nf_wire_msg_t;

// Receives one message. flags: 0 (block) or ZMQ_DONTWAIT.
// Returns 1 when *msg holds a valid message (release with nf_wire_msg_close),
// 0 when a message was dropped (counted in st, logged), -1 when nothing was
// received (errno: EAGAIN, EINTR, ETERM, ...; nothing counted).
int nf_wire_recv(void *sock, const nf_wire_expect_t *ex, nf_wire_msg_t *msg,
                 nf_wire_stats_t *st, int flags);
// The socket-independent part of nf_wire_recv (also what the fuzz targets
// drive): decodes the envelope frame env_buf and checks it against ex
// (envelope size, version, job, body, payload presence, and for batches the
// shape against payload_len). Returns the unpacked envelope (the caller frees
// it with nf__envelope__free_unpacked), or NULL with *why and *detail set.
Nf__Envelope *nf_wire_decode(const nf_wire_expect_t *ex, const void *env_buf, size_t env_len,
                             bool has_payload, size_t payload_len, nf_wire_drop_t *why,
                             const char **detail);
// Releases what a received message owns. Safe on a zeroed or closed message.
void nf_wire_msg_close(nf_wire_msg_t *msg);

// Sends env (its version and job are set here) to peer (ROUTER sockets; NULL
// otherwise), followed by *payload when not NULL. The payload frame is always
// consumed (sent without copying, or closed on failure). flags: 0 or
// ZMQ_DONTWAIT. Returns 0, or -1 with errno (EAGAIN, EHOSTUNREACH, ETERM, ...).
int nf_wire_send(void *sock, const nf_wire_peer_t *peer, const char *job, Nf__Envelope *env,
                 zmq_msg_t *payload, int flags);

// Counts a stage-level rejection of an otherwise valid message.
void nf_wire_stats_drop(nf_wire_stats_t *st, nf_wire_drop_t why);
uint64_t nf_wire_stats_dropped(const nf_wire_stats_t *st);  // all reasons
const char *nf_wire_drop_name(nf_wire_drop_t why);
// Bytes of one element of a DType, or 0 for an unknown value.
size_t nf_wire_dtype_size(int dtype);

#endif
