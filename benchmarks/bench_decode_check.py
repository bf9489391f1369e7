"""Cost of the full decode check (rule check_images) per 2048x1024 image, JPEG and PNG.

    python benchmarks/bench_decode_check.py [--images 20]

Prints milliseconds per image for :func:`anonbench.images.verify_image` (libjpeg-turbo through
simplejpeg with strict=True for JPEG; Pillow for PNG) and, beside it, the header check that
prepare runs (:func:`anonbench.datasets.checks.image_size`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data, transform

from anonbench.datasets.checks import image_size
from anonbench.images import verify_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=20)
    args = ap.parse_args()
    base = (transform.resize(data.astronaut(), (1024, 2048), anti_aliasing=True) * 255).astype(
        np.uint8)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, save in (("jpg", {"quality": 95}), ("png", {"compress_level": 6})):
            paths = []
            for i in range(args.images):
                p = Path(tmp) / f"{i:03d}.{fmt}"
                Image.fromarray(np.roll(base, int(rng.integers(0, 2048)), axis=1)).save(p, **save)
                paths.append(p)
            for name, fn in (("full decode (check_images)", verify_image),
                             ("header + end marker (prepare)", image_size)):
                t0 = time.perf_counter()
                for p in paths:
                    fn(p)
                ms = 1000 * (time.perf_counter() - t0) / len(paths)
                print(f"{fmt.upper():4s} 2048x1024  {name:32s} {ms:7.2f} ms/image")


if __name__ == "__main__":
    main()
