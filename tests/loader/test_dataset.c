/*
 * test_dataset.c: the dataset index. On a generated tree: extensions (case),
 * hidden files and folders, sorting, labels, the folder split, the random
 * valid_pct split (seeded, count int(pct*N)), and one-line user errors. On
 * Imagenette: 9,469 / 3,925 items, 10 sorted classes with the per-class counts
 * of fastai-spec.md §1.1, and the chapter's random split (2,678 valid).
 */
#include "dataset.h"
#include "fsutil.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_touch(const char *root, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    NF_CHECK(nf_mkdir_p(dir) == 0, "mkdir %s", dir);
    FILE *f = fopen(path, "wb");
    NF_CHECK(f != NULL, "open %s", path);
    fputs("x", f);
    NF_CHECK(fclose(f) == 0, "close");
}

static void test_generated_tree(void)
{
    char root[512];
    snprintf(root, sizeof root, "%s/ds", t_tmpdir());
    s_touch(root, "train/dog/b.JPEG");
    s_touch(root, "train/dog/a.jpg");
    s_touch(root, "train/cat/c.PNG");       // listed (an image extension), bad at decode time
    s_touch(root, "train/cat/notes.txt");   // not an image
    s_touch(root, "train/cat/.hidden.jpg");  // hidden file
    s_touch(root, "train/.cache/x.jpg");     // hidden folder
    s_touch(root, "train/cat/noext");
    s_touch(root, "val/dog/v1.jpeg");
    s_touch(root, "val/bird/v2.jpeg");       // class absent from train: left out
    s_touch(root, "other/zebra/o.jpg");      // neither split folder

    char err[256] = "";
    loader_dataset_config_t cfg = {.root = root};
    loader_dataset_t *ds = loader_dataset_new(&cfg, err, sizeof err);
    T_CHECK(ds != NULL, "folders split: %s", err);
    if (!ds) return;
    T_CHECK(loader_dataset_mode(ds) == LOADER_SPLIT_FOLDERS, "auto picks folders");
    T_CHECK(loader_dataset_n_items(ds) == 4, "4 items, got %u", loader_dataset_n_items(ds));
    T_CHECK(loader_dataset_n_classes(ds) == 2, "classes %u", loader_dataset_n_classes(ds));
    T_CHECK(strcmp(loader_dataset_class_name(ds, 0), "cat") == 0, "vocab sorted");
    T_CHECK(strcmp(loader_dataset_class_name(ds, 1), "dog") == 0, "vocab sorted");
    const char *want[4] = {"train/cat/c.PNG", "train/dog/a.jpg", "train/dog/b.JPEG", "val/dog/v1.jpeg"};
    int want_label[4] = {0, 1, 1, 1}, want_split[4] = {0, 0, 0, 1};
    for (uint32_t i = 0; i < 4 && i < loader_dataset_n_items(ds); i++) {
        const loader_item_t *it = loader_dataset_item(ds, i);
        T_CHECK(strcmp(it->path, want[i]) == 0, "item %u: %s != %s", i, it->path, want[i]);
        T_CHECK(it->label == want_label[i] && it->split == want_split[i], "item %u label/split", i);
    }
    uint32_t nt, nv;
    loader_dataset_split(ds, LOADER_TRAIN, &nt);
    const uint32_t *v = loader_dataset_split(ds, LOADER_VALID, &nv);
    T_CHECK(nt == 3 && nv == 1 && v[0] == 3, "split sizes %u/%u", nt, nv);
    loader_dataset_destroy(&ds);
    T_CHECK(ds == NULL, "destroy nulls");
    loader_dataset_destroy(&ds);

    // random split over everything under root (6 images: train/, val/ and other/)
    cfg.mode = LOADER_SPLIT_RANDOM;
    cfg.valid_pct = 0.34;
    cfg.seed = 7;
    ds = loader_dataset_new(&cfg, err, sizeof err);
    T_CHECK(ds != NULL, "random split: %s", err);
    if (ds) {
        uint32_t total = loader_dataset_n_items(ds);
        loader_dataset_split(ds, LOADER_VALID, &nv);
        loader_dataset_split(ds, LOADER_TRAIN, &nt);
        // 6 images; int(0.34*6) = 2 valid; valid items of a class absent from train are left out
        T_CHECK(nv <= 2 && nt == 4 && total == nt + nv, "random split %u/%u of %u", nt, nv, total);
        loader_dataset_destroy(&ds);
    }

    // user errors are one line, never a crash
    cfg.mode = LOADER_SPLIT_FOLDERS;
    cfg.valid_name = "valid";
    ds = loader_dataset_new(&cfg, err, sizeof err);
    T_CHECK(ds == NULL && strstr(err, "valid/"), "missing valid folder: %s", err);
    cfg.root = "/nonexistent/netteflow";
    cfg.mode = LOADER_SPLIT_AUTO;
    ds = loader_dataset_new(&cfg, err, sizeof err);
    T_CHECK(ds == NULL && strstr(err, "/nonexistent/netteflow"), "missing root: %s", err);
    char empty[512];
    snprintf(empty, sizeof empty, "%s/empty", t_tmpdir());
    NF_CHECK(nf_mkdir_p(empty) == 0, "mkdir");
    cfg.root = empty;
    ds = loader_dataset_new(&cfg, err, sizeof err);
    T_CHECK(ds == NULL && strstr(err, "no image files"), "empty root: %s", err);
}

