#!/usr/bin/env python3
"""augment_peer.py: the torchvision.transforms.v2 peer of `./run.sh bench augment`.

Comparable work to the augment stage's train transform, on a uint8 batch of real
Imagenette images already presized (centre square, PIL bilinear) to --presize,
applied per image (so every image gets its own random parameters, as ours):
RandomResizedCrop(size, scale=(min_scale, 1), ratio=(1, 1)), RandomHorizontalFlip,
RandomAffine(degrees=10, scale=(1, 1.1)) with p=0.75, RandomPerspective(0.2, p=0.75),
ToDtype(float32, scale=True), ColorJitter(brightness=0.2, contrast=0.2),
Normalize(imagenet). torchvision crops first and then warps at the output size (its
usual order), which is less work than fastai's affine+warp at the presize.

Prints one JSON object; {"img_per_s": null, "reason": ...} when torch/torchvision
are not importable.
"""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--presize", type=int, default=460)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--min-scale", type=float, default=0.75)
    a = ap.parse_args()
    try:
        import torch
        import torchvision
        from torchvision.transforms import v2
        from PIL import Image
    except Exception as e:  # no PyTorch here: say so, do not fail the benchmark
        print(json.dumps({"peer": "torchvision.transforms.v2", "img_per_s": None,
                          "reason": "not importable: %s" % e}))
        return 0
    threads = a.threads or os.cpu_count()
    torch.set_num_threads(threads)
    root = os.path.join(a.data, a.split)
    files = []
    for c in sorted(os.listdir(root)):
        for f in sorted(os.listdir(os.path.join(root, c))):
            files.append(os.path.join(root, c, f))
    step = max(1, len(files) // a.bs)
    imgs = []
    for p in files[::step][: a.bs]:
        im = Image.open(p).convert("RGB")
        s = min(im.size)
        l, t = (im.size[0] - s) // 2, (im.size[1] - s) // 2
        im = im.crop((l, t, l + s, t + s)).resize((a.presize, a.presize), Image.BILINEAR)
        imgs.append(torch.from_numpy(__import__("numpy").asarray(im).copy()).permute(2, 0, 1))
    batch = torch.stack(imgs)  # (bs, 3, presize, presize) uint8
    tf = v2.Compose([
        v2.RandomResizedCrop(a.size, scale=(a.min_scale, 1.0), ratio=(1.0, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.RandomAffine(degrees=10, scale=(1.0, 1.1))], p=0.75),
        v2.RandomPerspective(distortion_scale=0.2, p=0.75),
        v2.ToDtype(torch.float32, scale=True),
        v2.ColorJitter(brightness=0.2, contrast=0.2),
        v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    torch.manual_seed(0)
    out = torch.empty(a.bs, 3, a.size, a.size)
    for i in range(a.bs):  # warm-up
        out[i] = tf(batch[i])
    t0 = time.perf_counter()
    for _ in range(a.iters):
        for i in range(a.bs):
            out[i] = tf(batch[i])
    dt = time.perf_counter() - t0
    print(json.dumps({"peer": "torchvision.transforms.v2", "torch": torch.__version__,
                      "torchvision": torchvision.__version__, "threads": threads,
                      "size": a.size, "presize": a.presize, "bs": a.bs, "iters": a.iters,
                      "ms_per_batch": round(dt * 1000 / a.iters, 3),
                      "img_per_s": round(a.bs * a.iters / dt, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
