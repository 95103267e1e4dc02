/*
 * curve_opts.c: see curve_opts.h. Option parsing, the role rules, help lines
 * and the exit log line; the keys themselves are curve.c's.
 */
#include "curve_opts.h"

#include "log.h"

#include <string.h>

int nf_curve_opts_getopt(nf_curve_opts_t *o, int c, const char *arg)
{
    switch (c) {
    case NF_CURVE_OPT_SECRET: o->secret = arg; return 1;
    case NF_CURVE_OPT_SERVER: o->server = arg; return 1;
    case NF_CURVE_OPT_ALLOW: o->allow = arg; return 1;
    default: return 0;
    }
}

int nf_curve_opts_arg(nf_curve_opts_t *o, const char *name, const char *value)
{
    if (!strcmp(name, "--curve-secret")) return nf_curve_opts_getopt(o, NF_CURVE_OPT_SECRET, value);
    if (!strcmp(name, "--curve-server")) return nf_curve_opts_getopt(o, NF_CURVE_OPT_SERVER, value);
    if (!strcmp(name, "--curve-allow")) return nf_curve_opts_getopt(o, NF_CURVE_OPT_ALLOW, value);
    return 0;
}

bool nf_curve_opts_any(const nf_curve_opts_t *o) { return o->secret || o->server || o->allow; }

void nf_curve_opts_help(FILE *f, const nf_curve_role_t *role)
{
    fprintf(f, "  --curve-secret F   this process's CURVE key pair (NAME.key_secret, `loader keygen`)\n");
    if (role->connects) fprintf(f, "  --curve-server F   %s: connect over CURVE\n", role->server_is);
    if (role->binds)
        fprintf(f,
                "  --curve-allow P    %s: a folder of NAME.key or one\n"
                "                     file; every socket bound is then a CURVE server (without\n"
                "                     it only ipc:// and loopback endpoints are bound)\n",
                role->allow_is);
}

int nf_curve_opts_check(const nf_curve_opts_t *o, const nf_curve_role_t *role)
{
    if (!nf_curve_opts_any(o)) return 0;
    if ((o->allow && !role->binds) || (o->server && !role->connects)) {
        fprintf(stderr, "%s: %s: this stage %s\n", role->prog,
                o->allow && !role->binds ? "--curve-allow" : "--curve-server",
                o->allow && !role->binds ? "binds no socket (it only connects)"
                                         : "connects to no server (it only binds)");
        return -1;
    }
    if (!o->secret || (role->need_server && !o->server) || (role->need_allow && !o->allow)) {
        fprintf(stderr, "%s: CURVE needs --curve-secret%s%s\n", role->prog,
                role->need_server ? " and --curve-server" : "",
                role->need_allow ? " and --curve-allow" : "");
        return -1;
    }
    return 0;
}

int nf_curve_opts_open(const nf_curve_opts_t *o, const nf_curve_role_t *role, void *zmq_ctx,
                       nf_curve_t **curve)
{
    *curve = NULL;
    if (nf_curve_opts_check(o, role) != 0) return -1;
    if (!nf_curve_opts_any(o)) return 0;
    char err[512];
    nf_curve_config_t cc = {.zmq_ctx = zmq_ctx, .secret_file = o->secret,
                            .server_file = o->server, .allow = o->allow};
    *curve = nf_curve_new(&cc, err, sizeof err);
    if (!*curve) {
        fprintf(stderr, "%s: %s\n", role->prog, err);
        return -1;
    }
    return 0;
}

void nf_curve_opts_close(nf_curve_t **curve)
{
    if (!curve || !*curve) return;
    nf_curve_stats_t st;
    nf_curve_stats(*curve, &st);
    nf_log_info("curve: %llu clients accepted, %llu refused (key %llu, plain text %llu, "
                "wrong server key %llu, other %llu), refused by servers %llu",
                (unsigned long long)st.accepted, (unsigned long long)nf_curve_stats_refused(&st),
                (unsigned long long)st.refused_key, (unsigned long long)st.refused_plaintext,
                (unsigned long long)st.refused_crypto, (unsigned long long)st.refused_other,
                (unsigned long long)st.refused_by_server);
    nf_curve_destroy(curve);
}
