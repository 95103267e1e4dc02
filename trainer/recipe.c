/*
 * recipe.c: see recipe.h. Presets, option parsing (lists broadcast over the
 * phases), checks, JSON (cJSON).
 */
#include "recipe.h"

#include "check.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_presets[] = {"baseline", "normalized",      "progressive", "tta",
                                        "mixup",    "label-smoothing", "quick",       "tiny",
                                        NULL};

const char *const *recipe_preset_names(void) { return s_presets; }

const char *recipe_fit_name(recipe_fit_t f)
{
    return f == RECIPE_FINE_TUNE ? "fine_tune" : f == RECIPE_FLAT_COS ? "flat_cos" : "one_cycle";
}

const char *recipe_norm_name(recipe_norm_t n)
{
    return n == RECIPE_NORM_NONE ? "none" : n == RECIPE_NORM_COMPUTED ? "computed" : "imagenet";
}

static int s_parse_fit(const char *s, recipe_fit_t *out)
{
    if (!strcmp(s, "one_cycle") || !strcmp(s, "fit_one_cycle")) *out = RECIPE_ONE_CYCLE;
    else if (!strcmp(s, "fine_tune")) *out = RECIPE_FINE_TUNE;
    else if (!strcmp(s, "flat_cos") || !strcmp(s, "fit_flat_cos")) *out = RECIPE_FLAT_COS;
    else return -1;
    return 0;
}

static int s_parse_norm(const char *s, recipe_norm_t *out)
{
    if (!strcmp(s, "imagenet")) *out = RECIPE_NORM_IMAGENET;
    else if (!strcmp(s, "none")) *out = RECIPE_NORM_NONE;
    else if (!strcmp(s, "computed")) *out = RECIPE_NORM_COMPUTED;
    else return -1;
    return 0;
}

static void s_phase(recipe_t *r, int i, recipe_fit_t fit, int epochs, double lr, int size, int bs,
                    int presize)
{
    r->phases[i] = (recipe_phase_t){.fit = fit, .epochs = epochs, .lr = lr, .size = size,
                                    .bs = bs, .presize = presize};
    if (i + 1 > r->n_phases) r->n_phases = i + 1;
}

void recipe_defaults(recipe_t *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->preset, sizeof r->preset, "custom");
    snprintf(r->arch, sizeof r->arch, "xresnet50");
    s_phase(r, 0, RECIPE_ONE_CYCLE, 5, 3e-3, 224, 64, 460);
    r->normalize = RECIPE_NORM_IMAGENET;
    r->min_scale = 0.75f;
    r->tta_n = 4;
    r->tta_beta = 0.25f;
    r->seed = 42;
    snprintf(r->valid_name, sizeof r->valid_name, "val");
    snprintf(r->device, sizeof r->device, "auto");
}

int recipe_preset(recipe_t *r, const char *name)
{
    bool known = false;
    for (int i = 0; s_presets[i]; i++) known |= strcmp(name, s_presets[i]) == 0;
    if (!known) return -1;
    recipe_defaults(r);
    snprintf(r->preset, sizeof r->preset, "%s", name);
    r->valid_pct = 0.2;  // the chapter's DataBlock has no splitter: RandomSplitter(0.2)
    if (!strcmp(name, "baseline")) {
        r->normalize = RECIPE_NORM_NONE;
    } else if (!strcmp(name, "normalized")) {
    } else if (!strcmp(name, "progressive") || !strcmp(name, "tta")) {
        r->n_phases = 0;
        s_phase(r, 0, RECIPE_ONE_CYCLE, 4, 3e-3, 128, 128, 460);
        s_phase(r, 1, RECIPE_FINE_TUNE, 5, 1e-3, 224, 64, 460);
        r->tta = !strcmp(name, "tta");
    } else if (!strcmp(name, "mixup")) {
        r->mixup = 0.4f;
    } else if (!strcmp(name, "label-smoothing")) {
        r->ls_eps = 0.1f;
    } else if (!strcmp(name, "quick")) {
        // xresnet18 progressive 64 -> 112 px on the official split: sized for
        // a 2-core CPU (docs/results.md); presizes leave aug_transforms room
        // without upsampling 224 px files much
        snprintf(r->arch, sizeof r->arch, "xresnet18");
        r->valid_pct = 0;
        r->n_phases = 0;
        s_phase(r, 0, RECIPE_ONE_CYCLE, 6, 4e-3, 64, 64, 96);
        s_phase(r, 1, RECIPE_FINE_TUNE, 2, 2e-3, 112, 64, 160);
    } else if (!strcmp(name, "tiny")) {
        snprintf(r->arch, sizeof r->arch, "xresnet18");
        r->valid_pct = 0;
        r->n_phases = 0;
        s_phase(r, 0, RECIPE_ONE_CYCLE, 4, 4e-3, 48, 32, 64);
        r->tta = true;
    }
    return 0;
}

