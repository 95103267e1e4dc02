/*
 * train.c: see train.h. Option parsing, the run folder, the epoch loop over
 * augment streams, checkpoints and announcements, fastai's table as the
 * evaluator's results arrive, the summary and the pictures; lr_find.
 */
#include "train.h"

#include "announce.h"
#include "augment.h"
#include "ckpt.h"
#include "client.h"
#include "curve_opts.h"
#include "fsutil.h"
#include "learner.h"
#include "log.h"
#include "plot.h"
#include "progress.h"
#include "recipe.h"
#include "recorder.h"
#include "schedule.h"
#include "show_batch.h"
#include "timeutil.h"
#include "zmqutil.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { S_TRAIN_STREAM = 1, S_STATS_STREAM = 2, S_WAIT_MS = 500, S_MAX_RESULTS = 64 };

typedef struct {
    recipe_t r;
    const char *augment, *bind, *out, *job, *resume, *delivery_log;
    bool no_eval, print_loader_args, print_data, lr_find;
    int credits, keep;
    double lr_start, lr_end;
    int num_it;
    char resume_dir[RECIPE_PATH];
    nf_curve_opts_t curve;
} s_opts_t;

typedef struct {
    int phase, fit, fit_epoch;
    bool trained, has_result, printed;
    bool persisted;  // a resumed run: the row is in metrics.csv/jsonl already
    bool eval_lost;  // a resumed run: its checkpoint is gone, the row has no valid columns
    double train_loss, train_s, images;
    double valid_loss, accuracy, eval_s;
    uint32_t n_valid, bad_train, bad_valid;
    int64_t step_end;
    char ckpt[RECIPE_PATH + 64];
} s_epoch_t;

typedef struct {
    s_opts_t o;
    char out[RECIPE_PATH], ckpt_dir[RECIPE_PATH + 16];
    void *zctx;
    nf_curve_t *curve;
    nf_signals_t *sig;
    augment_client_t *cl;
    announce_t *ann;
    learner_t *l;
    exec_kind_t backend;
    uint32_t n_classes, n_train, n_valid;
    const char *const *classes;
    bool normalize;
    float mean[3], std[3];
    progress_t bar;
    recorder_table_t table;
    FILE *jsonl, *csv;
    FILE *dlog;                // --delivery-log: every sample index the trainer trained on
    // --resume: the checkpoint, what it says, and the first epoch to train
    char resume_ckpt[RECIPE_PATH + 64];
    ckpt_info_t rinfo;
    bool resumed;
    int first_epoch;
    s_epoch_t *ep;
    int n_ep, next_row, last_fit_printed;
    // curves: one entry per training step
    double *c_step, *c_loss, *c_smooth, *c_lr, *c_mom;
    int n_c, cap_c;
    double t0, train_s, train_images;
    bool have_tta;
    announce_result_t tta;
    bool shown_batch, interrupted;
    int64_t no_eval_since;
} s_run_t;

// ---------------------------------------------------------------------------
// options

// The trainer connects to augment and (train) binds the announcement socket
// for evaluators: CURVE to augment with its key, a CURVE server with --curve-allow.
static nf_curve_role_t s_curve_role(bool lr_find)
{
    return (nf_curve_role_t){
        .prog = "trainer", .binds = !lr_find, .connects = true,
        .server_is = "the augment stage's public key (its NAME.key)",
        .allow_is = "evaluator keys allowed to follow (--bind)"};
}

static void s_usage(FILE *f, bool lr_find)
{
    if (lr_find)
        fprintf(f, "usage: trainer lr-find --augment EP [--out DIR] [recipe options]\n"
                   "fastai's learning-rate range test (lr_find) on the first phase's size and\n"
                   "batch size: lr from --start-lr (1e-7) to --end-lr (10) over --num-it (100)\n"
                   "batches, stops when the smoothed loss exceeds 4x its best; prints the valley\n"
                   "suggestion, writes lr_find.csv and lr_find.png.\n");
    else
        fprintf(f, "usage: trainer train --augment EP [--out DIR] [recipe options]\n"
                   "Trains with fastai's chapter-7 recipe on tensor streams from `augment serve`,\n"
                   "announces a checkpoint per epoch to evaluators and prints fastai's table as\n"
                   "their results arrive (docs/usage.md).\n");
    fprintf(f,
            "  --augment EP         the augment stage's endpoint (required)\n"
            "  --bind EP[,EP]       endpoint(s) evaluators follow (default ipc://<out>/trainer.ipc;\n"
            "                       add tcp://0.0.0.0:PORT for evaluators on other machines:\n"
            "                       that needs --curve-secret and --curve-allow)\n"
            "  --out DIR            run folder (default runs/<date>-<time>-<preset>)\n"
            "  --job ID             job id (default: the loader's)\n"
            "  --credits N          tensor batches in flight (default 4)\n"
            "  --keep N             evaluated epoch checkpoints kept (default 2; 0 = all)\n"
            "  --no-eval            no evaluator: train only (the table has no valid columns)\n"
            "  --print-loader-args  print the loader's split options for this recipe and exit\n"
            "  --print-data         print the recipe's dataset folder and exit\n"
            "  --resume PATH        continue a run from a checkpoint file, or a run folder (its\n"
            "                       newest epoch checkpoint): the recipe, the data and the\n"
            "                       position come from the checkpoint; only --data, --device,\n"
            "                       --threads, --workers may differ\n"
            "  --delivery-log FILE  append `batch EPOCH SEQ N IDX...` per training batch and an\n"
            "                       `epoch ...` line per epoch (the format of loader consume --log)\n"
            "  --start-lr X --end-lr X --num-it N   lr-find settings\n"
            "recipe options:\n%s",
            recipe_help());
    nf_curve_role_t role = s_curve_role(lr_find);
    nf_curve_opts_help(f, &role);
}

// --resume PATH: the checkpoint (PATH itself, or the newest epoch checkpoint
// of the run folder PATH) and the run folder it belongs to.
static int s_resume_find(const char *path, char *ckpt, size_t ckpt_len, char *dir, size_t dir_len)
{
    if (nf_is_dir(path)) {
        char cdir[RECIPE_PATH + 16];
        snprintf(cdir, sizeof cdir, "%s/checkpoints", path);
        DIR *d = opendir(cdir);
        int64_t best = -1;
        for (struct dirent *de; d && (de = readdir(d));) {
            long long step;
            int n = 0;
            if (sscanf(de->d_name, "ckpt-%lld.safetensors%n", &step, &n) == 1 &&
                de->d_name[n] == 0 && step > best)
                best = step;
        }
        if (d) closedir(d);
        if (best < 0) {
            fprintf(stderr, "trainer: --resume %s: no epoch checkpoint in %s\n", path, cdir);
            return -1;
        }
        ckpt_path(cdir, best, ckpt, ckpt_len);
        snprintf(dir, dir_len, "%s", path);
        return 0;
    }
    if (!nf_is_file(path)) {
        fprintf(stderr, "trainer: --resume %s: no such checkpoint file or run folder\n", path);
        return -1;
    }
    snprintf(ckpt, ckpt_len, "%s", path);
    // RUN/checkpoints/ckpt-N.safetensors -> RUN
    char tmp[RECIPE_PATH];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(dir, dir_len, "%s", dirname(dirname(tmp)));
    return 0;
}

