"""COCO evaluation (pycocotools ``COCOeval``) of detector results against a manifest.

Metrics are flat and in percent (0-100)::

    {"segm/AP": .., "segm/AP50": .., "segm/AP75": .., "segm/APs": .., "segm/APm": .., "segm/APl": ..,
     "segm/AR1": .., "segm/AR10": .., "segm/AR100": .., "segm/ARs": .., "segm/ARm": .., "segm/ARl": ..,
     "segm/AP_person": .., "segm/AP_<category>": .. (every category; spaces -> "_"),
     "bbox/...": .., "keypoints/AP": .., "keypoints/AP50": .., ...}

``AP_<category>`` is AP over IoU .5:.95, all areas, 100 detections, for that category alone (the
slice of COCOeval's precision array).  Like detectron2, a metric whose ground truth is absent
(e.g. ``APs`` on an image set without small objects, or a category without instances) is NaN.
Empty results give 0.0 for every metric that has ground truth.

Crowd ground truth (``iscrowd: 1``) is kept: COCOeval treats it as an ignore region.
Keypoints are evaluated for the person category only.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
from typing import Any, Iterable

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..config import environment_lock
from ..manifest import Manifest, annotation_mask, load_manifest, person_category_ids
from .results import segm_score

IOU_TYPES = ("segm", "bbox", "keypoints")
_STAT_NAMES = {
    "segm": ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"],
    "bbox": ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"],
    "keypoints": ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"],
}
_RESULT_FIELD = {"segm": "segmentation", "bbox": "bbox", "keypoints": "keypoints"}
EVALUATOR = "pycocotools.COCOeval"


def _gt_coco(manifest: Manifest) -> COCO:
    """A pycocotools COCO object from the manifest, built in memory, with COCOeval's needs filled."""
    images = {img["id"]: img for img in manifest["images"]}
    n_kp = {c["id"]: len(c.get("keypoints") or []) or 17 for c in manifest["categories"]}
    anns = []
    for i, a in enumerate(manifest["annotations"]):
        a = dict(a)
        a.setdefault("id", i + 1)
        a["iscrowd"] = int(a.get("iscrowd", 0) or 0)
        if "area" not in a:
            img = images.get(a["image_id"])
            if a.get("segmentation") and img is not None:
                a["area"] = float(annotation_mask(a, img["height"], img["width"]).sum())
            else:
                a["area"] = float(a["bbox"][2] * a["bbox"][3])
        if not a.get("keypoints"):  # COCOeval("keypoints") reads both of every gt it loads
            a["keypoints"] = [0] * (3 * n_kp.get(a["category_id"], 17))
            a["num_keypoints"] = 0
        elif "num_keypoints" not in a:
            a["num_keypoints"] = int(sum(1 for v in a["keypoints"][2::3] if v > 0))
        anns.append(a)
    ids = [a["id"] for a in anns]
    if len(set(ids)) != len(ids):
        raise ValueError("ground truth: annotation ids are not unique")
    coco = COCO()
    coco.dataset = {
        "info": dict(manifest.get("info", {})),
        "images": [dict(img) for img in manifest["images"]],
        "annotations": anns,
        "categories": [dict(c) for c in manifest["categories"]],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _empty_dt(gt: COCO) -> COCO:
    dt = COCO()
    dt.dataset = {"images": list(gt.dataset["images"]), "categories": list(gt.dataset["categories"]),
                  "annotations": []}
    with contextlib.redirect_stdout(io.StringIO()):
        dt.createIndex()
    return dt


def _pct(x: float) -> float:
    return float(x) * 100.0 if x >= 0 else float("nan")


def _key_name(name: str) -> str:
    return "_".join(str(name).split())


def evaluate_coco(gt_manifest: str | os.PathLike[str] | Manifest, results: list[dict[str, Any]],
                  iou_types: Iterable[str], *, person_category: str = "person",
                  categories: Iterable[int] | None = None,
                  per_image: dict[str, dict[str, np.ndarray]] | None = None) -> dict[str, float]:
    """COCO metrics (percent) of ``results`` against the manifest, per IoU type.

    ``categories``: the category ids the model was trained on (default: all of the manifest).
    COCOeval's ``catIds`` are restricted to them, so that a person-only model's ``bbox/AP`` is
    its person AP, not averaged with categories it never predicts; ``AP_<category>`` is written
    for them only. ``per_image``: a dict that receives COCOeval's per-image results of every
    iou type (:func:`anonbench.significance.per_image_data`) for the image bootstrap."""
    manifest = gt_manifest if isinstance(gt_manifest, dict) else load_manifest(gt_manifest)
    iou_types = list(iou_types)
    bad = [t for t in iou_types if t not in IOU_TYPES]
    if bad:
        raise ValueError(f"unknown iou type(s) {bad}; known: {', '.join(IOU_TYPES)}")
    gt = _gt_coco(manifest)
    img_ids = set(gt.getImgIds())
    stray = {r["image_id"] for r in results} - img_ids
    if stray:
        raise ValueError(f"results name {len(stray)} image id(s) not in the ground truth, "
                         f"e.g. {sorted(stray)[:5]}")
    cats = sorted(gt.dataset["categories"], key=lambda c: c["id"])
    person_ids = sorted(c["id"] for c in cats if c["name"] == person_category) or \
        sorted(person_category_ids(manifest))

    metrics: dict[str, float] = {}
    for iou in iou_types:
        field = _RESULT_FIELD[iou]
        res = [r for r in results if r.get(field) is not None]
        if results and not res:
            raise ValueError(f"{iou} evaluation needs results with '{field}', none have it "
                             f"(does the model predict {field}?)")
        cat_ids = [c["id"] for c in cats]
        if categories is not None:
            trained = {int(c) for c in categories}
            cat_ids = [c for c in cat_ids if c in trained]
            if not cat_ids:
                raise ValueError(f"none of the trained categories {sorted(trained)} is a "
                                 "category of the ground truth")
        if iou == "keypoints":
            if not person_ids:
                raise ValueError(f"keypoint evaluation: no category named {person_category!r}")
            cat_ids = person_ids
            res = [r for r in res if r["category_id"] in person_ids]
        if iou == "segm":
            # As detectron2: without bbox, loadRes takes the instance area from the mask, so
            # small/medium/large follow mask area for segm. Masks rank by their segm_score.
            res = [{**{k: v for k, v in r.items() if k not in ("bbox", "segm_score")},
                    "score": segm_score(r)} for r in res]
        else:
            res = copy.deepcopy(res)
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes(res) if res else _empty_dt(gt)
            ev = COCOeval(gt, dt, iou)
            ev.params.catIds = cat_ids
            ev.evaluate()
            if per_image is not None:
                from ..significance import per_image_data

                per_image[iou] = per_image_data(ev, {c["id"]: c["name"] for c in cats},
                                                person_ids, iou)
            ev.accumulate()
            ev.summarize()
        for name, v in zip(_STAT_NAMES[iou], ev.stats):
            metrics[f"{iou}/{name}"] = _pct(v)
        precision = ev.eval["precision"]  # [T, R, K, A, M]; K follows params.catIds

        def cat_ap(ids: list[int]) -> float:
            ks = [cat_ids.index(i) for i in ids if i in cat_ids]
            p = precision[:, :, ks, 0, -1]
            p = p[p > -1]
            return float(np.mean(p)) * 100.0 if p.size else float("nan")

        if person_ids:
            metrics[f"{iou}/AP_person"] = cat_ap(person_ids)
        for c in cats:
            if c["id"] in cat_ids:
                metrics[f"{iou}/AP_{_key_name(c['name'])}"] = cat_ap([c["id"]])
    return metrics


def metric_keys(iou_types: Iterable[str], category_names: Iterable[str], *,
                person_category: str = "person") -> list[str]:
    """Every key :func:`evaluate_coco` writes for ``iou_types`` on a ground truth whose categories
    are named ``category_names`` (in id order), in the order it writes them.

    Parse-time checks (:func:`anonbench.config.check_config`) use this; a test checks that the
    keys of a real evaluation are among them.
    """
    from ..manifest import PERSON_CATEGORY_NAMES

    names = list(category_names)
    persons = [n for n in names if n == person_category] or \
        [n for n in names if n in PERSON_CATEGORY_NAMES]
    keys: list[str] = []
    for iou in iou_types:
        if iou not in IOU_TYPES:
            raise ValueError(f"unknown iou type {iou!r}; known: {', '.join(IOU_TYPES)}")
        keys += [f"{iou}/{name}" for name in _STAT_NAMES[iou]]
        if persons:
            keys.append(f"{iou}/AP_person")
        for n in (persons if iou == "keypoints" else names):
            key = f"{iou}/AP_{_key_name(n)}"
            if key not in keys:
                keys.append(key)
    return keys


def package_versions(*packages: str) -> dict[str, str]:
    """The installed version of each package ("not installed" where it is not)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def versions() -> dict[str, str]:
    return package_versions("pycocotools", "torch", "torchvision", "numpy")


def metrics_record(metrics: dict[str, float], *, dataset: str, variant: str, model: str,
                   seed: int, backend: str, iou_types: Iterable[str] | None = None,
                   **extra: Any) -> dict[str, Any]:
    """One row of the results table: the metrics plus what produced them.

    NaN metrics (no ground truth for them) stay NaN: Python's json writes and reads them back
    as ``NaN``, and a table's mean over seeds then shows ``nan`` instead of a misleading 0.
    """
    return {
        "dataset": dataset,
        "variant": variant,
        "model": model,
        "seed": int(seed),
        "backend": backend,
        "evaluator": EVALUATOR,
        "iou_types": list(iou_types) if iou_types is not None
        else sorted({k.split("/", 1)[0] for k in metrics}),
        "versions": versions(),
        "environment_lock": environment_lock(),  # {"file", "sha256"} of requirements/lock.txt
        **extra,
        "metrics": dict(metrics),
    }


__all__ = ["IOU_TYPES", "EVALUATOR", "evaluate_coco", "metric_keys", "metrics_record", "versions"]
