"""Blur and mask-out throughput of a shard of 2048x1024 images vs. plain decode + encode.

    python benchmarks/bench_anonymize.py [--images 20] [--persons 8] [--repeat 3]

Prints milliseconds per image (median of ``--repeat`` passes, interleaved so that a busy machine
slows all alike) for: decode + encode (the I/O floor), face-blur, body-blur, body-maskout, and
the ratio to the floor (goal: <= 1.15).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from skimage import data, transform

from anonbench import anonymize, images
from anonbench.manifest import encode_mask, write_json


def make_shard(root: Path, n: int, persons: int, rng: np.random.Generator) -> Path:
    base = (transform.resize(data.astronaut(), (1024, 2048), anti_aliasing=True) * 255).astype(
        np.uint8)
    imgs, anns = [], []
    for i in range(n):
        img = np.roll(base, int(rng.integers(0, 2048)), axis=1)
        images.write_image(root / "src" / f"{i:04d}.jpg", img)
        imgs.append({"id": i + 1, "file_name": f"{i:04d}.jpg", "width": 2048, "height": 1024})
        for p in range(persons):
            h = int(rng.integers(30, 400))
            w = max(8, h // 3)
            x, y = int(rng.integers(0, 2048 - w)), int(rng.integers(0, 1024 - h))
            m = np.zeros((1024, 2048), bool)
            m[y:y + h, x:x + w] = True
            kp = np.zeros((17, 3))
            kp[1], kp[2] = (x + w * 0.6, y + h * 0.06, 2), (x + w * 0.4, y + h * 0.06, 2)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1,
                         "bbox": [x, y, w, h], "segmentation": encode_mask(m), "iscrowd": 0,
                         "anonymize": True, "keypoints": kp.ravel().tolist(), "num_keypoints": 2})
    m = {"info": {"image_root": str(root / "src"), "shard": "000"}, "images": imgs,
         "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    write_json(root / "shard.json", m)
    from anonbench.annotate import detect_faces

    write_json(root / "faces.json", detect_faces(m, {"detector": "keypoints"}))
    return root / "shard.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--persons", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shard = make_shard(root, args.images, args.persons, np.random.default_rng(0))
        variants = [("face-blur", {"region": "face", "method": "blur", "sigma": 7}),
                    ("body-blur", {"region": "body", "method": "blur", "sigma": 7}),
                    ("body-maskout", {"region": "body", "method": "maskout"})]
        times: dict[str, list[float]] = {"floor": [], **{name: [] for name, _ in variants}}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            shutil.rmtree(root / "io", ignore_errors=True)  # a new directory, as a shard's
            for p in sorted((root / "src").glob("*.jpg")):
                images.write_image(root / "io" / p.name, images.read_image(p))
            times["floor"].append((time.perf_counter() - t0) / args.images)
            for name, variant in variants:
                t0 = time.perf_counter()
                anonymize.anonymize_shard(str(shard), str(root / "faces.json"), variant,
                                          str(root / name), progress=False)
                times[name].append((time.perf_counter() - t0) / args.images)
        floor = statistics.median(times["floor"])
        print(f"{args.images} images 2048x1024, {args.persons} persons each, "
              f"median of {args.repeat}")
        print(f"decode + encode (JPEG q100 4:4:4): {floor * 1000:7.1f} ms/image")
        for name, _ in variants:
            t = statistics.median(times[name])
            print(f"{name:13s}: {t * 1000:7.1f} ms/image, ratio to decode+encode {t / floor:.2f}")


if __name__ == "__main__":
    main()