// The recipe of a resumed run: the checkpoint's. Explicit recipe options
// (the arguments recipe_parse_args took) must agree with it, except where the
// run is executed (--data, --device, --threads, --workers), which they set.
static int s_resume_recipe(s_opts_t *o, ckpt_info_t *info, char *ckpt, int argc, char **argv,
                           char **rest, int n_rest)
{
    char dir[RECIPE_PATH];
    if (s_resume_find(o->resume, ckpt, RECIPE_PATH + 64, dir, sizeof dir) != 0) return -1;
    if (ckpt_info_read(ckpt, info) != 0) {
        fprintf(stderr, "trainer: --resume: %s is not a readable checkpoint (see the log)\n", ckpt);
        return -1;
    }
    cJSON *cfg = info->config_json ? cJSON_Parse(info->config_json) : NULL;
    const cJSON *rj = cJSON_GetObjectItemCaseSensitive(cfg, "recipe");
    char *rtext = rj ? cJSON_PrintUnformatted(rj) : NULL;
    recipe_t ck;
    int rc = rtext && cJSON_GetObjectItemCaseSensitive(cfg, "at") && recipe_from_json(&ck, rtext) == 0
                 ? 0 : -1;
    free(rtext);
    cJSON_Delete(cfg);
    char err[256];
    if (rc != 0 || recipe_check(&ck, err, sizeof err) != 0) {
        fprintf(stderr, "trainer: --resume: %s was not written by trainer train (no recipe)\n", ckpt);
        return -1;
    }
    // the explicit recipe options: what recipe_parse_args did not leave in rest
    char **given = nf_xcalloc((size_t)argc + 2, sizeof *given);
    int n_given = 1;
    given[0] = argv[0];
    for (int i = 2; i < argc; i++) {
        bool left = false;
        for (int k = 0; k < n_rest && !left; k++) left = rest[k] == argv[i];
        if (!left) given[n_given++] = argv[i];
    }
    char *canon = recipe_to_json(&ck);
    recipe_t r = ck;
    for (int i = 1; i < n_given && rc == 0; i++) {
        if (strncmp(given[i], "--", 2) != 0) continue;
        const char *opt = given[i] + 2;
        bool exec = !strcmp(opt, "data") || !strcmp(opt, "device") || !strcmp(opt, "threads") ||
                    !strcmp(opt, "workers");
        bool has_val = i + 1 < n_given && strncmp(given[i + 1], "--", 2) != 0;
        char *one[3] = {given[0], given[i], has_val ? given[i + 1] : NULL};
        char *unused[3];
        int n_unused;
        recipe_t t = ck;
        bool same;
        if (!strcmp(opt, "preset")) {
            same = has_val && !strcmp(given[i + 1], ck.preset);
        } else {
            same = recipe_apply_args(&t, has_val ? 3 : 2, one, unused, &n_unused, err, sizeof err) == 0;
            char *tj = same ? recipe_to_json(&t) : NULL;
            same = same && !strcmp(tj, canon);
            free(tj);
        }
        if (exec) (void)recipe_apply_args(&r, has_val ? 3 : 2, one, unused, &n_unused, err, sizeof err);
        else if (!same) {
            fprintf(stderr, "trainer: --resume: %s%s%s conflicts with the checkpoint's recipe "
                            "(preset %s; see %s/config.json); drop it to resume\n",
                    given[i], has_val ? " " : "", has_val ? given[i + 1] : "", ck.preset, dir);
            rc = -1;
        }
    }
    free(canon);
    free(given);
    if (rc != 0) return -1;
    o->r = r;
    if (!o->out) {
        snprintf(o->resume_dir, sizeof o->resume_dir, "%s", dir);
        o->out = o->resume_dir;
    }
    return 0;
}

static int s_parse(s_opts_t *o, ckpt_info_t *info, char *resume_ckpt, int argc, char **argv,
                   bool lr_find)
{
    memset(o, 0, sizeof *o);
    o->lr_find = lr_find;
    o->credits = 4;
    o->keep = 2;
    o->lr_start = 1e-7;
    o->lr_end = 10.0;
    o->num_it = 100;
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            s_usage(stdout, lr_find);
            exit(0);
        }
    char **rest = nf_xcalloc((size_t)argc + 1, sizeof *rest);
    int n_rest = 0;
    char err[256];
    if (recipe_parse_args(&o->r, argc - 1, argv + 1, rest, &n_rest, err, sizeof err) != 0) {
        fprintf(stderr, "trainer: %s (trainer %s --help)\n", err, lr_find ? "lr-find" : "train");
        free(rest);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n_rest && rc == 0; i++) {
        const char *a = rest[i], *v = i + 1 < n_rest ? rest[i + 1] : NULL;
        char *end = NULL;
        bool takes = true, ok = true;
        if (!strcmp(a, "--augment")) o->augment = v;
        else if (!strcmp(a, "--bind")) o->bind = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--job")) o->job = v;
        else if (!strcmp(a, "--resume")) o->resume = v;
        else if (!strcmp(a, "--delivery-log")) o->delivery_log = v;
        else if (nf_curve_opts_arg(&o->curve, a, v)) ok = true;
        else if (!strcmp(a, "--credits") && v) {
            o->credits = (int)strtol(v, &end, 10);
            ok = *end == 0 && o->credits >= 1 && o->credits <= 32;
        } else if (!strcmp(a, "--keep") && v) {
            o->keep = (int)strtol(v, &end, 10);
            ok = *end == 0 && o->keep >= 0;
        } else if (!strcmp(a, "--start-lr") && v) {
            o->lr_start = strtod(v, &end);
            ok = *end == 0 && o->lr_start > 0;
        } else if (!strcmp(a, "--end-lr") && v) {
            o->lr_end = strtod(v, &end);
            ok = *end == 0 && o->lr_end > 0;
        } else if (!strcmp(a, "--num-it") && v) {
            o->num_it = (int)strtol(v, &end, 10);
            ok = *end == 0 && o->num_it >= 6 && o->num_it <= 100000;
        } else {
            takes = false;
            if (!strcmp(a, "--no-eval")) o->no_eval = true;
            else if (!strcmp(a, "--print-loader-args")) o->print_loader_args = true;
            else if (!strcmp(a, "--print-data")) o->print_data = true;
            else {
                fprintf(stderr, "trainer: unknown option '%s' (trainer %s --help)\n", a,
                        lr_find ? "lr-find" : "train");
                rc = -1;
                break;
            }
        }
        if (takes && (!v || !ok)) {
            fprintf(stderr, "trainer: bad or missing value for %s\n", a);
            rc = -1;
        }
        i += takes;
    }
    if (rc == 0 && o->resume && lr_find) {
        fprintf(stderr, "trainer: lr-find has no --resume\n");
        rc = -1;
    }
    if (rc == 0 && o->resume) rc = s_resume_recipe(o, info, resume_ckpt, argc, argv, rest, n_rest);
    free(rest);
    if (rc == 0 && !o->print_loader_args && !o->print_data && !o->augment) {
        fprintf(stderr, "trainer: --augment EP is required (the `augment serve` endpoint)\n");
        rc = -1;
    }
    nf_curve_role_t role = s_curve_role(lr_find);
    if (rc == 0 && nf_curve_opts_check(&o->curve, &role) != 0) rc = -1;
    if (rc == 0 && lr_find && !(o->lr_end > o->lr_start)) {
        fprintf(stderr, "trainer: --end-lr must be above --start-lr\n");
        rc = -1;
    }
    return rc;
}

// ---------------------------------------------------------------------------
// run folder and records

static void s_curve_add(s_run_t *run, double step, double loss, double smooth, double lr,
                        double mom)
{
    if (run->n_c == run->cap_c) {
        run->cap_c = run->cap_c ? 2 * run->cap_c : 1024;
        run->c_step = nf_xrealloc(run->c_step, (size_t)run->cap_c * sizeof(double));
        run->c_loss = nf_xrealloc(run->c_loss, (size_t)run->cap_c * sizeof(double));
        run->c_smooth = nf_xrealloc(run->c_smooth, (size_t)run->cap_c * sizeof(double));
        run->c_lr = nf_xrealloc(run->c_lr, (size_t)run->cap_c * sizeof(double));
        run->c_mom = nf_xrealloc(run->c_mom, (size_t)run->cap_c * sizeof(double));
    }
    int i = run->n_c++;
    run->c_step[i] = step;
    run->c_loss[i] = loss;
    run->c_smooth[i] = smooth;
    run->c_lr[i] = lr;
    run->c_mom[i] = mom;
}

// fastai's floats ("%.6f", "nan"); "#na#" where there is no value.
static const char *s_cell(bool have, double v, char buf[48])
{
    if (!have) return "#na#";
    return recorder_format_float(v, buf);
}

static void s_say(s_run_t *run, const char *line)
{
    progress_clear(&run->bar);
    printf("%s\n", line);
    fflush(stdout);
}