// ---------------------------------------------------------------------------
// options

enum {
    O_PRESET = 1000, O_ARCH, O_EPOCHS, O_LR, O_BS, O_SIZE, O_SIZES, O_PRESIZE, O_FIT, O_NORM,
    O_MIXUP, O_LS, O_MIN_SCALE, O_DROPOUT, O_RESAMPLE, O_TTA, O_NO_TTA, O_TTA_N, O_TTA_BETA,
    O_SEED, O_DATA, O_VALID_NAME, O_VALID_PCT, O_DEVICE, O_WORKERS, O_THREADS,
};

static const struct {
    const char *name;
    int id;
    bool arg;
} s_opts[] = {
    {"preset", O_PRESET, true},         {"arch", O_ARCH, true},
    {"epochs", O_EPOCHS, true},         {"lr", O_LR, true},
    {"bs", O_BS, true},                 {"size", O_SIZE, true},
    {"sizes", O_SIZES, true},           {"presize", O_PRESIZE, true},
    {"fit", O_FIT, true},               {"normalize", O_NORM, true},
    {"mixup", O_MIXUP, true},           {"label-smoothing", O_LS, true},
    {"min-scale", O_MIN_SCALE, true},   {"dropout", O_DROPOUT, true},
    {"resample", O_RESAMPLE, true},     {"tta", O_TTA, false},
    {"no-tta", O_NO_TTA, false},        {"tta-n", O_TTA_N, true},
    {"tta-beta", O_TTA_BETA, true},     {"seed", O_SEED, true},
    {"data", O_DATA, true},             {"valid-name", O_VALID_NAME, true},
    {"valid-pct", O_VALID_PCT, true},   {"device", O_DEVICE, true},
    {"workers", O_WORKERS, true},       {"threads", O_THREADS, true},
};

const char *recipe_help(void)
{
    return "  --preset NAME        baseline | normalized | progressive | tta | mixup |\n"
           "                       label-smoothing | quick | tiny (recipe.h; default: progressive)\n"
           "  --arch A             xresnet18 | xresnet34 | xresnet50\n"
           "  --epochs LIST        epochs per phase, e.g. 4,5 (fine_tune adds its frozen epoch)\n"
           "  --lr LIST            lr_max (one_cycle, flat_cos) or base_lr (fine_tune) per phase\n"
           "  --bs LIST            batch size per phase\n"
           "  --size N | --sizes LIST   image size per phase (progressive resizing)\n"
           "  --presize LIST       loader Resize side per phase (presizing)\n"
           "  --fit LIST           one_cycle | fine_tune | flat_cos per phase\n"
           "  --normalize MODE     imagenet | none | computed (from one augmented train batch)\n"
           "  --mixup ALPHA        MixUp(alpha), 0 = off\n"
           "  --label-smoothing E  LabelSmoothingCrossEntropy(eps), 0 = cross-entropy\n"
           "  --min-scale X        aug_transforms(min_scale) (0.75)\n"
           "  --dropout P          head dropout (0)\n"
           "  --resample R         augment resampling: fused | reference\n"
           "  --tta / --no-tta     test-time augmentation at the end; --tta-n N (4), --tta-beta B (0.25)\n"
           "  --seed N             every random draw of the run (42)\n"
           "  --data DIR           dataset folder (ImageFolder: DIR/train/<class>/..., DIR/val/...)\n"
           "  --valid-name NAME    validation folder (val); --valid-pct P: random split instead\n"
           "  --device D           auto | cpu | cuda\n"
           "  --workers N          loader worker processes (run.sh; 0 = one per core)\n"
           "  --threads N          trainer CPU threads (0 = all)\n";
}

// Splits a comma list into at most RECIPE_MAX_PHASES items. Returns the count or -1.
static int s_split(const char *s, char items[RECIPE_MAX_PHASES][64])
{
    int n = 0;
    const char *p = s;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (n == RECIPE_MAX_PHASES || len == 0 || len >= 64) return -1;
        memcpy(items[n], p, len);
        items[n++][len] = 0;
        if (!c) return n;
        p = c + 1;
    }
}

static bool s_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

