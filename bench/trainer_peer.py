#!/usr/bin/env python3
"""trainer_peer.py: the PyTorch peer of bench/trainer.sh.

Full training steps (forward, cross-entropy, backward, AdamW with fastai's
hyper-parameters) of the same xresnet on the same synthetic batch shape,
channels_last: on the CPU with the same number of threads, or on the GPU
(--device cuda) the way a PyTorch user trains fast: bf16 autocast
(--amp bf16), cudnn.benchmark, the fused AdamW, the batch resident on the
device. The model is built here in plain PyTorch exactly as fastai v2
builds xresnet (stem 3-32-32-64, ResNet-D AvgPool shortcut, zero-init last
BN, kaiming init), so the peer does not need fastai. Prints one JSON object
like `trainer --bench --json`.

    python3 bench/trainer_peer.py --arch xresnet18 --size 128 --bs 64 --threads 2
    python3 bench/trainer_peer.py --arch xresnet50 --size 224 --bs 64 --device cuda --amp bf16
"""
import argparse
import json
import resource
import sys
import time

import torch
import torch.nn as nn


def conv_layer(ni, nf, ks=3, stride=1, act=True, zero_bn=False):
    bn = nn.BatchNorm2d(nf)
    nn.init.constant_(bn.weight, 0.0 if zero_bn else 1.0)
    nn.init.zeros_(bn.bias)
    layers = [nn.Conv2d(ni, nf, ks, stride=stride, padding=(ks - 1) // 2, bias=False), bn]
    if act:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    def __init__(self, e, ni, nf, stride):
        super().__init__()
        nh, nf, ni = nf, nf * e, ni * e
        if e == 1:
            self.convpath = nn.Sequential(conv_layer(ni, nh, 3, stride),
                                          conv_layer(nh, nf, 3, act=False, zero_bn=True))
        else:
            self.convpath = nn.Sequential(conv_layer(ni, nh, 1), conv_layer(nh, nh, 3, stride),
                                          conv_layer(nh, nf, 1, act=False, zero_bn=True))
        idpath = []
        if stride != 1:
            idpath.append(nn.AvgPool2d(2, ceil_mode=True))
        if ni != nf:
            idpath.append(conv_layer(ni, nf, 1, act=False))
        self.idpath = nn.Sequential(*idpath)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.convpath(x) + self.idpath(x))


def xresnet(arch, n_out):
    e, layers = {"xresnet18": (1, [2, 2, 2, 2]), "xresnet34": (1, [3, 4, 6, 3]),
                 "xresnet50": (4, [3, 4, 6, 3])}[arch]
    stem = [conv_layer(3, 32, stride=2), conv_layer(32, 32), conv_layer(32, 64)]
    szs = [64 // e, 64, 128, 256, 512]
    blocks = []
    for s in range(4):
        blocks.append(nn.Sequential(*[
            ResBlock(e, szs[s] if j == 0 else szs[s + 1], szs[s + 1],
                     2 if (j == 0 and s > 0) else 1) for j in range(layers[s])]))
    m = nn.Sequential(*stem, nn.MaxPool2d(3, 2, 1), *blocks, nn.AdaptiveAvgPool2d(1),
                      nn.Flatten(), nn.Dropout(0.0), nn.Linear(512 * e, n_out))
    for mod in m.modules():  # fastai init_cnn
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(mod.weight)
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="xresnet18")
    ap.add_argument("--n-out", type=int, default=10)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--amp", default="none", choices=["none", "bf16"])
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    cuda = a.device == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = xresnet(a.arch, a.n_out).to(device=a.device, memory_format=torch.channels_last)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99), eps=1e-5, **({"fused": True} if cuda else {}))
    x = (torch.rand(a.bs, 3, a.size, a.size, device=a.device) * 2 - 1).to(
        memory_format=torch.channels_last)
    y = torch.randint(0, a.n_out, (a.bs,), device=a.device)
    loss_fn = nn.CrossEntropyLoss()
    amp = a.amp == "bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=a.device, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    t_setup = time.perf_counter()
    for _ in range(a.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    t_setup = time.perf_counter() - t_setup
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out = {"peer": "pytorch", "torch": torch.__version__, "arch": a.arch, "size": a.size,
           "bs": a.bs, "device": a.device, "amp": a.amp, "threads": torch.get_num_threads(),
           "steps": a.steps, "img_per_s": round(a.bs * a.steps / dt, 2),
           "ms_per_step": round(1e3 * dt / a.steps, 2), "warmup_s": round(t_setup, 2),
           "peak_rss_mb": round(rss, 1), "last_loss": round(float(loss), 4)}
    if cuda:
        out["gpu"] = torch.cuda.get_device_name(0)
        out["device_peak_mb"] = round(torch.cuda.max_memory_allocated() / 1e6, 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