static void test_extensions(void)
{
    T_CHECK(loader_dataset_is_image_name("a.JPEG"), "JPEG");
    T_CHECK(loader_dataset_is_image_name("a.b.Jpg"), "Jpg");
    T_CHECK(loader_dataset_is_image_name("x.tiff"), "tiff");
    T_CHECK(!loader_dataset_is_image_name("a.jpeg.txt"), "txt");
    T_CHECK(!loader_dataset_is_image_name("jpeg"), "no dot");
    T_CHECK(!loader_dataset_is_image_name("a.webp"), "webp is not in Python 3.11's list");
}

static void test_imagenette(void)
{
    const char *data = getenv("NF_DATA_DIR");
    char train[1024];
    snprintf(train, sizeof train, "%s/train", data ? data : "");
    if (!data || !nf_is_dir(train)) {
        fprintf(stderr, "SKIP (part): Imagenette not found at %s\n", data ? data : "(unset)");
        return;
    }
    char err[256];
    loader_dataset_config_t cfg = {.root = data};
    loader_dataset_t *ds = loader_dataset_new(&cfg, err, sizeof err);
    T_CHECK(ds != NULL, "%s", err);
    if (!ds) return;
    uint32_t nt, nv;
    const uint32_t *tr = loader_dataset_split(ds, LOADER_TRAIN, &nt);
    loader_dataset_split(ds, LOADER_VALID, &nv);
    T_CHECK(nt == 9469 && nv == 3925, "train %u valid %u", nt, nv);
    T_CHECK(loader_dataset_n_classes(ds) == 10, "classes %u", loader_dataset_n_classes(ds));
    static const char *wnids[10] = {"n01440764", "n02102040", "n02979186", "n03000684",
                                    "n03028079", "n03394916", "n03417042", "n03425413",
                                    "n03445777", "n03888257"};
    static const uint32_t train_counts[10] = {963, 955, 993, 858, 941, 956, 961, 931, 951, 960};
    uint32_t counts[10] = {0};
    for (uint32_t i = 0; i < nt; i++) counts[loader_dataset_item(ds, tr[i])->label]++;
    for (int c = 0; c < 10; c++) {
        T_CHECK(strcmp(loader_dataset_class_name(ds, (uint32_t)c), wnids[c]) == 0, "class %d", c);
        T_CHECK(counts[c] == train_counts[c], "class %d: %u train items, want %u", c, counts[c],
                train_counts[c]);
    }
    loader_dataset_destroy(&ds);

    // the chapter's DataBlock: RandomSplitter(valid_pct=0.2) over train+val
    cfg.mode = LOADER_SPLIT_RANDOM;
    cfg.seed = 42;
    ds = loader_dataset_new(&cfg, err, sizeof err);
    T_CHECK(ds != NULL, "%s", err);
    if (!ds) return;
    loader_dataset_split(ds, LOADER_TRAIN, &nt);
    const uint32_t *va = loader_dataset_split(ds, LOADER_VALID, &nv);
    T_CHECK(nt == 10716 && nv == 2678, "random split %u / %u", nt, nv);
    uint32_t first_valid = va[0];
    loader_dataset_destroy(&ds);
    cfg.seed = 43;
    ds = loader_dataset_new(&cfg, err, sizeof err);
    va = loader_dataset_split(ds, LOADER_VALID, &nv);
    T_CHECK(nv == 2678, "same count with another seed");
    bool differs = va[0] != first_valid;
    T_CHECK(differs, "another seed gives another split");
    loader_dataset_destroy(&ds);
}

int main(void)
{
    test_extensions();
    test_generated_tree();
    test_imagenette();
    return t_done();
}