// Prints the rows that are complete, in order; a table header before the
// first row of each fit.
static void s_flush_rows(s_run_t *run)
{
    while (run->next_row < run->n_ep) {
        s_epoch_t *e = &run->ep[run->next_row];
        bool need_result = !run->o.no_eval;
        if (!e->trained || (need_result && !e->has_result && !e->eval_lost)) return;
        char line[512], c1[48], c2[48], c3[48], t[16];
        if (e->fit != run->last_fit_printed) {
            if (run->last_fit_printed >= 0) s_say(run, "");
            recorder_table_header(&run->table, line, sizeof line);
            s_say(run, line);
            run->last_fit_printed = e->fit;
        }
        char epoch[16];
        snprintf(epoch, sizeof epoch, "%d", e->fit_epoch);
        double secs = e->train_s + (e->has_result ? e->eval_s : 0.0);
        const char *cells[5] = {epoch, recorder_format_float(e->train_loss, c1),
                                s_cell(e->has_result, e->valid_loss, c2),
                                s_cell(e->has_result, e->accuracy, c3), nf_format_time(secs, t)};
        recorder_table_row(&run->table, cells, line, sizeof line);
        s_say(run, line);
        nf_log_info("epoch %d (fit %d, row %d): %s", run->next_row, e->fit, e->fit_epoch, line);
        if (run->csv && !e->persisted) {
            fprintf(run->csv, "%d,%d,%d,%.6f,%s,%s,%s\n", run->next_row, e->fit, e->fit_epoch,
                    e->train_loss, s_cell(e->has_result, e->valid_loss, c2),
                    s_cell(e->has_result, e->accuracy, c3), t);
            fflush(run->csv);
        }
        if (run->jsonl && !e->persisted) {
            fprintf(run->jsonl,
                    "{\"type\": \"epoch\", \"epoch\": %d, \"fit\": %d, \"fit_epoch\": %d, "
                    "\"phase\": %d, \"train_loss\": %.6f, ",
                    run->next_row, e->fit, e->fit_epoch, e->phase, e->train_loss);
            if (e->has_result)
                fprintf(run->jsonl, "\"valid_loss\": %.6f, \"accuracy\": %.6f, \"n_valid\": %u, ",
                        e->valid_loss, e->accuracy, e->n_valid);
            fprintf(run->jsonl,
                    "\"train_s\": %.3f, \"eval_s\": %.3f, \"train_img_per_s\": %.2f, "
                    "\"step\": %lld, \"checkpoint\": \"%s\"}\n",
                    e->train_s, e->eval_s, e->train_s > 0 ? e->images / e->train_s : 0.0,
                    (long long)e->step_end, e->ckpt);
            fflush(run->jsonl);
        }
        e->printed = true;
        run->next_row++;
    }
}

static void s_on_results(s_run_t *run, const announce_result_t *res, int n)
{
    for (int i = 0; i < n; i++) {
        const announce_result_t *r = &res[i];
        if (r->epoch < 1 || (int)r->epoch > run->n_ep) continue;
        s_epoch_t *e = &run->ep[r->epoch - 1];
        if (r->has_tta) {
            if (!run->have_tta) {
                run->tta = *r;
                run->have_tta = true;
                nf_log_info("TTA result for epoch %u: accuracy %.6f", r->epoch, r->tta_accuracy);
            }
            continue;
        }
        if (e->has_result) continue;  // a second evaluator, or a replay: the first counts
        e->has_result = true;
        announce_reported(run->ann, r->epoch);
        e->valid_loss = r->valid_loss;
        e->accuracy = r->accuracy;
        e->eval_s = r->wall_s;
        e->n_valid = r->n_samples;
        e->bad_valid = r->bad_files;
    }
    s_flush_rows(run);
}

static void s_service(s_run_t *run, int timeout_ms)
{
    announce_result_t res[S_MAX_RESULTS];
    if (run->ann) {
        int n = announce_poll(run->ann, timeout_ms, res, S_MAX_RESULTS);
        if (n > 0) s_on_results(run, res, n);
    } else if (timeout_ms > 0) {
        nf_sleep_ms(timeout_ms);
    }
    if (!run->interrupted && nf_signals_take(run->sig)) {
        run->interrupted = true;
        nf_log_warn("trainer: interrupted (a signal): stopping");
    }
}

// ---------------------------------------------------------------------------
// setup

static int s_open_run_folder(s_run_t *run)
{
    const recipe_t *r = &run->o.r;
    if (run->o.out) snprintf(run->out, sizeof run->out, "%s", run->o.out);
    else {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        snprintf(run->out, sizeof run->out, "runs/%s-%s", stamp, r->preset);
    }
    snprintf(run->ckpt_dir, sizeof run->ckpt_dir, "%s/checkpoints", run->out);
    if (nf_mkdir_p(run->ckpt_dir) != 0) {
        fprintf(stderr, "trainer: cannot create the run folder %s: %s\n", run->out,
                strerror(errno));
        return -1;
    }
    char path[RECIPE_PATH + 64];
    snprintf(path, sizeof path, "%s/trainer.log", run->out);
    nf_log_config_t lc = {.stage = "trainer", .level = NF_LOG_INFO, .file = path,
                          .quiet_stderr = true};
    nf_log_init(&lc);
    char *json = recipe_to_json(r);
    snprintf(path, sizeof path, "%s/config.json", run->out);
    int rc = nf_write_file_atomic(path, json, strlen(json));
    free(json);
    if (rc != 0) return -1;
    if (run->o.delivery_log) {
        run->dlog = fopen(run->o.delivery_log, "a");
        if (!run->dlog) {
            fprintf(stderr, "trainer: cannot write %s: %s\n", run->o.delivery_log, strerror(errno));
            return -1;
        }
    }
    return 0;
}

// metrics.csv and metrics.jsonl: new, or (resumed) opened for appending.
static int s_open_metrics(s_run_t *run)
{
    char path[RECIPE_PATH + 64];
    const char *mode = run->resumed ? "a" : "w";
    snprintf(path, sizeof path, "%s/metrics.jsonl", run->out);
    run->jsonl = fopen(path, mode);
    snprintf(path, sizeof path, "%s/metrics.csv", run->out);
    bool fresh = !nf_is_file(path) || !run->resumed;
    run->csv = fopen(path, mode);
    if (!run->jsonl || !run->csv) {
        fprintf(stderr, "trainer: cannot write in %s: %s\n", run->out, strerror(errno));
        return -1;
    }
    if (fresh) fprintf(run->csv, "epoch,fit,fit_epoch,train_loss,valid_loss,accuracy,time\n");
    return 0;
}

// The epoch table of the whole recipe (fine_tune: a frozen fit, then the fit proper).
static void s_plan_epochs(s_run_t *run)
{
    const recipe_t *r = &run->o.r;
    run->n_ep = recipe_total_epochs(r);
    run->ep = nf_xcalloc((size_t)run->n_ep, sizeof *run->ep);
    int e = 0, fit = 0;
    for (int p = 0; p < r->n_phases; p++) {
        const recipe_phase_t *ph = &r->phases[p];
        if (ph->fit == RECIPE_FINE_TUNE) {
            run->ep[e++] = (s_epoch_t){.phase = p, .fit = fit, .fit_epoch = 0};
            fit++;
        }
        for (int k = 0; k < ph->epochs; k++)
            run->ep[e++] = (s_epoch_t){.phase = p, .fit = fit, .fit_epoch = k};
        fit++;
    }
    run->last_fit_printed = -1;
}

static void s_stream_request(const s_run_t *run, const recipe_phase_t *ph, uint32_t epoch,
                             augment_stream_request_t *q)
{
    const recipe_t *r = &run->o.r;
    *q = (augment_stream_request_t){
        .stream = S_TRAIN_STREAM, .split = 0, .mode = AUGMENT_MODE_TRAIN, .epoch = epoch,
        .batch_size = (uint32_t)ph->bs, .size = (uint32_t)ph->size,
        .presize = (uint32_t)ph->presize, .credits = (uint32_t)run->o.credits,
        .mixup_alpha = r->mixup, .min_scale = r->min_scale, .normalize = run->normalize,
        .dtype = AUGMENT_DTYPE_F32, .resample = (augment_resample_t)r->resample, .seed = r->seed};
    memcpy(q->mean, run->mean, sizeof q->mean);
    memcpy(q->std, run->std, sizeof q->std);
}

