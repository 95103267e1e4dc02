#!/usr/bin/env python3
"""gen_step.py: the full xresnet18 training-step golden fixture, from fastai.

Developers run it (needs fastai + torch), CI does not:
    /opt/venv/bin/python tests/reference/gen_step.py
Output: tests/fixtures/trainer/step_xresnet18.safetensors (a netteflow
fixture; read by tests/trainer/test_step_golden.c).

What it does, with fastai's own pieces (xresnet18, Learner.create_opt with
wd_bn_bias=False, fastai's Adam, CrossEntropyLossFlat, LabelSmoothingCross-
Entropy and MixUp's loss mixing):

  weights   no weights are stored: C and Python both compute them from one
            formula (xresnet_init_pattern in trainer/xresnet.c): element e (in
            PyTorch's layout) of parameter t (state_dict order) gets
            u = pattern_u(t, e) in [0, 1) and
              conv/linear weight  sqrt(3) * sqrt(2 / fan_in) * (2u - 1)
              BN weight 0.8 + 0.4u;  BN bias, linear bias 0.2u - 0.1
            (no zero BN weights, so every gradient is non-trivial)
  batches   also from the pattern: x[n, h, w, c] (NHWC order) = 2u - 1 with
            t = 100000 (step 1) / 100002 (step 2); labels floor(10u) with t =
            100001 (step 1) / 100003 (step 2), Mixup partners t = 100004,
            weights lam = 0.5 + 0.5u with t = 100005
  step 1    bs 4, 40 px (odd sizes: the ceil-mode shortcut pool has partial
            windows), cross-entropy, Adam lr 1e-5 mom 0.95 (a small lr: Adam
            moves an element whose gradient is near eps by up to lr either
            way on rounding-level gradient differences, and step 2 must start
            from the same weights in C and Python to within rounding)
  step 2    bs 6, 32 px (a re-plan, as progressive resizing does), label
            smoothing 0.1 with Mixup weights and partner labels, Adam lr 2e-3
            mom 0.9 (step count 2: bias corrections of the second step)

Stored per step s (all F32 unless noted):
  out.s<s>.logits (N, 10), out.s<s>.loss (1)
  out.s<s>.grad_norm, out.s<s>.update_norm (n_params): per parameter tensor,
      the L2 norm of its gradient and of its update (w_after - w_before)
  out.s<s>.grad.<key> and out.s<s>.w.<key>: the gradient and the updated
      weight at sampled elements (PyTorch order): every element when numel
      <= 128, else 128 indices idx_k = floor(pattern_u(t + 20000, k) * numel)
  out.s1.running_mean / out.s1.running_var: every BN's running statistics
      after step 1, concatenated in state_dict order
  in.s<s>.y (I32), in.s2.y_mix (I32), in.s2.lam
"""
import os
import sys
import warnings

warnings.filterwarnings("ignore")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from fastai.data.core import DataLoaders  # noqa: E402
from fastai.learner import Learner  # noqa: E402
from fastai.losses import CrossEntropyLossFlat, LabelSmoothingCrossEntropy  # noqa: E402
from fastai.vision.models.xresnet import xresnet18  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "trainer",
                   "step_xresnet18.safetensors")
N_SAMPLES = 128
STEPS = [  # bs, size, lr, mom, ls_eps, mixup
    (4, 40, 1e-5, 0.95, 0.0, False),
    (6, 32, 2e-3, 0.90, 0.1, True),
]


def pattern_u(t, n):
    "xresnet_pattern_u(t, e) for e in 0..n-1, as float32 (exact in both)."
    e = np.arange(n, dtype=np.uint64).astype(np.uint32)
    with np.errstate(over="ignore"):
        x = e * np.uint32(0x9E3779B1) + np.uint32((t + 1) & 0xFFFFFFFF) * np.uint32(0x85EBCA77)
        x ^= x >> np.uint32(15)
        x *= np.uint32(0x2C1B3C6D)
        x ^= x >> np.uint32(12)
        x *= np.uint32(0x297A2D39)
        x ^= x >> np.uint32(15)
    return (x >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)


def init_pattern(model):
    with torch.no_grad():
        for t, (name, p) in enumerate(model.named_parameters()):
            u = pattern_u(t, p.numel())
            if name.endswith("weight") and p.ndim > 1:
                fan_in = p[0].numel()
                scale = np.float32(np.sqrt(3.0) * np.sqrt(2.0 / fan_in))
                v = scale * (np.float32(2.0) * u - np.float32(1.0))
            elif name.endswith("weight"):  # BN weight
                v = np.float32(0.8) + np.float32(0.4) * u
            else:  # BN bias, linear bias
                v = np.float32(0.2) * u - np.float32(0.1)
            p.copy_(torch.from_numpy(v.astype(np.float32)).view_as(p))


