#!/usr/bin/env python3
"""Relative error of a `vidi dump` file against a reference dump (golden or PyTorch).

    python3 bench/compare_dump.py OURS.safetensors REF.safetensors [names...]

Prints one line per tensor present in both: ||ours - ref|| / ||ref|| and max |diff|,
plus id agreement for integer tensors and, for 2-D logits, top-1 (argmax) agreement per row. Needs numpy and safetensors (the GPU image has both).
"""
import sys

import numpy as np
from safetensors.numpy import load_file


def main() -> int:
    ours, ref = load_file(sys.argv[1]), load_file(sys.argv[2])
    names = sys.argv[3:] or sorted(set(ours) & set(ref))
    for name in names:
        if name not in ours or name not in ref:
            print(f"{name:28s} missing in {'ours' if name not in ours else 'ref'}")
            continue
        a, b = ours[name], ref[name]
        if a.shape != b.shape:
            print(f"{name:28s} shape {a.shape} vs {b.shape}")
            continue
        if np.issubdtype(b.dtype, np.integer):
            same = int((a == b).sum())
            print(f"{name:28s} ids equal {same}/{b.size}")
            continue
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        rel = np.linalg.norm(a64 - b64) / max(np.linalg.norm(b64), 1e-30)
        top1 = ""
        if a.ndim == 2 and a.shape[0] > 0:
            same = int((a64.argmax(axis=1) == b64.argmax(axis=1)).sum())
            top1 = f"  top-1 {same}/{a.shape[0]}"
        print(f"{name:28s} rel {rel:.3e}  max|d| {np.abs(a64 - b64).max():.3e}{top1}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
