/*
 * rel_tool.c: the reliability harness's pieces for shell scripts (the network
 * namespace test and the long run), not part of the product.
 *
 *   rel_tool dataset DIR [--classes N] [--train N] [--valid N] [--min-side N]
 *                        [--max-side N] [--bad]
 *       an ImageFolder dataset of generated JPEGs (DIR/train/cK, DIR/val/cK),
 *       sides drawn in [min, max]; --bad adds one file of every bad kind to
 *       DIR/val/c0 (6 bad, 2 decoded with warnings).
 *   rel_tool account --data DIR --log FILE [--split valid|train]
 *                    [--batch-size N] [--epochs N] [--bad N]
 *       checks a `loader consume --log` file exactly (relharness.h): every
 *       epoch complete, every sample once, none lost, bad files exactly N per
 *       epoch; prints `REL {json}` with the figures; exit 0 when all hold.
 */
#include "fsutil.h"
#include "jpegfix.h"
#include "log.h"
#include "relharness.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_usage(void)
{
    fprintf(stderr, "usage: rel_tool dataset DIR [--classes N] [--train N] [--valid N] "
                    "[--min-side N] [--max-side N] [--bad]\n"
                    "       rel_tool account --data DIR --log FILE [--split valid|train] "
                    "[--batch-size N] [--epochs N] [--bad N]\n");
    return 2;
}

static int s_dataset(int argc, char **argv)
{
    if (argc < 1) return s_usage();
    const char *root = argv[0];
    uint32_t classes = 4, train = 10, valid = 50, lo = 64, hi = 214;
    bool bad = false;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(argv[i], "--classes")) classes = (uint32_t)atoi(v), i++;
        else if (!strcmp(argv[i], "--train")) train = (uint32_t)atoi(v), i++;
        else if (!strcmp(argv[i], "--valid")) valid = (uint32_t)atoi(v), i++;
        else if (!strcmp(argv[i], "--min-side")) lo = (uint32_t)atoi(v), i++;
        else if (!strcmp(argv[i], "--max-side")) hi = (uint32_t)atoi(v), i++;
        else if (!strcmp(argv[i], "--bad")) bad = true;
        else return s_usage();
    }
    if (!classes || lo < 8 || hi < lo) return s_usage();
    char path[2048];
    uint32_t seed = 0;
    for (int split = 0; split < 2; split++)
        for (uint32_t c = 0; c < classes; c++)
            for (uint32_t i = 0; i < (split ? valid : train); i++) {
                seed++;
                uint32_t w = lo + (seed * 37) % (hi - lo + 1), h = lo + (seed * 53) % (hi - lo + 1);
                snprintf(path, sizeof path, "%s/%s/c%u/%04u.jpg", root, split ? "val" : "train", c, i);
                jf_write_good(path, w, h, seed, seed % 7 == 3 ? JF_GRAY : JF_RGB);
            }
    for (int k = 0; bad && k < JF_BAD_N; k++) {
        snprintf(path, sizeof path, "%s/val/c0/bad%d.jpg", root, k);
        jf_write_bad(path, (jf_bad_t)k);
    }
    printf("%s: %u classes, %u train + %u valid per class%s\n", root, classes, train, valid,
           bad ? ", bad files in val/c0" : "");
    return 0;
}

static int s_account(int argc, char **argv)
{
    const char *data = NULL, *log = NULL;
    int split = LOADER_VALID;
    uint32_t batch = 64, epochs = 1, bad = 0;
    for (int i = 0; i + 1 < argc; i += 2) {
        const char *v = argv[i + 1];
        if (!strcmp(argv[i], "--data")) data = v;
        else if (!strcmp(argv[i], "--log")) log = v;
        else if (!strcmp(argv[i], "--split")) split = strcmp(v, "train") ? LOADER_VALID : LOADER_TRAIN;
        else if (!strcmp(argv[i], "--batch-size")) batch = (uint32_t)atoi(v);
        else if (!strcmp(argv[i], "--epochs")) epochs = (uint32_t)atoi(v);
        else if (!strcmp(argv[i], "--bad")) bad = (uint32_t)atoi(v);
        else return s_usage();
    }
    if (!data || !log) return s_usage();
    char err[512];
    loader_dataset_config_t dc = {.root = data, .mode = LOADER_SPLIT_FOLDERS};
    loader_dataset_t *ds = loader_dataset_new(&dc, err, sizeof err);
    if (!ds) {
        fprintf(stderr, "rel_tool: %s\n", err);
        return 2;
    }
    rh_account_t a;
    if (rh_account_read(log, ds, split, split == LOADER_VALID, batch, &a) != 0) {
        fprintf(stderr, "rel_tool: cannot read the delivery log %s\n", log);
        loader_dataset_destroy(&ds);
        return 1;
    }
    rh_account_check(&a, epochs, bad, NULL, log);
    uint64_t delivered, lost, dup, nbad, dropped = 0, reissued = 0;
    rh_account_totals(&a, &delivered, &lost, &dup, &nbad);
    for (uint32_t k = 0; k < a.n_epochs; k++) {
        dropped += a.e[k].duplicates_dropped;
        reissued += a.e[k].reissued;
    }
    printf("REL {\"epochs\": %u, \"samples_delivered\": %llu, \"lost\": %llu, \"duplicated\": %llu, "
           "\"bad_files\": %llu, \"late_duplicates_dropped\": %llu, \"tasks_reissued\": %llu}\n",
           a.n_epochs, (unsigned long long)delivered, (unsigned long long)lost,
           (unsigned long long)dup, (unsigned long long)nbad, (unsigned long long)dropped,
           (unsigned long long)reissued);
    rh_account_free(&a);
    loader_dataset_destroy(&ds);
    return t_done();
}

int main(int argc, char **argv)
{
    nf_log_init(&(nf_log_config_t){.stage = "rel_tool", .level = NF_LOG_WARN});
    if (argc < 2) return s_usage();
    if (!strcmp(argv[1], "dataset")) return s_dataset(argc - 2, argv + 2);
    if (!strcmp(argv[1], "account")) return s_account(argc - 2, argv + 2);
    return s_usage();
}
