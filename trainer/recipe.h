/*
 * recipe.h: a training run's whole configuration: the data, the model, the
 * phases of the schedule (progressive resizing: each phase its own fit,
 * epochs, lr, size, batch size and presize), Normalize, Mixup, label
 * smoothing, TTA, seed and devices; the chapter's presets; command-line
 * parsing; JSON for the run folder and checkpoints.
 *
 * Presets (fastai-spec.md 11-12; the chapter's code, one command each):
 *   baseline         xresnet50, fit_one_cycle(5, 3e-3) at 224 (bs 64), no Normalize
 *   normalized       the same with Normalize(imagenet_stats)
 *   progressive      fit_one_cycle(4, 3e-3) at 128 (bs 128), then fine_tune(5, 1e-3) at 224 (bs 64)
 *   tta              progressive, then TTA (n 4, beta 0.25)
 *   mixup            normalized + MixUp(0.4)
 *   label-smoothing  normalized + LabelSmoothingCrossEntropy(0.1)
 *   quick            a CPU-sized run of the chapter's recipe (xresnet18, progressive
 *                    64 -> 112 px) on the official split, within 15 minutes on 2 cores
 *   tiny             a smoke run (a few minutes of CPU) for generated data
 * The chapter's presets use its split (RandomSplitter(valid_pct=0.2), seeded);
 * quick and tiny use the folders (train / val). Every value can be overridden
 * on the command line (recipe_parse_args); lists such as `--sizes 128,224
 * --epochs 4,5` define one phase per entry.
 *
 * What it does not do: run anything (trainer_train.c does).
 */
#ifndef NF_RECIPE_H
#define NF_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECIPE_MAX_PHASES 8
#define RECIPE_PATH 1024

typedef enum { RECIPE_ONE_CYCLE = 0, RECIPE_FINE_TUNE = 1, RECIPE_FLAT_COS = 2 } recipe_fit_t;
typedef enum { RECIPE_NORM_IMAGENET = 0, RECIPE_NORM_NONE = 1, RECIPE_NORM_COMPUTED = 2 } recipe_norm_t;

typedef struct {
    recipe_fit_t fit;
    int epochs;    // fine_tune: the unfrozen epochs (plus one frozen epoch)
    double lr;     // lr_max / base_lr as fastai's fit functions take it
    int size;      // model input side
    int bs;        // batch size
    int presize;   // loader Resize (presizing) side
} recipe_phase_t;

typedef struct {
    char preset[32];
    char arch[16];
    recipe_phase_t phases[RECIPE_MAX_PHASES];
    int n_phases;
    recipe_norm_t normalize;
    float mixup;           // Mixup alpha (0 = off)
    float ls_eps;          // label smoothing (0 = cross-entropy)
    float min_scale;       // aug_transforms min_scale
    float dropout;         // head dropout
    int resample;          // augment_resample_t: 0 fused, 1 reference
    bool tta;
    int tta_n;             // augmented passes (4)
    float tta_beta;        // weight of the plain pass (0.25)
    uint64_t seed;
    // data
    char data[RECIPE_PATH];
    char valid_name[64];   // folder split: the validation folder ("val")
    double valid_pct;      // > 0: random split (the chapter's 0.2); 0: folders
    // execution
    char device[8];        // "auto" | "cpu" | "cuda"
    int workers;           // loader workers (run.sh); 0 = one per core
    int threads;           // trainer CPU threads; 0 = OpenMP's default
} recipe_t;

// The defaults every preset starts from (the chapter's progressive recipe).
void recipe_defaults(recipe_t *r);
// Applies a preset by name. Returns 0, or -1 for an unknown name.
int recipe_preset(recipe_t *r, const char *name);
// Names of the presets, NULL-terminated.
const char *const *recipe_preset_names(void);

// Parses command-line options into r: --preset first (wherever it is), then
// the others over it. Options it does not know are left for the caller: they
// are collected in rest[] (pointers into argv; *n_rest). Returns 0, or -1
// with a one-line reason in err.
int recipe_parse_args(recipe_t *r, int argc, char **argv, char **rest, int *n_rest, char *err,
                      size_t errlen);
// The same over an existing recipe (no preset applied; --preset is skipped):
// what a resumed run uses to see whether explicit options change the
// checkpoint's recipe.
int recipe_apply_args(recipe_t *r, int argc, char **argv, char **rest, int *n_rest, char *err,
                      size_t errlen);
// The options recipe_parse_args understands, for --help texts.
const char *recipe_help(void);

// Checks the whole recipe (ranges, phase consistency). 0 or -1 with a reason.
int recipe_check(const recipe_t *r, char *err, size_t errlen);

// Total epochs (fine_tune counts its frozen epoch) and number of fits
// (tables; fine_tune is two).
int recipe_total_epochs(const recipe_t *r);
int recipe_total_fits(const recipe_t *r);

// The recipe as a JSON object (malloc'ed string; the caller frees).
char *recipe_to_json(const recipe_t *r);
// Reads back what recipe_to_json wrote (for eval and predict). 0 or -1.
int recipe_from_json(recipe_t *r, const char *json);

// The loader coordinator's split options for this recipe, e.g. "--split
// random --valid-pct 0.2 --seed 42" (one line, no newline).
void recipe_loader_args(const recipe_t *r, char *buf, size_t len);

// Names: "one_cycle" | "fine_tune" | "flat_cos"; "imagenet" | "none" | "computed".
const char *recipe_fit_name(recipe_fit_t f);
const char *recipe_norm_name(recipe_norm_t n);

#endif
