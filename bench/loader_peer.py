#!/usr/bin/env python3
"""loader_peer.py: the PyTorch DataLoader peer of `./run.sh bench loader`.

The same work as netteflow's loader workers, the way a PyTorch user writes it:
a Dataset over the sorted training files of an ImageFolder tree whose
__getitem__ opens the JPEG with PIL, converts it to RGB, takes fastai's
presize crop (random position along the long side, fastai's int() truncations)
and resizes it to S x S with Pillow's BILINEAR filter (torchvision's functional
crop + resize on PIL images), returned as an HWC uint8 tensor; a
torch.utils.data.DataLoader with num_workers worker processes, shuffle and
drop_last, batches of batch_size collated by the default collate function.
It times one epoch from the first iteration to the last batch (img_per_s, with
the workers' start) and from the first batch on (steady_img_per_s), and prints
one JSON line.

A pack folder (`loader pack`) is read through bench/nfpack.py: the same
stored JPEG bytes, opened from memory (io.BytesIO) instead of a file.

Run by the benchmark, not by CI (needs torch, torchvision, Pillow).
"""
import argparse
import io
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

EXTS = {".jpg", ".jpeg", ".jpe"}


def train_files(root, train_name):
    base = os.path.join(root, train_name)
    classes = sorted(d for d in os.listdir(base) if not d.startswith("."))
    items = []
    for ci, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(base, c))):
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in EXTS:
                items.append((os.path.join(base, c, f), ci))
    return items


def pack_train_files(pack, train_name):
    return [(p, label) for p, label, split in pack.items()
            if split == 0 and p.startswith(train_name + "/")
            and os.path.splitext(p)[1].lower() in EXTS]


class Presized(torch.utils.data.Dataset):
    def __init__(self, items, size, pack=None):
        self.items, self.size, self.pack = items, size, pack

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        src = io.BytesIO(self.pack.read(path)) if self.pack else path
        img = Image.open(src).convert("RGB")
        w, h = img.size
        s = self.size
        m = w / s if w / s < h / s else h / s
        cw = ch = int(m * s)
        x0, y0 = int(random.random() * (w - cw)), int(random.random() * (h - ch))
        img = TF.resized_crop(img, y0, x0, ch, cw, [s, s], interpolation=TF.InterpolationMode.BILINEAR)
        return torch.from_numpy(np.array(img)), label


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--train", default="train")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--presize", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-batches", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import nfpack
    if nfpack.is_pack(a.data):
        pack = nfpack.NfPack(a.data)
        ds = Presized(pack_train_files(pack, a.train), a.presize, pack)
    else:
        ds = Presized(train_files(a.data, a.train), a.presize)
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch_size, shuffle=True, drop_last=True,
                                     num_workers=a.workers, persistent_workers=False)
    images = batches = first_n = 0
    t0 = time.perf_counter()
    t_first = None
    for x, y in dl:
        assert x.shape[1:] == (a.presize, a.presize, 3) and x.dtype == torch.uint8
        if t_first is None:
            t_first, first_n = time.perf_counter(), x.shape[0]
        images += x.shape[0]
        batches += 1
        if a.max_batches and batches >= a.max_batches:
            break
    t1 = time.perf_counter()
    secs = t1 - t0
    steady = (images - first_n) / (t1 - t_first) if t1 > t_first else 0.0
    print(json.dumps({"images": images, "batches": batches, "seconds": round(secs, 3),
                      "img_per_s": round(images / secs, 1), "steady_img_per_s": round(steady, 1),
                      "first_batch_s": round(t_first - t0, 3), "workers": a.workers,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
