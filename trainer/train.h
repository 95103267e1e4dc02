/*
 * train.h: the trainer process (`trainer train`, `trainer lr-find`).
 *
 * `trainer train` drives a recipe (trainer/recipe.h) over tensor streams from
 * the augment stage (augment/client.h): per epoch it asks for that epoch's
 * training stream, steps the learner (trainer/learner.h) through fastai's
 * schedules (one_cycle, fine_tune's two fits, flat_cos; progressive resizing
 * changes size and batch size between phases), saves and announces a
 * checkpoint at each epoch end (trainer/announce.h), receives the
 * evaluator's results and prints fastai's table as they arrive, with a live
 * progress bar on a terminal, and writes the run folder: config.json,
 * metrics.csv, metrics.jsonl, summary.json, loss/lr/mom curves, show_batch,
 * checkpoints, its log.
 *
 * `trainer lr-find` runs fastai's learning-rate range test on the same
 * streams and writes lr_find.csv, lr_find.png and the valley suggestion.
 */
#ifndef NF_TRAINER_TRAIN_H
#define NF_TRAINER_TRAIN_H

#include <stdbool.h>

// argv[1] is "train" or "lr-find". Returns the exit status (0 ok, 1 failure,
// 2 usage error, 130 interrupted).
int trainer_train_main(int argc, char **argv, bool lr_find);

#endif
