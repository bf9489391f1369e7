"""Cityscapes instance-level evaluation with the official ``cityscapesscripts`` evaluator.

Detector results (COCO results with RLE masks; category ids are Cityscapes label ids, as the
Cityscapes manifest uses them) are written in the evaluator's format: per image a text file
``<city>_<seq>_<frame>_pred.txt`` with lines ``masks/<name>.png <label id> <score>`` and one
binary PNG per predicted instance. ``evalInstanceLevelSemanticLabeling.evaluateImgLists`` then
matches them with the ground truth ``*_gtFine_instanceIds.png`` of the validation set and gives
AP (IoU 0.5:0.95), AP50 and the per-class values, over the 8 evaluated classes.

Metrics are in percent, keyed like the COCO ones so that tables can name them::

    {"segm/AP": .., "segm/AP50": .., "segm/AP_person": .., "segm/AP50_person": .., ...}

A class without ground truth is NaN (the evaluator's convention), and the averages skip it.

Compatibility: cityscapesscripts 2.3 calls ``np.in1d``, removed in NumPy 2.4; while the evaluator
runs, its module sees NumPy through a proxy that adds ``in1d`` as ``isin`` on the flattened array
(the definition of ``in1d``), and its ``writeDict2JSON`` is replaced by one that can write NumPy
scalars (under NumPy 2 ``np.count_nonzero`` returns ``np.int64``). NumPy itself is not patched. The evaluator's cache of ground-truth
instances and its ``matches.json`` go to a temporary directory, never into the package or the
working directory.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import tempfile
import types
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..manifest import Manifest, annotation_mask, load_manifest
from .results import segm_score

EVALUATOR = "cityscapesscripts.evalInstanceLevelSemanticLabeling"


class _NumpyCompat(types.ModuleType):
    """NumPy as the evaluator module sees it: everything of numpy, plus ``in1d``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def in1d(ar1: Any, ar2: Any, assume_unique: bool = False, invert: bool = False) -> np.ndarray:
        return np.isin(np.ravel(ar1), ar2, assume_unique=assume_unique, invert=invert)


@contextlib.contextmanager
def _evaluator_module() -> Any:
    from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as ev

    old = ev.np, ev.writeDict2JSON
    if not hasattr(np, "in1d"):
        ev.np = _NumpyCompat("numpy")
    ev.writeDict2JSON = _write_json
    try:
        yield ev
    finally:
        ev.np, ev.writeDict2JSON = old


def _write_json(obj: Any, path: str) -> None:
    """The toolkit's ``writeDict2JSON``, able to write NumPy 2 scalars (``np.count_nonzero``
    returns ``np.int64`` there, which the toolkit's ``o.__dict__`` fallback cannot)."""
    import json

    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        return o.__dict__

    with open(path, "w") as f:
        json.dump(obj, f, default=default, sort_keys=True)


def _png(path: Path, array: np.ndarray) -> None:
    if not cv2.imwrite(str(path), array):
        raise OSError(f"{path}: could not write PNG")


def write_predictions(manifest: Manifest, results: list[dict[str, Any]], out_dir: str | Path
                      ) -> list[str]:
    """The evaluator's prediction files under ``out_dir``; returns the text file of every
    manifest image, in manifest order."""
    from ..datasets.cityscapes import gt_stem

    out = Path(out_dir)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    by_image: dict[int, list[dict[str, Any]]] = {img["id"]: [] for img in manifest["images"]}
    for r in results:
        if r["image_id"] not in by_image:
            raise ValueError(f"results name image id {r['image_id']}, which is not in the "
                             "ground truth")
        if r.get("segmentation") is None:
            raise ValueError("Cityscapes evaluation needs results with 'segmentation' "
                             "(does the model predict masks?)")
        by_image[r["image_id"]].append(r)
    txts = []
    for img in manifest["images"]:
        name = os.path.basename(gt_stem(img["file_name"]))[: -len("_gtFine")]
        lines = []
        dets = sorted(by_image[img["id"]], key=lambda r: -segm_score(r))
        for i, r in enumerate(dets):
            m = annotation_mask(r, img["height"], img["width"])
            rel = f"masks/{name}_{i}.png"
            _png(out / rel, m.astype(np.uint8) * 255)
            lines.append(f"{rel} {int(r['category_id'])} {segm_score(r):.6f}\n")
        txt = out / f"{name}_pred.txt"
        txt.write_text("".join(lines))
        txts.append(str(txt.resolve()))
    return txts


