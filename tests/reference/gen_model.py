#!/usr/bin/env python3
"""gen_model.py: writes the model-description fixtures of the trainer's
golden tests (tests/trainer/test_xresnet.c) from fastai's own xresnet:

  summary_<arch>_bs<bs>_<size>.txt  fastai's learn.summary() table, from the
                                    title line through "Total non-trainable params"
  state_dict_<arch>.txt             every state_dict key of <arch>(n_out=10) in
                                    order with its PyTorch shape ("key d0,d1,...")

Developers run it (needs fastai + torch), CI does not:
    /opt/venv/bin/python tests/reference/gen_model.py
The Learner is built over a tiny synthetic DataLoaders (summary() only reads
shapes).
"""
import os
import sys
import warnings

warnings.filterwarnings("ignore")
import torch  # noqa: E402
from fastai.vision.all import CrossEntropyLossFlat, DataLoaders, Learner  # noqa: E402
from fastai.vision.models.xresnet import xresnet18, xresnet34, xresnet50  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "trainer")
CASES = [  # (arch, builder, bs, size)
    ("xresnet18", xresnet18, 8, 64),
    ("xresnet34", xresnet34, 16, 40),
    ("xresnet50", xresnet50, 64, 224),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, build, bs, size in CASES:
        x = torch.zeros(bs, 3, size, size)
        y = torch.zeros(bs, dtype=torch.long)
        ds = list(zip(x, y))
        dls = DataLoaders.from_dsets(ds, ds, bs=bs, device="cpu")
        learn = Learner(dls, build(n_out=10), loss_func=CrossEntropyLossFlat())
        with learn.no_bar():
            text = str(learn.summary())
        end = text.index("Total non-trainable params")
        end = text.index("\n", end) + 1
        path = os.path.join(OUT, f"summary_{name}_bs{bs}_{size}.txt")
        with open(path, "w") as f:
            f.write(text[:end])
        print(f"wrote {path} ({end} bytes)", file=sys.stderr)
    for name, build in (("xresnet18", xresnet18), ("xresnet50", xresnet50)):
        path = os.path.join(OUT, f"state_dict_{name}.txt")
        with open(path, "w") as f:
            for k, v in build(n_out=10).state_dict().items():
                f.write(f"{k} {','.join(str(d) for d in v.shape)}\n")
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
