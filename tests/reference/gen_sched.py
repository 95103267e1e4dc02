#!/usr/bin/env python3
"""gen_sched.py: fastai's own schedules, recorded batch by batch, for the
trainer's schedule golden test (tests/trainer/test_sched.c).

Developers run it (needs fastai + torch), CI does not:
    /opt/venv/bin/python tests/reference/gen_sched.py
It runs real fastai fits (fit_one_cycle, fine_tune, fit_flat_cos, lr_find) on a
tiny linear model over synthetic batches and records, before every training
batch, the lr and mom that fastai's ParamScheduler put into the optimizer,
plus lr_find's raw and smoothed losses and its valley suggestion.

Also tests/fixtures/trainer/table.txt: fastprogress's console table for a few
rows (header, chapter values, a wide value, NaN).

Output: tests/fixtures/trainer/sched.safetensors, a netteflow fixture
(__metadata__ magic/version/generator/torch, case parameters as strings).
Tensor names: "<case>.lr" / "<case>.mom" (F64, one per training batch, in
order, over every fit of the case), and for lr_find "lrfind.raw_loss" /
"lrfind.smooth_loss" (F32), "lrfind.valley" (F64, one value).
"""
import os
import random
import tempfile
import sys
import warnings

warnings.filterwarnings("ignore")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from fastai.callback.core import Callback  # noqa: E402
from fastai.data.core import DataLoaders  # noqa: E402
from fastai.learner import Learner  # noqa: E402
import fastai.callback.all  # noqa: E402,F401  (patches no_bar, fit_one_cycle, lr_find)
from safetensors.numpy import save_file  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "trainer",
                   "sched.safetensors")


class HpLog(Callback):
    "Records the optimizer's lr/mom as used by each training batch, and the raw loss."
    order = 70  # after ParamScheduler (60) has set the batch's values

    def __init__(self):
        self.lr, self.mom, self.loss = [], [], []

    def before_batch(self):
        if self.training:
            h = self.opt.hypers[-1]
            self.lr.append(float(h["lr"]))
            self.mom.append(float(h["mom"]))

    def after_loss(self):
        if self.training:
            self.loss.append(float(self.learn.loss))


# lr_find saves a temporary model under <learner path>/models: keep it out of the tree
WORKDIR = tempfile.TemporaryDirectory()