// Next batch of the training stream, servicing evaluators while waiting.
// Returns 1, 0 (stream over) or -1 (interrupted or error).
static int s_next(s_run_t *run, augment_tensor_batch_t **b)
{
    double waited = 0;
    for (;;) {
        int got = augment_client_next(run->cl, S_TRAIN_STREAM, b, S_WAIT_MS);
        if (got >= 0) return got;
        if (errno != ETIMEDOUT) {
            if (errno != EINTR) nf_log_error("trainer: training stream: %s", strerror(errno));
            return -1;
        }
        s_service(run, 0);
        if (run->interrupted) return -1;
        waited += S_WAIT_MS / 1000.0;
        if (fmod(waited, 30.0) < S_WAIT_MS / 1000.0)
            nf_log_warn("trainer: no batch from augment %s for %.0f s", run->o.augment, waited);
    }
}

// fastai's Normalize() without stats: one augmented training batch (no
// Normalize, no Mixup) of the first phase.
static int s_compute_stats(s_run_t *run)
{
    augment_stream_request_t q;
    s_stream_request(run, &run->o.r.phases[0], 0, &q);
    q.stream = S_STATS_STREAM;
    q.normalize = false;
    q.mixup_alpha = 0;
    q.max_batches = 1;
    q.credits = 1;
    augment_stream_plan_t plan;
    if (augment_client_start(run->cl, &q, &plan, 120000) != 0) {
        if (errno != EINTR)
            nf_log_error("trainer: no statistics batch from augment: %s", strerror(errno));
        return -1;
    }
    augment_tensor_batch_t *b = NULL;
    for (;;) {
        int got = augment_client_next(run->cl, S_STATS_STREAM, &b, S_WAIT_MS);
        if (got == 1) break;
        if (got == 0 || errno != ETIMEDOUT) return -1;
        s_service(run, 0);
        if (run->interrupted) return -1;
    }
    size_t count = (size_t)b->n * b->h * b->w;
    float *x = nf_xmalloc(count * 3 * sizeof(float));
    augment_tensor_to_f32(b, x);
    augment_stats_f32(x, count, run->mean, run->std);
    free(x);
    augment_client_release(run->cl, &b);
    char line[256];
    snprintf(line, sizeof line,
             "Normalize: statistics of one augmented training batch: mean (%.4f, %.4f, %.4f), "
             "std (%.4f, %.4f, %.4f)",
             run->mean[0], run->mean[1], run->mean[2], run->std[0], run->std[1], run->std[2]);
    s_say(run, line);
    nf_log_info("%s", line);
    return 0;
}

// Picks the backend: CUDA when asked or (auto) when a GPU is usable and the
// build has it; the CPU (oneDNN) otherwise.
static int s_choose_device(s_run_t *run, char *desc, size_t len)
{
    const char *want = run->o.r.device;
    bool cuda_built = exec_backend(EXEC_CUDA) != NULL;
    int gpus = augment_cuda_devices();
    if (!strcmp(want, "cuda") && (!cuda_built || gpus <= 0)) {
        fprintf(stderr, "trainer: --device cuda, but %s\n",
                cuda_built ? "no GPU is usable" : "this build has no CUDA backend");
        return -1;
    }
    bool cuda = !strcmp(want, "cuda") || (!strcmp(want, "auto") && cuda_built && gpus > 0);
    run->backend = cuda ? EXEC_CUDA : EXEC_ONEDNN;
    if (cuda) snprintf(desc, len, "CUDA (GPU 0 of %d)", gpus);
    else
        snprintf(desc, len, "CPU (oneDNN, %d threads%s)",
                 run->o.r.threads ? run->o.r.threads : (int)sysconf(_SC_NPROCESSORS_ONLN),
                 !strcmp(want, "auto") ? "; no usable GPU" : "");
    return 0;
}

static int s_setup(s_run_t *run)
{
    const recipe_t *r = &run->o.r;
    progress_init(&run->bar);
    static const char *const cols[5] = {"epoch", "train_loss", "valid_loss", "accuracy", "time"};
    NF_CHECK(recorder_table_init(&run->table, cols, 5) == 0, "table columns");
    if (s_open_run_folder(run) != 0) return -1;
    char device[128];
    if (s_choose_device(run, device, sizeof device) != 0) return -1;
    run->zctx = zmq_ctx_new();
    NF_CHECK(run->zctx != NULL, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
    nf_curve_role_t role = s_curve_role(run->o.lr_find);
    if (nf_curve_opts_open(&run->o.curve, &role, run->zctx, &run->curve) != 0) return -1;
    // the largest tensor batch this run asks for (f32, every phase) bounds
    // what its socket takes from augment
    uint64_t most = 0;
    for (int i = 0; i < r->n_phases; i++) {
        const recipe_phase_t *ph = &r->phases[i];
        uint64_t bytes = (uint64_t)ph->bs * (uint64_t)ph->size * (uint64_t)ph->size * 3 * 4;
        if (bytes > most) most = bytes;
    }
    augment_client_config_t cc = {.endpoint = run->o.augment, .job = run->o.job,
                                  .name = run->o.lr_find ? "lr-find" : "trainer",
                                  .stop_fd = nf_signals_fd(run->sig), .zmq_ctx = run->zctx,
                                  .curve = run->o.curve.server ? run->curve : NULL,
                                  .max_batch_bytes = most};
    run->cl = augment_client_new(&cc);
    if (!run->cl) return -1;
    if (!run->o.lr_find) {
        char ep[RECIPE_PATH + 64];
        if (run->o.bind) snprintf(ep, sizeof ep, "%s", run->o.bind);
        else snprintf(ep, sizeof ep, "ipc://%s/trainer.ipc", run->out);
        announce_config_t ac = {.zmq_ctx = run->zctx, .endpoint = ep, .job = run->o.job,
                                .curve = run->o.curve.allow ? run->curve : NULL};
        run->ann = announce_new(&ac);
        if (!run->ann) {
            fprintf(stderr, "trainer: cannot bind %s for evaluators\n", ep);
            return -1;
        }
    }
    // the dataset through augment (which asks the loader)
    for (double waited = 0;; waited += S_WAIT_MS / 1000.0) {
        if (augment_client_dataset(run->cl, &run->n_classes, &run->classes, &run->n_train,
                                   &run->n_valid, S_WAIT_MS) == 0)
            break;
        s_service(run, 0);
        if (run->interrupted) return -1;
        if (fmod(waited + 1e-9, 30.0) < S_WAIT_MS / 1000.0 && waited > 1)
            nf_log_warn("trainer: waiting for the augment stage at %s (%.0f s)", run->o.augment,
                        waited);
    }
    if (run->n_classes < 2 || run->n_classes > LEARNER_MAX_CLASSES) {
        fprintf(stderr, "trainer: the dataset has %u classes (need 2..%d)\n", run->n_classes,
                LEARNER_MAX_CLASSES);
        return -1;
    }
    run->normalize = r->normalize != RECIPE_NORM_NONE;
    const float im_mean[3] = {0.485f, 0.456f, 0.406f}, im_std[3] = {0.229f, 0.224f, 0.225f};
    memcpy(run->mean, im_mean, sizeof run->mean);
    memcpy(run->std, im_std, sizeof run->std);
    char line[2 * RECIPE_PATH + 256];
    snprintf(line, sizeof line, "netteflow: %s %s on %s (%u train, %u valid, %u classes), %s",
             run->o.lr_find ? "lr_find with" : "training", r->arch, r->data[0] ? r->data : "?",
             run->n_train, run->n_valid, run->n_classes, device);
    s_say(run, line);
    nf_log_info("%s", line);
    for (int p = 0; p < r->n_phases && !run->o.lr_find; p++) {
        const recipe_phase_t *ph = &r->phases[p];
        snprintf(line, sizeof line, "  phase %d: %s(%d, %g) at %d px (presize %d), bs %d", p + 1,
                 recipe_fit_name(ph->fit), ph->epochs, ph->lr, ph->size, ph->presize, ph->bs);
        s_say(run, line);
    }
    snprintf(line, sizeof line,
             "  Normalize %s, Mixup %g, label smoothing %g, TTA %s, seed %llu; run folder %s",
             recipe_norm_name(r->normalize), r->mixup, r->ls_eps, r->tta ? "on" : "off",
             (unsigned long long)r->seed, run->out);
    s_say(run, line);
    if (run->resumed) {
        if ((int)run->n_classes != run->rinfo.n_out) {
            fprintf(stderr, "trainer: --resume: the checkpoint has %d classes, the data %u\n",
                    run->rinfo.n_out, run->n_classes);
            return -1;
        }
        if (run->normalize) {  // the statistics the run trained with (computed ones too)
            memcpy(run->mean, run->rinfo.norm_mean, sizeof run->mean);
            memcpy(run->std, run->rinfo.norm_std, sizeof run->std);
        }
    } else if (r->normalize == RECIPE_NORM_COMPUTED && s_compute_stats(run) != 0) {
        return -1;
    }

    char *json = recipe_to_json(r);
    learner_config_t lc = learner_default_config(r->arch, (int)run->n_classes);
    lc.dropout = r->dropout;
    lc.backend = run->backend;
    lc.threads = r->threads;
    lc.seed = r->seed;
    lc.ls_eps = r->ls_eps;
    lc.n_classes = (int)run->n_classes;
    lc.class_names = run->classes;
    memcpy(lc.norm_mean, run->mean, sizeof lc.norm_mean);
    memcpy(lc.norm_std, run->std, sizeof lc.norm_std);
    if (!run->normalize)
        for (int c = 0; c < 3; c++) {  // identity statistics: inputs stay in [0, 1]
            lc.norm_mean[c] = 0.0f;
            lc.norm_std[c] = 1.0f;
        }
    lc.run_config_json = json;
    run->l = learner_new(&lc);
    free(json);
    if (!run->l) {
        fprintf(stderr, "trainer: cannot build %s on this backend (see %s/trainer.log)\n",
                r->arch, run->out);
        return -1;
    }
    return 0;
}

// ---------------------------------------------------------------------------
// resume

static double s_num(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

// metrics.jsonl and metrics.csv of the run so far, cut back to the
// checkpoint: step lines up to its step, epoch rows of the epochs it has done
// (a row's valid columns are filled in), and the curves for the pictures.
// Lines of the epoch that was cut short (and a torn last line) are dropped,
// so that appending gives every row and step once.
static int s_resume_metrics(s_run_t *run, int64_t step, int done)
{
    char path[RECIPE_PATH + 64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run->out);
    size_t len = 0;
    char *text = nf_is_file(path) ? nf_read_file(path, (size_t)1 << 30, &len) : NULL;
    size_t cap = len + 1, used = 0;
    char *keep = nf_xmalloc(cap);
    for (char *line = text, *save = NULL; text && (line = strtok_r(line, "\n", &save)); line = NULL) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
        bool kept = false;
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "step")) {
            double st = s_num(o, "step", -1);
            if (st >= 0 && st <= (double)step) {
                kept = true;
                s_curve_add(run, st, s_num(o, "loss", NAN), s_num(o, "smooth_loss", NAN),
                            s_num(o, "lr", NAN), s_num(o, "mom", NAN));
            }
        } else if (cJSON_IsString(type) && !strcmp(type->valuestring, "epoch")) {
            int e = (int)s_num(o, "epoch", -1);
            if (e >= 0 && e < done && e < run->n_ep && !run->ep[e].persisted) {
                kept = true;
                s_epoch_t *x = &run->ep[e];
                x->persisted = true;
                if (cJSON_GetObjectItemCaseSensitive(o, "valid_loss")) {
                    x->has_result = true;
                    x->valid_loss = s_num(o, "valid_loss", NAN);
                    x->accuracy = s_num(o, "accuracy", NAN);
                    x->n_valid = (uint32_t)s_num(o, "n_valid", 0);
                }
                x->eval_s = s_num(o, "eval_s", 0);
            }
        }
        cJSON_Delete(o);
        if (kept) {
            size_t l = strlen(line);
            memcpy(keep + used, line, l);
            keep[used + l] = '\n';
            used += l + 1;
        }
    }
    free(text);
    int rc = nf_write_file_atomic(path, keep, used);
    // metrics.csv: the header and the rows kept above
    snprintf(path, sizeof path, "%s/metrics.csv", run->out);
    text = nf_is_file(path) ? nf_read_file(path, (size_t)1 << 30, &len) : NULL;
    bool had_csv = text != NULL;
    used = 0;
    keep = nf_xrealloc(keep, len + 1);
    for (char *line = text, *save = NULL; text && (line = strtok_r(line, "\n", &save)); line = NULL) {
        int e = -1;
        bool header = !strncmp(line, "epoch,", 6);
        if (!header && (sscanf(line, "%d,", &e) != 1 || e < 0 || e >= done || e >= run->n_ep ||
                        !run->ep[e].persisted))
            continue;
        size_t l = strlen(line);
        memcpy(keep + used, line, l);
        keep[used + l] = '\n';
        used += l + 1;
    }
    free(text);
    if (rc == 0 && had_csv) rc = nf_write_file_atomic(path, keep, used);
    else if (rc == 0 && nf_is_file(path)) rc = unlink(path);
    free(keep);
    if (rc != 0) fprintf(stderr, "trainer: --resume: cannot rewrite the metrics in %s\n", run->out);
    return rc;
}

