"""BDD100K instance-segmentation evaluation: the toolkit's where it runs, else COCO-style AP.

The toolkit's ``bdd100k.eval.ins_seg.evaluate_ins_seg`` reads ground-truth and prediction
*bitmasks* (RGBA, see :mod:`anonbench.datasets.bdd100k`) and a Scalabel score file; it runs only
where ``scalabel`` has pydantic 1 (and matplotlib < 3.10), which Snakemake 9 (pydantic 2) rules
out in the workflow's environment. There, :func:`evaluate_bdd100k` falls back to pycocotools'
COCOeval on the manifest (BDD100K's 8 categories with their ids; crowd and ignored instances are
``iscrowd`` ignore regions, as the toolkit ignores them) and says so in ``evaluator``.

Metrics (percent), either way: ``segm/AP``, ``segm/AP50``, ``segm/AP75``, ..., ``segm/AP_person``
(= pedestrian) and ``segm/AP_<category>``; the COCO path adds the ``bbox/...`` metrics.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..manifest import Manifest, annotation_mask, load_manifest
from .results import segm_score

TOOLKIT_EVALUATOR = "bdd100k.eval.ins_seg (BDD100K toolkit)"
COCO_EVALUATOR = "pycocotools.COCOeval on the BDD100K categories (bdd100k toolkit unavailable)"
MAX_DET = 100  # the toolkit's bitmask evaluation keeps at most 100 detections per image


def toolkit() -> tuple[Any, str | None]:
    """``((evaluate_ins_seg, config), None)`` where the toolkit runs, else ``(None, reason)``."""
    try:
        from bdd100k.common.utils import load_bdd100k_config
        from bdd100k.eval.ins_seg import evaluate_ins_seg

        config = load_bdd100k_config("ins_seg").scalabel
    except Exception as e:  # ImportError, or scalabel's models failing under pydantic 2
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return None, f"{type(e).__name__}: {first}"[:200]
    return (evaluate_ins_seg, config), None


def paint_bitmask(height: int, width: int, instances: list[dict[str, Any]]) -> np.ndarray:
    """An RGBA bitmask of instances ``{"category_id", "mask", "index", "crowd", "ignored"}``
    painted in list order onto the pixels still free (so the first instance wins an overlap)."""
    out = np.zeros((height, width, 4), np.uint8)
    free = np.ones((height, width), bool)
    for inst in instances:
        m = inst["mask"] & free
        free &= ~inst["mask"]
        idx = int(inst["index"])
        attr = (int(bool(inst.get("crowd"))) << 1) + int(bool(inst.get("ignored")))
        out[m] = (int(inst["category_id"]), attr, idx >> 8, idx & 255)
    return out


def _save_png(path: Path, bitmask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(bitmask, mode="RGBA").save(path)


def write_toolkit_inputs(manifest: Manifest, results: list[dict[str, Any]], work: Path
                         ) -> tuple[list[str], list[str], str]:
    """Ground-truth bitmasks (the dataset's own where the manifest came from them), prediction
    bitmasks (highest score first, at most 100 per image) and the score file."""
    by_image: dict[int, list[dict[str, Any]]] = {img["id"]: [] for img in manifest["images"]}
    for r in results:
        by_image[r["image_id"]].append(r)
    gt_by_image: dict[int, list[dict[str, Any]]] = {img["id"]: [] for img in manifest["images"]}
    for a in manifest["annotations"]:
        gt_by_image[a["image_id"]].append(a)
    own_gt = manifest["info"].get("labels") == "bitmasks"
    gts, preds, scores = [], [], []
    for img in manifest["images"]:
        stem = os.path.splitext(img["file_name"])[0]
        h, w = img["height"], img["width"]
        if own_gt:
            gts.append(str(Path(manifest["info"]["label_file"]) / f"{stem}.png"))
        else:
            insts = [{"category_id": a["category_id"], "mask": annotation_mask(a, h, w),
                      "index": i + 1, "crowd": a.get("crowd", a.get("iscrowd", 0)),
                      "ignored": a.get("ignored", 0)}
                     for i, a in enumerate(gt_by_image[img["id"]])]
            p = work / "gt" / f"{stem}.png"
            _save_png(p, paint_bitmask(h, w, insts))
            gts.append(str(p))
        dets = sorted(by_image[img["id"]], key=lambda r: -segm_score(r))[:MAX_DET]
        insts = [{"category_id": r["category_id"], "mask": annotation_mask(r, h, w),
                  "index": i + 1} for i, r in enumerate(dets)]
        p = work / "pred" / f"{stem}.png"
        _save_png(p, paint_bitmask(h, w, insts))
        preds.append(str(p))
        scores.append({"name": img["file_name"],
                       "labels": [{"index": i + 1, "score": segm_score(r)}
                                  for i, r in enumerate(dets)]})
    score_file = work / "scores.json"
    score_file.write_text(json.dumps(scores))
    return gts, preds, str(score_file)


TOOLKIT_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm",
                 "ARl")


def metric_keys(category_names: list[str] | None = None) -> list[str]:
    """Every key :func:`evaluate_bdd100k` can write, by either path (the toolkit's: ``segm/...``;
    the COCO fallback's: ``bbox/...`` and ``segm/...``), for BDD100K's categories (default
    :data:`anonbench.datasets.bdd100k.CATEGORY_NAMES`). Checked at parse time."""
    from .coco import metric_keys as coco_keys

    if category_names is None:
        from ..datasets.bdd100k import CATEGORY_NAMES as category_names
    toolkit_keys = [f"segm/{m}" for m in TOOLKIT_STATS] + \
        [f"segm/AP_{'_'.join(c.split())}" for c in category_names] + ["segm/AP_person"]
    fallback = coco_keys(["bbox", "segm"], category_names, person_category="pedestrian")
    return fallback + [k for k in toolkit_keys if k not in fallback]


def _toolkit_metrics(result: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in TOOLKIT_STATS:
        scores = getattr(result, metric)
        out[f"segm/{metric}"] = float(scores[-1]["OVERALL"])
    for cat, v in result.AP[0].items():
        out[f"segm/AP_{'_'.join(cat.split())}"] = float(v)
    out["segm/AP_person"] = out.get("segm/AP_pedestrian", float("nan"))
    return out


def evaluate_bdd100k(gt_manifest: str | os.PathLike[str] | Manifest,
                     results: list[dict[str, Any]], *, use_toolkit: bool = True,
                     categories: list[int] | None = None,
                     per_image: dict[str, Any] | None = None
                     ) -> tuple[dict[str, float], str]:
    """``(metrics, evaluator)``: the toolkit's evaluation where it runs, else COCO-style.

    ``categories`` (the trained category ids) restrict the COCO path's averages
    (:func:`anonbench.evaluation.coco.evaluate_coco`); the toolkit's ``segm/AP`` is then the mean of
    its per-category APs of those categories (its other averages stay over all eight).
    ``per_image`` receives the COCO path's per-image results; the toolkit keeps none."""
    from .coco import evaluate_coco

    manifest = gt_manifest if isinstance(gt_manifest, dict) else load_manifest(gt_manifest)
    if manifest["info"].get("format") != "bdd100k":
        raise ValueError("the BDD100K evaluation needs a BDD100K manifest "
                         f"(this one is {manifest['info'].get('format')!r})")
    ids = {img["id"] for img in manifest["images"]}
    stray = {r["image_id"] for r in results} - ids
    if stray:
        raise ValueError(f"results name {len(stray)} image id(s) not in the ground truth, "
                         f"e.g. {sorted(stray)[:5]}")
    tk, reason = toolkit() if use_toolkit else (None, "not requested")
    if tk is None:
        metrics = evaluate_coco(manifest, results, ["bbox", "segm"], person_category="pedestrian",
                                categories=categories, per_image=per_image)
        return metrics, f"{COCO_EVALUATOR}: {reason}"
    evaluate_ins_seg, config = tk
    with tempfile.TemporaryDirectory(prefix="bddinst.") as tmp:
        gts, preds, score_file = write_toolkit_inputs(manifest, results, Path(tmp))
        with contextlib.redirect_stdout(io.StringIO()):
            result = evaluate_ins_seg(gts, preds, score_file, config, nproc=1, with_logs=False)
    metrics = _toolkit_metrics(result)
    if categories is not None:
        names = {int(c["id"]): "_".join(str(c["name"]).split()) for c in manifest["categories"]}
        aps = [metrics.get(f"segm/AP_{names[c]}") for c in categories if c in names]
        aps = [v for v in aps if v is not None and np.isfinite(v)]
        metrics["segm/AP"] = float(np.mean(aps)) if aps else float("nan")
    return metrics, TOOLKIT_EVALUATOR


def versions() -> dict[str, str]:
    from .coco import package_versions

    return package_versions("bdd100k", "scalabel", "pycocotools")
