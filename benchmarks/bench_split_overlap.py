"""Cost of the val check's train/val overlap test (anonbench.datasets.checks.disjoint_splits).

    python benchmarks/bench_split_overlap.py [--train 20000] [--val 2000] [--kib 160]

Writes ``--train`` and ``--val`` files of random bytes and times the check twice: sizes spread
as JPEGs' are (each file 0.5-1.5 x ``--kib``: only a few val files share a train file's size, and
only those are read), and every file the same size (as uncompressed images would be: every file
is read and hashed once). The files were just written, so they are read from the page cache;
from a cold disk the second case reads at the disk's speed. Prints the seconds and the
microseconds per image of each.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from anonbench.datasets.checks import disjoint_splits


def _split(root: Path, n: int, sizes: np.ndarray, rng: np.random.Generator) -> dict:
    root.mkdir()
    images = []
    for i in range(n):
        name = f"{i:06d}.jpg"
        (root / name).write_bytes(rng.bytes(int(sizes[i])))
        images.append({"id": i + 1, "file_name": name})
    return {"info": {"image_root": str(root)}, "images": images}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--val", type=int, default=2000)
    ap.add_argument("--kib", type=int, default=160, help="mean file size")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    mean = args.kib * 1024
    for label, spread in (("sizes spread (JPEG-like)", True), ("every file one size", False)):
        with tempfile.TemporaryDirectory() as tmp:
            def sizes(n: int) -> np.ndarray:
                return rng.integers(mean // 2, mean * 3 // 2, n) if spread else np.full(n, mean)

            train = _split(Path(tmp) / "train", args.train, sizes(args.train), rng)
            val = _split(Path(tmp) / "val", args.val, sizes(args.val), rng)
            os.sync()
            t0 = time.perf_counter()
            disjoint_splits(train, val)
            s = time.perf_counter() - t0
            n = args.train + args.val
            print(f"{label}: {args.train} train + {args.val} val files of ~{args.kib} KiB: "
                  f"{s:.2f} s, {1e6 * s / n:.0f} us per image")


if __name__ == "__main__":
    main()
