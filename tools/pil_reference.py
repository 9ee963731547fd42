#!/usr/bin/python3
"""Reference outputs of Pillow's Image.resize(BICUBIC) for the media tests.

Inputs are synthetic and regenerated bit for bit by tests/media/resize_test.cpp from the
formula in `make_image` (so only the outputs are stored); outputs go into
tests/data/media/pil_bicubic_reference.safetensors as u8 tensors "case<i>" [dh, dw, ch]
with metadata "case<i>" = "sw,sh,ch,dw,dh,seed" and the Pillow version that made them.

Run with Debian's python3-pil (apt-get install python3-pil python3-numpy):
    /usr/bin/python3 tools/pil_reference.py [output.safetensors]

The committed file was made on the dev box with Debian 12's Pillow 9.4.0 (recorded in its
metadata), not on the GPU machine as issue 3 suggests, to save GPU time: Resample.c's
8-bit BICUBIC path is unchanged between 9.4 and current Pillow (same coefficients, same
22-bit fixed point), and this Pillow with the ffmpeg 5.1 CLI reproduces the golden
pixel_values_frame* of ../shared/golden exactly (max |diff| 3e-8, the f32 rounding).
"""
import json
import struct
import sys

import numpy as np
import PIL
from PIL import Image

# (source w, source h, channels, target w, target h): up- and down-scaling, odd sizes,
# one axis up and the other down, a non-square target, 1- and 3-channel images.
CASES = [
    (320, 240, 3, 384, 384),
    (1280, 720, 3, 384, 384),
    (256, 256, 1, 384, 384),
    (100, 37, 1, 384, 384),
    (17, 400, 1, 384, 384),
    (640, 480, 3, 224, 160),
    (33, 21, 1, 50, 7),
    (2, 2, 1, 384, 384),
]


def make_image(w, h, ch, seed):
    """Checkerboard of 8x8 cells: hashed noise (exercises clipping) and sawtooth ramps."""
    y, x, c = np.meshgrid(np.arange(h, dtype=np.uint32), np.arange(w, dtype=np.uint32),
                          np.arange(ch, dtype=np.uint32), indexing="ij")
    hsh = (x * np.uint32(73856093)) ^ (y * np.uint32(19349663)) ^ (c * np.uint32(83492791)) \
        ^ np.uint32((seed * 2654435761) & 0xFFFFFFFF)
    hsh ^= hsh >> np.uint32(13)
    hsh *= np.uint32(0x5BD1E995)
    hsh ^= hsh >> np.uint32(15)
    noise = hsh & np.uint32(255)
    ramp = (x * np.uint32(5) + y * np.uint32(3) + c * np.uint32(60)) & np.uint32(255)
    img = np.where(((x ^ y) & np.uint32(8)) != 0, noise, ramp)
    return img.astype(np.uint8)


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/media/pil_bicubic_reference.safetensors"
    header, blobs, offset = {}, [], 0
    meta = {"pillow_version": PIL.__version__, "generator": "tools/pil_reference.py make_image"}
    for i, (sw, sh, ch, dw, dh) in enumerate(CASES):
        seed = 1000 + i
        img = make_image(sw, sh, ch, seed)
        pil = Image.fromarray(img[:, :, 0] if ch == 1 else img, "L" if ch == 1 else "RGB")
        out = np.asarray(pil.resize((dw, dh), Image.BICUBIC), dtype=np.uint8).reshape(dh, dw, ch)
        blob = out.tobytes()
        header[f"case{i}"] = {"dtype": "U8", "shape": [dh, dw, ch], "data_offsets": [offset, offset + len(blob)]}
        meta[f"case{i}"] = f"{sw},{sh},{ch},{dw},{dh},{seed}"
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(out_path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    print(f"wrote {out_path}: {len(CASES)} cases, Pillow {PIL.__version__}")


if __name__ == "__main__":
    main()
