/*
 * pack.h: a dataset packed into a few large shard files (`loader pack`), and
 * reading samples from it.
 *
 * Why: a dataset of thousands of small JPEGs is slow to open file by file
 * and awkward to carry to another machine; a pack is a handful of files. It
 * can also store the images pre-sized (shorter side = `size`, re-encoded as
 * JPEG), which makes it smaller and makes decoding cheaper (fastai's
 * imagenette2-160 is such a copy of Imagenette).
 *
 * Layout of a pack folder:
 *   nfpack.idx         the index (below), written last: its presence marks a
 *                      complete pack
 *   shard-00000.nfs    the samples' bytes, one after another, in index order
 *   shard-00001.nfs    ...
 * Index (little-endian):
 *   "NFPACK01", u32 version (1), u32 size (0 = files stored unchanged),
 *   u32 quality, u32 n_classes, u32 n_items, u32 n_shards,
 *   n_classes x (u16 length, name bytes)        the source's vocabulary
 *   n_shards x u64 bytes                        each shard's size
 *   n_items x (u16 length, relative path bytes, i32 label, u8 split,
 *              u32 shard, u64 offset, u32 bytes, u32 crc32 of the bytes)
 *   u32 crc32 of everything before it
 * Items are sorted by path (bytewise), as the dataset index sorts files;
 * paths are the source's, relative to its root (e.g. train/n01440764/x.JPEG),
 * so a packed copy yields exactly the folder's dataset index (same sample
 * indices, labels and splits) and tasks keep naming samples by path.
 *
 * Reading: loader_pack_open checks the index checksum, every field, every
 * path (relative, no "..") and every item's range against its shard's size,
 * then maps the shards; loader_pack_read hands out a pointer into the
 * mapping after checking the item's crc32 (a damaged sample is a bad file
 * of reason `io`, never a crash). loader_sample_read reads a sample of a
 * dataset root that is either a folder or a pack.
 */
#ifndef LOADER_PACK_H
#define LOADER_PACK_H

#include "decode.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOADER_PACK_INDEX "nfpack.idx"

typedef struct loader_pack_t loader_pack_t;

// ---------------------------------------------------------------------------
// writing

typedef struct {
    const char *src;                      // dataset folder to pack
    const char *train_name, *valid_name;  // split folders (NULL: train, val)
    const char *out;                      // the pack folder (must not exist or be empty)
    uint32_t size;         // shorter side of stored images; 0 = store the files unchanged
    int quality;           // JPEG quality of re-encoded images (0: 90)
    uint64_t shard_bytes;  // a shard is closed once it holds this much (0: 64 MiB)
    int threads;           // decode/encode threads (0: OpenMP's default)
} loader_pack_config_t;

typedef struct {
    uint32_t items, shards;
    uint32_t reencoded;  // decoded, resized, encoded again
    uint32_t copied;     // stored unchanged (size 0, already small, or not decodable)
    uint64_t bytes_in, bytes_out;
    double seconds;
} loader_pack_stats_t;

// Writes the pack. Returns 0, or -1 with a one-line reason in err (missing
// source, no images, output folder not empty, disk full, ...); a failed
// write leaves no index behind.
int loader_pack_write(const loader_pack_config_t *cfg, loader_pack_stats_t *stats, char *err,
                      size_t errlen);

// ---------------------------------------------------------------------------
// reading

// True when dir holds a pack index.
bool loader_pack_exists(const char *dir);
// Opens a pack. NULL with a one-line reason in err.
loader_pack_t *loader_pack_open(const char *dir, char *err, size_t errlen);
void loader_pack_close(loader_pack_t **self_p);

uint32_t loader_pack_n_items(const loader_pack_t *p);
const char *loader_pack_path(const loader_pack_t *p, uint32_t i);  // sorted
int32_t loader_pack_label(const loader_pack_t *p, uint32_t i);
int loader_pack_split(const loader_pack_t *p, uint32_t i);  // LOADER_TRAIN / LOADER_VALID
uint32_t loader_pack_n_classes(const loader_pack_t *p);
const char *loader_pack_class(const loader_pack_t *p, uint32_t label);
uint32_t loader_pack_image_size(const loader_pack_t *p);  // 0 = unchanged files

// The bytes of sample `rel` (a path of the pack): *data points into the
// mapped shard (valid until close). Returns the length, or -1 with *bad = IO
// and the reason (no such sample, checksum mismatch).
long loader_pack_read(const loader_pack_t *p, const char *rel, const uint8_t **data,
                      loader_bad_t *bad, char *detail, size_t detail_len);

// A sample of a dataset root: from `pack` when it is not NULL, else the file
// root/rel read into *buf (grown as needed). *data gets the bytes. Returns
// the length or -1 as loader_read_file / loader_pack_read.
long loader_sample_read(const loader_pack_t *pack, const char *root, const char *rel,
                        uint8_t **buf, size_t *cap, const uint8_t **data, loader_bad_t *bad,
                        char *detail, size_t detail_len);

#endif