static bool s_dbl(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

typedef struct {
    char items[RECIPE_MAX_PHASES][64];
    int n;  // 0 = not given
} s_list_t;

#define S_FAIL(...)                                                                           \
    do {                                                                                      \
        snprintf(err, errlen, __VA_ARGS__);                                                   \
        return -1;                                                                            \
    } while (0)

// Applies the phase lists over the preset's phases.
static int s_apply_lists(recipe_t *r, s_list_t *l, char *err, size_t errlen)
{
    static const char *const names[6] = {"--fit", "--epochs", "--lr", "--sizes", "--bs",
                                         "--presize"};
    int n = 0;
    for (int k = 0; k < 6; k++) n = l[k].n > n ? l[k].n : n;
    if (n == 0) return 0;
    for (int k = 0; k < 6; k++)
        if (l[k].n > 1 && l[k].n != n)
            S_FAIL("%s has %d values but another list has %d (one value per phase, or one for all)",
                   names[k], l[k].n, n);
    recipe_t base = *r;
    r->n_phases = n;
    for (int i = 0; i < n; i++) {
        recipe_phase_t ph = base.phases[i < base.n_phases ? i : base.n_phases - 1];
        for (int k = 0; k < 6; k++) {
            if (!l[k].n) continue;
            const char *v = l[k].items[l[k].n == 1 ? 0 : i];
            bool ok = true;
            switch (k) {
            case 0: ok = s_parse_fit(v, &ph.fit) == 0; break;
            case 1: ok = s_int(v, 1, 10000, &ph.epochs); break;
            case 2: ok = s_dbl(v, 1e-12, 100.0, &ph.lr); break;
            case 3: ok = s_int(v, 16, 4096, &ph.size); break;
            case 4: ok = s_int(v, 1, 4096, &ph.bs); break;
            case 5: ok = s_int(v, 16, 8192, &ph.presize); break;
            }
            if (!ok) S_FAIL("bad value '%s' for %s", v, names[k]);
        }
        r->phases[i] = ph;
    }
    return 0;
}

int recipe_parse_args(recipe_t *r, int argc, char **argv, char **rest, int *n_rest, char *err,
                      size_t errlen)
{
    *n_rest = 0;
    const char *preset = "progressive";
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--preset")) preset = argv[i + 1];
    if (recipe_preset(r, preset) != 0) {
        char names[256] = "";
        for (int i = 0; s_presets[i]; i++) {
            strcat(names, i ? ", " : "");
            strcat(names, s_presets[i]);
        }
        S_FAIL("unknown preset '%s' (presets: %s)", preset, names);
    }
    return recipe_apply_args(r, argc, argv, rest, n_rest, err, errlen);
}

int recipe_apply_args(recipe_t *r, int argc, char **argv, char **rest, int *n_rest, char *err,
                      size_t errlen)
{
    *n_rest = 0;
    s_list_t lists[6] = {0};
    bool pct_given = false, name_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int id = -1;
        bool has_arg = false;
        for (size_t k = 0; a[0] == '-' && a[1] == '-' && k < NF_ARRAY_LEN(s_opts); k++)
            if (!strcmp(a + 2, s_opts[k].name)) {
                id = s_opts[k].id;
                has_arg = s_opts[k].arg;
            }
        if (id < 0) {
            rest[(*n_rest)++] = argv[i];
            continue;
        }
        const char *v = NULL;
        if (has_arg) {
            if (i + 1 >= argc) S_FAIL("%s needs a value", a);
            v = argv[++i];
        }
        bool ok = true;
        double d = 0;
        switch (id) {
        case O_PRESET: break;
        case O_ARCH:
            ok = !strcmp(v, "xresnet18") || !strcmp(v, "xresnet34") || !strcmp(v, "xresnet50");
            snprintf(r->arch, sizeof r->arch, "%s", v);
            break;
        case O_EPOCHS: ok = (lists[1].n = s_split(v, lists[1].items)) > 0; break;
        case O_LR: ok = (lists[2].n = s_split(v, lists[2].items)) > 0; break;
        case O_SIZE:
        case O_SIZES: ok = (lists[3].n = s_split(v, lists[3].items)) > 0; break;
        case O_BS: ok = (lists[4].n = s_split(v, lists[4].items)) > 0; break;
        case O_PRESIZE: ok = (lists[5].n = s_split(v, lists[5].items)) > 0; break;
        case O_FIT: ok = (lists[0].n = s_split(v, lists[0].items)) > 0; break;
        case O_NORM: ok = s_parse_norm(v, &r->normalize) == 0; break;
        case O_MIXUP:
            ok = s_dbl(v, 0.0, 100.0, &d);
            r->mixup = (float)d;
            break;
        case O_LS:
            ok = s_dbl(v, 0.0, 0.999, &d);
            r->ls_eps = (float)d;
            break;
        case O_MIN_SCALE:
            ok = s_dbl(v, 0.01, 1.0, &d);
            r->min_scale = (float)d;
            break;
        case O_DROPOUT:
            ok = s_dbl(v, 0.0, 0.99, &d);
            r->dropout = (float)d;
            break;
        case O_RESAMPLE:
            ok = !strcmp(v, "fused") || !strcmp(v, "reference");
            r->resample = !strcmp(v, "reference");
            break;
        case O_TTA: r->tta = true; break;
        case O_NO_TTA: r->tta = false; break;
        case O_TTA_N: ok = s_int(v, 1, 64, &r->tta_n); break;
        case O_TTA_BETA:
            ok = s_dbl(v, 0.0, 1.0, &d);
            r->tta_beta = (float)d;
            break;
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            ok = !errno && end != v && !*end && v[0] != '-' && s > 0;
            r->seed = s;
            break;
        }
        case O_DATA:
            ok = strlen(v) < sizeof r->data;
            snprintf(r->data, sizeof r->data, "%s", v);
            break;
        case O_VALID_NAME:
            ok = strlen(v) < sizeof r->valid_name && v[0] && !strchr(v, '/');
            snprintf(r->valid_name, sizeof r->valid_name, "%s", v);
            name_given = true;
            break;
        case O_VALID_PCT:
            ok = s_dbl(v, 0.001, 0.999, &r->valid_pct);
            pct_given = true;
            break;
        case O_DEVICE:
            ok = !strcmp(v, "auto") || !strcmp(v, "cpu") || !strcmp(v, "cuda");
            snprintf(r->device, sizeof r->device, "%s", v);
            break;
        case O_WORKERS: ok = s_int(v, 0, 256, &r->workers); break;
        case O_THREADS: ok = s_int(v, 0, 1024, &r->threads); break;
        }
        if (!ok) S_FAIL("bad value '%s' for %s", v ? v : "", a);
    }
    if (pct_given && name_given) S_FAIL("give either --valid-name or --valid-pct, not both");
    if (name_given) r->valid_pct = 0;
    if (s_apply_lists(r, lists, err, errlen) != 0) return -1;
    return recipe_check(r, err, errlen);
}

