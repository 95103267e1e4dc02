#!/usr/bin/env python3
"""kernels_peer.py: the PyTorch peer of nf_bench_kernels: the same xresnet18
convolution shapes, forward + backward (input and weight gradients), fp32,
channels_last, the same thread count. Prints one JSON object; prints
{"peer": null, "reason": ...} when torch is missing.

  python bench/kernels_peer.py --bs 8 --size 64 --threads 2 --reps 3
"""
import argparse
import json
import time

LAYERS = [  # (size divisor, c_in, c_out, k, stride, count): bench_kernels.c's table
    (1, 3, 32, 3, 2, 1), (2, 32, 32, 3, 1, 1), (2, 32, 64, 3, 1, 1),
    (4, 64, 64, 3, 1, 4), (4, 64, 128, 3, 2, 1), (8, 128, 128, 3, 1, 3),
    (8, 64, 128, 1, 1, 1), (8, 128, 256, 3, 2, 1), (16, 256, 256, 3, 1, 3),
    (16, 128, 256, 1, 1, 1), (16, 256, 512, 3, 2, 1), (32, 512, 512, 3, 1, 3),
    (32, 256, 512, 1, 1, 1),
]

ap = argparse.ArgumentParser()
ap.add_argument("--bs", type=int, default=8)
ap.add_argument("--size", type=int, default=64)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--reps", type=int, default=3)
a = ap.parse_args()
try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print(json.dumps({"peer": None, "reason": f"torch not importable: {e}"}))
    raise SystemExit(0)

torch.set_num_threads(a.threads)
best, macs = float("inf"), 0.0
for _ in range(a.reps + 1):  # the first pass warms oneDNN's primitive cache
    t, macs = 0.0, 0.0
    for div, ci, co, k, s, count in LAYERS:
        h = a.size // div
        x = torch.rand(a.bs, ci, h, h).contiguous(memory_format=torch.channels_last).requires_grad_()
        w = (torch.rand(co, ci, k, k) * 0.01).contiguous(memory_format=torch.channels_last).requires_grad_()
        for _ in range(count):
            t0 = time.perf_counter()
            y = F.conv2d(x, w, stride=s, padding=k // 2)
            y.backward(y.detach())
            t += time.perf_counter() - t0
            macs += 3.0 * y.numel() * k * k * ci
            x.grad = w.grad = None
    best = min(best, t)
print(json.dumps({"peer": "torch", "torch": torch.__version__, "threads": a.threads,
                  "seconds": round(best, 4), "gflops": round(2 * macs / 1e9 / best, 2)}))
