#!/usr/bin/env python3
"""gen_augment.py: golden fixtures for the augment stage, computed by fastai itself.

Run by developers, not CI (CI has no Python packages):
    /opt/venv/bin/python tests/reference/gen_augment.py [--data DIR] [--out DIR]

It takes four real Imagenette validation images (one per class, the first file of
four class folders in sorted order), resizes them to a tiny 40x40 "presize" so the
fixtures stay small, and runs fastai's own transforms on them with fixed random
parameters (fastai's `draw=` arguments with p=1, and a RandomResizedCropGPU whose
crop box is set instead of drawn):

  affine.safetensors    the merged Flip/Warp/Rotate/Zoom transform of aug_transforms
                        (size=None, as with min_scale != 1): its 2x3 matrices, the
                        perspective coefficients, the draws, and the resampled output
                        at the presize; the same with size=16/24 (the min_scale == 1
                        path, including fastai's area pre-shrink when it triggers).
  pipeline.safetensors  RandomResizedCropGPU on the affine output for three crop boxes
                        (with and without the area pre-shrink, one non-square),
                        lighting (Brightness + Contrast in logit space), Normalize with
                        imagenet_stats, and the statistics Normalize() computes from a
                        batch.
  valid.safetensors     the validation pipeline at 16 and 24 px, and MixUp (fastai's
                        callback) on the normalized 24 px batch for given lambdas and
                        permutation.
  sizes.safetensors     the area pre-shrink size fastai's _grid_sample picks for a
                        presize-460 crop of every side 398..460 at sizes 128..256.
  mixup_loss.safetensors  MixUp's loss for given logits, labels, lambdas and
                        permutation with CrossEntropyLossFlat and
                        LabelSmoothingCrossEntropyFlat (for the kernels library's op).

Each file is a netteflow fixture (tests/kernels/fixture.h): inputs "in.<name>",
expected results "out.<name>" (float32, crop/pre-shrink sizes included), metadata
magic/version/generator. Every image tensor is NHWC (uint8 for the source).
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.numpy import save_file

import fastai
from fastai.callback.mixup import MixUp
from fastai.data.transforms import IntToFloatTensor, Normalize
from fastai.losses import CrossEntropyLossFlat, LabelSmoothingCrossEntropyFlat
from fastai.torch_core import TensorImage
from fastai.vision import augment as A
from fastai.vision.core import imagenet_stats

PRESIZE = 40
N = 4

# fixed draws, fastai's meaning (flip: 1 = mirrored; warp: x_t, y_t)
FLIP = [1.0, 0.0, 0.0, 1.0]
ROT = [7.5, 0.0, -9.0, 3.0]
ZOOM = [1.05, 1.0, 1.1, 1.02]
ZCX = [0.2, 0.5, 0.9, 0.0]
ZCY = [0.7, 0.5, 0.1, 1.0]
WARP_X = [0.15, 0.0, -0.18, 0.05]
WARP_Y = [-0.1, 0.0, 0.12, 0.19]
BRIGHT = [0.45, 0.5, 0.6, 0.41]
CONTRAST = [1.2, 1.0, 0.85, 1.0]
# crop boxes (y0, x0, h, w) and output sizes
CROPS = {"crop24": ((2, 3, 36, 36), 24), "crop16": ((1, 2, 38, 38), 16),
         "crop16r": ((4, 9, 34, 26), 16)}
MIX_LAM_RAW = [0.3, 0.8, 0.55, 0.1]


def save(out_dir, name, ins, outs, meta):
    """A netteflow fixture (tests/kernels/fixture.h): inputs as "in.<name>",
    expected results as "out.<name>" (float32), magic/version/generator metadata."""
    tensors = {"in." + k: np.ascontiguousarray(v) for k, v in ins.items()}
    tensors.update({"out." + k: np.ascontiguousarray(np.asarray(v, dtype=np.float32))
                    for k, v in outs.items()})
    m = dict(meta, magic="netteflow-fixture", version="1",
             generator="tests/reference/gen_augment.py " + name)
    save_file(tensors, os.path.join(out_dir, name + ".safetensors"), metadata=m)


def nhwc(x):
    return np.ascontiguousarray(x.detach().permute(0, 2, 3, 1).numpy().astype(np.float32))


def load_images(data):
    root = os.path.join(data, "val")
    classes = sorted(os.listdir(root))[:N]
    imgs, paths = [], []
    for c in classes:
        f = sorted(os.listdir(os.path.join(root, c)))[0]
        p = os.path.join(root, c, f)
        im = Image.open(p).convert("RGB").resize((PRESIZE, PRESIZE), Image.BILINEAR)
        imgs.append(np.asarray(im, dtype=np.uint8))
        paths.append(os.path.relpath(p, data))
    return np.stack(imgs), paths


def merged_affine(size, zoom=ZOOM, rot=ROT, warp=True, zcx=ZCX, zcy=ZCY):
    """aug_transforms' merged affine transform with fixed draws."""
    tkw = dict(size=size, mode="bilinear", pad_mode="reflection", align_corners=True)
    tfms = [A.Flip(p=1.0, draw=FLIP, **tkw)]
    if warp:
        tfms.append(A.Warp(magnitude=0.2, p=1.0, draw_x=WARP_X, draw_y=WARP_Y, **tkw))
    tfms += [A.Rotate(max_deg=10, p=1.0, draw=rot, **tkw),
             A.Zoom(min_zoom=1.0, max_zoom=max(zoom), p=1.0, draw=zoom, draw_x=zcx, draw_y=zcy,
                    **tkw)]
    merged = A.setup_aug_tfms(tfms)
    assert len(merged) == 1
    return merged[0]