int recipe_check(const recipe_t *r, char *err, size_t errlen)
{
    if (r->n_phases < 1 || r->n_phases > RECIPE_MAX_PHASES) S_FAIL("no training phase");
    for (int i = 0; i < r->n_phases; i++) {
        const recipe_phase_t *p = &r->phases[i];
        if (p->epochs < 1 || p->bs < 1 || p->size < 16 || p->presize < 16 || !(p->lr > 0))
            S_FAIL("phase %d: epochs, bs, size (>= 16), presize and lr must be positive", i + 1);
        if (p->presize < p->size / 4)
            S_FAIL("phase %d: presize %d is far below the size %d", i + 1, p->presize, p->size);
    }
    if (r->tta && (r->tta_n < 1 || !(r->tta_beta >= 0 && r->tta_beta <= 1)))
        S_FAIL("bad TTA settings");
    return 0;
}

void recipe_loader_args(const recipe_t *r, char *buf, size_t len)
{
    if (r->valid_pct > 0)
        snprintf(buf, len, "--split random --valid-pct %g --seed %llu", r->valid_pct,
                 (unsigned long long)r->seed);
    else
        snprintf(buf, len, "--split folders --valid %s --seed %llu", r->valid_name,
                 (unsigned long long)r->seed);
}

int recipe_total_epochs(const recipe_t *r)
{
    int n = 0;
    for (int i = 0; i < r->n_phases; i++)
        n += r->phases[i].epochs + (r->phases[i].fit == RECIPE_FINE_TUNE ? 1 : 0);
    return n;
}

int recipe_total_fits(const recipe_t *r)
{
    int n = 0;
    for (int i = 0; i < r->n_phases; i++) n += r->phases[i].fit == RECIPE_FINE_TUNE ? 2 : 1;
    return n;
}

// ---------------------------------------------------------------------------
// JSON

