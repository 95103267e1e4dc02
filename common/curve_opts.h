/*
 * curve_opts.h: the command-line face of common/curve.h, shared by every
 * stage's main (loader, augment serve, trainer, evaluator), so all of them take
 * the same CURVE options, check them by the same rules, print the same help
 * lines and log the same refusal counts when they stop.
 *
 *   --curve-secret FILE     this process's key pair (NAME.key_secret, `loader keygen NAME`)
 *   --curve-server FILE     the public key (NAME.key) of the server this stage connects to
 *   --curve-allow DIR|FILE  client public keys allowed to connect to what this stage binds
 *
 * Rules, the same in every stage: a connection is CURVE when its server's
 * public key is given; every socket the stage binds is a CURVE server when
 * --curve-allow is given (otherwise it binds only local endpoints:
 * nf_curve_bind_allowed); either needs --curve-secret. A role may require
 * more (a loader worker always needs --curve-server with keys); a stage that
 * binds nothing refuses --curve-allow, one that connects nowhere --curve-server.
 *
 * What it does not do: touch sockets (the stages' libraries apply the
 * nf_curve_t) or make the ZeroMQ context (the caller's).
 */
#ifndef NF_CURVE_OPTS_H
#define NF_CURVE_OPTS_H

#include "curve.h"

#include <stdbool.h>
#include <stdio.h>

// getopt_long codes of the three options (clear of ASCII and of the stages' own codes)
enum { NF_CURVE_OPT_SECRET = 0x4e43, NF_CURVE_OPT_SERVER, NF_CURVE_OPT_ALLOW };

// The three entries of a `struct option` table (needs <getopt.h>).
#define NF_CURVE_LONG_OPTIONS                                                                \
    {"curve-secret", required_argument, NULL, NF_CURVE_OPT_SECRET},                          \
        {"curve-server", required_argument, NULL, NF_CURVE_OPT_SERVER},                      \
        {"curve-allow", required_argument, NULL, NF_CURVE_OPT_ALLOW}

typedef struct {
    const char *secret;  // --curve-secret: our key pair
    const char *server;  // --curve-server: the public key of the server we connect to
    const char *allow;   // --curve-allow: allowed client keys (folder or file)
} nf_curve_opts_t;

typedef struct {
    const char *prog;       // for messages: "loader consume", "augment serve", "trainer", ...
    bool binds;             // the stage binds a socket: --curve-allow is accepted
    bool connects;          // the stage connects to a server: --curve-server is accepted
    bool need_server;       // with any CURVE option, --curve-server is required too
    bool need_allow;        // with any CURVE option, --curve-allow is required too
    const char *server_is;  // help: whose public key --curve-server is (connects only)
    const char *allow_is;   // help: whose keys --curve-allow lists (binds only)
} nf_curve_role_t;

// For getopt_long loops: 1 when c is one of NF_CURVE_LONG_OPTIONS (arg stored), else 0.
int nf_curve_opts_getopt(nf_curve_opts_t *o, int c, const char *arg);
// For hand-written loops: 1 when name is "--curve-secret", "--curve-server" or
// "--curve-allow" (value stored; it may be NULL: the caller reports it missing), else 0.
int nf_curve_opts_arg(nf_curve_opts_t *o, const char *name, const char *value);
// True when any CURVE option was given.
bool nf_curve_opts_any(const nf_curve_opts_t *o);
// Prints the help lines of the options the role takes.
void nf_curve_opts_help(FILE *f, const nf_curve_role_t *role);

// Checks the options against the role's rules (one line on stderr when they
// break one). Returns 0 or -1.
int nf_curve_opts_check(const nf_curve_opts_t *o, const nf_curve_role_t *role);
// Checks, then loads the keys and starts the ZAP handler (with --curve-allow)
// in zmq_ctx. Returns 0 with *curve NULL when no option was given (plain
// text), 0 with *curve set, or -1 after a one-line message on stderr.
int nf_curve_opts_open(const nf_curve_opts_t *o, const nf_curve_role_t *role, void *zmq_ctx,
                       nf_curve_t **curve);
// Logs what CURVE accepted and refused (one line, "curve: N clients accepted,
// M refused (key K, plain text P, wrong server key W, other O), refused by
// servers R"), then destroys *curve (nulls it). Accepts NULL.
void nf_curve_opts_close(nf_curve_t **curve);

#endif