def sample_idx(t, numel):
    if numel <= N_SAMPLES:
        return np.arange(numel)
    u = pattern_u(t + 20000, N_SAMPLES).astype(np.float64)
    return np.floor(u * numel).astype(np.int64)


def batch(step, bs, size):
    tx, ty = (100000, 100001) if step == 0 else (100002, 100003)
    x = np.float32(2.0) * pattern_u(tx, bs * size * size * 3) - np.float32(1.0)
    x = torch.from_numpy(x.reshape(bs, size, size, 3)).permute(0, 3, 1, 2).contiguous()
    y = np.floor(pattern_u(ty, bs) * 10).astype(np.int32)
    y_mix = np.floor(pattern_u(100004, bs) * 10).astype(np.int32)
    lam = (np.float32(0.5) + np.float32(0.5) * pattern_u(100005, bs)).astype(np.float32)
    return x, y, y_mix, lam


def main():
    torch.manual_seed(0)
    model = xresnet18(n_out=10)
    init_pattern(model)
    model.train()
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    # A Learner only to build fastai's optimizer exactly as fit() does
    # (Adam, wd 0.01, no decay on BN parameters and biases).
    dummy = [(torch.zeros(3, 8, 8), torch.tensor(0))]
    dls = DataLoaders.from_dsets(dummy, dummy, bs=1, device="cpu")
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat())
    learn.create_opt()
    opt = learn.opt
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]

    tensors, meta = {}, {}
    for s, (bs, size, lr, mom, ls_eps, mixup) in enumerate(STEPS):
        k = f"s{s + 1}"
        x, y, y_mix, lam = batch(s, bs, size)
        w_before = [p.detach().clone() for p in params]
        opt.zero_grad()
        out = model(x)
        yt = torch.from_numpy(y).long()
        if ls_eps > 0:
            lf = LabelSmoothingCrossEntropy(eps=ls_eps, reduction="none")
        else:
            lf = lambda o, t: F.cross_entropy(o, t, reduction="none")  # noqa: E731
        if mixup:
            # MixHandler.lf: lerp(loss(pred, y_partner), loss(pred, y), lam), then mean
            ym = torch.from_numpy(y_mix).long()
            loss = torch.lerp(lf(out, ym), lf(out, yt), torch.from_numpy(lam)).mean()
            tensors[f"in.{k}.y_mix"] = y_mix
            tensors[f"in.{k}.lam"] = lam
        else:
            loss = lf(out, yt).mean()
        loss.backward()
        opt.set_hyper("lr", lr)
        opt.set_hyper("mom", mom)
        opt.step()
        tensors[f"in.{k}.y"] = y
        tensors[f"out.{k}.logits"] = out.detach().numpy().astype(np.float32)
        tensors[f"out.{k}.loss"] = np.array([loss.item()], dtype=np.float32)
        gnorm = np.zeros(len(params), dtype=np.float32)
        unorm = np.zeros(len(params), dtype=np.float32)
        for t, (name, p) in enumerate(zip(names, params)):
            gnorm[t] = p.grad.detach().double().norm()
            unorm[t] = (p.detach() - w_before[t]).double().norm()
            idx = torch.from_numpy(sample_idx(t, p.numel()))
            tensors[f"out.{k}.grad.{name}"] = p.grad.reshape(-1)[idx].numpy().astype(np.float32)
            tensors[f"out.{k}.w.{name}"] = p.detach().reshape(-1)[idx].numpy().astype(np.float32)
        tensors[f"out.{k}.grad_norm"] = gnorm
        tensors[f"out.{k}.update_norm"] = unorm
        if s == 0:
            tensors["out.s1.running_mean"] = torch.cat([b.running_mean for b in bns]).numpy()
            tensors["out.s1.running_var"] = torch.cat([b.running_var for b in bns]).numpy()
        meta.update({f"{k}.bs": str(bs), f"{k}.size": str(size), f"{k}.lr": repr(lr),
                     f"{k}.mom": repr(mom), f"{k}.ls_eps": repr(ls_eps),
                     f"{k}.mixup": "1" if mixup else "0"})
        print(f"step {s + 1}: loss {loss.item():.6f}", file=sys.stderr)

    import fastai
    meta.update({"magic": "netteflow-fixture", "version": "1",
                 "generator": "tests/reference/gen_step.py", "torch": torch.__version__,
                 "fastai": fastai.__version__, "arch": "xresnet18", "n_out": "10",
                 "samples": str(N_SAMPLES)})
    save_file({n: np.ascontiguousarray(v) for n, v in tensors.items()}, OUT, metadata=meta)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
