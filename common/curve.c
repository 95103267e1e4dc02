/*
 * curve.c: see curve.h. Key files, the ZAP handler thread (RFC 27 on a REP
 * socket at inproc://zeromq.zap.01) and the handshake monitors it also reads.
 *
 * Written on bare libzmq rather than czmq's zauth actor: it is about as long
 * as the glue zauth would need, adds no dependency, and logs and counts every
 * refusal the way the other stages count dropped messages.
 */
#include "curve.h"

#include "check.h"
#include "fsutil.h"
#include "log.h"
#include "zmqutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
enum { S_KEY_BYTES = 32, S_MAX_CERT_BYTES = 1 << 20, S_ZAP_MAX_FRAMES = 16, S_LOG_FIRST = 5 };

// The handshake events watched on every socket this object configures.
#define S_EVENTS                                                                            \
    (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |           \
     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_MONITOR_STOPPED)

typedef struct {
    void *pair;      // our end of the socket's monitor
    char name[64];
    bool server;
} s_watch_t;

struct nf_curve_t {
    void *ctx;
    char domain[64];
    char public_z85[NF_CURVE_KEY_Z85 + 1];
    uint8_t secret[S_KEY_BYTES];
    char server_z85[NF_CURVE_KEY_Z85 + 1];  // empty when unknown
    uint8_t (*allow)[S_KEY_BYTES];          // (n_allow) allowed client keys
    size_t n_allow;
    bool server_role;
    // the handler thread and what it owns
    pthread_t thread;
    bool thread_started;
    void *zap;                              // REP at S_ZAP_ENDPOINT (servers only)
    void *ctl_rx;                           // thread side of the control pipe
    s_watch_t *watch;                       // (n_watch) monitors the thread reads
    size_t n_watch;
    // shared with callers, under mu
    pthread_mutex_t mu;
    void *ctl_tx;                           // caller side of the control pipe
    s_watch_t *pending;                     // (n_pending) monitors not yet adopted
    size_t n_pending;
    uint64_t next_monitor;
    nf_curve_stats_t stats;
};

// ---------------------------------------------------------------------------
// keys and files