def gt_files(manifest: Manifest, work_dir: str | Path) -> list[str]:
    """The ground-truth instance images of the manifest's images (polygon-only ground truth is
    rasterised by the toolkit into ``work_dir``)."""
    from ..datasets.cityscapes import instance_image

    gt_root = Path(manifest["info"]["gt_root"])
    out = []
    for img in manifest["images"]:
        gt = img.get("gt_file")
        if gt is None:
            raise ValueError(f"image {img['file_name']}: manifest has no gt_file "
                             "(not a Cityscapes manifest?)")
        if gt.endswith(".json"):
            p = Path(work_dir) / "gt" / (gt[: -len("_polygons.json")] + "_instanceIds.png")
            p.parent.mkdir(parents=True, exist_ok=True)
            _png(p, instance_image(gt_root, gt).astype(np.uint16))
        else:
            p = gt_root / gt
        out.append(str(p.resolve()))
    return out


def evaluate_cityscapes(gt_manifest: str | os.PathLike[str] | Manifest,
                        results: list[dict[str, Any]], *, work_dir: str | None = None,
                        log: io.TextIOBase | None = None,
                        categories: list[int] | None = None) -> dict[str, float]:
    """Cityscapes instance-segmentation metrics (percent) of ``results`` on the manifest.

    ``categories``: the label ids the model was trained on; ``segm/AP`` and ``segm/AP50`` are
    then the evaluator's average (NaN-mean over classes with ground truth) over those of its
    classes only, e.g. without ``person`` for a model trained without it. The per-class keys
    stay for all eight classes."""
    manifest = gt_manifest if isinstance(gt_manifest, dict) else load_manifest(gt_manifest)
    if manifest["info"].get("format") != "cityscapes":
        raise ValueError("the Cityscapes evaluation needs a Cityscapes manifest "
                         f"(this one is {manifest['info'].get('format')!r})")
    with contextlib.ExitStack() as stack:
        tmp = work_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="csinst."))
        tmp = Path(tmp).resolve()
        pred_dir = tmp / "pred"
        preds = write_predictions(manifest, results, pred_dir)
        gts = gt_files(manifest, tmp)
        ev = stack.enter_context(_evaluator_module())
        args = copy.copy(ev.args)
        args.predictionPath = str(pred_dir)
        args.predictionWalk = None
        args.gtInstancesFile = str(tmp / "gtInstances.json")
        args.exportFile = str(tmp / "resultInstanceLevelSemanticLabeling.json")
        args.JSONOutput = False
        args.quiet = True
        args.colorized = False
        args.instLabels = []
        buf = io.StringIO()
        stack.enter_context(contextlib.chdir(tmp))  # it writes matches.json into the cwd
        try:
            with contextlib.redirect_stdout(buf):
                res = ev.evaluateImgLists(preds, gts, args)
                args.quiet = False
                ev.printResults(res["averages"], args)
        except SystemExit:  # the toolkit's printError prints "ERROR: ..." and exits
            err = [l for l in buf.getvalue().splitlines() if l.startswith("ERROR")]
            raise RuntimeError("the Cityscapes evaluator stopped: "
                               + (err[-1] if err else "(no message)")) from None
        if log is not None:
            log.write(buf.getvalue())
    avg = res["averages"]
    metrics = {"segm/AP": _pct(avg["allAp"]), "segm/AP50": _pct(avg["allAp50%"])}
    if categories is not None:
        names = {int(c["id"]): c["name"] for c in manifest["categories"]}
        trained = [names[c] for c in categories if c in names and names[c] in avg["classes"]]
    if categories is not None and set(trained) != set(avg["classes"]):
        for key, field in (("segm/AP", "ap"), ("segm/AP50", "ap50%")):
            vals = np.asarray([float(avg["classes"][n][field]) for n in trained], float)
            vals = vals[np.isfinite(vals)]
            metrics[key] = _pct(vals.mean()) if vals.size else float("nan")
    for name, v in avg["classes"].items():
        key = "_".join(name.split())
        metrics[f"segm/AP_{key}"] = _pct(v["ap"])
        metrics[f"segm/AP50_{key}"] = _pct(v["ap50%"])
    return metrics


def class_names() -> list[str]:
    """The classes the evaluator averages over (its ``setInstanceLabels``: the 8 instance classes
    of the label table that are not ignored in evaluation)."""
    from cityscapesscripts.helpers.labels import labels

    return [l.name for l in labels if l.hasInstances and not l.ignoreInEval]


def metric_keys() -> list[str]:
    """Every key :func:`evaluate_cityscapes` writes, in its order (checked at parse time)."""
    keys = ["segm/AP", "segm/AP50"]
    for name in class_names():
        key = "_".join(name.split())
        keys += [f"segm/AP_{key}", f"segm/AP50_{key}"]
    return keys


def _pct(x: Any) -> float:
    x = float(x)
    return x * 100.0 if np.isfinite(x) else float("nan")


def versions() -> dict[str, str]:
    from .coco import package_versions

    return package_versions("cityscapesscripts")
