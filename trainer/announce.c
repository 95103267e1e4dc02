/*
 * announce.c: see announce.h. A ROUTER with a small peer table and the list
 * of announcements made so far (replayed to each new peer).
 */
#include "announce.h"

#include "fsutil.h"
#include "log.h"
#include "timeutil.h"
#include "wire.h"
#include "zmqutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_MAX_PEERS = 16, S_PEER_TIMEOUT_MS = 30000 };

typedef struct {
    bool live;
    nf_wire_peer_t id;
    int64_t last_rx;
} s_peer_t;

typedef struct {
    announce_checkpoint_t c;  // strings below are owned copies
    char *path, *arch, *run_dir;
    bool reported;
} s_ann_t;

struct announce_t {
    void *router;
    char endpoint[1024];      // the endpoints really bound, comma-separated
    char job[64];
    nf_wire_expect_t ex;
    nf_wire_stats_t st;
    s_peer_t peers[S_MAX_PEERS];
    s_ann_t *anns;
    int n_anns;
    void *monitor;            // PAIR: the ROUTER's disconnect events
    uint32_t lost;            // evaluators that disconnected
};

announce_t *announce_new(const announce_config_t *cfg)
{
    NF_CHECK(cfg && cfg->zmq_ctx && cfg->endpoint, "announce needs a context and an endpoint");
    NF_CHECK(!cfg->curve || nf_curve_ctx(cfg->curve) == cfg->zmq_ctx, "curve of another context");
    announce_t *self = nf_xcalloc(1, sizeof *self);
    snprintf(self->job, sizeof self->job, "%s", cfg->job ? cfg->job : "");
    nf_zmq_socket_config_t rc = {.type = ZMQ_ROUTER, .sndhwm = 1000, .rcvhwm = 1000,
                                 .router_mandatory = true};
    self->router = nf_zmq_socket_new(cfg->zmq_ctx, &rc);
    if (!self->router || (cfg->curve && nf_curve_server(cfg->curve, self->router, "trainer") != 0)) {
        announce_destroy(&self, NULL);
        return NULL;
    }
    // endpoint may list several, comma-separated (ipc for local evaluators, tcp for others)
    char *list = nf_xstrdup(cfg->endpoint), *save = NULL;
    size_t used = 0;
    for (char *ep = strtok_r(list, ",", &save); ep; ep = strtok_r(NULL, ",", &save)) {
        char bound[256];
        if (!nf_curve_bind_allowed(cfg->curve, ep) ||
            nf_zmq_bind(self->router, ep, bound, sizeof bound) != 0) {
            free(list);
            announce_destroy(&self, NULL);
            return NULL;
        }
        int n = snprintf(self->endpoint + used, sizeof self->endpoint - used, "%s%s",
                         used ? "," : "", bound);
        if (n > 0 && (size_t)n < sizeof self->endpoint - used) used += (size_t)n;
    }
    free(list);
    // disconnects: an evaluator that died (its socket closed) shows up at once.
    // A socket has one monitor: on a CURVE socket common/curve.c owns it (the
    // refusals); a lost evaluator then only leaves the live count when its
    // heartbeats stop, without the lost/replaced log lines.
    if (!cfg->curve) {
        char mon[96];
        snprintf(mon, sizeof mon, "inproc://nf-announce-monitor-%p", (void *)self);
        if (zmq_socket_monitor(self->router, mon, ZMQ_EVENT_DISCONNECTED) != 0) {
            nf_log_error("announce: zmq_socket_monitor: %s", zmq_strerror(zmq_errno()));
            announce_destroy(&self, NULL);
            return NULL;
        }
        nf_zmq_socket_config_t mc = {.type = ZMQ_PAIR};
        self->monitor = nf_zmq_socket_new(cfg->zmq_ctx, &mc);
        if (!self->monitor || nf_zmq_connect(self->monitor, mon) != 0) {
            announce_destroy(&self, NULL);
            return NULL;
        }
    }
    self->ex = (nf_wire_expect_t){
        .router = true,
        .job = self->job,
        .allow_no_job = true,
        .bodies = NF_WIRE_BODY(NF__ENVELOPE__BODY_HEARTBEAT) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_EVAL_RESULT) |
                  NF_WIRE_BODY(NF__ENVELOPE__BODY_CONTROL),
    };
    return self;
}

static int s_send(announce_t *self, int peer, Nf__Envelope *env)
{
    if (nf_wire_send(self->router, &self->peers[peer].id, self->job, env, NULL, ZMQ_DONTWAIT) == 0)
        return 0;
    nf_log_info("evaluator %d unreachable: forgotten", peer);
    self->peers[peer].live = false;
    return -1;
}