class FixedCrop(A.RandomResizedCropGPU):
    """RandomResizedCropGPU with the crop box given (train) instead of drawn."""

    def __init__(self, size, box):
        super().__init__(size, min_scale=0.75, ratio=(1, 1))
        self.box = box

    def before_call(self, b, split_idx):
        if split_idx:
            return super().before_call(b, split_idx)
        self.do = True
        y0, x0, h, w = self.box
        self.cp_size, self.tl = (h, w), (y0, x0)


class ShrinkRecorder:
    """Records the output size of fastai's area pre-shrink (F.interpolate)."""

    def __init__(self):
        self.sizes = []
        self.orig = F.interpolate

    def __enter__(self):
        def rec(x, *a, **k):
            y = self.orig(x, *a, **k)
            self.sizes.append(tuple(y.shape[-2:]))
            return y
        F.interpolate = rec
        return self

    def __exit__(self, *a):
        F.interpolate = self.orig


def lighting(x):
    tfms = A.setup_aug_tfms([A.Brightness(max_lighting=0.2, p=1.0, draw=BRIGHT),
                             A.Contrast(max_lighting=0.2, p=1.0, draw=CONTRAST)])
    assert len(tfms) == 1
    return tfms[0](x, split_idx=0)


def mixup(xb, yb, lam_raw, seed):
    """fastai's MixUp.before_batch and its loss, with the Beta draws given."""
    class FakeLearner:
        pass
    learn = FakeLearner()
    learn.xb, learn.yb = (xb,), (yb,)
    learn.x, learn.y = xb, yb
    learn.training = True
    mix = MixUp(0.4)
    mix.learn = learn
    mix.stack_y = True  # before_train: CrossEntropyLossFlat.y_int is True, labels are not mixed
    mix.distrib = type("FixedBeta", (), {"sample": lambda self, shape: torch.tensor(lam_raw)})()
    torch.manual_seed(seed)
    mix.before_batch()
    return mix, learn.xb[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data", default=os.path.join(here, "../../../shared/data/imagenette2-224"))
    ap.add_argument("--out", default=os.path.join(here, "../fixtures/augment"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    meta = {"fastai": fastai.__version__, "torch": torch.__version__}

    src, paths = load_images(args.data)
    meta["images"] = ";".join(paths)
    x8 = TensorImage(torch.from_numpy(src).permute(0, 3, 1, 2).contiguous())
    x = IntToFloatTensor()(x8)

    # --- affine stage ---------------------------------------------------------
    aff_in = {"src": src, "flip": np.float32(FLIP), "rotate": np.float32(ROT),
              "zoom": np.float32(ZOOM), "zoom_cx": np.float32(ZCX), "zoom_cy": np.float32(ZCY),
              "warp_a": np.float32(WARP_X), "warp_b": np.float32(WARP_Y)}
    aff = {}
    t = merged_affine(None)
    y = t(x, split_idx=0)
    warp = t.coord_fs[0]
    aff["mat"] = t.mat.numpy().astype(np.float32)
    coeffs = A.find_coeffs(warp.orig_pts, warp.targ_pts)[..., 0]
    aff["warp_coeffs"] = coeffs.numpy().astype(np.float32)
    aff["affine"] = nhwc(y)
    affine_out = y
    # min_scale == 1: the affine transform resamples straight to the size
    # (nocrop16z: a zoom of 1.6 about the centre keeps the batch's grid within
    # [-1/1.6, 1/1.6], so z = 1.6 > d = 1.25 and fastai does not pre-shrink)
    half = [0.5] * N
    for name, size, zoom, rot, use_warp, zc in [("nocrop16", 16, ZOOM, ROT, True, (ZCX, ZCY)),
                                                ("nocrop24", 24, ZOOM, ROT, True, (ZCX, ZCY)),
                                                ("nocrop16z", 16, [1.6] * N, [0.0] * N, False,
                                                 (half, half))]:
        t = merged_affine(size, zoom=zoom, rot=rot, warp=use_warp, zcx=zc[0], zcy=zc[1])
        with ShrinkRecorder() as rec:
            out = t(x, split_idx=0)
        aff[name] = nhwc(out)
        aff["shrink_" + name] = rec.sizes[0] if rec.sizes else (0, 0)
    save(args.out, "affine", aff_in, aff, meta)

    # --- crop, lighting, Normalize, valid, stats, MixUp -----------------------
    pipe_in = {"src": src, "bright": np.float32(BRIGHT), "contrast": np.float32(CONTRAST),
               "mean": np.float32(imagenet_stats[0]), "std": np.float32(imagenet_stats[1])}
    pipe = {}
    norm = Normalize.from_stats(*imagenet_stats, cuda=False)
    for name, (box, size) in CROPS.items():
        with ShrinkRecorder() as rec:
            out = FixedCrop(size, box)(affine_out, split_idx=0)
        pipe_in["box_" + name] = np.int32(box)
        pipe[name] = nhwc(out)
        pipe["shrink_" + name] = rec.sizes[0] if rec.sizes else (0, 0)
        if name == "crop16r":
            continue
        lit = lighting(out.clone())
        if name == "crop24":
            pipe["light_" + name] = nhwc(lit)
        pipe["norm_" + name] = nhwc(norm(lit))
        if name == "crop24":
            stats = Normalize()
            stats.mean = lit.mean((0, 2, 3), keepdim=True)
            stats.std = lit.std((0, 2, 3), keepdim=True) + 1e-7
            pipe["stats_mean"] = stats.mean.flatten().numpy().astype(np.float32)
            pipe["stats_std"] = stats.std.flatten().numpy().astype(np.float32)
    save(args.out, "pipeline", pipe_in, pipe, meta)

    # --- validation and MixUp -------------------------------------------------
    valid_in = {"src": src, "mean": pipe_in["mean"], "std": pipe_in["std"]}
    valid = {}
    # validation: identity affine (still resampled), full-image crop, no lighting
    for size in (16, 24):
        v = merged_affine(None)(x, split_idx=1)
        with ShrinkRecorder() as rec:
            v = FixedCrop(size, None)(v, split_idx=1)
        valid["valid%d" % size] = nhwc(norm(v))
        valid["shrink_valid%d" % size] = rec.sizes[0] if rec.sizes else (0, 0)
    # MixUp on the normalized validation batch at 24
    xb = torch.from_numpy(valid["valid24"]).permute(0, 3, 1, 2).contiguous()
    yb = torch.arange(N)
    mix, mixed = mixup(xb, yb, MIX_LAM_RAW, seed=3)
    valid_in["mix_lambda"] = mix.lam.numpy().astype(np.float32)
    valid_in["mix_perm"] = mix.yb1[0].numpy().astype(np.int32)  # labels are arange: yb1 = perm
    valid["mix"] = nhwc(mixed)
    save(args.out, "valid", valid_in, valid, meta)

    # --- pre-shrink sizes at the chapter's presize ----------------------------
    sizes = [128, 160, 192, 224, 256]
    sides = list(range(398, 461))
    table = np.zeros((len(sizes), len(sides), 2), dtype=np.int32)
    for i, size in enumerate(sizes):
        coords = A.affine_grid(torch.eye(3)[None, :2], (1, 1, size, size), align_corners=True)
        for k, side in enumerate(sides):
            with ShrinkRecorder() as rec:
                A._grid_sample(torch.zeros(1, 1, side, side), coords, align_corners=True)
            table[i, k] = rec.sizes[0] if rec.sizes else (0, 0)
    save(args.out, "sizes", {"sizes": np.int32(sizes), "sides": np.int32(sides)},
         {"shrink": table}, meta)

    # --- MixUp loss --------------------------------------------------------------
    g = torch.Generator().manual_seed(7)
    bs, c = 8, 10
    logits = torch.randn(bs, c, generator=g) * 2
    y = torch.randint(0, c, (bs,), generator=g)
    lam_raw = torch.rand(bs, generator=g).tolist()
    loss_in = {"logits": logits.numpy(), "labels": y.numpy().astype(np.int32)}
    loss = {}
    for name, lf in [("ce", CrossEntropyLossFlat()), ("ls", LabelSmoothingCrossEntropyFlat())]:
        mix, _ = mixup(torch.zeros(bs, 1), y, lam_raw, seed=11)
        mix.old_lf = lf
        out = mix.lf(logits, y)
        loss["loss_" + name] = [out.item()]
        loss_in["lambda"] = mix.lam.numpy().astype(np.float32)
        loss_in["partner_labels"] = mix.yb1[0].numpy().astype(np.int32)
    save(args.out, "mixup_loss", loss_in, loss, meta)

    for f in sorted(os.listdir(args.out)):
        print("%-26s %7d bytes" % (f, os.path.getsize(os.path.join(args.out, f))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
