"""The study's GPU cost, projected: GPU-hours per table and in total, fp32 against the fastest
measured mode.  Not a test.

    python benchmarks/study_cost.py --configfile config/paper.yaml --measured device_run.csv
    python benchmarks/study_cost.py --configfile config/paper.yaml \\
        --ips mask_rcnn:fp32=7.66 --ips keypoint_rcnn:fp32=6.33

Every planned training run (table x variant x seed, each counted once however many tables share
it) costs ``iterations x batch_size / images_per_s`` GPU-seconds.  ``images_per_s`` per GPU
comes from the csv of ``benchmarks/device_run.sh`` (train rows: the workload of the run's
dataset and arch, batch 8) or from ``--ips arch[:mode]=N`` (``arch@depth`` for one depth).
Where a dataset's images are another size than the measured workload's, the rate is scaled by
pixels.  Without either, detectron2's published V100 speeds are used (MODEL_ZOO.md, 8 GPUs,
16 images: Mask R-CNN R-50 FPN 0.261 s/iter -> 7.66 images/s per GPU; Keypoint R-CNN 0.316 ->
6.33; Mask R-CNN R-101 0.340 -> 5.88; RetinaNet R-50 0.205 -> 9.76).  Realistic
anonymization and evaluation are not counted.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from anonbench.backends import check_model_config  # noqa: E402
from anonbench.config import load_config_files, table_seeds  # noqa: E402

#: detectron2 MODEL_ZOO.md (V100, 8 GPUs x 2 images): images/s per GPU at COCO size
#: (R-50 FPN 3x 0.261, R-101 FPN 3x 0.340, Keypoint R-50 FPN 0.316, RetinaNet R-50 1x 0.205)
PUBLISHED_V100 = {("mask_rcnn", 50): 16 / 0.261 / 8, ("mask_rcnn", 101): 16 / 0.340 / 8,
                  ("keypoint_rcnn", 50): 16 / 0.316 / 8, ("retinanet", 50): 16 / 0.205 / 8}
#: training input pixels per dataset format (after the model's resize, as measured)
FORMAT_PIXELS = {"coco": 800 * 1067, "cityscapes": 1024 * 2048, "bdd100k": 720 * 1280}
#: the device script's workload of each format
FORMAT_WORKLOAD = {"coco": "coco", "cityscapes": "cityscapes", "bdd100k": "coco"}


def read_measured(path: str) -> dict[tuple[str, str, int, str], float]:
    """(workload, arch, depth, mode) -> the best images/s at batch 8 (either memory format)."""
    best: dict[tuple[str, str, int, str], float] = {}
    with open(path) as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        for r in rows:
            if r["section"] != "train" or not r["images_per_s"] or r["batch"] != "8":
                continue
            workload = r["workload"].split("-r")[0]
            key = (workload, r["arch"], int(r["depth"]), r["mode"])
            best[key] = max(best.get(key, 0.0), float(r["images_per_s"]))
    return best


def planned_runs(config: dict[str, Any]) -> dict[str, list[tuple[str, str, int]]]:
    """table -> its training runs (variant, model, seed); a run shared with an earlier table
    is listed under the first one only."""
    seen: set[tuple[str, str, str, int]] = set()
    out: dict[str, list[tuple[str, str, int]]] = {}
    for name, t in config["tables"].items():
        runs = []
        for v in t["variants"]:
            for s in table_seeds(config, name):
                key = (t["dataset"], v, t["model"], s)
                if key not in seen:
                    seen.add(key)
                    runs.append((v, t["model"], s))
        out[name] = runs
    return out


def model_facts(model_cfg: dict[str, Any]) -> tuple[str, int, int, int]:
    """(arch, depth, iterations, batch_size) of a model entry, with its backend's defaults."""
    check_model_config(model_cfg)
    backend = model_cfg["backend"]
    if backend == "torchvision":
        from anonbench.backends.torchvision_config import resolve_config
        cfg = resolve_config(model_cfg)
    else:
        cfg = dict(model_cfg)
    return (cfg["arch"], int(cfg.get("depth", 50)), int(cfg.get("iterations", 90000)),
            int(cfg.get("batch_size", 16)))


