/*
 * curve.h: CURVE encryption and client authentication for ZeroMQ sockets that
 * leave the host: key files, our own ZAP handler with an allow-list of client
 * public keys, and a log + count of every refused peer.
 *
 * Keys. A key pair is two files in the format czmq's zcert and pyzmq's
 * zmq.auth write and read ("ZPL" certificates), so keys interoperate with
 * those tools:
 *   NAME.key         public certificate:  public-key = "<40 chars of Z85>"
 *   NAME.key_secret  secret certificate:  public-key and secret-key, mode 0600
 * nf_curve_keygen() writes both (never over existing files). A secret file
 * readable by group or others is refused, as ssh refuses such a key.
 *
 * Servers (sockets that bind). nf_curve_new() with a secret file and an
 * allow-list (a directory of NAME.key public certificates, or one file of
 * certificates or bare Z85 keys, one per line) binds a REP socket at
 * inproc://zeromq.zap.01 in the given context and answers ZAP requests
 * (RFC 27) from a thread: a CURVE client whose public key is on the list (or is
 * the server's own key) gets 200, anything else 400 and one log line with its
 * address and key. nf_curve_server() makes a socket a CURVE server with the
 * secret key and a ZAP domain, so libzmq must ask the handler (without a ZAP
 * domain libzmq would accept any client that knows the server's public key).
 * The same thread watches the server sockets' handshake events, so peers that
 * never reach ZAP are refused and counted too: plain-text peers (mechanism
 * mismatch) and CURVE peers that used a wrong server key (their HELLO does not
 * decrypt).
 *
 * Clients (sockets that connect). nf_curve_client() sets the server's public
 * key and our own key pair; a refusal by the server is logged once per burst.
 *
 * Policy. nf_curve_endpoint_local() says whether a bind endpoint stays on the
 * host (ipc://, inproc://, tcp:// on 127.0.0.0/8, ::1 or localhost); stages
 * refuse to bind anything else without CURVE.
 *
 * One nf_curve_t per ZeroMQ context (libzmq allows one ZAP handler per
 * context); it must outlive the sockets it was applied to and be destroyed
 * before the context is terminated. Thread-safe: sockets of several threads
 * of one process may use one nf_curve_t.
 */
#ifndef NF_CURVE_H
#define NF_CURVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NF_CURVE_KEY_Z85 40  // characters of a Z85 key (32 bytes)

typedef struct {
    void *zmq_ctx;            // the context whose sockets this guards (required)
    const char *secret_file;  // our key pair (NAME.key_secret); required
    const char *server_file;  // clients: the server's public key (a .key or .key_secret file)
    const char *allow;        // servers: allowed client keys (directory or file); NULL = no
                              // server role (nf_curve_server refuses)
    const char *domain;       // ZAP domain; NULL = "netteflow"
} nf_curve_config_t;

typedef struct {
    uint64_t accepted;          // CURVE clients whose key is allowed
    uint64_t refused_key;       // CURVE clients whose key is not allowed (ZAP 400)
    uint64_t refused_plaintext; // peers without CURVE on a CURVE socket: a mechanism
                                // mismatch, or a peer that hung up on our CURVE greeting
                                // (what a plain-text client does when it reads it first)
    uint64_t refused_crypto;    // CURVE handshakes that did not decrypt (wrong server key)
    uint64_t refused_other;     // other failed handshakes (timeout, malformed)
    uint64_t refused_by_server; // our client sockets refused by their server
} nf_curve_stats_t;

typedef struct nf_curve_t nf_curve_t;

// Checks zmq_has("curve"), loads the keys and the allow-list, starts the ZAP
// handler (when allow is set). NULL with a one-line reason in err (missing or
// unreadable file, bad key, secret file with loose permissions, empty
// allow-list, a ZAP handler already bound in this context).
nf_curve_t *nf_curve_new(const nf_curve_config_t *cfg, char *err, size_t err_len);
// Stops the handler thread and frees everything; nulls *self_p. Accepts NULL.
void nf_curve_destroy(nf_curve_t **self_p);

// Makes sock (not yet bound) a CURVE server with our secret key and the ZAP
// domain, and watches its handshakes (name is used in log lines). Returns 0,
// or -1 (logged) when this object has no allow-list or ZeroMQ refuses.
int nf_curve_server(nf_curve_t *self, void *sock, const char *name);
// Makes sock (not yet connected) a CURVE client of the server whose Z85
// public key is server_key (NULL = the configured server_file's key), and
// watches its handshakes. Returns 0, or -1 (logged) on a bad key or when no
// server key is known.
int nf_curve_client(nf_curve_t *self, void *sock, const char *server_key, const char *name);

// Our own public key, Z85 (40 characters + NUL).
const char *nf_curve_public_key(const nf_curve_t *self);
void *nf_curve_ctx(const nf_curve_t *self);
// Counters so far (read from any thread).
void nf_curve_stats(nf_curve_t *self, nf_curve_stats_t *out);
// Total refused peers of every kind (not counting refused_by_server).
uint64_t nf_curve_stats_refused(const nf_curve_stats_t *st);

// Writes NAME.key (0644) and NAME.key_secret (0600) for base path NAME (its
// folder must exist). Never overwrites: an existing file is an error. Returns
// 0, or -1 with a one-line reason in err. public_z85 (may be NULL) gets the key.
int nf_curve_keygen(const char *base, char public_z85[NF_CURVE_KEY_Z85 + 1], char *err,
                    size_t err_len);

// The first public key of a certificate (NAME.key or NAME.key_secret) or
// key-list file, for a client of a second server (nf_curve_client's
// server_key). Returns 0, or -1 with a one-line reason in err.
int nf_curve_read_public(const char *path, char z85[NF_CURVE_KEY_Z85 + 1], char *err,
                         size_t err_len);

// True when s is 40 characters of valid Z85 (a CURVE key).
bool nf_curve_key_valid(const char *s);
// True when a bind endpoint stays on this host (ipc, inproc, loopback tcp).
bool nf_curve_endpoint_local(const char *endpoint);
// The bind policy every stage follows: true when endpoint may be bound by a
// socket that is a CURVE server (curve != NULL) or is local; otherwise logs
// "refusing to bind EP in plain text: ..." (one line) and returns false.
bool nf_curve_bind_allowed(const nf_curve_t *curve, const char *endpoint);

#endif