void announce_destroy(announce_t **self_p, const char *reason)
{
    if (!self_p || !*self_p) return;
    announce_t *self = *self_p;
    for (int i = 0; self->router && i < S_MAX_PEERS; i++) {
        if (!self->peers[i].live) continue;
        Nf__Control ctl = NF__CONTROL__INIT;
        ctl.cmd = NF__COMMAND__CMD_STOP;
        ctl.reason = (char *)(reason ? reason : "training finished");
        Nf__Envelope env = NF__ENVELOPE__INIT;
        env.body_case = NF__ENVELOPE__BODY_CONTROL;
        env.control = &ctl;
        (void)s_send(self, i, &env);
    }
    for (int i = 0; i < self->n_anns; i++) {
        free(self->anns[i].path);
        free(self->anns[i].arch);
        free(self->anns[i].run_dir);
    }
    free(self->anns);
    if (self->router && self->monitor && zmq_socket_monitor(self->router, NULL, 0) != 0)
        nf_log_warn("announce: stopping the monitor: %s", zmq_strerror(zmq_errno()));
    nf_zmq_close(&self->monitor);
    nf_zmq_close(&self->router);
    free(self);
    *self_p = NULL;
}

const char *announce_endpoint(const announce_t *self) { return self->endpoint; }

static void s_send_ann(announce_t *self, int peer, const announce_checkpoint_t *c)
{
    Nf__CheckpointAnnounce a = NF__CHECKPOINT_ANNOUNCE__INIT;
    a.path = (char *)c->path;
    a.epoch = c->epoch;
    a.step = c->step;
    a.arch = (char *)c->arch;
    a.has_is_final = true;
    a.is_final = c->is_final;
    a.has_wall_ms = true;
    a.wall_ms = nf_wall_ms();
    a.run_dir = (char *)c->run_dir;
    a.has_size = a.has_presize = a.has_batch_size = true;
    a.size = c->size;
    a.presize = c->presize;
    a.batch_size = c->batch_size;
    Nf__Envelope env = NF__ENVELOPE__INIT;
    env.body_case = NF__ENVELOPE__BODY_CHECKPOINT_ANNOUNCE;
    env.checkpoint_announce = &a;
    (void)s_send(self, peer, &env);
}

void announce_checkpoint(announce_t *self, const announce_checkpoint_t *c)
{
    self->anns = nf_xrealloc(self->anns, (size_t)(self->n_anns + 1) * sizeof *self->anns);
    s_ann_t *a = &self->anns[self->n_anns++];
    a->c = *c;
    a->reported = false;
    a->c.path = a->path = nf_xstrdup(c->path);
    a->c.arch = a->arch = nf_xstrdup(c->arch);
    a->c.run_dir = a->run_dir = nf_xstrdup(c->run_dir ? c->run_dir : "");
    for (int i = 0; i < S_MAX_PEERS; i++)
        if (self->peers[i].live) s_send_ann(self, i, &a->c);
}

// The peer of a routing id, added (and sent the history) when new and add is set.
static int s_peer(announce_t *self, const nf_wire_peer_t *id, bool add)
{
    int free_slot = -1;
    for (int i = 0; i < S_MAX_PEERS; i++) {
        s_peer_t *p = &self->peers[i];
        if (p->live && p->id.len == id->len && memcmp(p->id.id, id->id, id->len) == 0) return i;
        if (!p->live && free_slot < 0) free_slot = i;
    }
    if (!add || free_slot < 0) return -1;
    self->peers[free_slot] = (s_peer_t){.live = true, .id = *id, .last_rx = nf_now_ms()};
    int sent = 0;
    for (int i = 0; i < self->n_anns; i++)
        if (!self->anns[i].reported && nf_is_file(self->anns[i].c.path)) {
            s_send_ann(self, free_slot, &self->anns[i].c);
            sent++;
        }
    if (self->lost)
        nf_log_warn("an evaluator joined, replacing the %u lost; sending it the %d checkpoint "
                    "announcement(s) without a result", self->lost, sent);
    else
        nf_log_info("an evaluator joined; sending it %d checkpoint announcement(s) without a "
                    "result", sent);
    return free_slot;
}

void announce_reported(announce_t *self, uint32_t epoch)
{
    for (int i = 0; self && i < self->n_anns; i++)
        if (self->anns[i].c.epoch == epoch) self->anns[i].reported = true;
}

// Checks an evaluator's result against what was announced. NULL when fine,
// else the reason. Losses may be NaN or infinite (a diverged model evaluates
// to that, and the table says so) but never negative.
static const char *s_check_result(const announce_t *self, const Nf__EvalResult *r)
{
    const s_ann_t *a = NULL;
    for (int i = self->n_anns - 1; i >= 0 && !a; i--)  // the latest of an epoch
        if (self->anns[i].c.epoch == r->epoch) a = &self->anns[i];
    if (!a) return "the result of a checkpoint never announced";
    if (strcmp(r->checkpoint, a->c.path) != 0) return "the result names another checkpoint";
    if (r->valid_loss < 0.0 || !(r->accuracy >= 0.0 && r->accuracy <= 1.0))
        return "valid_loss negative or accuracy outside [0, 1]";
    if (r->has_tta_accuracy || r->has_tta_loss) {
        if (!a->c.is_final) return "TTA for a checkpoint that is not the final one";
        if (!r->has_tta_accuracy || !(r->tta_accuracy >= 0.0 && r->tta_accuracy <= 1.0) ||
            (r->has_tta_loss && r->tta_loss < 0.0))
            return "TTA accuracy outside [0, 1] or loss negative";
    }
    if (r->n_samples == 0) return "a result over no samples";
    if (r->has_wall_s && !(r->wall_s >= 0.0 && r->wall_s < 1e9)) return "wall_s out of range";
    return NULL;
}