static void s_err(char *err, size_t len, const char *fmt, ...) NF_PRINTF(3, 4);
static void s_err(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

bool nf_curve_key_valid(const char *s)
{
    if (!s || strlen(s) != NF_CURVE_KEY_Z85) return false;
    static const char alphabet[] =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    for (const char *p = s; *p; p++)
        if (!strchr(alphabet, *p)) return false;
    uint8_t bin[S_KEY_BYTES];
    return zmq_z85_decode(bin, s) != NULL;
}

// The value of `name = "value"` on a trimmed line, or NULL.
static const char *s_cert_value(char *line, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(line, name, n) != 0) return NULL;
    char *p = line + n;
    while (*p == ' ' || *p == '\t') p++;
    if (*p != '=') return NULL;
    p++;
    while (*p == ' ' || *p == '\t' || *p == '"' || *p == '\'') p++;
    char *end = p + strlen(p);
    while (end > p && (end[-1] == '"' || end[-1] == '\'' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = 0;
    return p;
}

// Calls fn(key, arg) for every public key of a certificate or key-list file
// (secret_out, when not NULL, gets a secret-key entry). Returns the number of
// keys found, or -1 with err set.
typedef void (*s_key_fn)(const char *z85, void *arg);
static int s_read_keys(const char *path, s_key_fn fn, void *arg,
                       char secret_out[NF_CURVE_KEY_Z85 + 1], char *err, size_t err_len)
{
    size_t len;
    char *text = nf_read_file(path, S_MAX_CERT_BYTES, &len);
    if (!text) {
        s_err(err, err_len, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    int found = 0, line_no = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        while (*line == ' ' || *line == '\t') line++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t')) line[--l] = 0;
        if (!l || line[0] == '#') continue;
        const char *pub = s_cert_value(line, "public-key");
        const char *sec = pub ? NULL : s_cert_value(line, "secret-key");
        const char *key = pub ? pub : sec ? sec : (l == NF_CURVE_KEY_Z85 ? line : NULL);
        if (!key) continue;  // section names, metadata
        if (!nf_curve_key_valid(key)) {
            s_err(err, err_len, "%s:%d: not a Z85 CURVE key", path, line_no);
            free(text);
            return -1;
        }
        if (sec) {
            if (secret_out) snprintf(secret_out, NF_CURVE_KEY_Z85 + 1, "%s", key);
            continue;
        }
        if (fn) fn(key, arg);
        found++;
    }
    free(text);
    return found;
}

static void s_take_first(const char *z85, void *arg)
{
    char *out = arg;
    if (!out[0]) snprintf(out, NF_CURVE_KEY_Z85 + 1, "%s", z85);
}

static void s_add_allowed(const char *z85, void *arg)
{
    nf_curve_t *self = arg;
    self->allow = nf_xrealloc(self->allow, (self->n_allow + 1) * sizeof *self->allow);
    NF_CHECK(zmq_z85_decode(self->allow[self->n_allow], z85), "z85 decode of a checked key");
    self->n_allow++;
}

static int s_load_secret(nf_curve_t *self, const char *path, char *err, size_t err_len)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        s_err(err, err_len, "cannot read secret key %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        s_err(err, err_len, "secret key %s is not a regular file", path);
        return -1;
    }
    if (st.st_mode & 077) {
        s_err(err, err_len, "permissions %04o on secret key %s are too open (chmod 600 %s)",
              (unsigned)(st.st_mode & 0777), path, path);
        return -1;
    }
    char pub[NF_CURVE_KEY_Z85 + 1] = "", sec[NF_CURVE_KEY_Z85 + 1] = "";
    if (s_read_keys(path, s_take_first, pub, sec, err, err_len) < 0) return -1;
    if (!sec[0] || !pub[0]) {
        s_err(err, err_len, "%s is not a secret certificate (public-key and secret-key)", path);
        return -1;
    }
    char derived[NF_CURVE_KEY_Z85 + 1];
    if (zmq_curve_public(derived, sec) != 0 || strcmp(derived, pub) != 0) {
        s_err(err, err_len, "%s: the public key does not belong to the secret key", path);
        return -1;
    }
    snprintf(self->public_z85, sizeof self->public_z85, "%s", pub);
    NF_CHECK(zmq_z85_decode(self->secret, sec), "z85 decode of a checked key");
    return 0;
}

static int s_load_allow(nf_curve_t *self, const char *path, char *err, size_t err_len)
{
    if (!nf_is_dir(path)) {
        int n = s_read_keys(path, s_add_allowed, self, NULL, err, err_len);
        if (n < 0) return -1;
    } else {
        DIR *d = opendir(path);
        if (!d) {
            s_err(err, err_len, "cannot open allow-list folder %s: %s", path, strerror(errno));
            return -1;
        }
        struct dirent *e;
        int rc = 0;
        while (rc == 0 && (e = readdir(d)) != NULL) {
            size_t l = strlen(e->d_name);
            if (e->d_name[0] == '.' || l < 5 || strcmp(e->d_name + l - 4, ".key") != 0) continue;
            char file[4096];
            snprintf(file, sizeof file, "%s/%s", path, e->d_name);
            if (nf_is_file(file) && s_read_keys(file, s_add_allowed, self, NULL, err, err_len) < 0)
                rc = -1;
        }
        closedir(d);
        if (rc != 0) return -1;
    }
    if (self->n_allow == 0) {
        s_err(err, err_len, "allow-list %s holds no public key", path);
        return -1;
    }
    return 0;
}

// Writes a whole new file with mode (O_EXCL: never replaces one). Returns 0 or -1 (errno).
static int s_write_new(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return -1;
    size_t len = strlen(text), done = 0;
    int rc = fchmod(fd, mode);
    while (rc == 0 && done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) rc = -1;
        else done += (size_t)w;
    }
    if (rc == 0) rc = fsync(fd);
    int saved = errno;
    if (close(fd) != 0 && rc == 0) rc = -1, saved = errno;
    if (rc != 0) {
        unlink(path);
        errno = saved;
    }
    return rc;
}

int nf_curve_keygen(const char *base, char public_z85[NF_CURVE_KEY_Z85 + 1], char *err,
                    size_t err_len)
{
    char pub[NF_CURVE_KEY_Z85 + 1], sec[NF_CURVE_KEY_Z85 + 1];
    if (!zmq_has("curve") || zmq_curve_keypair(pub, sec) != 0) {
        s_err(err, err_len, "this libzmq has no CURVE support (built without libsodium)");
        return -1;
    }
    char pub_path[4096], sec_path[4096], stamp[32];
    snprintf(pub_path, sizeof pub_path, "%s.key", base);
    snprintf(sec_path, sizeof sec_path, "%s.key_secret", base);
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", gmtime_r(&now, &tm));
    char pub_text[1024], sec_text[1024];
    snprintf(pub_text, sizeof pub_text,
             "#   ****  Generated on %s UTC by netteflow  ****\n"
             "#   ZeroMQ CURVE Public Certificate\n"
             "#   Exchange securely, or use a secure mechanism to verify the contents\n"
             "#   of this file after exchange.\n\n"
             "metadata\ncurve\n    public-key = \"%s\"\n",
             stamp, pub);
    snprintf(sec_text, sizeof sec_text,
             "#   ****  Generated on %s UTC by netteflow  ****\n"
             "#   ZeroMQ CURVE **Secret** Certificate\n"
             "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n"
             "metadata\ncurve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n",
             stamp, pub, sec);
    if (access(pub_path, F_OK) == 0 || access(sec_path, F_OK) == 0) {
        s_err(err, err_len, "%s or %s exists already (keys are never overwritten)", pub_path,
              sec_path);
        return -1;
    }
    if (s_write_new(sec_path, sec_text, 0600) != 0) {
        s_err(err, err_len, "cannot write %s: %s", sec_path, strerror(errno));
        return -1;
    }
    if (s_write_new(pub_path, pub_text, 0644) != 0) {
        s_err(err, err_len, "cannot write %s: %s", pub_path, strerror(errno));
        unlink(sec_path);
        return -1;
    }
    memset(sec, 0, sizeof sec);
    memset(sec_text, 0, sizeof sec_text);
    if (public_z85) snprintf(public_z85, NF_CURVE_KEY_Z85 + 1, "%s", pub);
    return 0;
}

int nf_curve_read_public(const char *path, char z85[NF_CURVE_KEY_Z85 + 1], char *err,
                         size_t err_len)
{
    z85[0] = 0;
    if (s_read_keys(path, s_take_first, z85, NULL, err, err_len) < 0) return -1;
    if (!z85[0]) {
        s_err(err, err_len, "%s holds no public key", path);
        return -1;
    }
    return 0;
}

bool nf_curve_bind_allowed(const nf_curve_t *curve, const char *endpoint)
{
    if (curve || nf_curve_endpoint_local(endpoint)) return true;
    nf_log_error("refusing to bind %s in plain text: an endpoint other hosts can reach needs "
                 "CURVE (--curve-secret and --curve-allow)", endpoint);
    return false;
}

bool nf_curve_endpoint_local(const char *ep)
{
    if (!ep) return false;
    if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9)) return true;
    if (strncmp(ep, "tcp://", 6) != 0) return false;
    const char *host = ep + 6;
    const char *colon = strrchr(host, ':');
    if (!colon || colon == host) return false;
    char h[256];
    size_t n = (size_t)(colon - host);
    if (n >= sizeof h) return false;
    memcpy(h, host, n);
    h[n] = 0;
    if (!strcmp(h, "localhost") || !strcmp(h, "lo") || !strcmp(h, "[::1]")) return true;
    struct in_addr a;
    return inet_pton(AF_INET, h, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

// ---------------------------------------------------------------------------
// the handler thread

static bool s_log_now(uint64_t count) { return count <= S_LOG_FIRST || (count & (count - 1)) == 0; }

static int s_send_str(void *sock, const char *s, int flags)
{
    return zmq_send(sock, s, strlen(s), flags) < 0 ? -1 : 0;
}

static bool s_allowed(const nf_curve_t *self, const uint8_t *key)
{
    uint8_t own[S_KEY_BYTES];
    NF_CHECK(zmq_z85_decode(own, self->public_z85), "own key");
    if (memcmp(own, key, S_KEY_BYTES) == 0) return true;  // our own key pair (spawned workers)
    for (size_t i = 0; i < self->n_allow; i++)
        if (memcmp(self->allow[i], key, S_KEY_BYTES) == 0) return true;
    return false;
}

// Copies a frame as a printable string (for logs).
static void s_frame_str(zmq_msg_t *m, char *out, size_t len)
{
    size_t n = zmq_msg_size(m) < len - 1 ? zmq_msg_size(m) : len - 1;
    memcpy(out, zmq_msg_data(m), n);
    out[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (out[i] < 32 || out[i] > 126) out[i] = '?';
}

// One ZAP request (RFC 27): version, request id, domain, address, identity,
// mechanism, credentials. Every request gets a reply, or the REP socket stalls.
static void s_zap_request(nf_curve_t *self)
{
    zmq_msg_t f[S_ZAP_MAX_FRAMES];
    int n = 0;
    bool more = true;
    while (more) {
        zmq_msg_t m;
        NF_ZMQ_CHECK(zmq_msg_init(&m));
        if (zmq_msg_recv(&m, self->zap, 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n < S_ZAP_MAX_FRAMES) f[n++] = m;
        else zmq_msg_close(&m);
    }
    if (n == 0) return;
    const char *status = "400", *text = "not allowed";
    char user[NF_CURVE_KEY_Z85 + 1] = "", address[64] = "?", mech[16] = "?", domain[64] = "";
    bool well_formed = n >= 6 && zmq_msg_size(&f[0]) == 3 && !memcmp(zmq_msg_data(&f[0]), "1.0", 3);
    if (n >= 6) {
        s_frame_str(&f[2], domain, sizeof domain);
        s_frame_str(&f[3], address, sizeof address);
        s_frame_str(&f[5], mech, sizeof mech);
    }
    uint64_t count;
    pthread_mutex_lock(&self->mu);
    if (!well_formed) {
        status = "500";
        text = "malformed ZAP request";
        count = ++self->stats.refused_other;
    } else if (strcmp(mech, "CURVE") != 0 || n != 7 || zmq_msg_size(&f[6]) != S_KEY_BYTES) {
        text = "only CURVE clients are accepted";
        count = ++self->stats.refused_plaintext;
    } else if (strcmp(domain, self->domain) != 0) {
        text = "unknown ZAP domain";
        count = ++self->stats.refused_other;
    } else {
        zmq_z85_encode(user, zmq_msg_data(&f[6]), S_KEY_BYTES);
        if (s_allowed(self, zmq_msg_data(&f[6]))) {
            status = "200";
            text = "OK";
            count = ++self->stats.accepted;
        } else {
            count = ++self->stats.refused_key;
        }
    }
    pthread_mutex_unlock(&self->mu);
    if (status[0] == '2')
        nf_log_debug("curve: accepted client %s from %s", user, address);
    else if (s_log_now(count))
        nf_log_warn("curve: refused %s client %s from %s (domain '%s'): %s [%llu so far]", mech,
                    user[0] ? user : "-", address, domain, text, (unsigned long long)count);
    // reply: version, request id, status code, status text, user id, metadata
    int rc = s_send_str(self->zap, "1.0", ZMQ_SNDMORE);
    if (rc == 0 && n >= 2)
        rc = zmq_send(self->zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE) < 0 ? -1 : 0;
    else if (rc == 0)
        rc = s_send_str(self->zap, "", ZMQ_SNDMORE);
    if (rc == 0) rc = s_send_str(self->zap, status, ZMQ_SNDMORE);
    if (rc == 0) rc = s_send_str(self->zap, text, ZMQ_SNDMORE);
    if (rc == 0) rc = s_send_str(self->zap, user, ZMQ_SNDMORE);
    if (rc == 0) rc = s_send_str(self->zap, "", 0);
    if (rc != 0) nf_log_error("curve: ZAP reply: %s", zmq_strerror(zmq_errno()));
    for (int i = 0; i < n; i++) zmq_msg_close(&f[i]);
}

// One monitor event of a watched socket. Returns false when the monitor
// stopped (the socket was closed) and the watch should go.
static bool s_monitor_event(nf_curve_t *self, s_watch_t *w)
{
    zmq_msg_t head, addr;
    NF_ZMQ_CHECK(zmq_msg_init(&head));
    NF_ZMQ_CHECK(zmq_msg_init(&addr));
    int rc = zmq_msg_recv(&head, w->pair, 0);
    bool two = rc >= 0 && zmq_msg_more(&head) && zmq_msg_recv(&addr, w->pair, 0) >= 0;
    bool keep = true;
    if (rc >= 0 && zmq_msg_size(&head) == 6) {
        uint16_t event;
        uint32_t value;
        memcpy(&event, zmq_msg_data(&head), 2);
        memcpy(&value, (uint8_t *)zmq_msg_data(&head) + 2, 4);
        char ep[256] = "";
        if (two) s_frame_str(&addr, ep, sizeof ep);
        uint64_t count = 0;
        const char *what = NULL;
        pthread_mutex_lock(&self->mu);
        if (event == ZMQ_EVENT_MONITOR_STOPPED) {
            keep = false;
        } else if (!w->server) {
            if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
                count = ++self->stats.refused_by_server;
                what = "the server refused us (is our public key on its allow-list?)";
            } else {
                count = ++self->stats.refused_by_server;
                what = "handshake failed (is the server key right?)";
            }
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
                   value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
            count = ++self->stats.refused_plaintext;
            what = "a peer without CURVE (plain text)";
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL &&
                   (value == EPIPE || value == ECONNRESET)) {
            // a plain-text client that reads our CURVE greeting first hangs up
            // before we read its own: the same refusal, seen from the other end
            count = ++self->stats.refused_plaintext;
            what = "a peer that hung up on our CURVE greeting (plain text?)";
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
                   value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
            count = ++self->stats.refused_crypto;
            what = "a CURVE handshake that does not decrypt (client has a wrong server key?)";
        } else if (event != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {  // AUTH: ZAP counted it
            count = ++self->stats.refused_other;
            what = "a failed handshake";
        }
        pthread_mutex_unlock(&self->mu);
        if (what && s_log_now(count)) {
            if (w->server)
                nf_log_warn("curve: %s on %s refused %s [event 0x%x, 0x%x; %llu so far]", w->name,
                            ep, what, event, value, (unsigned long long)count);
            else
                nf_log_error("curve: %s to %s: %s [event 0x%x, %u; %llu so far]", w->name, ep,
                             what, event, value, (unsigned long long)count);
        }
    }
    zmq_msg_close(&head);
    zmq_msg_close(&addr);
    return keep;
}

static void s_adopt_pending(nf_curve_t *self)
{
    pthread_mutex_lock(&self->mu);
    self->watch = nf_xrealloc(self->watch, (self->n_watch + self->n_pending + 1) * sizeof *self->watch);
    memcpy(self->watch + self->n_watch, self->pending, self->n_pending * sizeof *self->pending);
    self->n_watch += self->n_pending;
    self->n_pending = 0;
    pthread_mutex_unlock(&self->mu);
}

static void *s_thread(void *arg)
{
    nf_curve_t *self = arg;
    for (;;) {
        // items: the control pipe, the ZAP socket (servers), then every monitor
        size_t zap = self->zap ? 1 : 0, base = 1 + zap, n = base + self->n_watch;
        zmq_pollitem_t *items = nf_xcalloc(n, sizeof *items);
        items[0] = (zmq_pollitem_t){.socket = self->ctl_rx, .events = ZMQ_POLLIN};
        if (zap) items[1] = (zmq_pollitem_t){.socket = self->zap, .events = ZMQ_POLLIN};
        for (size_t i = 0; i < self->n_watch; i++)
            items[base + i] = (zmq_pollitem_t){.socket = self->watch[i].pair, .events = ZMQ_POLLIN};
        int rc = zmq_poll(items, (int)n, -1);
        if (rc < 0 && zmq_errno() != EINTR) {
            nf_log_error("curve: zmq_poll: %s", zmq_strerror(zmq_errno()));
            free(items);
            break;
        }
        bool quit = false, adopt = false;
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN)) {
            char cmd = 0;
            if (zmq_recv(self->ctl_rx, &cmd, 1, 0) >= 0) quit = cmd == 'Q', adopt = cmd == 'W';
        }
        if (rc > 0 && zap && (items[1].revents & ZMQ_POLLIN)) s_zap_request(self);
        for (size_t i = 0; rc > 0 && i < self->n_watch; i++) {
            if (!(items[base + i].revents & ZMQ_POLLIN)) continue;
            if (!s_monitor_event(self, &self->watch[i])) nf_zmq_close(&self->watch[i].pair);
        }
        free(items);
        size_t kept = 0;  // drop watches whose socket was closed
        for (size_t i = 0; i < self->n_watch; i++)
            if (self->watch[i].pair) self->watch[kept++] = self->watch[i];
        self->n_watch = kept;
        if (adopt) s_adopt_pending(self);
        if (quit) break;
    }
    for (size_t i = 0; i < self->n_watch; i++) nf_zmq_close(&self->watch[i].pair);
    self->n_watch = 0;
    nf_zmq_close(&self->zap);
    return NULL;
}

// Sends a one-byte command to the thread. Caller holds mu.
static void s_command(nf_curve_t *self, char cmd)
{
    if (zmq_send(self->ctl_tx, &cmd, 1, 0) != 1)
        nf_log_error("curve: control pipe: %s", zmq_strerror(zmq_errno()));
}

// Monitors sock's handshakes from the thread.
static int s_watch(nf_curve_t *self, void *sock, const char *name, bool server)
{
    char ep[128];
    pthread_mutex_lock(&self->mu);
    snprintf(ep, sizeof ep, "inproc://nf-curve-monitor-%p-%llu", (void *)self,
             (unsigned long long)self->next_monitor++);
    pthread_mutex_unlock(&self->mu);
    if (zmq_socket_monitor(sock, ep, S_EVENTS) != 0) {
        nf_log_error("curve: zmq_socket_monitor(%s): %s", name, zmq_strerror(zmq_errno()));
        return -1;
    }
    nf_zmq_socket_config_t pc = {.type = ZMQ_PAIR, .rcvhwm = 1000};
    void *pair = nf_zmq_socket_new(self->ctx, &pc);
    if (!pair || nf_zmq_connect(pair, ep) != 0) {
        nf_zmq_close(&pair);
        return -1;
    }
    pthread_mutex_lock(&self->mu);
    self->pending = nf_xrealloc(self->pending, (self->n_pending + 1) * sizeof *self->pending);
    s_watch_t *w = &self->pending[self->n_pending++];
    memset(w, 0, sizeof *w);
    w->pair = pair;
    w->server = server;
    snprintf(w->name, sizeof w->name, "%s", name ? name : "socket");
    s_command(self, 'W');
    pthread_mutex_unlock(&self->mu);
    return 0;
}

// ---------------------------------------------------------------------------
// public API

nf_curve_t *nf_curve_new(const nf_curve_config_t *cfg, char *err, size_t err_len)
{
    NF_CHECK(cfg && cfg->zmq_ctx, "nf_curve_new needs a ZeroMQ context");
    if (!zmq_has("curve")) {
        s_err(err, err_len, "this libzmq has no CURVE support (built without libsodium)");
        return NULL;
    }
    if (!cfg->secret_file) {
        s_err(err, err_len, "CURVE needs our own key pair (a .key_secret file)");
        return NULL;
    }
    nf_curve_t *self = nf_xcalloc(1, sizeof *self);
    self->ctx = cfg->zmq_ctx;
    snprintf(self->domain, sizeof self->domain, "%s", cfg->domain ? cfg->domain : "netteflow");
    NF_CHECK(pthread_mutex_init(&self->mu, NULL) == 0, "pthread_mutex_init");
    if (s_load_secret(self, cfg->secret_file, err, err_len) != 0) goto fail;
    if (cfg->server_file &&
        nf_curve_read_public(cfg->server_file, self->server_z85, err, err_len) != 0)
        goto fail;
    if (cfg->allow) {
        if (s_load_allow(self, cfg->allow, err, err_len) != 0) goto fail;
        self->server_role = true;
        nf_zmq_socket_config_t rc = {.type = ZMQ_REP, .rcvhwm = 1000, .sndhwm = 1000};
        self->zap = nf_zmq_socket_new(self->ctx, &rc);
        if (!self->zap || zmq_bind(self->zap, S_ZAP_ENDPOINT) != 0) {
            s_err(err, err_len, "cannot start the ZAP handler: %s (one per context)",
                  zmq_strerror(zmq_errno()));
            goto fail;
        }
    }
    char ctl[128];
    snprintf(ctl, sizeof ctl, "inproc://nf-curve-control-%p", (void *)self);
    nf_zmq_socket_config_t pc = {.type = ZMQ_PAIR, .rcvhwm = 1000, .sndhwm = 1000};
    self->ctl_rx = nf_zmq_socket_new(self->ctx, &pc);
    self->ctl_tx = nf_zmq_socket_new(self->ctx, &pc);
    if (!self->ctl_rx || !self->ctl_tx || nf_zmq_bind(self->ctl_rx, ctl, NULL, 0) != 0 ||
        nf_zmq_connect(self->ctl_tx, ctl) != 0) {
        s_err(err, err_len, "cannot create the CURVE handler's control pipe");
        goto fail;
    }
    if (pthread_create(&self->thread, NULL, s_thread, self) != 0) {
        s_err(err, err_len, "cannot start the CURVE handler thread");
        goto fail;
    }
    self->thread_started = true;
    if (self->server_role)
        nf_log_info("curve: %zu allowed client keys, our public key %s", self->n_allow,
                    self->public_z85);
    return self;
fail:
    nf_curve_destroy(&self);
    return NULL;
}

void nf_curve_destroy(nf_curve_t **self_p)
{
    if (!self_p || !*self_p) return;
    nf_curve_t *self = *self_p;
    if (self->thread_started) {
        pthread_mutex_lock(&self->mu);
        s_command(self, 'Q');
        pthread_mutex_unlock(&self->mu);
        NF_CHECK(pthread_join(self->thread, NULL) == 0, "pthread_join");
    }
    for (size_t i = 0; i < self->n_pending; i++) nf_zmq_close(&self->pending[i].pair);
    for (size_t i = 0; i < self->n_watch; i++) nf_zmq_close(&self->watch[i].pair);
    nf_zmq_close(&self->zap);
    nf_zmq_close(&self->ctl_rx);
    nf_zmq_close(&self->ctl_tx);
    pthread_mutex_destroy(&self->mu);
    memset(self->secret, 0, sizeof self->secret);
    free(self->pending);
    free(self->watch);
    free(self->allow);
    free(self);
    *self_p = NULL;
}

int nf_curve_server(nf_curve_t *self, void *sock, const char *name)
{
    if (!self->server_role) {
        nf_log_error("curve: %s: a CURVE server needs an allow-list of client keys", name);
        return -1;
    }
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, self->secret, S_KEY_BYTES) != 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, self->domain, strlen(self->domain)) != 0) {
        nf_log_error("curve: %s: CURVE server options: %s", name, zmq_strerror(zmq_errno()));
        return -1;
    }
    return s_watch(self, sock, name, true);
}

