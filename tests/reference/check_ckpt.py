#!/usr/bin/env python3
"""check_ckpt.py: a netteflow checkpoint loads in Python and into fastai.

Developers run it after building (needs torch, fastai, safetensors):
    /opt/venv/bin/python tests/reference/check_ckpt.py [build-dir]
It runs `<build>/tests/test_ckpt --write DIR` (a real learner trains two
steps, saves a checkpoint, and writes the eval logits of a pattern batch),
then
  1. opens the checkpoint with the `safetensors` package and checks the
     metadata (format, version, arch, classes, normalisation stats, progress);
  2. converts it to fastai's layout (every 4-D conv weight: permute(0, 3, 1,
     2); num_batches_tracked as int64 scalars; optimizer entries "opt.*"
     dropped) and loads it into fastai's own xresnet18(n_out=10) with
     strict=True;
  3. runs fastai's model in eval mode on the same pattern batch and compares
     its logits with the C learner's (max abs diff < 1e-4).
Exit status 0 when all holds.
"""
import json
import os
import subprocess
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from fastai.vision.models.xresnet import xresnet18  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_step import pattern_u  # noqa: E402


def to_fastai(tensors):
    "netteflow checkpoint tensors -> fastai/PyTorch state_dict."
    sd = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            continue
        sd[k] = v.permute(0, 3, 1, 2).contiguous() if v.ndim == 4 else v
    return sd


def main():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build")
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([os.path.join(build, "tests", "test_ckpt"), "--write", d], check=True)
        path = os.path.join(d, "ckpt.safetensors")
        with safe_open(path, framework="pt") as f:
            meta = f.metadata()
        assert meta["format"] == "netteflow-checkpoint" and meta["format_version"] == "1", meta
        assert meta["arch"] == "xresnet18" and meta["n_out"] == "10"
        classes = json.loads(meta["class_names"])
        assert len(classes) == 10 and classes[0] == "tench", classes
        assert json.loads(meta["norm_mean"])[0] == np.float32(0.485)
        progress = json.loads(meta["progress"])
        assert progress["step"] == "2", progress
        tensors = load_file(path)
        model = xresnet18(n_out=10)
        missing, unexpected = model.load_state_dict(to_fastai(tensors), strict=True)
        model.eval()
        ev = load_file(os.path.join(d, "eval_logits.safetensors"))
        with safe_open(os.path.join(d, "eval_logits.safetensors"), framework="pt") as f:
            em = f.metadata()
        bs, size, t = int(em["bs"]), int(em["size"]), int(em["x_pattern_t"])
        x = np.float32(2.0) * pattern_u(t, bs * size * size * 3) - np.float32(1.0)
        x = torch.from_numpy(x.reshape(bs, size, size, 3)).permute(0, 3, 1, 2).contiguous()
        with torch.no_grad():
            logits = model(x)
        diff = (logits - ev["logits"]).abs().max().item()
        n_bn = sum(1 for k in tensors if k.endswith("num_batches_tracked"))
        print(f"checkpoint: {len(tensors)} tensors, {n_bn} BN layers, step {progress['step']}; "
              f"fastai xresnet18 eval logits vs C: max abs diff {diff:.3g}")
        if diff > 1e-4:
            print("NOT OK: logits differ", file=sys.stderr)
            return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
