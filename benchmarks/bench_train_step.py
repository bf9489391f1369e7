"""Seconds per training iteration of the torchvision backend's models on CPU (or CUDA).

Not a test.  Random images with random boxes/masks of several sizes, so no dataset is needed::

    python benchmarks/bench_train_step.py                       # demo model, 256x160, 1 and 2 threads
    python benchmarks/bench_train_step.py --model paper --width 1333 --height 800 --threads 2 \
        --iters 3 --warmup 1
    python benchmarks/bench_train_step.py --set fpn_channels=64 --set batch_size=2
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from anonbench.backends import torchvision_backend as tb

PAPER = {"depth": 50, "width": 1.0, "fpn_channels": 256}  # + torchvision defaults (800/1333 ...)


def _batch(rng: np.random.Generator, n: int, h: int, w: int, num_classes: int, arch: str,
           objects: int):
    images, targets = [], []
    for _ in range(n):
        img = torch.from_numpy(rng.random((3, h, w), dtype=np.float32))
        bh = rng.uniform(0.06, 0.5, objects) * h
        bw = bh * rng.uniform(0.3, 1.5, objects)
        bw = np.minimum(bw, w - 2)
        x1 = rng.uniform(0, w - bw)
        y1 = rng.uniform(0, h - bh)
        boxes = torch.tensor(np.stack([x1, y1, x1 + bw, y1 + bh], 1), dtype=torch.float32)
        t = {"boxes": boxes, "labels": torch.from_numpy(rng.integers(1, num_classes, objects))}
        if arch == "mask_rcnn":
            masks = torch.zeros((objects, h, w), dtype=torch.uint8)
            for i, b in enumerate(boxes.round().int().tolist()):
                masks[i, b[1]:b[3], b[0]:b[2]] = 1
            t["masks"] = masks
        else:
            kp = torch.zeros((objects, 17, 3))
            kp[..., 0] = boxes[:, None, 0] + torch.rand(objects, 17) * (boxes[:, None, 2] - boxes[:, None, 0])
            kp[..., 1] = boxes[:, None, 1] + torch.rand(objects, 17) * (boxes[:, None, 3] - boxes[:, None, 1])
            kp[..., 2] = 2
            t["keypoints"] = kp
        images.append(img)
        targets.append(t)
    return images, targets


def bench(cfg: dict, threads: int, height: int, width: int, iters: int, warmup: int,
          objects: int, num_classes: int = 4) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = tb.resolve_config(cfg)
    model = tb.build_model(cfg, num_classes=num_classes)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    batches = [_batch(rng, cfg["batch_size"], height, width, num_classes, cfg["arch"], objects)
               for _ in range(min(iters + warmup, 8))]
    times = []
    for it in range(iters + warmup):
        images, targets = batches[it % len(batches)]
        t0 = time.perf_counter()
        loss = sum(model(images, targets).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it >= warmup:
            times.append(time.perf_counter() - t0)
    model.eval()
    with torch.inference_mode():
        t0 = time.perf_counter()
        n_inf = max(1, min(iters, 10))
        for it in range(n_inf):
            model(batches[it % len(batches)][0])
        inf = (time.perf_counter() - t0) / (n_inf * cfg["batch_size"])
    return {
        "threads": threads,
        "image": f"{width}x{height}",
        "batch_size": cfg["batch_size"],
        "s_per_iter": round(float(np.median(times)), 4),
        "s_per_image_train": round(float(np.median(times)) / cfg["batch_size"], 4),
        "s_per_image_predict": round(inf, 4),
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", choices=["demo", "paper", "both"], default="both")
    ap.add_argument("--arch", choices=["mask_rcnn", "keypoint_rcnn"], default="mask_rcnn")
    ap.add_argument("--width", type=int, default=256, help="image width (px)")
    ap.add_argument("--height", type=int, default=160, help="image height (px)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--iters", type=int, default=20, help="timed iterations (paper: use ~3)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--objects", type=int, default=6, help="instances per image")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a model config key, e.g. --set fpn_channels=64")
    a = ap.parse_args()
    models = ["demo", "paper"] if a.model == "both" else [a.model]
    for name in models:
        cfg = {"preset": "demo"} if name == "demo" else dict(PAPER)
        # the paper model keeps its own 800/1333 resize; the images are what --width/--height say
        cfg["arch"] = a.arch
        if a.batch_size:
            cfg["batch_size"] = a.batch_size
        elif name == "paper":
            cfg["batch_size"] = 2
        for kv in a.set:
            k, v = kv.split("=", 1)
            cfg[k] = json.loads(v)
        for th in a.threads:
            iters = a.iters if name == "demo" else min(a.iters, 3)
            warm = a.warmup if name == "demo" else min(a.warmup, 1)
            r = bench(cfg, th, a.height, a.width, iters, warm, a.objects)
            print(json.dumps({"model": name, "arch": a.arch, **r}), flush=True)


if __name__ == "__main__":
    main()
