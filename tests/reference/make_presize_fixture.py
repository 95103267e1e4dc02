#!/usr/bin/env python3
"""make_presize_fixture.py: golden presize fixture from PIL, the way fastai presizes.

Writes tests/loader/fixtures/presize_pil.bin, read by tests/loader/test_presize.c.
For a few real Imagenette files it records what fastai's Resize(S, method='crop')
produces with Pillow: decode (PIL.Image.open + convert('RGB')), optionally a
sub-rectangle of the decoded image (to get non-square sources from the square
224-px set), the crop box from the position fractions (px, py) with fastai's
int() truncations, then Pillow's resize((S, S), BILINEAR). Small outputs are
stored whole, large ones as a 64-bit FNV-1a hash; each file's full PIL decode
is stored as a hash too (checks that TurboJPEG decodes exactly as PIL does).

Run by developers, not CI (needs Pillow):
    /opt/venv/bin/python tests/reference/make_presize_fixture.py [DATA_DIR]

Format, little-endian: b"NFPS", u32 version (1), u32 n_cases, then per case:
u16 len + path (relative to DATA_DIR), u32 rect[4] (x, y, w, h of the decoded
image used as the source), f64 px, f64 py, u32 S, u64 fnv1a(output),
u64 fnv1a(full decode), u8 whole, then S*S*3 output bytes when whole == 1.
"""
import os
import struct
import sys

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "loader", "fixtures", "presize_pil.bin")

FILES = [
    "val/n01440764/ILSVRC2012_val_00009111.JPEG",
    "val/n03417042/ILSVRC2012_val_00002210.JPEG",
    "val/n03888257/ILSVRC2012_val_00001440.JPEG",
    "val/n01440764/n01440764_15560.JPEG",   # grayscale
]

# (rect or None for the whole image, px, py, S)
CASES = [
    (None, 0.5, 0.5, 64),
    (None, 0.123, 0.877, 460),
    ((0, 37, 224, 150), 0.3, 0.7, 100),
    ((5, 0, 131, 224), 0.9, 0.25, 37),
    ((11, 50, 200, 117), 0.61, 0.5, 460),
    ((11, 50, 200, 117), 0.5, 0.5, 48),
    ((100, 0, 124, 224), 0.0, 0.999, 61),
]


def fnv1a(data):
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def fastai_crop(img, px, py, size):
    """fastai Resize.encodes (method crop) on a PIL image, then crop_pad's resize."""
    w, h = img.size
    m = w / size if w / size < h / size else h / size
    cw, ch = int(m * size), int(m * size)
    x0, y0 = int(px * (w - cw)), int(py * (h - ch))
    return img.crop((x0, y0, x0 + cw, y0 + ch)).resize((size, size), Image.BILINEAR)


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data", "imagenette2-224")
    out = [b"NFPS", struct.pack("<II", 1, len(FILES) * len(CASES))]
    for rel in FILES:
        img = Image.open(os.path.join(data, rel))
        img.load()
        img = img.convert("RGB")
        full_hash = fnv1a(img.tobytes())
        for rect, px, py, size in CASES:
            if rect is None:
                rect = (0, 0) + img.size
            x, y, w, h = rect
            src = img.crop((x, y, x + w, y + h))
            res = fastai_crop(src, px, py, size).tobytes()
            whole = size <= 48
            out.append(struct.pack("<H", len(rel)) + rel.encode())
            out.append(struct.pack("<IIIIddIQQB", x, y, w, h, px, py, size, fnv1a(res), full_hash, whole))
            if whole:
                out.append(res)
    blob = b"".join(out)
    with open(OUT, "wb") as f:
        f.write(blob)
    print(f"wrote {OUT}: {len(blob)} bytes")


if __name__ == "__main__":
    main()
