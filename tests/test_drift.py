"""Drift pins: the demo world and one tiny training run, hashed, for the locked environment.

The README's demo table is only "the same numbers on every machine" while the environment is the
locked one (requirements/lock.txt). These tests make a dependency change that alters the demo world
or the training numbers fail CI in seconds, instead of showing up as a different table after a
full `make demo`:

- ``render``: the raw pixels and masks of a few demo images of each world style as drawn
  (numpy's generator, OpenCV's drawing functions);
- ``jpeg``: the JPEG files the world writes (Pillow and the libjpeg it bundles);
- ``annotations``: the COCO annotation files (pycocotools' RLE, the masks above);
- ``train``: one tiny torchvision-backend run on that world on the CPU (3 iterations, 1 thread):
  its final losses and its COCO metrics on the validation images (torch, torchvision,
  pycocotools); losses to 6 significant digits and metrics to 4 decimals, so that the last bits
  of a float sum do not decide.

How to update the pins, when a change is intended (a new lock from `make lock`, a change to the
demo world or to the demo training recipe):

1. make sure .venv is the locked environment: `make .venv/bin/.anonbench-installed`;
2. print the new pins: `.venv/bin/python tests/test_drift.py` and paste its PINS into this file;
3. regenerate the README's figures: `make demo && make readme` (the demo table changes with them).

Which pin failed tells which dependency moved: see the comment of each pin.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

#: sha256 pins for the locked environment (requirements/lock.txt). Update: see the module doc.
PINS = {
    # numpy's Generator and OpenCV's drawing (cv2.fillPoly, ellipse, line, ... on uint8 arrays)
    "render": "8f56103f9d7a44c19ea933068934113ece718f369aa36ae629aed90ff59775b9",
    # Pillow's JPEG encoder (quality 95) on the pixels above
    "jpeg": "3a6a8590a39f84dbb36535c2b6d05a8ee343d5cdcd75e8681b0fef86f1e01b97",
    # pycocotools' RLE of the masks, the json module's float repr
    "annotations": "a6b41a061eccf4e26722b527ae29a2c6f12cb98303b50fe34f515e38515b237a",
    # torch / torchvision kernels on the CPU and pycocotools' COCOeval
    "train": "727335385b0487fe80954ea316a206d8de2a723264b9a638f063319fc7aa0f2e",
}

#: the world: a few images, the demo's size and seed
WORLD = {"seed": 0, "n_train": 4, "n_val": 2}

#: a tiny model of the demo recipe (as in tests/test_backend_torchvision.py)
TINY = {
    "backend": "torchvision", "preset": "demo", "width": 0.125, "fpn_channels": 16,
    "min_size": 64, "max_size": 96, "anchor_sizes": [8, 16, 32, 64, 128],
    "rpn_pre_nms_top_n_train": 50, "rpn_pre_nms_top_n_test": 50,
    "rpn_post_nms_top_n_train": 20, "rpn_post_nms_top_n_test": 20,
    "box_batch_size_per_image": 16, "box_score_thresh": 0.0, "box_detections_per_img": 10,
    "representation_size": 32, "mask_head_layers": 1, "mask_head_channels": 16,
    "keypoint_head_layers": 1, "keypoint_head_channels": 16,
    "iterations": 3, "batch_size": 2, "lr": 0.01, "warmup_iters": 2, "log_every": 3,
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def render_fingerprint() -> str:
    from anonbench.datasets import demo

    h = hashlib.sha256()
    for style, k in ((s, k) for s in sorted(demo.STYLES) for k in range(3)):
        rng = np.random.default_rng([WORLD["seed"], demo.SPLIT_CODE["train"], k])
        img, objs = demo.render_image(rng, 256, 160, style)
        h.update(np.ascontiguousarray(img).tobytes())
        for o in objs:
            h.update(o["kind"].encode())
            h.update(np.packbits(np.asarray(o["mask"], bool)).tobytes())
    return h.hexdigest()


def world_fingerprints(root: Path) -> dict[str, str]:
    jpeg = hashlib.sha256()
    for p in sorted(root.glob("*2017/*.jpg")):
        jpeg.update(p.relative_to(root).as_posix().encode())
        jpeg.update(p.read_bytes())
    ann = hashlib.sha256()
    for p in sorted((root / "annotations").glob("*.json")):
        ann.update(p.name.encode())
        ann.update(p.read_bytes())
    return {"jpeg": jpeg.hexdigest(), "annotations": ann.hexdigest()}


def train_result(root: Path, work: Path) -> dict[str, Any]:
    from anonbench.backends import torchvision_backend as tb
    from anonbench.datasets import load_split
    from anonbench.evaluation.coco import evaluate_coco

    paths = {}
    for split in ("train", "val"):
        paths[split] = str(work / f"{split}.json")
        Path(paths[split]).write_text(json.dumps(load_split("coco", str(root), split, "demo")))
    out = work / "run"
    summary = tb.train(paths["train"], TINY, 0, str(out), threads=1, log=lambda line: None)
    res = tb.predict(str(out / "model.pt"), paths["val"], threads=1)
    metrics = evaluate_coco(paths["val"], res, ["segm", "bbox"])
    return {"final_losses": {k: float(f"{float(v):.6g}") for k, v in summary["final_losses"].items()},
            "metrics": {k: round(float(v), 4) for k, v in sorted(metrics.items())
                        if not np.isnan(float(v))}}


def fingerprints(work: Path) -> tuple[dict[str, str], dict[str, Any]]:
    from anonbench.datasets import demo

    root = work / "world"
    demo.generate_world(root, **WORLD)
    train = train_result(root, work)
    pins = {"render": render_fingerprint(), **world_fingerprints(root),
            "train": _sha(_canonical(train))}
    return pins, train


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    return fingerprints(tmp_path_factory.mktemp("drift"))


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("numpy", "opencv-python-headless", "opencv-python", "pillow", "pycocotools",
                "torch", "torchvision"):
        try:
            out.append(f"{pkg}=={version(pkg)}")
        except PackageNotFoundError:
            pass
    return ", ".join(out)


@pytest.mark.parametrize("pin", list(PINS))
def test_drift_pin(measured, pin):
    pins, train = measured
    assert pins[pin] == PINS[pin], (
        f"the {pin!r} fingerprint of the demo world / tiny run changed: {PINS[pin]} -> "
        f"{pins[pin]} under {_versions()}.\n"
        + (f"tiny run now: {json.dumps(train)}\n" if pin == "train" else "")
        + "Outside the locked environment this is expected (rebuild it: "
        "`make .venv/bin/.anonbench-installed`). If the change is intended, update the pins: "
        "`.venv/bin/python tests/test_drift.py`, paste its PINS here, then `make demo && make "
        "readme` so that the README's table matches (see this file's docstring).")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    with tempfile.TemporaryDirectory() as d:
        new, run = fingerprints(Path(d))
    print("# tiny run:", json.dumps(run))
    print("PINS = " + json.dumps(new, indent=4))
