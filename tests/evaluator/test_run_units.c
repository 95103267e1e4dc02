/*
 * test_run_units.c: the pure pieces of the trainer and evaluator processes:
 *   - recipes: every preset is valid and is the chapter's code (epochs, lr,
 *     sizes, batch sizes, Normalize, Mixup, label smoothing, TTA, split);
 *     command-line lists define the phases (one value broadcasts), flags
 *     override presets, bad values are refused with a reason; JSON round trip;
 *     the loader's split options;
 *   - fastai's TTA combination: (1 - beta) * mean(aug) + beta * plain on
 *     probabilities, a case where TTA flips a prediction, beta = 0 and 1, and
 *     the loss, against values computed by hand.
 */
#include "eval.h"
#include "recipe.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int s_parse(recipe_t *r, const char *line, char *err, size_t errlen)
{
    char buf[1024], *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "train %s", line);
    for (char *t = strtok(buf, " "); t && argc < 63; t = strtok(NULL, " ")) argv[argc++] = t;
    char *rest[64];
    int n_rest = 0;
    int rc = recipe_parse_args(r, argc, argv, rest, &n_rest, err, errlen);
    T_CHECK(rc != 0 || n_rest == 0 || strncmp(rest[0], "--", 2) == 0, "rest holds options");
    return rc;
}

static void s_presets(void)
{
    char err[256];
    for (const char *const *n = recipe_preset_names(); *n; n++) {
        recipe_t r;
        T_CHECK(recipe_preset(&r, *n) == 0, "preset %s exists", *n);
        T_CHECK(recipe_check(&r, err, sizeof err) == 0, "preset %s valid: %s", *n, err);
    }
    recipe_t r;
    recipe_preset(&r, "baseline");
    T_CHECK(!strcmp(r.arch, "xresnet50") && r.n_phases == 1 && r.phases[0].epochs == 5 &&
                r.phases[0].lr == 3e-3 && r.phases[0].size == 224 && r.phases[0].bs == 64 &&
                r.phases[0].presize == 460 && r.normalize == RECIPE_NORM_NONE &&
                r.valid_pct == 0.2 && !r.tta && r.mixup == 0 && r.ls_eps == 0,
            "baseline = fit_one_cycle(5, 3e-3), 224, bs 64, Resize(460), no Normalize, 20%% split");
    recipe_preset(&r, "normalized");
    T_CHECK(r.normalize == RECIPE_NORM_IMAGENET && r.phases[0].epochs == 5, "normalized");
    recipe_preset(&r, "tta");
    T_CHECK(r.n_phases == 2 && r.phases[0].fit == RECIPE_ONE_CYCLE && r.phases[0].epochs == 4 &&
                r.phases[0].size == 128 && r.phases[0].bs == 128 && r.phases[0].lr == 3e-3 &&
                r.phases[1].fit == RECIPE_FINE_TUNE && r.phases[1].epochs == 5 &&
                r.phases[1].size == 224 && r.phases[1].bs == 64 && r.phases[1].lr == 1e-3 &&
                r.tta && r.tta_n == 4 && fabsf(r.tta_beta - 0.25f) < 1e-7,
            "tta = progressive (4 @128 bs 128, fine_tune(5, 1e-3) @224 bs 64) + TTA(4, 0.25)");
    T_CHECK(recipe_total_epochs(&r) == 10 && recipe_total_fits(&r) == 3,
            "progressive: 10 epochs in 3 tables (%d, %d)", recipe_total_epochs(&r),
            recipe_total_fits(&r));
    recipe_preset(&r, "mixup");
    T_CHECK(fabsf(r.mixup - 0.4f) < 1e-7 && r.normalize == RECIPE_NORM_IMAGENET, "mixup 0.4");
    recipe_preset(&r, "label-smoothing");
    T_CHECK(fabsf(r.ls_eps - 0.1f) < 1e-7, "label smoothing 0.1");
    recipe_preset(&r, "quick");
    T_CHECK(r.valid_pct == 0 && !strcmp(r.valid_name, "val"), "quick: the official split");
    T_CHECK(recipe_preset(&r, "nope") == -1, "unknown preset");
}

