"""Resume checkpoint write (and read) time and size for torchvision's R-50 FPN Mask R-CNN.

The paper-scale model (``preset: paper``, 81 classes as COCO), SGD with its momentum buffers
filled (one step on zero gradients: the same tensors a real step leaves), every RNG state and
the data-sampler state of COCO train2017 (118k images): what ``backends.runtime.save_resume``
writes every ``checkpoint_every_minutes``.  Prints size, write and read seconds (median of
``--repeat``) into ``--dir`` (default: a temporary directory; pass the cluster's file system to
measure there).  ``python benchmarks/bench_checkpoint.py [--device cuda] [--arch keypoint_rcnn]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch

from anonbench.backends import runtime
from anonbench.backends import torchvision_backend as tb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="mask_rcnn", choices=["mask_rcnn", "keypoint_rcnn"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    cfg = tb.resolve_config({"backend": "torchvision", "arch": args.arch, "device": args.device})
    torch.manual_seed(0)
    model = tb.build_model(cfg, num_classes=81 if args.arch == "mask_rcnn" else 2,
                           num_keypoints=17).to(args.device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.02, momentum=0.9, weight_decay=1e-4)
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    rng = np.random.default_rng(0)
    sampler = tb._Batches(118287, 16, 90000, 0.5, rng)
    next(iter(sampler))
    n_params = sum(p.numel() for p in model.parameters())
    key = {"config": "x", "manifest": "y", "seed": "0"}
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        writes, reads, size = [], [], 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            state = {"iteration": 1, "attempt": 1, "reason": "bench",
                     "model": model.state_dict(), "optimizer": opt.state_dict(),
                     "scheduler": None, "scaler": None, "rng": runtime.rng_state(args.device),
                     "sampler": sampler.state(1), "model_cfg": cfg, "seed": 0}
            secs, size = runtime.save_resume(state, key, d)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            writes.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            runtime.load_resume(d, key, warn=print)
            reads.append(time.perf_counter() - t0)
    print(f"{args.arch} R-50 FPN ({n_params / 1e6:.1f}M parameters), SGD momentum, "
          f"device {args.device}, torch {torch.__version__}")
    print(f"resume checkpoint: {size / 2**20:.1f} MiB; write {statistics.median(writes):.2f} s "
          f"(min {min(writes):.2f}, max {max(writes):.2f}, incl. fsync); "
          f"read + check {statistics.median(reads):.2f} s  [{args.repeat} runs]")


if __name__ == "__main__":
    main()