def make_learner(n_iter, bs=1, seed=0):
    torch.manual_seed(seed)
    random.seed(seed)
    x = torch.randn(n_iter * bs, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1
    train = list(zip(x, y))
    dls = DataLoaders.from_dsets(train, train[:2], bs=bs, device="cpu")
    model = torch.nn.Linear(4, 1)
    return Learner(dls, model, loss_func=torch.nn.MSELoss(), path=WORKDIR.name)


def run(case, n_iter, fn, bs=1):
    learn = make_learner(n_iter, bs)
    log = HpLog()
    learn.add_cb(log)
    with learn.no_bar(), learn.no_logging():
        res = fn(learn)
    return learn, log, res


def write_table():
    "fastprogress's console table for a few rows (chapter values, a wide value, a NaN)."
    import io
    from contextlib import redirect_stdout
    from fastprogress.fastprogress import ConsoleMasterBar, format_time
    rows = [[0, 1.583403, 2.064317, 0.401792, 63.7], [4, 0.585707, 0.541810, 0.825243, 63.2],
            [10, 12345.6789, float("nan"), 1.0, 3725.9]]
    mb = ConsoleMasterBar(range(1))
    buf = io.StringIO()
    with redirect_stdout(buf):
        mb.write(["epoch", "train_loss", "valid_loss", "accuracy", "time"], table=True)
        for r in rows:
            cells = [str(r[0])] + [f"{v:.6f}" for v in r[1:4]] + [format_time(r[4])]
            mb.write(cells, table=True)
    path = os.path.join(os.path.dirname(OUT), "table.txt")
    with open(path, "w") as f:
        f.write(buf.getvalue())
    print(f"wrote {path}", file=sys.stderr)


def main():
    write_table()
    tensors, meta = {}, {}

    # fit_one_cycle(5, 3e-3), 167 batches/epoch (the chapter at 224 px, bs 64)
    _, log, _ = run("one_cycle", 167, lambda l: l.fit_one_cycle(5, 3e-3))
    tensors["one_cycle.lr"], tensors["one_cycle.mom"] = np.array(log.lr), np.array(log.mom)
    meta.update({"one_cycle.n_epoch": "5", "one_cycle.n_iter": "167", "one_cycle.lr_max": "3e-3"})

    # fit_one_cycle(4, 3e-3) at 83 batches/epoch (progressive resizing stage 1)
    _, log, _ = run("one_cycle_b", 83, lambda l: l.fit_one_cycle(4, 3e-3))
    tensors["one_cycle_b.lr"], tensors["one_cycle_b.mom"] = np.array(log.lr), np.array(log.mom)
    meta.update({"one_cycle_b.n_epoch": "4", "one_cycle_b.n_iter": "83",
                 "one_cycle_b.lr_max": "3e-3"})

    # fine_tune(5, 1e-3): 1 + 5 epochs at 167 batches/epoch
    _, log, _ = run("fine_tune", 167, lambda l: l.fine_tune(5, 1e-3))
    tensors["fine_tune.lr"], tensors["fine_tune.mom"] = np.array(log.lr), np.array(log.mom)
    meta.update({"fine_tune.epochs": "5", "fine_tune.n_iter": "167", "fine_tune.base_lr": "1e-3"})

    # fit_flat_cos(3, 8e-3) at 10 batches/epoch (momentum stays at Adam's 0.9)
    _, log, _ = run("flat_cos", 10, lambda l: l.fit_flat_cos(3, 8e-3))
    tensors["flat_cos.lr"], tensors["flat_cos.mom"] = np.array(log.lr), np.array(log.mom)
    meta.update({"flat_cos.n_epoch": "3", "flat_cos.n_iter": "10", "flat_cos.lr": "8e-3"})

    # lr_find() with defaults over 30-batch epochs of 64 samples; diverges before 100 iterations
    learn, log, sugg = run("lrfind", 30, lambda l: l.lr_find(show_plot=False), bs=64)
    tensors["lrfind.lr"] = np.array(log.lr)
    tensors["lrfind.raw_loss"] = np.array(log.loss, dtype=np.float32)
    tensors["lrfind.smooth_loss"] = np.array([float(v) for v in learn.recorder.losses],
                                             dtype=np.float32)
    rec_lrs = np.array(learn.recorder.lrs)
    assert np.array_equal(rec_lrs, tensors["lrfind.lr"]), "recorder lrs differ from logged"
    tensors["lrfind.valley"] = np.array([sugg.valley])
    meta.update({"lrfind.num_it": "100", "lrfind.start_lr": "1e-7", "lrfind.end_lr": "10"})
    print(f"lr_find: {len(log.lr)} batches recorded, valley {sugg.valley:.6g}", file=sys.stderr)

    # a run that diverges: lr_find(end_lr=1e4) stops on smooth_loss > 4*best
    learn, log, sugg = run("lrfind_div", 30, lambda l: l.lr_find(end_lr=1e4, show_plot=False),
                           bs=64)
    n_div = len(log.lr)
    assert n_div < 100, "expected the divergence stop"
    tensors["lrfind_div.lr"] = np.array(log.lr)
    tensors["lrfind_div.raw_loss"] = np.array(log.loss, dtype=np.float32)
    tensors["lrfind_div.smooth_loss"] = np.array([float(v) for v in learn.recorder.losses],
                                                 dtype=np.float32)
    tensors["lrfind_div.valley"] = np.array([sugg.valley])
    meta.update({"lrfind_div.num_it": "100", "lrfind_div.start_lr": "1e-7",
                 "lrfind_div.end_lr": "1e4"})
    print(f"lr_find(end_lr=1e4): stopped after {n_div} batches, valley {sugg.valley:.6g}",
          file=sys.stderr)

    import fastai
    meta.update({"magic": "netteflow-fixture", "version": "1",
                 "generator": "tests/reference/gen_sched.py",
                 "torch": torch.__version__, "fastai": fastai.__version__})
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, OUT, metadata=meta)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