static void s_args(void)
{
    char err[256];
    recipe_t r;
    T_CHECK(s_parse(&r, "--preset tta --sizes 64,96 --epochs 2,3 --lr 1e-2 --bs 32", err,
                    sizeof err) == 0, "lists parse: %s", err);
    T_CHECK(r.n_phases == 2 && r.phases[0].size == 64 && r.phases[1].size == 96 &&
                r.phases[0].epochs == 2 && r.phases[1].epochs == 3 && r.phases[0].lr == 1e-2 &&
                r.phases[1].lr == 1e-2 && r.phases[0].bs == 32 && r.phases[1].bs == 32 &&
                r.phases[1].fit == RECIPE_FINE_TUNE && r.phases[1].presize == 460,
            "one value per phase, or one for all; unset fields from the preset");
    T_CHECK(s_parse(&r, "--preset baseline --size 96 --epochs 3,4 --fit one_cycle,flat_cos", err,
                    sizeof err) == 0, "a preset grows phases: %s", err);
    T_CHECK(r.n_phases == 2 && r.phases[1].size == 96 && r.phases[1].fit == RECIPE_FLAT_COS &&
                r.phases[1].bs == 64, "new phases copy the last preset phase");
    T_CHECK(s_parse(&r, "--preset normalized --normalize computed --mixup 0.2 --label-smoothing "
                        "0.1 --tta --tta-n 8 --tta-beta 0.5 --seed 7 --valid-name valid --arch "
                        "xresnet34 --resample reference --no-eval", err, sizeof err) == 0,
            "flags parse: %s", err);
    T_CHECK(r.normalize == RECIPE_NORM_COMPUTED && fabsf(r.mixup - 0.2f) < 1e-7 && r.tta &&
                r.tta_n == 8 && r.seed == 7 && r.valid_pct == 0 &&
                !strcmp(r.valid_name, "valid") && !strcmp(r.arch, "xresnet34") && r.resample == 1,
            "flags override the preset");
    char args[256];
    recipe_loader_args(&r, args, sizeof args);
    T_CHECK(!strcmp(args, "--split folders --valid valid --seed 7"), "loader args: %s", args);
    recipe_preset(&r, "baseline");
    recipe_loader_args(&r, args, sizeof args);
    T_CHECK(!strcmp(args, "--split random --valid-pct 0.2 --seed 42"), "loader args: %s", args);

    static const char *const bad[] = {
        "--preset nope",        "--epochs 0",          "--sizes 64,96 --epochs 1,2,3",
        "--lr x",               "--arch resnet",       "--normalize maybe",
        "--valid-pct 0.2 --valid-name val",            "--mixup -1",
        "--epochs",             "--presize 16 --size 512",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        T_CHECK(s_parse(&r, bad[i], err, sizeof err) != 0 && err[0], "'%s' refused (%s)", bad[i],
                err);
    }

    recipe_t a, b;
    T_CHECK(s_parse(&a, "--preset tta --data /d --mixup 0.3 --seed 99 --dropout 0.1", err,
                    sizeof err) == 0, "parse");
    char *js = recipe_to_json(&a);
    T_CHECK(recipe_from_json(&b, js) == 0, "JSON back");
    free(js);
    T_CHECK(b.n_phases == a.n_phases && b.phases[1].fit == a.phases[1].fit &&
                b.phases[1].lr == a.phases[1].lr && b.seed == 99 && !strcmp(b.data, "/d") &&
                b.tta == a.tta && fabsf(b.mixup - 0.3f) < 1e-7 && b.valid_pct == 0.2 &&
                !strcmp(b.preset, "tta") && fabsf(b.dropout - 0.1f) < 1e-7,
            "JSON round trip");
}

static void s_tta(void)
{
    // two samples, three classes, two augmented passes (summed)
    const float plain[6] = {0.6f, 0.3f, 0.1f, 0.2f, 0.7f, 0.1f};
    const float aug[6] = {0.5f, 1.3f, 0.2f, 0.3f, 1.5f, 0.2f};  // means (.25 .65 .1), (.15 .75 .1)
    const int32_t labels[2] = {1, 1};
    double acc, loss;
    eval_tta_combine(aug, plain, labels, 2, 3, 2, 0.25, &acc, &loss);
    // sample 0: 0.75*(.25,.65,.1) + 0.25*(.6,.3,.1) = (.3375, .5625, .1): class 1 (plain said 0)
    // sample 1: 0.75*(.15,.75,.1) + 0.25*(.2,.7,.1) = (.1625, .7375, .1): class 1
    T_NEAR(acc, 1.0, 1e-12);
    T_NEAR(loss, -(log(0.5625) + log(0.7375)) / 2, 1e-6);
    eval_tta_combine(aug, plain, labels, 2, 3, 2, 1.0, &acc, &loss);
    T_NEAR(acc, 0.5, 1e-12);  // beta 1 = the plain pass alone
    T_NEAR(loss, -(log(0.3) + log(0.7)) / 2, 1e-6);
    eval_tta_combine(aug, plain, labels, 2, 3, 2, 0.0, &acc, &loss);
    T_NEAR(acc, 1.0, 1e-12);  // beta 0 = the augmented mean alone
    T_NEAR(loss, -(log(0.65) + log(0.75)) / 2, 1e-6);
}

int main(void)
{
    s_presets();
    s_args();
    s_tta();
    return t_done();
}
