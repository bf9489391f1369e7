"""Every GPU measurement of the study's cost in one run: one table, one csv.  Not a test.

    bash benchmarks/device_run.sh                       # on one GPU: within 8 minutes on an H200
    bash benchmarks/device_run.sh --quick --device cpu  # same code paths, tiny: < 2 min, 2 cores

Sections (``--sections``, default all):

* ``train``: the torchvision backend's own :func:`train_step` (autocast, GradScaler, clipping,
  optimizer) on synthetic batches: Mask R-CNN R-50 FPN at the study's Cityscapes size
  (2048x1024, no resize) and Keypoint R-CNN R-50 FPN at COCO size (640x480 -> 1067x800), fp32 /
  bf16 / fp16 x batch 2 / 8 x channels_last off / on; Mask R-CNN also at COCO size and R-101 /
  R-152 at Cityscapes size (batch 8) for the cost projection.  s/iter, images/s, peak memory.
* ``eval``: inference images/s (model forward incl. mask pasting, batch 8; + the COCO result
  encoding of :func:`predict` when pycocotools is there), fp32 and bf16.
* ``realistic``: persons/s of the body generator on 288x160 crops (demo generator; DeepPrivacy2's
  generator built from its config with its initial weights when ``dp2`` imports).
* ``data``: the CPU data pipeline (the backend's ``_TrainSet`` + DataLoader, as in training) on
  2048x1024 JPEG and PNG with N workers, against the fastest measured training rate.

Rows are labelled by mode (``fp32``, ``bf16``, ``fp16``) with ``s/iter``.  ``--budget-s`` skips
what is left once the time is spent (row note ``skipped: budget``).  The csv is what
``benchmarks/study_cost.py --measured`` reads.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_train_step import _batch  # noqa: E402

from anonbench.backends import torchvision_backend as tb  # noqa: E402
from anonbench.backends.precision import autocast, grad_scaler, prepare_model  # noqa: E402
from anonbench.backends.torchvision_config import resolve_config  # noqa: E402

MODES = ("fp32", "bf16", "fp16")
AMP = {"fp32": "off", "bf16": "bf16", "fp16": "fp16"}
FIELDS = ["section", "workload", "arch", "depth", "mode", "batch", "channels_last", "height",
          "width", "s_per_iter", "images_per_s", "peak_mem_gib", "note"]

# (workload, arch, image h, w, model keys, classes, objects per image, grid)
#   grid "full": every mode x batch 2/8 x channels_last; "b8": every mode, batch 8, NCHW
FULL_WORKLOADS = [
    ("cityscapes", "mask_rcnn", 1024, 2048, {"min_size": 1024, "max_size": 2048}, 9, 12, "full"),
    ("coco", "keypoint_rcnn", 480, 640, {"min_size": 800, "max_size": 1333}, 2, 3, "full"),
    ("coco", "mask_rcnn", 480, 640, {"min_size": 800, "max_size": 1333}, 81, 7, "b8"),
    ("cityscapes-r101", "mask_rcnn", 1024, 2048, {"min_size": 1024, "max_size": 2048,
                                                   "depth": 101}, 9, 12, "b8"),
    ("cityscapes-r152", "mask_rcnn", 1024, 2048, {"min_size": 1024, "max_size": 2048,
                                                   "depth": 152}, 9, 12, "b8"),
]
# the same code paths on the demo model at tiny sizes
QUICK_WORKLOADS = [
    ("cityscapes", "mask_rcnn", 64, 128, {"min_size": 64, "max_size": 128}, 9, 4, "full"),
    ("coco", "keypoint_rcnn", 48, 64, {"min_size": 64, "max_size": 96}, 2, 2, "full"),
]
PAPER_MODEL = {"depth": 50, "width": 1.0, "fpn_channels": 256}


class Budget:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def spent(self) -> bool:
        return time.monotonic() > self.end


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step: Callable[[], Any], device: torch.device, warmup: int, iters: int,
           min_seconds: float) -> float:
    """Seconds per call of ``step`` after ``warmup`` calls: at least ``iters`` calls and
    ``min_seconds`` of them."""
    for _ in range(warmup):
        step()
    _sync(device)
    if device.type == "cuda":   # the peak of the timed calls: not cuDNN's autotuning trials
        torch.cuda.reset_peak_memory_stats(device)
    n, t0 = 0, time.perf_counter()
    while n < iters or time.perf_counter() - t0 < min_seconds:
        step()
        n += 1
        if n >= 10 * iters:
            break
    _sync(device)
    return (time.perf_counter() - t0) / n


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak(device: torch.device) -> str:
    if device.type != "cuda":
        return ""
    return f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f}"


def _oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e)


def _model_cfg(arch: str, keys: dict[str, Any], quick: bool) -> dict[str, Any]:
    base = {"preset": "demo"} if quick else dict(PAPER_MODEL)
    cfg = resolve_config({**base, "arch": arch, **keys, "box_score_thresh": 0.05})
    return cfg


def bench_train(device: torch.device, quick: bool, budget: Budget, rows: list[dict]) -> None:
    warmup, iters, min_s = (1, 2, 0.0) if quick else (3, 5, 2.0)
    rng = np.random.default_rng(0)
    for workload, arch, h, w, keys, classes, objects, grid in (
            QUICK_WORKLOADS if quick else FULL_WORKLOADS):
        cfg = _model_cfg(arch, keys, quick)
        batches = (2, 8) if grid == "full" else (8,)
        layouts = (False, True) if grid == "full" else (False,)
        try:
            torch.manual_seed(0)
            model = tb.build_model(cfg, num_classes=classes)
        except Exception as e:  # noqa: BLE001
            rows.append(_row("train", workload, cfg, "fp32", 0, False, h, w, note=f"build: {e}"))
            continue
        # every row starts from the built weights: a row that fails (fp16 NaN) or trains the
        # weights into a bad state must not carry over into the next rows
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        for batch in batches:
            images, targets = _batch(rng, batch, h, w, classes, arch, objects)
            images = [im.to(device) for im in images]
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            for mode in MODES:
                for cl in layouts:
                    if budget.spent():
                        rows.append(_row("train", workload, cfg, mode, batch, cl, h, w,
                                         note="skipped: budget"))
                        continue
                    # lr: the schedule's first (warm-up) rate.  At the full lr (0.02), with no
                    # warm-up, from scratch, on one repeated batch, the paper model diverges
                    # within ~8 steps (NaN, FloatingPointError) and every later row of the
                    # workload fails; the rate does not change the cost of a step.
                    run_cfg = {**cfg, "amp": AMP[mode], "channels_last": cl,
                               "cudnn_benchmark": device.type == "cuda",
                               "lr": cfg["lr"] * cfg["warmup_factor"]}
                    _peak_reset(device)
                    try:
                        model.load_state_dict(state)
                        prepare_model(model, device, run_cfg)
                        if not cl:   # back from the previous row's NHWC
                            model.to(memory_format=torch.contiguous_format)
                        model.train()
                        params = [p for p in model.parameters() if p.requires_grad]
                        opt = tb.make_optimizer(run_cfg, params)
                        scaler = grad_scaler(device, run_cfg["amp"])

                        def step() -> None:
                            _, loss = tb.train_step(model, opt, scaler, images, targets,
                                                    run_cfg, params, device)
                            loss.item()   # the training loop logs every loss (a sync)

                        sec = _timed(step, device, warmup, iters, min_s)
                        rows.append(_row("train", workload, cfg, mode, batch, cl, h, w,
                                         s_per_iter=sec, images_per_s=batch / sec,
                                         peak=_peak(device)))
                    except Exception as e:  # noqa: BLE001
                        note = "out of memory" if _oom(e) else f"{type(e).__name__}: {e}"
                        rows.append(_row("train", workload, cfg, mode, batch, cl, h, w,
                                         note=note[:120]))
                    finally:
                        opt = scaler = None
                    print(_line(rows[-1]), flush=True)
        del model
        _peak_reset(device)


def bench_eval(device: torch.device, quick: bool, budget: Budget, rows: list[dict]) -> None:
    workload, arch, h, w, keys, classes, objects, _ = (QUICK_WORKLOADS if quick
                                                       else FULL_WORKLOADS)[0]
    cfg = _model_cfg(arch, keys, quick)
    torch.manual_seed(0)
    model = tb.build_model(cfg, num_classes=classes)
    prepare_model(model, device, {**cfg, "cudnn_benchmark": device.type == "cuda"})
    model.eval()
    batch = 2 if quick else 8
    images = [torch.rand(3, h, w, device=device) for _ in range(batch)]
    warmup, iters, min_s = (1, 2, 0.0) if quick else (2, 3, 2.0)
    try:
        import pycocotools  # noqa: F401
        encode = True
    except ImportError:
        encode = False
    for mode in ("fp32", "bf16"):
        for with_encode in ((False, True) if encode else (False,)):
            name = "forward+results" if with_encode else "forward"
            if budget.spent():
                rows.append(_row("eval", workload, cfg, mode, batch, False, h, w,
                                 note=f"{name}; skipped: budget"))
                continue
            _peak_reset(device)

            def step() -> None:
                with torch.inference_mode(), autocast(device, AMP[mode]):
                    outs = [{k: (v.float() if v.is_floating_point() else v).cpu()
                             for k, v in o.items()} for o in model(images)]
                if with_encode:
                    for i, o in enumerate(outs):
                        tb._to_coco(i, o, list(range(1, classes)), arch)

            try:
                sec = _timed(step, device, warmup, iters, min_s)
                rows.append(_row("eval", workload, cfg, mode, batch, False, h, w,
                                 s_per_iter=sec, images_per_s=batch / sec, peak=_peak(device),
                                 note=name))
            except Exception as e:  # noqa: BLE001
                rows.append(_row("eval", workload, cfg, mode, batch, False, h, w,
                                 note=f"{name}: {type(e).__name__}: {e}"[:120]))
            print(_line(rows[-1]), flush=True)


def _crop_batch(n: int, device: torch.device):
    from anonbench.realistic import crops
    from anonbench.realistic.base import CropBatch

    g = torch.Generator().manual_seed(0)
    hh, ww = crops.BODY_SIZE
    person = torch.zeros(n, 1, hh, ww)
    person[:, :, hh // 8: hh - hh // 10, ww // 4: ww - ww // 4] = 1
    keep = 1 - person
    cond = (torch.rand(n, 3, hh, ww, generator=g) * 2 - 1) * keep
    kp = torch.rand(n, 17, 3, generator=g)
    kp[..., 2] = 1
    joint = torch.from_numpy(np.stack([crops.joint_map(k.numpy(), (hh, ww)) for k in kp]))
    return CropBatch(cond.to(device), keep.to(device), person.to(device), kp.to(device),
                     joint[:, None].long().to(device))


def bench_realistic(device: torch.device, quick: bool, budget: Budget, rows: list[dict]) -> None:
    from anonbench.realistic import demo, dp2  # noqa: F401  (register the plugins)
    from anonbench.realistic.base import build_generator

    gens: list[tuple[str, Any]] = []
    for name, opts in (("demo", {}), ("dp2", {"random_weights": True})):
        try:
            gens.append((name, build_generator(name, "body", opts).to(device).eval()))
        except Exception as e:  # noqa: BLE001  (dp2 not installed: say so in the table)
            rows.append({**_blank("realistic", f"body-{name}"), "note": f"{e}"[:120]})
            print(_line(rows[-1]), flush=True)
    warmup, iters, min_s = (1, 2, 0.0) if quick else (2, 5, 1.5)
    for name, G in gens:
        for n in ((1, 8) if quick else (1, 8, 32)):
            for mode in ("fp32", "bf16"):
                row = {**_blank("realistic", f"body-{name}"), "mode": mode, "batch": n,
                       "height": G.imsize[0], "width": G.imsize[1]}
                if budget.spent():
                    rows.append({**row, "note": "skipped: budget"})
                    continue
                batch = _crop_batch(n, device)
                z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(0)).to(device)

                def step() -> None:
                    with torch.no_grad(), autocast(device, AMP[mode]):
                        w = G.map(z)
                        G.synthesize(batch, w).float().cpu()

                try:
                    _peak_reset(device)
                    sec = _timed(step, device, warmup, iters, min_s)
                    rows.append({**row, "s_per_iter": f"{sec:.4f}",
                                 "images_per_s": f"{n / sec:.1f}", "peak_mem_gib": _peak(device),
                                 "note": "persons/s"})
                except Exception as e:  # noqa: BLE001
                    rows.append({**row, "note": f"{type(e).__name__}: {e}"[:120]})
                print(_line(rows[-1]), flush=True)


def _write_images(root: Path, n: int, h: int, w: int, ext: str) -> dict[str, Any]:
    """``n`` street-like images (smooth colour fields, edges, mild noise) and a manifest with a
    few polygon persons each."""
    import cv2

    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(n):
        low = rng.integers(0, 255, (h // 64 + 1, w // 64 + 1, 3), dtype=np.uint8)
        img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
        for _ in range(20):
            x, y = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 80))
            x2, y2 = x + int(rng.integers(8, 200)), y + int(rng.integers(8, 300))
            cv2.rectangle(img, (x, y), (x2, y2), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
        img = cv2.add(img, rng.integers(0, 12, img.shape, dtype=np.uint8))
        name = f"{i:04d}.{ext}"
        cv2.imwrite(str(root / name), img, [cv2.IMWRITE_JPEG_QUALITY, 90] if ext == "jpg" else [])
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        for k in range(8):
            bw, bh = float(rng.uniform(0.005, 0.03)) * w, float(rng.uniform(0.025, 0.15)) * h
            x, y = float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh))
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                         "bbox": [x, y, bw, bh], "area": bw * bh,
                         "segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]})
    return {"info": {"dataset": "bench", "split": "train", "image_root": str(root)},
            "images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person"}]}


def bench_data(quick: bool, budget: Budget, rows: list[dict], workers: list[int]) -> None:
    h, w, n = (128, 256, 6) if quick else (1024, 2048, 48)
    batch = 2 if quick else 8
    for ext in ("jpg", "png"):
        with tempfile.TemporaryDirectory() as tmp:
            manifest = _write_images(Path(tmp), n, h, w, ext)
            data = tb._TrainSet(manifest, {1: 1}, "mask_rcnn", tb._COCO_KEYPOINTS, cache=False)
            for nw in workers:
                row = {**_blank("data", f"{ext} {w}x{h}"), "mode": f"{nw} workers",
                       "batch": batch, "height": h, "width": w}
                if budget.spent():
                    rows.append({**row, "note": "skipped: budget"})
                    continue
                sampler = tb._Batches(len(data), batch, max(2, 2 * n // batch), 0.5,
                                      np.random.default_rng(0))
                loader = torch.utils.data.DataLoader(
                    data, batch_sampler=sampler, collate_fn=tb._collate, num_workers=nw,
                    pin_memory=torch.cuda.is_available(),
                    prefetch_factor=4 if nw else None)
                t0 = time.perf_counter()
                count = 0
                for images, _ in loader:
                    count += len(images)
                sec = time.perf_counter() - t0
                rows.append({**row, "s_per_iter": f"{sec * batch / count:.4f}",
                             "images_per_s": f"{count / sec:.1f}",
                             "note": "incl. worker start-up"})
                print(_line(rows[-1]), flush=True)


def _blank(section: str, workload: str) -> dict[str, Any]:
    return {k: "" for k in FIELDS} | {"section": section, "workload": workload}


def _row(section: str, workload: str, cfg: dict[str, Any], mode: str, batch: int, cl: bool,
         h: int, w: int, *, s_per_iter: float | None = None, images_per_s: float | None = None,
         peak: str = "", note: str = "") -> dict[str, Any]:
    return {"section": section, "workload": workload, "arch": cfg["arch"], "depth": cfg["depth"],
            "mode": mode, "batch": batch, "channels_last": int(cl), "height": h, "width": w,
            "s_per_iter": "" if s_per_iter is None else f"{s_per_iter:.4f}",
            "images_per_s": "" if images_per_s is None else f"{images_per_s:.2f}",
            "peak_mem_gib": peak, "note": note}


def _line(r: dict[str, Any]) -> str:
    return " | ".join(str(r[k]) for k in FIELDS)


def table(rows: list[dict[str, Any]]) -> str:
    head = ["section", "workload", "model", "mode", "batch", "NHWC", "input", "s/iter",
            "images/s", "peak GiB", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        model = f"{r['arch']} R{r['depth']}" if r["arch"] else ""
        size = f"{r['width']}x{r['height']}" if r["height"] else ""
        cl = {"": "", 0: "", 1: "yes", "0": "", "1": "yes"}[r["channels_last"]]
        lines.append("| " + " | ".join(str(v) for v in (
            r["section"], r["workload"], model, r["mode"], r["batch"], cl, size, r["s_per_iter"],
            r["images_per_s"], r["peak_mem_gib"], r["note"])) + " |")
    return "\n".join(lines)


def keeps_up(rows: list[dict[str, Any]]) -> str:
    """One line: the data pipeline's best rate against the fastest Cityscapes training rate."""
    train = [float(r["images_per_s"]) for r in rows if r["section"] == "train"
             and r["workload"] == "cityscapes" and r["images_per_s"]]
    data = [(float(r["images_per_s"]), r["workload"], r["mode"]) for r in rows
            if r["section"] == "data" and r["images_per_s"]]
    if not train or not data:
        return ""
    need = max(train)
    parts = []
    for ext in sorted({d[1] for d in data}):
        best = max(d for d in data if d[1] == ext)
        parts.append(f"{ext}: {best[0]:.1f} images/s with {best[2]} "
                     f"({'keeps up' if best[0] >= need else 'does NOT keep up'})")
    return (f"data pipeline vs the fastest Cityscapes-size training ({need:.1f} images/s): "
            + "; ".join(parts))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, the demo model")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--sections", default="train,eval,realistic,data")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="skip what is left after this many seconds (default 420; quick 100)")
    ap.add_argument("--workers", default=None, help="data section: worker counts, e.g. 0,4,8")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--csv", default=None, help="default $OUT/device_run.csv or ./device_run.csv")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    budget = Budget(args.budget_s if args.budget_s is not None else (100 if args.quick else 420))
    cpus = os.cpu_count() or 1
    workers = ([int(x) for x in args.workers.split(",")] if args.workers else
               ([0, 2] if args.quick else sorted({0, 2, 4, 8, min(16, cpus)})))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "device": name,
            "torch": torch.__version__, "cuda": torch.version.cuda, "cpus": cpus,
            "quick": args.quick}
    print(json.dumps(info), flush=True)
    print(" | ".join(FIELDS), flush=True)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    sections = args.sections.split(",")
    if "train" in sections:
        bench_train(device, args.quick, budget, rows)
    if "eval" in sections:
        bench_eval(device, args.quick, budget, rows)
    if "realistic" in sections:
        bench_realistic(device, args.quick, budget, rows)
    if "data" in sections:
        bench_data(args.quick, budget, rows, workers)
    out = Path(args.csv) if args.csv else Path(os.environ.get("OUT", ".")) / "device_run.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        f.write("# " + json.dumps(info) + "\n")
        wr = csv.DictWriter(f, fieldnames=FIELDS)
        wr.writeheader()
        wr.writerows(rows)
    print()
    print(f"{name}, torch {torch.__version__}, {info['date']}, {time.perf_counter() - t0:.0f} s")
    print(table(rows))
    line = keeps_up(rows)
    if line:
        print(line)
    print(f"csv: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
