/*
 * zmqutil.c: see zmqutil.h. Socket creation with explicit limits, bind/connect
 * with one-line errors, signalfd-based SIGINT/SIGTERM, and spawning children
 * with a clean signal state.
 */
#include "zmqutil.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

extern char **environ;

enum { S_DEFAULT_HWM = 16, S_DEFAULT_LINGER_MS = 200 };
#define S_DEFAULT_MAXMSGSIZE ((int64_t)1 << 20)

static int s_setopt_int(void *sock, int opt, int value, const char *name)
{
    if (zmq_setsockopt(sock, opt, &value, sizeof value) == 0) return 0;
    nf_log_error("zmq_setsockopt(%s=%d): %s", name, value, zmq_strerror(zmq_errno()));
    return -1;
}

void *nf_zmq_socket_new(void *ctx, const nf_zmq_socket_config_t *cfg)
{
    NF_CHECK(ctx && cfg, "null argument");
    NF_CHECK(cfg->linger_ms >= 0, "an infinite linger would hang on exit");
    void *sock = zmq_socket(ctx, cfg->type);
    if (!sock) {
        nf_log_error("zmq_socket(type %d): %s", cfg->type, zmq_strerror(zmq_errno()));
        return NULL;
    }
    int64_t maxmsg = cfg->maxmsgsize ? cfg->maxmsgsize : S_DEFAULT_MAXMSGSIZE;
    int rc = 0;
    rc |= s_setopt_int(sock, ZMQ_SNDHWM, cfg->sndhwm ? cfg->sndhwm : S_DEFAULT_HWM, "SNDHWM");
    rc |= s_setopt_int(sock, ZMQ_RCVHWM, cfg->rcvhwm ? cfg->rcvhwm : S_DEFAULT_HWM, "RCVHWM");
    rc |= s_setopt_int(sock, ZMQ_LINGER, cfg->linger_ms ? cfg->linger_ms : S_DEFAULT_LINGER_MS,
                       "LINGER");
    rc |= s_setopt_int(sock, ZMQ_SNDTIMEO, cfg->sndtimeo_ms ? cfg->sndtimeo_ms : -1, "SNDTIMEO");
    rc |= s_setopt_int(sock, ZMQ_RCVTIMEO, cfg->rcvtimeo_ms ? cfg->rcvtimeo_ms : -1, "RCVTIMEO");
    if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0) {
        nf_log_error("zmq_setsockopt(MAXMSGSIZE=%lld): %s", (long long)maxmsg,
                     zmq_strerror(zmq_errno()));
        rc = -1;
    }
    if (cfg->immediate) rc |= s_setopt_int(sock, ZMQ_IMMEDIATE, 1, "IMMEDIATE");
    if (cfg->router_mandatory) rc |= s_setopt_int(sock, ZMQ_ROUTER_MANDATORY, 1, "ROUTER_MANDATORY");
    if (rc != 0) {
        nf_zmq_close(&sock);
        return NULL;
    }
    return sock;
}

void nf_zmq_close(void **sock_p)
{
    if (!sock_p || !*sock_p) return;
    if (zmq_close(*sock_p) != 0) nf_log_warn("zmq_close: %s", zmq_strerror(zmq_errno()));
    *sock_p = NULL;
}

int nf_zmq_bind(void *sock, const char *endpoint, char *bound, size_t bound_len)
{
    if (zmq_bind(sock, endpoint) != 0) {
        nf_log_error("cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
        return -1;
    }
    if (bound && bound_len) {
        size_t len = bound_len;
        if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bound, &len) != 0) {
            nf_log_error("zmq_getsockopt(LAST_ENDPOINT): %s", zmq_strerror(zmq_errno()));
            return -1;
        }
        bound[bound_len - 1] = 0;
    }
    return 0;
}

int nf_zmq_connect(void *sock, const char *endpoint)
{
    if (zmq_connect(sock, endpoint) != 0) {
        nf_log_error("cannot connect to %s: %s", endpoint, zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

bool nf_zmq_errno_transient(int err) { return err == EAGAIN || err == EINTR || err == ETERM; }

// ---------------------------------------------------------------------------
// signals

struct nf_signals_t {
    int fd;
    sigset_t old_mask;
};

static void s_signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
}

nf_signals_t *nf_signals_new(void)
{
    nf_signals_t *self = nf_xcalloc(1, sizeof *self);
    sigset_t set;
    s_signal_set(&set);
    int err = pthread_sigmask(SIG_BLOCK, &set, &self->old_mask);
    if (err != 0) {
        nf_log_error("pthread_sigmask: %s", strerror(err));
        free(self);
        return NULL;
    }
    self->fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (self->fd < 0) {
        nf_log_error("signalfd: %s", strerror(errno));
        pthread_sigmask(SIG_SETMASK, &self->old_mask, NULL);
        free(self);
        return NULL;
    }
    return self;
}

void nf_signals_destroy(nf_signals_t **self_p)
{
    if (!self_p || !*self_p) return;
    nf_signals_t *self = *self_p;
    (void)nf_signals_take(self);  // a pending signal would kill us once unblocked
    if (close(self->fd) != 0) nf_log_warn("close(signalfd): %s", strerror(errno));
    int err = pthread_sigmask(SIG_SETMASK, &self->old_mask, NULL);
    if (err != 0) nf_log_warn("pthread_sigmask: %s", strerror(err));
    free(self);
    *self_p = NULL;
}

int nf_signals_fd(const nf_signals_t *self) { return self->fd; }

int nf_signals_take(nf_signals_t *self)
{
    int last = 0;
    struct signalfd_siginfo info;
    for (;;) {
        ssize_t n = read(self->fd, &info, sizeof info);
        if (n == (ssize_t)sizeof info) {
            last = (int)info.ssi_signo;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN) nf_log_warn("read(signalfd): %s", strerror(errno));
        return last;
    }
}

pid_t nf_spawn(char *const argv[])
{
    posix_spawnattr_t attr;
    int err = posix_spawnattr_init(&attr);
    if (err != 0) {
        nf_log_error("posix_spawnattr_init: %s", strerror(err));
        return -1;
    }
    sigset_t empty, defaults;
    sigemptyset(&empty);
    s_signal_set(&defaults);
    sigaddset(&defaults, SIGPIPE);
    err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (err == 0) err = posix_spawnattr_setsigmask(&attr, &empty);
    if (err == 0) err = posix_spawnattr_setsigdefault(&attr, &defaults);
    pid_t pid = -1;
    if (err == 0) err = posix_spawn(&pid, argv[0], NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    if (err != 0) {
        nf_log_error("cannot start %s: %s", argv[0], strerror(err));
        return -1;
    }
    return pid;
}
