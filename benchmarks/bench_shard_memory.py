"""Peak memory of one anonymize job: a shard of a 1k-image dataset vs. one of a COCO-size dataset.

Not a test.  Writes synthetic COCO-like manifests (7.3 person/other annotations per image with
polygon masks, as COCO train2017: 118,287 images, ~860k instances), splits each with the
workflow's own ``shards`` step, and runs the ``anonymize`` step on one shard of ``--shard-images``
images in a fresh process, reporting its peak RSS (and that of the shards step, which has to
read the whole manifest)::

    python benchmarks/bench_shard_memory.py                 # body-blur, shards of 100 images
    python benchmarks/bench_shard_memory.py --variant maskout --large 118287
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from anonbench import images  # noqa: E402
from anonbench.manifest import write_json  # noqa: E402

W, H = 640, 480


def manifest(n_images: int, image_root: str, rng: np.random.Generator) -> dict:
    anns, imgs = [], []
    aid = 1
    for i in range(1, n_images + 1):
        imgs.append({"id": i, "file_name": f"{(i - 1) % 100:012d}.jpg", "width": W, "height": H})
        for _ in range(rng.poisson(7.3)):
            w, h = rng.uniform(10, 200), rng.uniform(20, 300)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
            poly = np.stack([x + w / 2 * (1 + np.cos(t)), y + h / 2 * (1 + np.sin(t))], 1)
            person = rng.random() < 0.3
            anns.append({"id": aid, "image_id": i, "category_id": 1 if person else 3,
                         "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
                         "area": float(w * h), "iscrowd": 0,
                         "segmentation": [[round(float(v), 2) for v in poly.ravel()]],
                         "anonymize": person})
            aid += 1
    return {"info": {"image_root": image_root}, "images": imgs, "annotations": anns,
            "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]}


CHILD = """
import json, sys, time
sys.path.insert(0, {src!r})
from anonbench import steps
t = time.perf_counter()
steps.{func}(*json.loads(sys.argv[1]))
# VmHWM, not ru_maxrss: the latter survives exec and would report the parent's peak
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(json.dumps({{"seconds": time.perf_counter() - t, "peak_mb": int(hwm) / 1024}}))
"""


def run_step(func: str, *args) -> dict:
    code = CHILD.format(src=str(REPO / "src"), func=func)
    p = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True,
                       text=True)
    if p.returncode:
        sys.exit(p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--large", type=int, default=118287)
    ap.add_argument("--shard-images", type=int, default=100)
    ap.add_argument("--variant", default="blur", choices=["blur", "maskout"])
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    variant = {"region": "body", "method": args.variant, "sigma": 7, "value": 127}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo = (rng.random((H, W, 3)) * 255).astype(np.uint8)
        for i in range(100):
            images.write_image(tmp / "img" / f"{i:012d}.jpg", np.roll(photo, i, axis=1))
        print(f"{'dataset':>10} {'manifest MB':>12} {'shards':>7} {'shards step MB':>15} "
              f"{'anonymize job MB':>17} {'s/image':>8}")
        for n in (args.small, args.large):
            d = tmp / f"d{n}"
            d.mkdir()
            write_json(d / "train.json", manifest(n, str(tmp / "img"), rng))
            n_shards = max(1, n // args.shard_images)
            s = run_step("make_shards", str(d / "train.json"), n_shards, str(d / "shards"))
            shard = sorted((d / "shards").glob("*.json"))[0]
            n_img = len(json.loads(shard.read_text())["images"])
            a = run_step("anonymize_shard", str(shard), None, variant, str(d / "out"))
            print(f"{n:>10} {(d / 'train.json').stat().st_size / 2**20:>12.1f} {n_shards:>7} "
                  f"{s['peak_mb']:>15.0f} {a['peak_mb']:>17.0f} {a['seconds'] / n_img:>8.3f}"
                  f"   (shards step {s['seconds']:.0f} s)")
    print("goal: the anonymize job's peak memory stays flat as the dataset grows")


if __name__ == "__main__":
    main()
