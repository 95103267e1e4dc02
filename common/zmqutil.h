/*
 * zmqutil.h: ZeroMQ sockets with explicit limits, and Ctrl-C that wakes zmq_poll.
 *
 * Every socket in netteflow is made through nf_zmq_socket_new() with all the
 * options that bound memory and make failures visible set on purpose (zguide
 * ch. 2 and 4; reliability-and-ecosystem.md §2.2):
 *   - SNDHWM/RCVHWM small and counted in messages (batches), not the default 1000;
 *   - LINGER finite, so zmq_ctx_term never hangs on a dead peer;
 *   - MAXMSGSIZE, so a garbage or hostile peer cannot make us allocate much;
 *   - IMMEDIATE, so nothing is queued to a connection that is not complete;
 *   - ROUTER_MANDATORY, so a ROUTER send to a gone peer fails (EHOSTUNREACH)
 *     instead of being dropped silently.
 *
 * Signals: nf_signals_new() blocks SIGINT/SIGTERM/SIGHUP for the calling thread
 * (and every thread created after it, which includes ZeroMQ's I/O threads when
 * it is called before zmq_ctx_new) and returns them through a signalfd that a
 * zmq_poll loop polls next to its sockets. Only a process's main() calls it
 * (libraries never take over signals); child processes must get an empty
 * signal mask (nf_spawn in this module does that).
 *
 * This module does not know about messages: see wire.h for the Envelope framing.
 */
#ifndef NF_ZMQUTIL_H
#define NF_ZMQUTIL_H

#include "check.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <zmq.h>

// NF_ZMQ_CHECK(call): for calls that cannot fail unless we have a bug (setsockopt
// of a valid option, zmq_msg_init): abort with the ZeroMQ error string.
#define NF_ZMQ_CHECK(call)                                                                    \
    do {                                                                                      \
        if ((call) == -1) nf_die_(__FILE__, __LINE__, __func__, #call, "%s", zmq_strerror(zmq_errno())); \
    } while (0)

typedef struct {
    int type;               // ZMQ_ROUTER, ZMQ_DEALER, ZMQ_PUSH, ZMQ_PULL, ...
    int sndhwm;             // messages; 0 = the module default (16)
    int rcvhwm;             // messages; 0 = the module default (16)
    int linger_ms;          // -1 is refused (would hang on exit); 0 = the default (200 ms)
    int64_t maxmsgsize;     // bytes per inbound frame; 0 = the default (1 MiB); -1 = no limit
    bool immediate;         // ZMQ_IMMEDIATE
    bool router_mandatory;  // ZMQ_ROUTER_MANDATORY (ROUTER only)
    int sndtimeo_ms;        // 0 = blocking sends block forever (-1 in ZeroMQ terms)
    int rcvtimeo_ms;        // 0 = blocking receives block forever
} nf_zmq_socket_config_t;

// A socket with every option of cfg set. NULL (logged) when ZeroMQ refuses one.
void *nf_zmq_socket_new(void *ctx, const nf_zmq_socket_config_t *cfg);
// Closes *sock_p (LINGER was set at creation) and nulls it. Accepts NULL.
void nf_zmq_close(void **sock_p);

// Binds; with a wildcard endpoint (tcp://127.0.0.1:* or :0) the endpoint really
// bound is written to bound (may be NULL). Returns 0, or -1 (logged with the endpoint).
int nf_zmq_bind(void *sock, const char *endpoint, char *bound, size_t bound_len);
// Connects. Returns 0, or -1 (logged with the endpoint).
int nf_zmq_connect(void *sock, const char *endpoint);

// True for errors that mean "try again / stop now", not a fault: EAGAIN, EINTR, ETERM.
bool nf_zmq_errno_transient(int err);

// ---------------------------------------------------------------------------
// signals

typedef struct nf_signals_t nf_signals_t;

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and opens a signalfd
// for them. NULL (logged) on failure. Call before creating threads/contexts.
nf_signals_t *nf_signals_new(void);
// Discards pending signals (they were seen through the fd), restores the
// previous signal mask and closes the fd. Accepts NULL.
void nf_signals_destroy(nf_signals_t **self_p);
// The fd to put in a zmq_pollitem_t (ZMQ_POLLIN when a signal is pending).
int nf_signals_fd(const nf_signals_t *self);
// Reads pending signals; returns the last signal number, or 0 if none pending.
int nf_signals_take(nf_signals_t *self);

// Starts argv[0] (a path) with argv, an empty signal mask and default signal
// dispositions, so a child of a process that uses nf_signals still dies on
// SIGINT/SIGTERM. Returns the pid, or -1 (logged).
pid_t nf_spawn(char *const argv[]);

#endif