// Restores the learner and the run's records from the checkpoint; sets the
// first epoch to train. Epochs done whose evaluation never came back are
// announced again (their checkpoints are kept until evaluated).
static int s_resume(s_run_t *run)
{
    cJSON *cfg = cJSON_Parse(run->rinfo.config_json);
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(cfg, "at");
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(at, "epochs");
    int done = (int)s_num(at, "epochs_done", -1);
    int rc = 0;
    if (done < 1 || done > run->n_ep || !cJSON_IsArray(hist) || cJSON_GetArraySize(hist) != done) {
        fprintf(stderr, "trainer: --resume: %s has no epoch record of this recipe\n",
                run->resume_ckpt);
        rc = -1;
    }
    if (rc == 0 && ckpt_load(run->l, run->resume_ckpt) != 0) {
        fprintf(stderr, "trainer: --resume: cannot load %s (see %s/trainer.log)\n",
                run->resume_ckpt, run->out);
        rc = -1;
    }
    for (int e = 0; rc == 0 && e < done; e++) {
        const cJSON *h = cJSON_GetArrayItem(hist, e);
        const cJSON *ck = cJSON_GetObjectItemCaseSensitive(h, "checkpoint");
        s_epoch_t *x = &run->ep[e];
        x->trained = true;
        x->train_loss = s_num(h, "train_loss", NAN);
        x->train_s = s_num(h, "train_s", 0);
        x->images = s_num(h, "images", 0);
        x->bad_train = (uint32_t)s_num(h, "bad_train", 0);
        x->step_end = (int64_t)s_num(h, "step", 0);
        snprintf(x->ckpt, sizeof x->ckpt, "%s", cJSON_IsString(ck) ? ck->valuestring : "");
        run->train_s += x->train_s;
        run->train_images += x->images;
    }
    if (rc == 0) {
        run->first_epoch = done;
        run->t0 = nf_now_s() - s_num(at, "wall_s", 0);
        run->shown_batch = true;
        rc = s_resume_metrics(run, run->ep[done - 1].step_end, done);
    }
    cJSON_Delete(cfg);
    if (rc != 0) return -1;
    int again = 0;
    for (int e = 0; e < done && !run->o.no_eval; e++) {
        s_epoch_t *x = &run->ep[e];
        // a row already written stays as it is (a --no-eval run's rows have no results);
        // the final checkpoint still goes out when its TTA result is missing
        bool tta_due = e == run->n_ep - 1 && run->o.r.tta;
        if (x->has_result || x->persisted) {
            x->eval_lost = !x->has_result;
            if (!tta_due) continue;
        }
        if (!nf_is_file(x->ckpt)) {
            nf_log_warn("trainer: epoch %d's checkpoint %s is gone: its row has no valid columns",
                        e, x->ckpt);
            x->eval_lost = true;
            continue;
        }
        const recipe_phase_t *ph = &run->o.r.phases[x->phase];
        announce_checkpoint_t c = {.path = x->ckpt, .epoch = (uint32_t)e + 1,
                                   .step = (uint64_t)x->step_end, .arch = run->o.r.arch,
                                   .run_dir = run->out, .is_final = e == run->n_ep - 1,
                                   .size = (uint32_t)ph->size, .presize = (uint32_t)ph->presize,
                                   .batch_size = (uint32_t)ph->bs};
        announce_checkpoint(run->ann, &c);
        again++;
    }
    char line[2 * RECIPE_PATH];
    snprintf(line, sizeof line, "resumed from %s: %d of %d epochs done (step %lld)%s", run->resume_ckpt,
             done, run->n_ep, (long long)run->ep[done - 1].step_end,
             again ? "; their evaluations that never came back are asked for again" : "");
    s_say(run, line);
    nf_log_info("%s (%d announced again)", line, again);
    return 0;
}