// Monitor events: two frames, (u16 event, u32 value) and the endpoint.
static void s_monitor(announce_t *self)
{
    while (self->monitor) {
        zmq_msg_t f;
        NF_CHECK(zmq_msg_init(&f) == 0, "zmq_msg_init");
        if (zmq_msg_recv(&f, self->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f);
            return;
        }
        uint16_t ev = 0;
        if (zmq_msg_size(&f) >= 6) memcpy(&ev, zmq_msg_data(&f), sizeof ev);
        bool more = zmq_msg_more(&f);
        zmq_msg_close(&f);
        while (more) {  // the endpoint frame
            NF_CHECK(zmq_msg_init(&f) == 0, "zmq_msg_init");
            if (zmq_msg_recv(&f, self->monitor, 0) < 0) more = false;
            else more = zmq_msg_more(&f);
            zmq_msg_close(&f);
        }
        if (ev != ZMQ_EVENT_DISCONNECTED) continue;
        self->lost++;
        int pending = 0;
        for (int i = 0; i < self->n_anns; i++) pending += !self->anns[i].reported;
        nf_log_warn("an evaluator disconnected (lost: %u so far); %d announced checkpoint(s) "
                    "without a result go to the next evaluator that joins",
                    self->lost, pending);
    }
}

int announce_poll(announce_t *self, int timeout_ms, announce_result_t *out, int max)
{
    zmq_pollitem_t item = {.socket = self->router, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, timeout_ms) < 0 && zmq_errno() != EINTR)
        nf_log_error("zmq_poll: %s", zmq_strerror(zmq_errno()));
    s_monitor(self);
    int n = 0;
    for (int k = 0; k < 256 && n < max; k++) {
        nf_wire_msg_t m;
        int got = nf_wire_recv(self->router, &self->ex, &m, &self->st, ZMQ_DONTWAIT);
        if (got < 0) break;
        if (got == 0) continue;
        const Nf__Envelope *env = m.env;
        // any message of a new evaluator is its hello, but a goodbye
        int peer = s_peer(self, &m.peer, env->body_case != NF__ENVELOPE__BODY_CONTROL);
        if (peer >= 0) self->peers[peer].last_rx = nf_now_ms();
        const char *why = NULL;
        if (env->body_case == NF__ENVELOPE__BODY_EVAL_RESULT)
            why = peer < 0 ? "a result from an evaluator without a slot (too many)"
                           : s_check_result(self, env->eval_result);
        if (why) {
            nf_wire_stats_drop(&self->st, NF_WIRE_DROP_FIELD);
            nf_log_warn("announce: dropped an evaluator's result: %s", why);
        } else if (env->body_case == NF__ENVELOPE__BODY_EVAL_RESULT) {
            const Nf__EvalResult *r = env->eval_result;
            announce_result_t *o = &out[n++];
            memset(o, 0, sizeof *o);
            snprintf(o->checkpoint, sizeof o->checkpoint, "%s", r->checkpoint);
            o->epoch = r->epoch;
            o->valid_loss = r->valid_loss;
            o->accuracy = r->accuracy;
            o->has_tta = r->has_tta_accuracy;
            o->tta_accuracy = r->tta_accuracy;
            o->tta_loss = r->has_tta_loss ? r->tta_loss : 0.0;
            o->n_samples = r->n_samples;
            o->bad_files = r->has_bad_files ? r->bad_files : 0;
            o->wall_s = r->has_wall_s ? r->wall_s : 0.0;
        } else if (env->body_case == NF__ENVELOPE__BODY_CONTROL &&
                   env->control->cmd == NF__COMMAND__CMD_STOP && peer >= 0) {
            nf_log_info("an evaluator left");
            self->peers[peer].live = false;
        }
        nf_wire_msg_close(&m);
    }
    return n;
}

void announce_wire_stats(const announce_t *self, nf_wire_stats_t *out) { *out = self->st; }

int announce_evaluators(const announce_t *self)
{
    int n = 0;
    int64_t now = nf_now_ms();
    for (int i = 0; i < S_MAX_PEERS; i++)
        n += self->peers[i].live && now - self->peers[i].last_rx < S_PEER_TIMEOUT_MS;
    return n;
}
