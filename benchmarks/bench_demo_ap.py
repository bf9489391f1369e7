"""AP per minute of CPU training for the demo preset on the demo world.  Not a test.

Generates a demo world (``--train-images``/``--val-images``, ``--width`` x ``--height``), then for
each ``--iterations`` value trains the ``maskrcnn-demo`` model of config.yaml (``--set key=value``
overrides its keys, YAML values) on the original images with each ``--seeds`` seed, evaluates on
the val set with the workflow's own steps, and prints per run: training seconds, segm AP,
segm/box AP_person, keypoint AP, and the headline metric (segm AP_person; keypoint AP for a
keypoint_rcnn ``--model``) per minute of training::

    python benchmarks/bench_demo_ap.py                                 # config.yaml's iterations, seed 0
    python benchmarks/bench_demo_ap.py --iterations 600 1200 2400 --set lr=0.002
    python benchmarks/bench_demo_ap.py --style closeup --model keypointrcnn-demo --width 224
    python benchmarks/bench_demo_ap.py --set backbone_weights=null     # from scratch

A model whose ``backbone_weights`` names a run of config.yaml (the demo models: ``backbone-demo``
on the ``pretrain`` world) starts from that run's backbone, trained here first (its time
printed apart) unless ``--backbone FILE`` gives a model.pt to start from.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import yaml

from anonbench import steps
from anonbench.backends.torchvision_config import resolve_config

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def _silent():
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, nargs="+",
                    help="default: the model's iterations in config.yaml (or its preset's)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="model keys (torchvision backend), e.g. lr=0.002 batch_size=4")
    ap.add_argument("--train-images", type=int, default=200)
    ap.add_argument("--val-images", type=int, default=60)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=160)
    ap.add_argument("--world-seed", type=int, default=0)
    ap.add_argument("--style", choices=["street", "closeup"], default="street")
    ap.add_argument("--model", default="maskrcnn-demo", help="a model of config.yaml")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backbone", help="a model.pt whose backbone the model starts from "
                    "(default: train the run its backbone_weights names)")
    args = ap.parse_args()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    model = dict(config["models"][args.model])
    for kv in args.set:
        key, _, value = kv.partition("=")
        model[key] = yaml.safe_load(value)
    if not args.iterations:
        args.iterations = [resolve_config(model)["iterations"]]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with _silent():
            steps.demo_world(str(root / "world"), {
                "seed": args.world_seed, "train_images": args.train_images,
                "val_images": args.val_images, "width": args.width, "height": args.height,
                "style": args.style})
            for split in ("train", "val"):
                steps.prepare("coco", str(root / "world"), split, "demo",
                              str(root / f"{split}.json"))
        if args.backbone:
            model["backbone_weights"] = args.backbone
        elif isinstance(model.get("backbone_weights"), dict):
            model["backbone_weights"] = _pretrain(config, model["backbone_weights"], root,
                                                  args.threads)
        print(f"demo world ({args.style}) {args.width}x{args.height}, {args.train_images} train / "
              f"{args.val_images} val images (seed {args.world_seed}); model "
              f"{json.dumps({k: v for k, v in model.items() if k != 'description'})}")
        headline = "keypoints/AP" if model.get("arch") == "keypoint_rcnn" else "segm/AP_person"
        columns = ["segm/AP", "segm/AP_person", "bbox/AP_person", "keypoints/AP"]
        print(f"{'iters':>6} {'seed':>4} {'train s':>8} "
              + " ".join(f"{c:>14}" for c in columns) + f" {headline + '/min':>18}")
        for iterations in args.iterations:
            for seed in args.seeds:
                run = root / f"run{iterations}_{seed}"
                cfg = {**model, "iterations": iterations}
                t0 = time.perf_counter()
                with _silent():
                    steps.train(str(root / "train.json"), cfg, seed, str(run), args.threads)
                train_s = time.perf_counter() - t0
                with _silent():
                    steps.evaluate(str(run / "model.pt"), str(root / "val.json"), cfg,
                                   {"dataset": "demo", "variant": "original", "model": "demo",
                                    "seed": seed, "backend": cfg["backend"]}, args.threads,
                                   str(run / "pred.json"), str(run / "metrics.json"))
                m = json.loads((run / "metrics.json").read_text())["metrics"]
                nan = float("nan")
                print(f"{iterations:>6} {seed:>4} {train_s:>8.1f} "
                      + " ".join(f"{m.get(c, nan):>14.1f}" for c in columns)
                      + f" {m.get(headline, nan) / (train_s / 60):>18.2f}", flush=True)


def _pretrain(config: dict, source: dict, root: Path, threads: int) -> str:
    """Train the run ``backbone_weights: {dataset, model, seed}`` names, on its generated
    world's original images; returns its model.pt."""
    world = root / "pretrain_world"
    with _silent():
        steps.demo_world(str(world), config["datasets"][source["dataset"]]["generate"])
        steps.prepare("coco", str(world), "train", source["dataset"], str(root / "pre.json"))
    t0 = time.perf_counter()
    with _silent():
        steps.train(str(root / "pre.json"), config["models"][source["model"]],
                    source.get("seed", 0), str(root / "pretrain"), threads)
    print(f"backbone: {source['model']} on {source['dataset']} "
          f"({time.perf_counter() - t0:.1f} s of training)")
    return str(root / "pretrain" / "model.pt")


if __name__ == "__main__":
    main()
