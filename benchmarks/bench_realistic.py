"""Throughput of realistic anonymization (persons or faces per second) on demo-world scenes.

    python benchmarks/bench_realistic.py [--images 40] [--width 256 --height 160]
        [--device auto|cpu|cuda] [--generator demo|dp2] [--variants body-realistic,...]
        [--batch-size 8] [--threads N]

Times ``anonymize.region_mask`` + ``anonymize_image`` per image (no JPEG decode/encode), after one
warm-up image (generator build, cluster centres). Variants come from config.yaml (the demo rows);
``--generator dp2`` runs the same rows with DeepPrivacy2's generators where it is installed.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from anonbench import anonymize, regions  # noqa: E402
from anonbench.datasets.demo import render_image  # noqa: E402
from anonbench.manifest import encode_mask  # noqa: E402

DEFAULT = ("body-realistic,body-realistic-hm,body-realistic-hmlo,body-realistic-notrunc,"
           "face-realistic")


def scenes(n: int, width: int, height: int):
    out = []
    for k in range(n):
        img, objs = render_image(np.random.default_rng([7, 1, k]), width, height)
        anns, faces = [], []
        for i, o in enumerate(objs):
            if o["kind"] != "person":
                continue
            kp = o["keypoints"].ravel().tolist()
            anns.append({"id": 1000 * k + i, "segmentation": encode_mask(o["mask"]),
                         "anonymize": True, "keypoints": kp})
            box = regions.face_box_from_keypoints(kp, (width, height))
            if box is not None:
                faces.append({"annotation_id": 1000 * k + i, "box": list(box)})
        out.append((img, anns, faces))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=160)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--generator", default="demo")
    ap.add_argument("--variants", default=DEFAULT)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with open(Path(__file__).resolve().parents[1] / "config.yaml") as f:
        variants = yaml.safe_load(f)["variants"]
    data = scenes(args.images + 1, args.width, args.height)
    print(f"{args.images} images {args.width}x{args.height}, generator {args.generator}, "
          f"device {args.device}, torch threads {torch.get_num_threads()}, "
          f"cpus {os.cpu_count()}, cuda {torch.cuda.is_available()}")
    for name in args.variants.split(","):
        v = copy.deepcopy(variants[name])
        v.update(generator=args.generator, device=args.device, batch_size=args.batch_size)
        img, anns, faces = data[0]
        t0 = time.perf_counter()
        anonymize.anonymize_image(img, anonymize.region_mask(*img.shape[:2], anns, faces, v), v)
        warm = time.perf_counter() - t0
        n = 0
        t0 = time.perf_counter()
        for img, anns, faces in data[1:]:
            region = anonymize.region_mask(img.shape[0], img.shape[1], anns, faces, v)
            anonymize.anonymize_image(img, region, v)
            n += len(region.instances)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        what = "persons" if v["region"] == "body" else "faces"
        print(f"{name:26s} {n:5d} {what:7s} {dt:7.2f} s  {n / dt:8.1f} {what}/s  "
              f"{1000 * dt / max(n, 1):7.1f} ms each  (first image {warm:.2f} s)")


if __name__ == "__main__":
    main()