char *recipe_to_json(const recipe_t *r)
{
    cJSON *o = cJSON_CreateObject();
    NF_CHECK(o != NULL, "cJSON out of memory");
    cJSON_AddStringToObject(o, "preset", r->preset);
    cJSON_AddStringToObject(o, "arch", r->arch);
    cJSON *ph = cJSON_AddArrayToObject(o, "phases");
    for (int i = 0; i < r->n_phases; i++) {
        const recipe_phase_t *p = &r->phases[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "fit", recipe_fit_name(p->fit));
        cJSON_AddNumberToObject(e, "epochs", p->epochs);
        cJSON_AddNumberToObject(e, "lr", p->lr);
        cJSON_AddNumberToObject(e, "size", p->size);
        cJSON_AddNumberToObject(e, "bs", p->bs);
        cJSON_AddNumberToObject(e, "presize", p->presize);
        cJSON_AddItemToArray(ph, e);
    }
    cJSON_AddStringToObject(o, "normalize", recipe_norm_name(r->normalize));
    cJSON_AddNumberToObject(o, "mixup", r->mixup);
    cJSON_AddNumberToObject(o, "label_smoothing", r->ls_eps);
    cJSON_AddNumberToObject(o, "min_scale", r->min_scale);
    cJSON_AddNumberToObject(o, "dropout", r->dropout);
    cJSON_AddStringToObject(o, "resample", r->resample ? "reference" : "fused");
    cJSON_AddBoolToObject(o, "tta", r->tta);
    cJSON_AddNumberToObject(o, "tta_n", r->tta_n);
    cJSON_AddNumberToObject(o, "tta_beta", r->tta_beta);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->seed);
    cJSON_AddStringToObject(o, "seed", seed);
    cJSON_AddStringToObject(o, "data", r->data);
    cJSON_AddStringToObject(o, "valid_name", r->valid_name);
    cJSON_AddNumberToObject(o, "valid_pct", r->valid_pct);
    cJSON_AddStringToObject(o, "device", r->device);
    cJSON_AddNumberToObject(o, "workers", r->workers);
    cJSON_AddNumberToObject(o, "threads", r->threads);
    char *s = cJSON_PrintUnformatted(o);
    NF_CHECK(s != NULL, "cJSON out of memory");
    cJSON_Delete(o);
    return s;
}

static double s_num(const cJSON *o, const char *k, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static void s_str(const cJSON *o, const char *k, char *dst, size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsString(v) && strlen(v->valuestring) < len) snprintf(dst, len, "%s", v->valuestring);
}

int recipe_from_json(recipe_t *r, const char *json)
{
    recipe_defaults(r);
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    if (!o) return -1;
    s_str(o, "preset", r->preset, sizeof r->preset);
    s_str(o, "arch", r->arch, sizeof r->arch);
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(o, "phases");
    int n = cJSON_IsArray(ph) ? cJSON_GetArraySize(ph) : 0;
    if (n >= 1 && n <= RECIPE_MAX_PHASES) {
        r->n_phases = n;
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(ph, i);
            recipe_phase_t *p = &r->phases[i];
            char fit[32] = "one_cycle";
            s_str(e, "fit", fit, sizeof fit);
            if (s_parse_fit(fit, &p->fit) != 0) p->fit = RECIPE_ONE_CYCLE;
            p->epochs = (int)s_num(e, "epochs", 1);
            p->lr = s_num(e, "lr", 1e-3);
            p->size = (int)s_num(e, "size", 224);
            p->bs = (int)s_num(e, "bs", 64);
            p->presize = (int)s_num(e, "presize", 460);
        }
    }
    char norm[32] = "imagenet", res[32] = "fused", seed[32] = "42";
    s_str(o, "normalize", norm, sizeof norm);
    if (s_parse_norm(norm, &r->normalize) != 0) r->normalize = RECIPE_NORM_IMAGENET;
    r->mixup = (float)s_num(o, "mixup", 0);
    r->ls_eps = (float)s_num(o, "label_smoothing", 0);
    r->min_scale = (float)s_num(o, "min_scale", 0.75);
    r->dropout = (float)s_num(o, "dropout", 0);
    s_str(o, "resample", res, sizeof res);
    r->resample = !strcmp(res, "reference");
    const cJSON *tta = cJSON_GetObjectItemCaseSensitive(o, "tta");
    r->tta = cJSON_IsTrue(tta);
    r->tta_n = (int)s_num(o, "tta_n", 4);
    r->tta_beta = (float)s_num(o, "tta_beta", 0.25);
    s_str(o, "seed", seed, sizeof seed);
    r->seed = strtoull(seed, NULL, 10);
    s_str(o, "data", r->data, sizeof r->data);
    s_str(o, "valid_name", r->valid_name, sizeof r->valid_name);
    r->valid_pct = s_num(o, "valid_pct", 0);
    s_str(o, "device", r->device, sizeof r->device);
    r->workers = (int)s_num(o, "workers", 0);
    r->threads = (int)s_num(o, "threads", 0);
    cJSON_Delete(o);
    return 0;
}
