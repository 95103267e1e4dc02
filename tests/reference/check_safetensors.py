#!/usr/bin/env python3
"""check_safetensors.py: interoperability of common/safetensors with the
Python `safetensors` package (developers run this; CI has no Python packages).

  1. build/tests/test_safetensors --write F   (our writer) -> load with safetensors.numpy
     and compare every tensor and the metadata;
  2. safetensors.numpy.save_file -> build/tests/test_safetensors --read F (our reader).

Usage: /opt/venv/bin/python tests/reference/check_safetensors.py [BUILD_DIR]
Exit status 0 when both directions agree.
"""
import os
import subprocess
import sys
import tempfile

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build")
exe = os.path.join(build, "tests", "test_safetensors")

with tempfile.TemporaryDirectory() as tmp:
    ours = os.path.join(tmp, "ours.safetensors")
    subprocess.run([exe, "--write", ours], check=True)
    t = load_file(ours)
    want = torch.tensor([[1, -2, 3.5], [0, 1e-30, -7]], dtype=torch.float32)
    assert torch.equal(t["weight"], want), t["weight"]
    assert t["d"].dtype == torch.float64 and t["d"][0].item() == 3.141592653589793
    assert t["i64"].tolist() == [-5, 1 << 40]
    assert t["i32"].tolist() == [42]
    assert t["u8"].tolist() == [1, 2, 3, 4, 5]
    assert t["scalar"].shape == () and t["scalar"].item() == 9.5
    assert t["empty"].shape == (0, 4)
    with safe_open(ours, framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "netteflow", meta
    assert meta["config"] == '{"arch": "xresnet50", "quote": "a\\"b"}', meta
    bf = t["bf"]
    assert bf.dtype == torch.bfloat16 and bf.float().tolist() == [1.0, 2.0, -3.0], bf
    print("OK: Python's safetensors reads the file our writer made")

    theirs = os.path.join(tmp, "theirs.safetensors")
    save_file({"x": torch.arange(6, dtype=torch.float32).reshape(2, 3),
                "ids": torch.arange(10, 14, dtype=torch.int64),
                "h": torch.tensor([1.0, -2.0], dtype=torch.bfloat16)},
               theirs, metadata={"writer": "python"})
    subprocess.run([exe, "--read", theirs], check=True)
    print("OK: our reader reads the file Python's safetensors made")
