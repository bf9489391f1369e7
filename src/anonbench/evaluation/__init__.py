"""The evaluators, one module per dataset format, and which one a validation manifest gets
(the registry :data:`EVALUATORS`, by the manifest's ``info.format``, as :mod:`anonbench.datasets`).

``coco`` (and the demo world): pycocotools, :mod:`anonbench.evaluation.coco` (by architecture:
box/segm, box/keypoints, or boxes alone for box detectors such as retinanet and fcos).
``cityscapes``: the official instance-level evaluation, :mod:`anonbench.evaluation.cityscapes`.
``bdd100k``: the toolkit's where it runs, else COCO-style AP, :mod:`anonbench.evaluation.bdd100k`.
"""

from __future__ import annotations

import io
import os
from typing import Any, Callable

from ..manifest import Manifest, load_manifest

Evaluation = dict[str, Any]  # {"metrics", "evaluator", "iou_types", "versions", "per_image",
#                              "per_image_reason"}

#: What a model architecture predicts, as COCOeval iou types; any other arch: boxes only.
ARCH_IOU_TYPES: dict[str, list[str]] = {"mask_rcnn": ["bbox", "segm"],
                                        "keypoint_rcnn": ["bbox", "keypoints"]}


def arch_iou_types(arch: str) -> list[str]:
    """The iou types a model of ``arch`` can be evaluated on (``["bbox"]`` for box detectors)."""
    return list(ARCH_IOU_TYPES.get(arch, ["bbox"]))


def _coco(manifest: Manifest, results: list[dict[str, Any]], arch: str,
          categories: list[int] | None = None) -> Evaluation:
    from .coco import EVALUATOR, evaluate_coco, versions

    iou_types = arch_iou_types(arch)
    per_image: dict[str, Any] = {}
    metrics = evaluate_coco(manifest, results, iou_types, categories=categories,
                            per_image=per_image)
    return {"metrics": metrics, "evaluator": EVALUATOR, "iou_types": iou_types,
            "versions": versions(), "per_image": per_image, "per_image_reason": None}


def _needs_masks(fmt: str, arch: str) -> None:
    if "segm" not in arch_iou_types(arch):
        raise ValueError(f"{fmt} is evaluated on instance masks; model arch {arch!r} predicts "
                         "none (use mask_rcnn)")


#: Why the Cityscapes evaluation stores no per-image results (its tables: seed test only).
CITYSCAPES_NO_PER_IMAGE = ("the Cityscapes evaluator's per-image matches are not re-accumulated "
                           "(image bootstrap not implemented for it)")


def _cityscapes(manifest: Manifest, results: list[dict[str, Any]], arch: str,
                categories: list[int] | None = None) -> Evaluation:
    from . import cityscapes, coco

    _needs_masks("cityscapes", arch)
    log = io.StringIO()
    metrics = cityscapes.evaluate_cityscapes(manifest, results, log=log,
                                                      categories=categories)
    print(log.getvalue())
    return {"metrics": metrics, "evaluator": cityscapes.EVALUATOR, "iou_types": ["segm"],
            "versions": {**coco.versions(), **cityscapes.versions()},
            "per_image": None, "per_image_reason": CITYSCAPES_NO_PER_IMAGE}


def _bdd100k(manifest: Manifest, results: list[dict[str, Any]], arch: str,
             categories: list[int] | None = None) -> Evaluation:
    from . import bdd100k, coco

    _needs_masks("bdd100k", arch)
    per_image: dict[str, Any] = {}
    metrics, evaluator = bdd100k.evaluate_bdd100k(manifest, results,
                                                           categories=categories,
                                                           per_image=per_image)
    return {"metrics": metrics, "evaluator": evaluator,
            "iou_types": sorted({k.split("/", 1)[0] for k in metrics}),
            "versions": {**coco.versions(), **bdd100k.versions()},
            "per_image": per_image or None,
            "per_image_reason": None if per_image else
            "the BDD100K toolkit's evaluation keeps no per-image results"}


#: Registry: dataset format -> evaluation (manifest, results, model arch) -> Evaluation.
EVALUATORS: dict[str, Callable[..., Evaluation]] = {
    "coco": _coco, "cityscapes": _cityscapes, "bdd100k": _bdd100k}


def metric_keys(fmt: str, arch: str, category_names: list[str] | None = None) -> list[str]:
    """The metric keys the evaluation of format ``fmt`` writes for a model of ``arch`` (what a
    table may ask for; checked at parse time). ``category_names``: the ground truth's categories
    in id order (COCO: the dataset's own; Cityscapes and BDD100K have fixed ones)."""
    if fmt == "coco":
        from .coco import metric_keys as coco_keys

        return coco_keys(arch_iou_types(arch), category_names or [])
    if "segm" not in arch_iou_types(arch):
        return []  # _needs_masks: the evaluation refuses the model
    if fmt == "cityscapes":
        from .cityscapes import metric_keys as cityscapes_keys

        return cityscapes_keys()
    if fmt == "bdd100k":
        from .bdd100k import metric_keys as bdd100k_keys

        return bdd100k_keys(category_names)
    raise ValueError(f"no evaluation for dataset format {fmt!r} (known: {', '.join(EVALUATORS)})")


def trained_category_ids(manifest: Manifest, model_cfg: dict[str, Any],
                         results: list[dict[str, Any]] | None = None) -> list[int]:
    """The category ids a model of ``model_cfg`` was trained on, from its config (``classes`` /
    ``exclude_classes`` and ``arch``, as every backend selects them:
    :func:`anonbench.backends.categories.select_categories`), widened by any category its
    predictions name (a prediction is never dropped from the evaluation)."""
    from ..backends.categories import select_categories

    cats = select_categories(manifest, model_cfg.get("classes"), model_cfg.get("exclude_classes"),
                             model_cfg.get("arch", ""))
    ids = {int(c["id"]) for c in cats} | {int(r["category_id"]) for r in results or []}
    return sorted(ids)


def evaluate_manifest(val_manifest: str | os.PathLike[str] | Manifest,
                      results: list[dict[str, Any]], arch: str,
                      categories: list[int] | None = None) -> Evaluation:
    """Evaluate ``results`` on the validation manifest with its format's evaluation.

    ``categories``: the ids of the categories the model was trained on
    (:func:`trained_category_ids`); the averages (``AP``, ``AP50``, ...) run over them only.
    None: over all categories of the ground truth."""
    manifest = val_manifest if isinstance(val_manifest, dict) else load_manifest(val_manifest)
    fmt = manifest["info"].get("format", "coco")
    try:
        fn = EVALUATORS[fmt]
    except KeyError:
        raise ValueError(f"no evaluation for dataset format {fmt!r} "
                         f"(known: {', '.join(EVALUATORS)})") from None
    return fn(manifest, results, arch, categories)