def rate(measured: dict, given: dict, fmt: str, arch: str, depth: int, mode: str
         ) -> tuple[float | None, str]:
    """images/s per GPU for a run and where it comes from."""
    for key in ((arch, depth, mode), (arch, None, mode)):
        if key in given:
            return given[key], "given"
    workload = FORMAT_WORKLOAD.get(fmt, "coco")
    for wl in (workload, "cityscapes", "coco"):
        v = measured.get((wl, arch, depth, mode))
        if v is not None:
            wl_pixels = FORMAT_PIXELS["cityscapes" if wl == "cityscapes" else "coco"]
            return v * wl_pixels / FORMAT_PIXELS.get(fmt, wl_pixels), f"measured ({wl} size)"
    if mode == "fp32" and not measured and not given and (arch, depth) in PUBLISHED_V100:
        v = PUBLISHED_V100[(arch, depth)]
        return v * FORMAT_PIXELS["coco"] / FORMAT_PIXELS.get(fmt, FORMAT_PIXELS["coco"]), \
            "detectron2 V100"
    return None, "not measured"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configfile", nargs="+", default=[str(REPO / "config/paper.yaml")])
    ap.add_argument("--measured", help="device_run.csv of benchmarks/device_run.sh")
    ap.add_argument("--ips", action="append", default=[],
                    help="arch[@depth][:mode]=images/s per GPU (mode default fp32)")
    args = ap.parse_args(argv)
    config = load_config_files(args.configfile)
    measured = read_measured(args.measured) if args.measured else {}
    given: dict[tuple[str, int | None, str], float] = {}
    for item in args.ips:
        lhs, v = item.split("=")
        arch_depth, _, mode = lhs.partition(":")
        arch, _, depth = arch_depth.partition("@")
        given[(arch, int(depth) if depth else None, mode or "fp32")] = float(v)
    modes = sorted({k[-1] for k in measured} | {k[-1] for k in given} | {"fp32"},
                   key=lambda m: ("fp32", "bf16", "fp16").index(m) if m in (
                       "fp32", "bf16", "fp16") else 9)
    total: dict[str, float] = defaultdict(float)
    missing: list[str] = []
    print(f"| table | runs | iterations | {' | '.join(f'{m} GPU-h' for m in modes)} | "
          f"fastest | rate from |")
    print("|" + "---|" * (len(modes) + 5))
    for name, runs in planned_runs(config).items():
        t = config["tables"][name]
        fmt = config["datasets"][t["dataset"]]["format"]
        arch, depth, iters, batch = model_facts(config["models"][t["model"]])
        hours = {}
        source = ""
        for m in modes:
            ips, src = rate(measured, given, fmt, arch, depth, m)
            if ips:
                hours[m] = len(runs) * iters * batch / ips / 3600
                source = source or src
        if "fp32" not in hours:
            missing.append(f"{name} ({arch} R{depth})")
        for m, h in hours.items():
            total[m] += h
        fastest = min(hours, key=hours.get) if hours else ""
        cells = [f"{hours[m]:,.0f}" if m in hours else "-" for m in modes]
        print(f"| {name} | {len(runs)} | {iters:,} x {batch} | {' | '.join(cells)} | "
              f"{fastest} | {source or 'not measured'} |")
    cells = [f"{total[m]:,.0f}" if m in total else "-" for m in modes]
    print(f"| **total** | | | {' | '.join(cells)} | | |")
    if total:
        best = min(total, key=total.get)
        print(f"\nfp32 {total.get('fp32', 0):,.0f} GPU-hours; fastest mode {best}: "
              f"{total[best]:,.0f} GPU-hours (runs with a rate in every mode only compare fairly)")
    if missing:
        print("not counted (no fp32 rate; give --ips or measure): " + ", ".join(missing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
