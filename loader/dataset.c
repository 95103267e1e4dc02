/*
 * dataset.c: see dataset.h. Folder walk, sort, split, vocabulary.
 */
#include "dataset.h"

#include "check.h"
#include "log.h"
#include "pack.h"
#include "rng.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct loader_dataset_t {
    char *root;
    loader_split_mode_t mode;
    loader_item_t *items;  // (n_items) sorted by path
    uint32_t n_items;
    char **classes;        // (n_classes) sorted
    uint32_t n_classes;
    uint32_t *split[2];    // item indices per split, ascending
    uint32_t n_split[2];
};

// Python 3.11 mimetypes.types_map entries whose type starts with image/ (no
// /etc/mime.types), as fastai's image_extensions.
static const char *const s_image_ext[] = {
    "avif", "bmp", "gif", "heic", "heif", "ico", "ief", "jpe", "jpeg", "jpg", "pbm", "pgm",
    "png",  "pnm", "ppm", "ras",  "rgb",  "svg", "tif", "tiff", "xbm", "xpm", "xwd",
};

bool loader_dataset_is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return false;
    for (size_t i = 0; i < NF_ARRAY_LEN(s_image_ext); i++)
        if (strcasecmp(dot + 1, s_image_ext[i]) == 0) return true;
    return false;
}

// ---------------------------------------------------------------------------
// folder walk

typedef struct {
    char **paths;  // relative to the walk's base, malloc'ed
    size_t n, cap;
} s_list_t;

typedef struct {
    dev_t dev;
    ino_t ino;
} s_dirid_t;

static void s_list_push(s_list_t *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->paths = nf_xrealloc(l->paths, l->cap * sizeof *l->paths);
    }
    l->paths[l->n++] = s;
}

static void s_list_free(s_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
    memset(l, 0, sizeof *l);
}

static char *s_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = nf_xmalloc(la + lb + 2);
    memcpy(s, a, la);
    size_t k = la;
    if (la && a[la - 1] != '/') s[k++] = '/';
    memcpy(s + k, b, lb + 1);
    return s;
}

enum { S_MAX_DEPTH = 64 };

// Walks root/rel recursively; appends image files (paths relative to root).
// ancestors guards against symlink loops.
static void s_walk(const char *root, const char *rel, s_dirid_t *ancestors, int depth,
                   s_list_t *out)
{
    char *dir = rel[0] ? s_join(root, rel) : nf_xstrdup(root);
    struct stat st;
    if (stat(dir, &st) != 0) {
        nf_log_warn("cannot stat %s: %s (skipped)", dir, strerror(errno));
        free(dir);
        return;
    }
    for (int i = 0; i < depth; i++) {
        if (ancestors[i].dev == st.st_dev && ancestors[i].ino == st.st_ino) {
            nf_log_warn("symlink loop at %s (skipped)", dir);
            free(dir);
            return;
        }
    }
    if (depth >= S_MAX_DEPTH) {
        nf_log_warn("folders nested deeper than %d at %s (skipped)", S_MAX_DEPTH, dir);
        free(dir);
        return;
    }
    ancestors[depth].dev = st.st_dev;
    ancestors[depth].ino = st.st_ino;
    DIR *d = opendir(dir);
    if (!d) {
        nf_log_warn("cannot open folder %s: %s (skipped)", dir, strerror(errno));
        free(dir);
        return;
    }
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno) nf_log_warn("reading folder %s: %s", dir, strerror(errno));
            break;
        }
        if (e->d_name[0] == '.') continue;  // ".", "..", and hidden names
        char *child_rel = rel[0] ? s_join(rel, e->d_name) : nf_xstrdup(e->d_name);
        char *child = s_join(root, child_rel);
        struct stat cst;
        if (stat(child, &cst) != 0) {
            nf_log_warn("cannot stat %s: %s (skipped)", child, strerror(errno));
            free(child_rel);
        } else if (S_ISDIR(cst.st_mode)) {
            s_walk(root, child_rel, ancestors, depth + 1, out);
            free(child_rel);
        } else if (S_ISREG(cst.st_mode) && loader_dataset_is_image_name(e->d_name)) {
            s_list_push(out, child_rel);
        } else {
            free(child_rel);
        }
        free(child);
    }
    if (closedir(d) != 0) nf_log_warn("closedir %s: %s", dir, strerror(errno));
    free(dir);
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool s_is_dir(const char *root, const char *name)
{
    char *p = s_join(root, name);
    struct stat st;
    bool ok = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    return ok;
}