// ---------------------------------------------------------------------------
// epochs

static void s_show_batch(s_run_t *run, const augment_tensor_batch_t *b)
{
    augment_out_t out = {.pixels = (void *)b->pixels, .labels = (int32_t *)b->labels,
                         .partner_labels = (int32_t *)b->partner_labels,
                         .weights = (float *)b->weights, .n = b->n, .h = b->h, .w = b->w,
                         .c = b->c, .dtype = b->dtype};
    show_batch_config_t sc = {.class_names = run->classes, .n_classes = (int)run->n_classes,
                              .max_images = 16, .normalized = b->normalized};
    memcpy(sc.mean, b->mean, sizeof sc.mean);
    memcpy(sc.std, b->std, sizeof sc.std);
    char title[128], path[RECIPE_PATH + 32];
    snprintf(title, sizeof title, "epoch %u batch %u: %d px%s", b->epoch, b->seq, b->h,
             b->partner_labels ? ", Mixup" : "");
    sc.title = title;
    snprintf(path, sizeof path, "%s/show_batch.png", run->out);
    if (augment_show_batch(&out, &sc, path) == 0) nf_log_info("wrote %s", path);
}

// The run configuration stored in a checkpoint: the recipe, where in it we
// are, and what each epoch so far did (what --resume needs to continue the
// table, the summary and the evaluations: the trained-epoch records).
static char *s_ckpt_config(const s_run_t *run, int e)
{
    const recipe_phase_t *ph = &run->o.r.phases[run->ep[e].phase];
    cJSON *o = cJSON_CreateObject(), *at = cJSON_CreateObject(), *hist = cJSON_CreateArray();
    char *recipe = recipe_to_json(&run->o.r);
    cJSON *rj = cJSON_Parse(recipe);
    free(recipe);
    NF_CHECK(o && at && hist && rj, "cJSON out of memory");
    cJSON_AddItemToObject(o, "recipe", rj);
    cJSON_AddItemToObject(o, "at", at);
    cJSON_AddNumberToObject(at, "epochs_done", e + 1);
    cJSON_AddNumberToObject(at, "phase", run->ep[e].phase);
    cJSON_AddNumberToObject(at, "size", ph->size);
    cJSON_AddNumberToObject(at, "presize", ph->presize);
    cJSON_AddNumberToObject(at, "bs", ph->bs);
    cJSON_AddNumberToObject(at, "wall_s", nf_now_s() - run->t0);
    cJSON_AddItemToObject(at, "epochs", hist);
    for (int k = 0; k <= e; k++) {
        const s_epoch_t *x = &run->ep[k];
        cJSON *h = cJSON_CreateObject();
        NF_CHECK(h != NULL, "cJSON out of memory");
        cJSON_AddNumberToObject(h, "train_loss", x->train_loss);
        cJSON_AddNumberToObject(h, "train_s", x->train_s);
        cJSON_AddNumberToObject(h, "images", x->images);
        cJSON_AddNumberToObject(h, "bad_train", x->bad_train);
        cJSON_AddNumberToObject(h, "step", (double)x->step_end);
        cJSON_AddStringToObject(h, "checkpoint", x->ckpt);
        cJSON_AddItemToArray(hist, h);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    NF_CHECK(s != NULL, "cJSON out of memory");
    return s;
}

static int s_checkpoint(s_run_t *run, int e)
{
    s_epoch_t *ep = &run->ep[e];
    const recipe_phase_t *ph = &run->o.r.phases[ep->phase];
    learner_progress_t pr = learner_progress(run->l);
    ckpt_path(run->ckpt_dir, pr.step, ep->ckpt, sizeof ep->ckpt);
    ep->step_end = pr.step;
    char *cfg = s_ckpt_config(run, e);
    learner_set_run_config(run->l, cfg);
    free(cfg);
    if (ckpt_save(run->l, ep->ckpt) != 0) {
        fprintf(stderr, "trainer: cannot save checkpoint %s (see trainer.log)\n", ep->ckpt);
        return -1;
    }
    bool final = e == run->n_ep - 1;
    if (final) {
        char path[RECIPE_PATH + 64];
        snprintf(path, sizeof path, "%s/final.safetensors", run->ckpt_dir);
        if ((unlink(path) != 0 && errno != ENOENT) || link(ep->ckpt, path) != 0) {
            nf_log_error("trainer: cannot link %s to %s: %s", path, ep->ckpt, strerror(errno));
            return -1;
        }
    }
    if (run->ann) {
        announce_checkpoint_t c = {.path = ep->ckpt, .epoch = (uint32_t)e + 1,
                                   .step = (uint64_t)pr.step, .arch = run->o.r.arch,
                                   .run_dir = run->out, .is_final = final,
                                   .size = (uint32_t)ph->size, .presize = (uint32_t)ph->presize,
                                   .batch_size = (uint32_t)ph->bs};
        announce_checkpoint(run->ann, &c);
    }
    // keep the newest `keep` plus every one still waiting for its evaluation
    if (run->o.keep > 0) {
        int pending = 0;
        for (int k = 0; k <= e; k++) pending += !run->o.no_eval && !run->ep[k].has_result;
        (void)ckpt_retain(run->ckpt_dir, run->o.keep + pending);
    }
    return 0;
}

// The schedule of fit `fit_sub` of a phase (fine_tune has two), for n_iter batches per epoch.
static sched_t s_sched(const recipe_phase_t *ph, int fit_sub, int n_iter)
{
    if (ph->fit == RECIPE_FINE_TUNE) {
        sched_t s[2];
        NF_CHECK(sched_fine_tune(ph->epochs, n_iter, ph->lr, 1, s) == 2, "fine_tune phases");
        return s[fit_sub];
    }
    if (ph->fit == RECIPE_FLAT_COS) return sched_flat_cos(ph->epochs, n_iter, ph->lr, 0.9);
    return sched_one_cycle(ph->epochs, n_iter, ph->lr);
}

// One delivery-log line (the format of `loader consume --log`), flushed, so a
// killed trainer's log has every batch it trained on.
static void s_delivery_batch(FILE *f, const augment_tensor_batch_t *b)
{
    fprintf(f, "batch %u %u %d", b->epoch, b->seq, b->n);
    for (int i = 0; i < b->n; i++) fprintf(f, " %u", b->indices[i]);
    fputc('\n', f);
    fflush(f);
}

static int s_train_epoch(s_run_t *run, int e)
{
    s_epoch_t *ep = &run->ep[e];
    const recipe_phase_t *ph = &run->o.r.phases[ep->phase];
    augment_stream_request_t q;
    s_stream_request(run, ph, (uint32_t)e, &q);
    augment_stream_plan_t plan;
    double t0 = nf_now_s();
    if (augment_client_start(run->cl, &q, &plan, 120000) != 0) {
        if (errno != EINTR)
            nf_log_error("trainer: epoch %d: no stream from augment: %s", e, strerror(errno));
        return -1;
    }
    if (plan.n_batches == 0) {
        fprintf(stderr, "trainer: the training split has fewer than %d images (one batch)\n",
                ph->bs);
        return -1;
    }
    if (ep->fit_epoch == 0) {
        int fit_sub = ph->fit == RECIPE_FINE_TUNE && e > 0 && run->ep[e - 1].phase == ep->phase;
        sched_t s = s_sched(ph, fit_sub, (int)plan.n_batches);
        learner_fit_begin(run->l, &s);
    }
    char desc[64];
    snprintf(desc, sizeof desc, "epoch %d/%d", e + 1, run->n_ep);
    progress_begin(&run->bar, desc, (int)plan.n_batches);
    double images = 0;
    for (uint32_t it = 0; it < plan.n_batches; it++) {
        augment_tensor_batch_t *b = NULL;
        int got = s_next(run, &b);
        if (got != 1) {
            if (got == 0) nf_log_error("trainer: epoch %d ended after %u of %u batches", e, it,
                                       plan.n_batches);
            return -1;
        }
        if (!run->shown_batch) {
            s_show_batch(run, b);
            run->shown_batch = true;
        }
        learner_batch_t lb = {.x = b->pixels, .y = b->labels, .y_mix = b->partner_labels,
                              .lam = b->weights, .n = b->n, .h = b->h, .w = b->w};
        float loss;
        int rc = learner_train_step(run->l, &lb, &loss);
        int n = b->n;
        if (run->dlog) s_delivery_batch(run->dlog, b);
        augment_client_release(run->cl, &b);
        if (rc != 0) {
            nf_log_error("trainer: the learner refused batch %u of epoch %d", it, e);
            return -1;
        }
        images += n;
        learner_progress_t pr = learner_progress(run->l);
        double smooth = recorder_smooth_value(&pr.smooth);
        s_curve_add(run, (double)pr.step, loss, smooth, pr.lr, pr.mom);
        fprintf(run->jsonl,
                "{\"type\": \"step\", \"step\": %lld, \"epoch\": %d, \"iter\": %u, "
                "\"loss\": %.6f, \"smooth_loss\": %.6f, \"lr\": %.6g, \"mom\": %.6g, "
                "\"bs\": %d, \"size\": %d, \"t\": %.3f}\n",
                (long long)pr.step, e, it, loss, smooth, pr.lr, pr.mom, n, ph->size,
                nf_now_s() - run->t0);
        progress_update(&run->bar, (int)it + 1, images);
        s_service(run, 0);
        if (run->interrupted) return -1;
    }
    augment_stream_stats_t ss;
    if (augment_client_stats(run->cl, S_TRAIN_STREAM, &ss) == 0) {
        ep->bad_train = ss.bad_files;
        if (run->dlog) {
            // warnings: the tensor stream does not carry them; reissued: re-requests after
            // an augment restart
            fprintf(run->dlog, "epoch %d batches %u samples %u bad %u warnings 0 duplicates %u "
                    "reissued %u\n", e, ss.batches, ss.samples, ss.bad_files, ss.duplicates,
                    ss.restarts);
            fflush(run->dlog);
        }
    }
    learner_progress_t pr = learner_progress(run->l);
    ep->train_loss = recorder_smooth_value(&pr.smooth);
    ep->train_s = nf_now_s() - t0;
    ep->images = images;
    run->train_s += ep->train_s;
    run->train_images += images;
    progress_clear(&run->bar);
    if (s_checkpoint(run, e) != 0) return -1;
    ep->trained = true;
    nf_log_info("epoch %d trained: %u batches, %.0f images in %.1f s (%.1f img/s), smoothed "
                "loss %.6f", e, plan.n_batches, images, ep->train_s, images / ep->train_s,
                ep->train_loss);
    s_flush_rows(run);
    return 0;
}

// Waits for every row (and the TTA result) from the evaluator(s).
static int s_wait_results(s_run_t *run)
{
    if (run->o.no_eval) return 0;
    double t0 = nf_now_s(), last_note = t0;
    progress_begin(&run->bar, "waiting for the evaluator", run->n_ep + (run->o.r.tta ? 1 : 0));
    for (;;) {
        bool rows = run->next_row == run->n_ep;
        if (rows && (!run->o.r.tta || run->have_tta)) return 0;
        progress_update(&run->bar, run->next_row + (run->have_tta ? 1 : 0), 0);
        s_service(run, S_WAIT_MS);
        if (run->interrupted) return -1;
        double now = nf_now_s();
        if (now - last_note > 60.0) {
            last_note = now;
            nf_log_warn("trainer: %d evaluator(s) connected, still waiting for results "
                        "(%.0f s); start one with: evaluator --follow %s",
                        announce_evaluators(run->ann), now - t0, announce_endpoint(run->ann));
        }
    }
}

// ---------------------------------------------------------------------------
// summary and pictures

static void s_plots(s_run_t *run)
{
    if (run->n_c == 0) return;
    char path[RECIPE_PATH + 32];
    double *vx = nf_xcalloc((size_t)run->n_ep, sizeof *vx), *vy = nf_xcalloc((size_t)run->n_ep, sizeof *vy);
    int nv = 0;
    for (int e = 0; e < run->n_ep; e++)
        if (run->ep[e].has_result) {
            vx[nv] = (double)run->ep[e].step_end;
            vy[nv++] = run->ep[e].valid_loss;
        }
    nf_plot_series_t ls[3] = {
        {.x = run->c_step, .y = run->c_loss, .n = run->n_c, .color = {170, 200, 235}, .label = "batch loss"},
        {.x = run->c_step, .y = run->c_smooth, .n = run->n_c, .color = {31, 119, 180}, .label = "train_loss (smoothed)"},
        {.x = vx, .y = vy, .n = nv, .color = {255, 127, 14}, .label = "valid_loss", .dots = true},
    };
    nf_plot_t p = {.title = "loss", .xlabel = "training step", .series = ls, .n_series = 3,
                   .mark_x = NAN};
    snprintf(path, sizeof path, "%s/loss.png", run->out);
    (void)nf_plot_png(&p, path);
    nf_plot_series_t lr = {.x = run->c_step, .y = run->c_lr, .n = run->n_c,
                           .color = {31, 119, 180}, .label = "lr"};
    p = (nf_plot_t){.title = "learning rate", .xlabel = "training step", .series = &lr,
                    .n_series = 1, .mark_x = NAN};
    snprintf(path, sizeof path, "%s/lr.png", run->out);
    (void)nf_plot_png(&p, path);
    nf_plot_series_t mom = {.x = run->c_step, .y = run->c_mom, .n = run->n_c,
                            .color = {44, 160, 44}, .label = "mom (Adam beta1)"};
    p = (nf_plot_t){.title = "momentum", .xlabel = "training step", .series = &mom,
                    .n_series = 1, .mark_x = NAN};
    snprintf(path, sizeof path, "%s/mom.png", run->out);
    (void)nf_plot_png(&p, path);
    free(vx);
    free(vy);
}

static int s_summary(s_run_t *run, double wall_s)
{
    const s_epoch_t *last = run->n_ep ? &run->ep[run->n_ep - 1] : NULL;
    uint32_t bad_train = 0;
    int epochs_done = 0;
    for (int e = 0; e < run->n_ep; e++) {
        if (run->ep[e].bad_train > bad_train) bad_train = run->ep[e].bad_train;
        epochs_done += run->ep[e].trained;
    }
    cJSON *o = cJSON_CreateObject();
    NF_CHECK(o != NULL, "cJSON out of memory");
    bool res = last && last->has_result;
    if (res) {
        cJSON_AddNumberToObject(o, "accuracy", last->accuracy);
        cJSON_AddNumberToObject(o, "valid_loss", last->valid_loss);
    } else {
        cJSON_AddNullToObject(o, "accuracy");
        cJSON_AddNullToObject(o, "valid_loss");
    }
    if (run->have_tta) {
        cJSON_AddNumberToObject(o, "tta_accuracy", run->tta.tta_accuracy);
        cJSON_AddNumberToObject(o, "tta_loss", run->tta.tta_loss);
    } else {
        cJSON_AddNullToObject(o, "tta_accuracy");
    }
    cJSON_AddNumberToObject(o, "train_loss", last && last->trained ? last->train_loss : NAN);
    cJSON_AddNumberToObject(o, "epochs", epochs_done);
    cJSON_AddNumberToObject(o, "wall_s", wall_s);
    cJSON_AddNumberToObject(o, "train_s", run->train_s);
    cJSON_AddNumberToObject(o, "train_img_per_s",
                            run->train_s > 0 ? run->train_images / run->train_s : 0.0);
    cJSON_AddNumberToObject(o, "bad_files", bad_train + (last ? last->bad_valid : 0));
    cJSON_AddNumberToObject(o, "n_train", run->n_train);
    cJSON_AddNumberToObject(o, "n_valid", res ? last->n_valid : run->n_valid);
    cJSON_AddStringToObject(o, "preset", run->o.r.preset);
    cJSON_AddStringToObject(o, "arch", run->o.r.arch);
    cJSON_AddStringToObject(o, "device", run->backend == EXEC_CUDA ? "cuda" : "cpu");
    cJSON_AddBoolToObject(o, "interrupted", run->interrupted);
    char path[RECIPE_PATH + 64];
    snprintf(path, sizeof path, "%s/final.safetensors", run->ckpt_dir);
    if (nf_is_file(path)) cJSON_AddStringToObject(o, "checkpoint", path);
    else cJSON_AddNullToObject(o, "checkpoint");
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    NF_CHECK(s != NULL, "cJSON out of memory");
    snprintf(path, sizeof path, "%s/summary.json", run->out);
    size_t len = strlen(s);
    s = nf_xrealloc(s, len + 2);
    s[len] = '\n';
    int rc = nf_write_file_atomic(path, s, len + 1);
    free(s);
    return rc;
}

static void s_teardown(s_run_t *run)
{
    announce_destroy(&run->ann, run->interrupted ? "training interrupted" : "training finished");
    augment_client_destroy(&run->cl);
    learner_destroy(&run->l);
    nf_curve_opts_close(&run->curve);
    if (run->zctx && zmq_ctx_term(run->zctx) != 0)
        nf_log_warn("zmq_ctx_term: %s", zmq_strerror(zmq_errno()));
    nf_signals_destroy(&run->sig);
    if (run->jsonl) fclose(run->jsonl);
    if (run->csv) fclose(run->csv);
    if (run->dlog && fclose(run->dlog) != 0)
        nf_log_error("trainer: writing %s: %s", run->o.delivery_log, strerror(errno));
    ckpt_info_free(&run->rinfo);
    free(run->ep);
    free(run->c_step);
    free(run->c_loss);
    free(run->c_smooth);
    free(run->c_lr);
    free(run->c_mom);
}

// ---------------------------------------------------------------------------
// lr_find

static int s_lr_find(s_run_t *run)
{
    const recipe_phase_t *ph = &run->o.r.phases[0];
    sched_t s = sched_lr_find(run->o.lr_start, run->o.lr_end, run->o.num_it, 0.9);
    learner_fit_begin(run->l, &s);
    double *lrs = nf_xmalloc((size_t)s.n_iter * sizeof *lrs);
    float *losses = nf_xmalloc((size_t)s.n_iter * sizeof *losses);
    double *dl = nf_xmalloc((size_t)s.n_iter * sizeof *dl);
    int n = 0, rc = 0;
    float best = INFINITY;
    progress_begin(&run->bar, "lr_find", s.n_iter);
    bool stop = false;
    for (uint32_t epoch = 0; !stop; epoch++) {
        augment_stream_request_t q;
        s_stream_request(run, ph, epoch, &q);
        q.max_batches = (uint32_t)(s.n_iter - n);
        augment_stream_plan_t plan;
        if (augment_client_start(run->cl, &q, &plan, 120000) != 0 || plan.n_batches == 0) {
            nf_log_error("trainer: lr_find: no training stream: %s", strerror(errno));
            rc = -1;
            break;
        }
        for (uint32_t it = 0; it < plan.n_batches && !stop; it++) {
            augment_tensor_batch_t *b = NULL;
            if (s_next(run, &b) != 1) {
                rc = -1;
                stop = true;
                break;
            }
            learner_batch_t lb = {.x = b->pixels, .y = b->labels, .y_mix = b->partner_labels,
                                  .lam = b->weights, .n = b->n, .h = b->h, .w = b->w};
            float loss;
            int r = learner_train_step(run->l, &lb, &loss);
            augment_client_release(run->cl, &b);
            if (r != 0) {
                rc = -1;
                stop = true;
                break;
            }
            learner_progress_t pr = learner_progress(run->l);
            lrs[n] = pr.lr;
            losses[n] = recorder_smooth_value(&pr.smooth);
            dl[n] = losses[n];
            n++;
            progress_update(&run->bar, n, (double)n * ph->bs);
            stop = sched_lr_find_stop(losses[n - 1], &best, n, s.n_iter, true);
        }
    }
    progress_clear(&run->bar);
    if (rc == 0) {
        char path[RECIPE_PATH + 32];
        snprintf(path, sizeof path, "%s/lr_find.csv", run->out);
        FILE *f = fopen(path, "w");
        if (f) {
            fprintf(f, "iter,lr,smooth_loss\n");
            for (int i = 0; i < n; i++) fprintf(f, "%d,%.9g,%.6f\n", i, lrs[i], losses[i]);
            if (fclose(f) != 0) rc = -1;
        } else rc = -1;
        double sugg = NAN;
        char line[256], mark[64] = "";
        if (sched_lr_find_valley(lrs, losses, n, s.n_iter, &sugg) == 0) {
            snprintf(line, sizeof line, "lr_find: %d batches; valley suggestion lr = %.3e", n, sugg);
            snprintf(mark, sizeof mark, "valley %.2e", sugg);
        } else {
            snprintf(line, sizeof line, "lr_find: %d batches; too few for a suggestion", n);
        }
        s_say(run, line);
        nf_log_info("%s", line);
        nf_plot_series_t se = {.x = lrs, .y = dl, .n = n, .color = {31, 119, 180},
                               .label = "smoothed loss"};
        nf_plot_t p = {.title = "lr_find", .xlabel = "learning rate (log scale)", .ylabel = "loss",
                       .log_x = true, .series = &se, .n_series = 1, .mark_x = sugg,
                       .mark_label = mark[0] ? mark : NULL};
        snprintf(path, sizeof path, "%s/lr_find.png", run->out);
        if (nf_plot_png(&p, path) != 0) rc = -1;
        if (rc != 0) fprintf(stderr, "trainer: cannot write the lr_find files in %s\n", run->out);
    }
    free(lrs);
    free(losses);
    free(dl);
    return rc;
}

// ---------------------------------------------------------------------------

int trainer_train_main(int argc, char **argv, bool lr_find)
{
    s_run_t run;
    memset(&run, 0, sizeof run);
    int prc = s_parse(&run.o, &run.rinfo, run.resume_ckpt, argc, argv, lr_find);
    run.resumed = run.o.resume != NULL;
    if (prc != 0) {
        ckpt_info_free(&run.rinfo);
        return 2;
    }
    if (run.o.print_data) {
        printf("%s\n", run.o.r.data);
        ckpt_info_free(&run.rinfo);
        return 0;
    }
    if (run.o.print_loader_args) {
        char args[256];
        recipe_loader_args(&run.o.r, args, sizeof args);
        printf("%s\n", args);
        ckpt_info_free(&run.rinfo);
        return 0;
    }
    run.t0 = nf_now_s();
    int rc = 1;
    // first: every thread created later (CUDA, ZeroMQ, OpenMP) inherits the blocked mask
    run.sig = nf_signals_new();
    if (!run.sig) return 1;
    if (s_setup(&run) != 0) {
        if (run.sig && !run.interrupted) s_service(&run, 0);
        rc = run.interrupted ? 130 : 1;
        s_teardown(&run);
        return rc;
    }
    if (lr_find) {
        rc = s_lr_find(&run) == 0 ? 0 : 1;
    } else {
        s_plan_epochs(&run);
        rc = (run.resumed && s_resume(&run) != 0) || s_open_metrics(&run) != 0 ? 1 : 0;
        if (rc == 0) s_flush_rows(&run);  // a resumed run's rows so far
        for (int e = run.first_epoch; e < run.n_ep && rc == 0; e++)
            if (s_train_epoch(&run, e) != 0) rc = 1;
        s_service(&run, 0);  // a signal that ended a wait inside the epoch
        if (rc == 0 && s_wait_results(&run) != 0) rc = 1;
        progress_clear(&run.bar);
        if (run.have_tta) {
            char line[256];
            snprintf(line, sizeof line, "TTA (n=%d, beta=%g) accuracy: %.6f (plain %.6f)",
                     run.o.r.tta_n, run.o.r.tta_beta, run.tta.tta_accuracy,
                     run.ep[run.n_ep - 1].accuracy);
            s_say(&run, "");
            s_say(&run, line);
            nf_log_info("%s", line);
        }
        double wall = nf_now_s() - run.t0;
        s_plots(&run);
        if (s_summary(&run, wall) != 0) rc = 1;
        char line[RECIPE_PATH + 256];
        snprintf(line, sizeof line, "%s after %.0f s (%.1f training img/s); run folder %s",
                 run.interrupted ? "interrupted" : rc == 0 ? "done" : "failed", wall,
                 run.train_s > 0 ? run.train_images / run.train_s : 0.0, run.out);
        s_say(&run, line);
        nf_log_info("%s", line);
    }
    if (run.interrupted) rc = 130;
    s_teardown(&run);
    return rc;
}