int nf_curve_client(nf_curve_t *self, void *sock, const char *server_key, const char *name)
{
    const char *sk = server_key ? server_key : self->server_z85;
    uint8_t server[S_KEY_BYTES], public_key[S_KEY_BYTES];
    if (!nf_curve_key_valid(sk)) {
        nf_log_error("curve: %s: %s", name,
                     sk[0] ? "the server key is not a Z85 CURVE key" : "no server key known");
        return -1;
    }
    NF_CHECK(zmq_z85_decode(server, sk) && zmq_z85_decode(public_key, self->public_z85), "keys");
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, S_KEY_BYTES) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, public_key, S_KEY_BYTES) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, self->secret, S_KEY_BYTES) != 0) {
        nf_log_error("curve: %s: CURVE client options: %s", name, zmq_strerror(zmq_errno()));
        return -1;
    }
    return s_watch(self, sock, name, false);
}

const char *nf_curve_public_key(const nf_curve_t *self) { return self->public_z85; }

void *nf_curve_ctx(const nf_curve_t *self) { return self->ctx; }

void nf_curve_stats(nf_curve_t *self, nf_curve_stats_t *out)
{
    pthread_mutex_lock(&self->mu);
    *out = self->stats;
    pthread_mutex_unlock(&self->mu);
}

uint64_t nf_curve_stats_refused(const nf_curve_stats_t *st)
{
    return st->refused_key + st->refused_plaintext + st->refused_crypto + st->refused_other;
}