// The parent folder's name of a relative path ("" when there is none), in buf.
static const char *s_parent_name(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return "";
    const char *start = slash;
    while (start > path && start[-1] != '/') start--;
    size_t n = (size_t)(slash - start);
    if (n >= len) n = len - 1;
    memcpy(buf, start, n);
    buf[n] = 0;
    return buf;
}

// The first path component, in buf.
static const char *s_top_name(const char *path, char *buf, size_t len)
{
    const char *slash = strchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= len) n = len - 1;
    memcpy(buf, path, n);
    buf[n] = 0;
    return buf;
}

static void s_err(char *err, size_t len, const char *fmt, ...) NF_PRINTF(3, 4);
static void s_err(char *err, size_t len, const char *fmt, ...)
{
    if (!err || !len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static int s_class_index(char *const *classes, uint32_t n, const char *name)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(classes[mid], name);
        if (c == 0) return (int)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

// True when some path of the pack lies under the top-level folder `name`.
static bool s_pack_has_folder(const loader_pack_t *pack, const char *name)
{
    char top[256];
    for (uint32_t i = 0; i < loader_pack_n_items(pack); i++)
        if (strcmp(s_top_name(loader_pack_path(pack, i), top, sizeof top), name) == 0) return true;
    return false;
}

// ---------------------------------------------------------------------------
// public API

loader_dataset_t *loader_dataset_new(const loader_dataset_config_t *cfg, char *err,
                                     size_t err_len)
{
    NF_CHECK(cfg && cfg->root, "dataset root not given");
    const char *train_name = cfg->train_name ? cfg->train_name : "train";
    const char *valid_name = cfg->valid_name ? cfg->valid_name : "val";
    double valid_pct = cfg->valid_pct > 0 ? cfg->valid_pct : 0.2;
    struct stat st;
    errno = 0;
    if (stat(cfg->root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        s_err(err, err_len, "dataset folder %s: %s", cfg->root,
              errno ? strerror(errno) : "not a folder");
        return NULL;
    }
    if (valid_pct >= 1.0) {
        s_err(err, err_len, "valid_pct %.3f must be below 1", valid_pct);
        return NULL;
    }
    // a pack (loader/pack.h) lists its files in its index: the same paths, so
    // the same items, labels and splits as the folder it was made from
    loader_pack_t *pack = NULL;
    if (loader_pack_exists(cfg->root) && !(pack = loader_pack_open(cfg->root, err, err_len)))
        return NULL;
    loader_split_mode_t mode = cfg->mode;
    bool have_folders = pack ? s_pack_has_folder(pack, train_name) &&
                                   s_pack_has_folder(pack, valid_name)
                             : s_is_dir(cfg->root, train_name) && s_is_dir(cfg->root, valid_name);
    if (mode == LOADER_SPLIT_AUTO) mode = have_folders ? LOADER_SPLIT_FOLDERS : LOADER_SPLIT_RANDOM;
    if (mode == LOADER_SPLIT_FOLDERS && !have_folders) {
        s_err(err, err_len, "dataset folder %s has no %s/ and %s/ folders", cfg->root, train_name,
              valid_name);
        loader_pack_close(&pack);
        return NULL;
    }

    s_list_t files = {0};
    s_dirid_t ancestors[S_MAX_DEPTH + 1];
    if (pack) {
        for (uint32_t i = 0; i < loader_pack_n_items(pack); i++) {
            const char *path = loader_pack_path(pack, i);
            char top[256];
            s_top_name(path, top, sizeof top);
            if (mode != LOADER_SPLIT_FOLDERS || !strcmp(top, train_name) || !strcmp(top, valid_name))
                s_list_push(&files, nf_xstrdup(path));
        }
        loader_pack_close(&pack);
    } else if (mode == LOADER_SPLIT_FOLDERS) {
        s_walk(cfg->root, train_name, ancestors, 0, &files);
        s_walk(cfg->root, valid_name, ancestors, 0, &files);
    } else {
        s_walk(cfg->root, "", ancestors, 0, &files);
    }
    if (files.n == 0) {
        s_err(err, err_len, "no image files under %s", cfg->root);
        s_list_free(&files);
        return NULL;
    }
    NF_CHECK(files.n < UINT32_MAX, "too many files");
    qsort(files.paths, files.n, sizeof *files.paths, s_cmp_str);

    // split of each sorted file
    uint32_t n = (uint32_t)files.n;
    uint8_t *split = nf_xcalloc(n, 1);
    char top[256], parent[256];
    if (mode == LOADER_SPLIT_FOLDERS) {
        for (uint32_t i = 0; i < n; i++)
            split[i] = strcmp(s_top_name(files.paths[i], top, sizeof top), valid_name) == 0;
    } else {
        // seeded Fisher-Yates permutation; the first int(valid_pct*n) are validation
        uint32_t *perm = nf_xmalloc(n * sizeof *perm);
        for (uint32_t i = 0; i < n; i++) perm[i] = i;
        nf_rng_t r = nf_rng_make(cfg->seed, NF_RNG_STREAM_SPLIT, 0, 0);
        for (uint32_t i = n - 1; i > 0; i--) {
            uint32_t j = nf_rng_below(&r, i + 1);
            uint32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        uint32_t n_valid = (uint32_t)(valid_pct * (double)n);
        for (uint32_t i = 0; i < n_valid; i++) split[perm[i]] = LOADER_VALID;
        free(perm);
    }

    // vocabulary: sorted unique parent names of training files
    char **names = nf_xmalloc(n * sizeof *names);
    uint32_t n_names = 0;
    for (uint32_t i = 0; i < n; i++)
        if (split[i] == LOADER_TRAIN)
            names[n_names++] = nf_xstrdup(s_parent_name(files.paths[i], parent, sizeof parent));
    if (n_names == 0) {
        s_err(err, err_len, "no training images under %s", cfg->root);
        free(names);
        free(split);
        s_list_free(&files);
        return NULL;
    }
    qsort(names, n_names, sizeof *names, s_cmp_str);
    uint32_t n_classes = 0;
    for (uint32_t i = 0; i < n_names; i++) {
        if (n_classes && strcmp(names[n_classes - 1], names[i]) == 0) {
            free(names[i]);
            continue;
        }
        names[n_classes++] = names[i];
    }

    loader_dataset_t *self = nf_xcalloc(1, sizeof *self);
    self->root = nf_xstrdup(cfg->root);
    self->mode = mode;
    self->classes = names;
    self->n_classes = n_classes;
    self->items = nf_xmalloc(n * sizeof *self->items);
    uint32_t dropped = 0;
    for (uint32_t i = 0; i < n; i++) {
        int label = s_class_index(names, n_classes,
                                  s_parent_name(files.paths[i], parent, sizeof parent));
        if (label < 0) {
            if (dropped++ < 5)
                nf_log_warn("%s: class '%s' has no training images (left out)", files.paths[i],
                            parent);
            free(files.paths[i]);
            continue;
        }
        loader_item_t *it = &self->items[self->n_items++];
        it->path = files.paths[i];
        it->label = label;
        it->split = split[i];
    }
    if (dropped) nf_log_warn("%u validation files left out: their class has no training images", dropped);
    free(files.paths);
    free(split);
    for (int s = 0; s < 2; s++) self->split[s] = nf_xmalloc((self->n_items + 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < self->n_items; i++) {
        int s = self->items[i].split;
        self->split[s][self->n_split[s]++] = i;
    }
    return self;
}

void loader_dataset_destroy(loader_dataset_t **self_p)
{
    if (!self_p || !*self_p) return;
    loader_dataset_t *self = *self_p;
    for (uint32_t i = 0; i < self->n_items; i++) free((char *)self->items[i].path);
    for (uint32_t i = 0; i < self->n_classes; i++) free(self->classes[i]);
    free(self->items);
    free(self->classes);
    free(self->split[0]);
    free(self->split[1]);
    free(self->root);
    free(self);
    *self_p = NULL;
}

const char *loader_dataset_root(const loader_dataset_t *self) { return self->root; }
loader_split_mode_t loader_dataset_mode(const loader_dataset_t *self) { return self->mode; }
uint32_t loader_dataset_n_items(const loader_dataset_t *self) { return self->n_items; }
uint32_t loader_dataset_n_classes(const loader_dataset_t *self) { return self->n_classes; }

const loader_item_t *loader_dataset_item(const loader_dataset_t *self, uint32_t index)
{
    NF_CHECK(index < self->n_items, "item %u of %u", index, self->n_items);
    return &self->items[index];
}

const char *loader_dataset_class_name(const loader_dataset_t *self, uint32_t label)
{
    NF_CHECK(label < self->n_classes, "class %u of %u", label, self->n_classes);
    return self->classes[label];
}

const uint32_t *loader_dataset_split(const loader_dataset_t *self, int split, uint32_t *n)
{
    NF_CHECK(split == LOADER_TRAIN || split == LOADER_VALID, "split %d", split);
    *n = self->n_split[split];
    return self->split[split];
}
