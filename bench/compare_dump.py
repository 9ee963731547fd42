#!/usr/bin/env python3
"""Relative error of a `vidi dump` file against a reference dump (golden or PyTorch).

    python3 bench/compare_dump.py OURS.safetensors REF.safetensors [names...]
    python3 bench/compare_dump.py --row LABEL OURS.safetensors REF.safetensors

The first form prints one line per tensor present in both: ||ours - ref|| / ||ref|| and max
|diff|, plus id agreement for integer tensors and, for 2-D logits, top-1 (argmax) agreement per
row; rows whose top-1 differs are listed with the reference's lead of its top-1 over that of
ours (a small lead: a near-tie that numeric error flips). The second prints one markdown table
row for prompt_logits and forced_logits (teacher-forced steps): relative error and top-1
agreement of each. argmax takes the first index on ties, as torch.argmax. Needs numpy and
safetensors (the GPU image has both).
"""
import sys

import numpy as np
from safetensors.numpy import load_file


def top1(a, b):
    """(rows where argmax agrees, rows, the reference's leads at the rows that differ)."""
    ia, ib = a.argmax(axis=1), b.argmax(axis=1)
    rows = np.arange(b.shape[0])
    leads = b[rows, ib] - b[rows, ia]
    differ = ia != ib
    return int((~differ).sum()), int(b.shape[0]), leads[differ]


def rel_err(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def compare(ours, ref, names):
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
        line = f"{name:28s} rel {rel_err(a64, b64):.3e}  max|d| {np.abs(a64 - b64).max():.3e}"
        if a.ndim == 2 and a.shape[0] > 0:
            same, rows, leads = top1(a64, b64)
            line += f"  top-1 {same}/{rows}"
            if len(leads):
                line += "  (ref leads where they differ: " + ", ".join(f"{x:.3g}" for x in leads) + ")"
        print(line)


def row(label, ours, ref):
    cells = [label]
    for name in ("prompt_logits", "forced_logits"):
        if name not in ours or name not in ref or ours[name].shape != ref[name].shape:
            cells += ["–", "–"]
            continue
        a, b = ours[name].astype(np.float64), ref[name].astype(np.float64)
        same, rows, leads = top1(a, b)
        flips = f" (leads {', '.join(f'{x:.2g}' for x in leads)})" if len(leads) else ""
        cells += [f"{rel_err(a, b):.3e}", f"{same}/{rows}{flips}"]
    print("| " + " | ".join(cells) + " |")


def main() -> int:
    args = sys.argv[1:]
    if args and args[0] == "--row":
        if len(args) != 4:
            print(__doc__)
            return 2
        row(args[1], load_file(args[2]), load_file(args[3]))
        return 0
    if len(args) < 2:
        print(__doc__)
        return 2
    ours, ref = load_file(args[0]), load_file(args[1])
    compare(ours, ref, args[2:] or sorted(set(ours) & set(ref)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
