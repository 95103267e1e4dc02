#!/usr/bin/env python3
"""gen_ops.py: golden per-op fixtures for kernels/ from PyTorch and fastai.

Writes tests/fixtures/ops/<case>.safetensors: inputs ("in.*") drawn with fixed
seeds, expected results ("out.*") computed by PyTorch's own ops (nn.functional
conv2d / batch_norm / max_pool2d / avg_pool2d / adaptive_avg_pool2d / linear,
autograd for every backward), fastai's LabelSmoothingCrossEntropy, MixUp loss
formula (torch.lerp of the two per-sample losses), accuracy and Adam optimizer.

Forward and backward run in float64 on float32 inputs, then are stored as
float32, so a fixture is the exact op result rounded once; the C tests' tolerance
table then only has to absorb our fp32 arithmetic. Adam runs in float32 through
fastai's optimizer, as training does.

Layouts are converted to ours: activations NCHW -> NHWC, conv weights
(C_out, C_in, KH, KW) -> (C_out, KH, KW, C_in). Shapes are small but cover
stride 2, padding, odd sizes and the ceil-mode partial window.

Run by developers (CI has no PyTorch):
    /opt/venv/bin/python tests/reference/gen_ops.py
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import fastai
from fastai.losses import LabelSmoothingCrossEntropy
from fastai.metrics import accuracy
from fastai.optimizer import Adam

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "ops")
GENERATOR = "tests/reference/gen_ops.py"


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def save(case, tensors, params):
    meta = {"magic": "netteflow-fixture", "version": "1",
            "generator": f"{GENERATOR} {case}", "torch": torch.__version__,
            "fastai": fastai.__version__}
    meta.update({k: str(v) for k, v in params.items()})
    path = os.path.join(OUT, case + ".safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
    print(f"{path}: {os.path.getsize(path)} bytes")


def rand(gen, *shape, lo=-1.0, hi=1.0):
    return (torch.rand(*shape, generator=gen, dtype=torch.float32) * (hi - lo) + lo)


def conv_case(case, n, h, w, c_in, c_out, k, stride, pad, seed):
    g = torch.Generator().manual_seed(seed)
    x = rand(g, n, c_in, h, w)
    wt = rand(g, c_out, c_in, k, k) * (2.0 / (c_in * k * k)) ** 0.5
    xd, wd = x.double().requires_grad_(), wt.double().requires_grad_()
    y = F.conv2d(xd, wd, stride=stride, padding=pad)
    dy = rand(g, *y.shape)
    y.backward(dy.double())
    save(case, {"in.x": nhwc(x), "in.w": nhwc(wt), "in.dy": nhwc(dy),
                "out.y": nhwc(f32(y)), "out.dx": nhwc(f32(xd.grad)), "out.dw": nhwc(f32(wd.grad))},
         dict(n=n, h=h, w=w, c_in=c_in, c_out=c_out, k=k, stride=stride, pad=pad))


def bn_case(seed):
    n, h, w, c = 3, 5, 3, 8
    g = torch.Generator().manual_seed(seed)
    x = rand(g, n, c, h, w, lo=-2, hi=3)
    gamma, beta = rand(g, c, lo=0.5, hi=1.5), rand(g, c, lo=-0.5, hi=0.5)
    rm, rv = rand(g, c, lo=-0.2, hi=0.2), rand(g, c, lo=0.5, hi=2.0)
    dy = rand(g, n, c, h, w)
    xd, gd, bd = (t.double().requires_grad_() for t in (x, gamma, beta))
    rmd, rvd = rm.double().clone(), rv.double().clone()
    y = F.batch_norm(xd, rmd, rvd, gd, bd, training=True, momentum=0.1, eps=1e-5)
    y.backward(dy.double())
    mean = xd.detach().mean(dim=(0, 2, 3))
    var = xd.detach().var(dim=(0, 2, 3), unbiased=False)
    ye = F.batch_norm(x.double(), rm.double(), rv.double(), gamma.double(), beta.double(),
                      training=False, eps=1e-5)
    save("batchnorm2d", {
        "in.x": nhwc(x), "in.gamma": gamma, "in.beta": beta, "in.running_mean": rm,
        "in.running_var": rv, "in.dy": nhwc(dy),
        "out.y": nhwc(f32(y)), "out.save_mean": f32(mean), "out.save_invstd": f32(1 / (var + 1e-5).sqrt()),
        "out.running_mean": f32(rmd), "out.running_var": f32(rvd),
        "out.dx": nhwc(f32(xd.grad)), "out.dgamma": f32(gd.grad), "out.dbeta": f32(bd.grad),
        "out.y_eval": nhwc(f32(ye))}, dict(n=n, h=h, w=w, c=c, eps=1e-5, momentum=0.1))


def eltwise_case(seed):
    count = 96
    g = torch.Generator().manual_seed(seed)
    x, a, b, dy = (rand(g, count) for _ in range(4))
    xd, ad, bd = (t.double().requires_grad_() for t in (x, a, b))
    y = F.relu(xd)
    y.backward(dy.double())
    s = F.relu(ad + bd)
    s.backward(dy.double())
    save("eltwise", {"in.x": x, "in.a": a, "in.b": b, "in.dy": dy,
                     "out.relu_y": f32(y), "out.relu_dx": f32(xd.grad),
                     "out.relu_add_y": f32(s), "out.relu_add_da": f32(ad.grad),
                     "out.relu_add_db": f32(bd.grad), "out.add_y": f32(a.double() + b.double())},
         dict(count=count))


def pool_case(case, kind, n, h, w, c, k, stride, pad, ceil_mode, seed):
    g = torch.Generator().manual_seed(seed)
    x = rand(g, n, c, h, w)
    xd = x.double().requires_grad_()
    if kind == "max":
        y = F.max_pool2d(xd, k, stride, pad, ceil_mode=ceil_mode)
    else:
        y = F.avg_pool2d(xd, k, stride, pad, ceil_mode=ceil_mode, count_include_pad=True)
    dy = rand(g, *y.shape)
    y.backward(dy.double())
    save(case, {"in.x": nhwc(x), "in.dy": nhwc(dy), "out.y": nhwc(f32(y)),
                "out.dx": nhwc(f32(xd.grad))},
         dict(n=n, h=h, w=w, c=c, k=k, stride=stride, pad=pad, ceil_mode=int(ceil_mode)))


def adaptive_case(seed):
    n, h, w, c = 3, 4, 3, 5
    g = torch.Generator().manual_seed(seed)
    x = rand(g, n, c, h, w)
    xd = x.double().requires_grad_()
    y = F.adaptive_avg_pool2d(xd, 1).flatten(1)
    dy = rand(g, n, c)
    y.backward(dy.double())
    save("adaptive_avgpool", {"in.x": nhwc(x), "in.dy": dy, "out.y": f32(y),
                              "out.dx": nhwc(f32(xd.grad))}, dict(n=n, h=h, w=w, c=c))


def linear_case(seed):
    n, fin, fout = 4, 32, 10
    g = torch.Generator().manual_seed(seed)
    x, wt, b = rand(g, n, fin), rand(g, fout, fin) * fin ** -0.5, rand(g, fout)
    dy = rand(g, n, fout)
    xd, wd, bd = (t.double().requires_grad_() for t in (x, wt, b))
    y = F.linear(xd, wd, bd)
    y.backward(dy.double())
    save("linear", {"in.x": x, "in.w": wt, "in.b": b, "in.dy": dy, "out.y": f32(y),
                    "out.dx": f32(xd.grad), "out.dw": f32(wd.grad), "out.db": f32(bd.grad)},
         dict(n=n, **{"in": fin}, out=fout))


def xent_case(seed):
    n, c = 8, 10
    g = torch.Generator().manual_seed(seed)
    logits = rand(g, n, c, lo=-4, hi=4)
    y = torch.randint(0, c, (n,), generator=g)
    y2 = y[torch.randperm(n, generator=g)]
    # fastai's Mixup weights: lam = max(l, 1 - l), l ~ Beta(0.4, 0.4)
    lam = torch.distributions.Beta(0.4, 0.4).sample((n,))
    lam = torch.max(lam, 1 - lam).to(torch.float32)
    out = {"in.logits": logits, "in.target": y.to(torch.int32), "in.target_mix": y2.to(torch.int32),
           "in.lam": lam}
    ce = lambda o, t: F.cross_entropy(o, t, reduction="none")
    ls = LabelSmoothingCrossEntropy(eps=0.1, reduction="none")
    for name, lf in (("ce", ce), ("ls", ls)):
        for mix in (False, True):
            o = logits.double().requires_grad_()
            if mix:  # fastai MixHandler.lf: lerp(loss(y_partner), loss(y), lam), then mean
                per = torch.lerp(lf(o, y2), lf(o, y), lam.double())
            else:
                per = lf(o, y)
            loss = per.mean()
            loss.backward()
            tag = ("mix_" if mix else "") + name
            out[f"out.loss_{tag}"] = f32(loss.reshape(1))
            out[f"out.per_sample_{tag}"] = f32(per)
            out[f"out.dlogits_{tag}"] = f32(o.grad)
    out["out.probs"] = f32(F.softmax(logits.double(), dim=1))
    save("xent", out, dict(n=n, c=c, smoothing=0.1))


def accuracy_case(seed):
    n, c = 16, 10
    g = torch.Generator().manual_seed(seed)
    logits = rand(g, n, c)
    logits[3, 2] = logits[3, 7] = 5.0  # a tie: torch.argmax takes the first
    t = torch.randint(0, c, (n,), generator=g)
    t[:6] = logits[:6].argmax(dim=1)  # make several rows right
    correct = accuracy(logits, t) * n
    save("accuracy", {"in.logits": logits, "in.target": t.to(torch.int32),
                      "out.correct": f32(correct.reshape(1))}, dict(n=n, c=c))


def adam_case(seed):
    n_wd, n_nowd = 40, 24
    g = torch.Generator().manual_seed(seed)
    p0 = torch.cat([rand(g, n_wd), rand(g, n_nowd)])
    pw = torch.nn.Parameter(p0[:n_wd].clone())
    pn = torch.nn.Parameter(p0[n_wd:].clone())
    opt = Adam([pw, pn], lr=1e-3)  # fastai defaults: mom 0.9, sqr_mom 0.99, eps 1e-5, wd 0.01
    opt.state[pn]["do_wd"] = False  # as Learner does for BN and bias (wd_bn_bias=False)
    hypers = [(3e-3, 0.95), (2.5e-3, 0.9), (1e-2, 0.85)]  # (lr, mom) as one-cycle moves them
    out = {"in.param": p0, "in.do_wd": torch.cat([torch.ones(n_wd), torch.zeros(n_nowd)]).to(torch.int32)}
    meta = dict(count=n_wd + n_nowd, steps=len(hypers), sqr_mom=0.99, eps=1e-5, wd=0.01)
    for s, (lr, mom) in enumerate(hypers, 1):
        grad = rand(g, n_wd + n_nowd, lo=-0.5, hi=0.5)
        pw.grad, pn.grad = grad[:n_wd].clone(), grad[n_wd:].clone()
        opt.set_hyper("lr", lr)
        opt.set_hyper("mom", mom)
        opt.step()
        opt.zero_grad()
        out[f"in.grad_{s}"] = grad
        out[f"out.param_{s}"] = torch.cat([pw.detach(), pn.detach()])
        meta[f"lr_{s}"], meta[f"mom_{s}"] = repr(lr), repr(mom)
    out["out.grad_avg"] = torch.cat([opt.state[pw]["grad_avg"], opt.state[pn]["grad_avg"]])
    out["out.sqr_avg"] = torch.cat([opt.state[pw]["sqr_avg"], opt.state[pn]["sqr_avg"]])
    save("adam", out, meta)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)  # only the Beta draw of the Mixup weights uses the global generator
    conv_case("conv2d_stem", 2, 9, 9, 3, 8, 3, 2, 1, seed=1)        # the 3x3 s2 stem, odd size
    conv_case("conv2d_3x3_s1", 2, 6, 5, 8, 8, 3, 1, 1, seed=2)
    conv_case("conv2d_3x3_s2", 2, 7, 7, 8, 16, 3, 2, 1, seed=3)     # bottleneck stride conv
    conv_case("conv2d_1x1", 2, 5, 5, 16, 8, 1, 1, 0, seed=4)
    conv_case("conv2d_1x1_s2", 1, 5, 6, 4, 6, 1, 2, 0, seed=5)
    bn_case(seed=6)
    eltwise_case(seed=7)
    pool_case("maxpool2d", "max", 2, 9, 8, 4, 3, 2, 1, False, seed=8)        # the stem's pool
    pool_case("avgpool2d_ceil", "avg", 2, 7, 5, 4, 2, 2, 0, True, seed=9)    # ResNet-D shortcut
    pool_case("avgpool2d_even", "avg", 1, 6, 4, 3, 2, 2, 0, True, seed=10)
    adaptive_case(seed=11)
    linear_case(seed=12)
    xent_case(seed=13)
    accuracy_case(seed=14)
    adam_case(seed=15)


if __name__ == "__main__":
    main()
