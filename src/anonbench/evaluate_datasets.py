"""Which evaluation a validation manifest gets: the dataset format's own (registry).

``coco`` (and the demo world): pycocotools, :mod:`anonbench.evaluate` (by architecture: box/segm,
box/keypoints, or boxes alone for box detectors such as retinanet and fcos). ``cityscapes``: the
official instance-level evaluation, :mod:`anonbench.evaluate_cityscapes`. ``bdd100k``: the
toolkit's where it runs, else COCO-style AP, :mod:`anonbench.evaluate_bdd100k`. The format is
the manifest's ``info.format``.
"""

from __future__ import annotations

import io
import os
from typing import Any, Callable

from .manifest import Manifest, load_manifest

Evaluation = dict[str, Any]  # {"metrics", "evaluator", "iou_types", "versions"}

#: What a model architecture predicts, as COCOeval iou types; any other arch: boxes only.
ARCH_IOU_TYPES: dict[str, list[str]] = {"mask_rcnn": ["bbox", "segm"],
                                        "keypoint_rcnn": ["bbox", "keypoints"]}


def arch_iou_types(arch: str) -> list[str]:
    """The iou types a model of ``arch`` can be evaluated on (``["bbox"]`` for box detectors)."""
    return list(ARCH_IOU_TYPES.get(arch, ["bbox"]))


def _coco(manifest: Manifest, results: list[dict[str, Any]], arch: str) -> Evaluation:
    from .evaluate import EVALUATOR, evaluate_coco, versions

    iou_types = arch_iou_types(arch)
    return {"metrics": evaluate_coco(manifest, results, iou_types), "evaluator": EVALUATOR,
            "iou_types": iou_types, "versions": versions()}


def _needs_masks(fmt: str, arch: str) -> None:
    if "segm" not in arch_iou_types(arch):
        raise ValueError(f"{fmt} is evaluated on instance masks; model arch {arch!r} predicts "
                         "none (use mask_rcnn)")


def _cityscapes(manifest: Manifest, results: list[dict[str, Any]], arch: str) -> Evaluation:
    from . import evaluate, evaluate_cityscapes

    _needs_masks("cityscapes", arch)
    log = io.StringIO()
    metrics = evaluate_cityscapes.evaluate_cityscapes(manifest, results, log=log)
    print(log.getvalue())
    return {"metrics": metrics, "evaluator": evaluate_cityscapes.EVALUATOR, "iou_types": ["segm"],
            "versions": {**evaluate.versions(), **evaluate_cityscapes.versions()}}


def _bdd100k(manifest: Manifest, results: list[dict[str, Any]], arch: str) -> Evaluation:
    from . import evaluate, evaluate_bdd100k

    _needs_masks("bdd100k", arch)
    metrics, evaluator = evaluate_bdd100k.evaluate_bdd100k(manifest, results)
    return {"metrics": metrics, "evaluator": evaluator,
            "iou_types": sorted({k.split("/", 1)[0] for k in metrics}),
            "versions": {**evaluate.versions(), **evaluate_bdd100k.versions()}}


#: Registry: dataset format -> evaluation (manifest, results, model arch) -> Evaluation.
EVALUATORS: dict[str, Callable[[Manifest, list[dict[str, Any]], str], Evaluation]] = {
    "coco": _coco, "cityscapes": _cityscapes, "bdd100k": _bdd100k}


def metric_keys(fmt: str, arch: str, category_names: list[str] | None = None) -> list[str]:
    """The metric keys the evaluation of format ``fmt`` writes for a model of ``arch`` (what a
    table may ask for; checked at parse time). ``category_names``: the ground truth's categories
    in id order (COCO: the dataset's own; Cityscapes and BDD100K have fixed ones)."""
    if fmt == "coco":
        from .evaluate import metric_keys as coco_keys

        return coco_keys(arch_iou_types(arch), category_names or [])
    if "segm" not in arch_iou_types(arch):
        return []  # _needs_masks: the evaluation refuses the model
    if fmt == "cityscapes":
        from .evaluate_cityscapes import metric_keys as cityscapes_keys

        return cityscapes_keys()
    if fmt == "bdd100k":
        from .evaluate_bdd100k import metric_keys as bdd100k_keys

        return bdd100k_keys(category_names)
    raise ValueError(f"no evaluation for dataset format {fmt!r} (known: {', '.join(EVALUATORS)})")


def evaluate_manifest(val_manifest: str | os.PathLike[str] | Manifest,
                      results: list[dict[str, Any]], arch: str) -> Evaluation:
    """Evaluate ``results`` on the validation manifest with its format's evaluation."""
    manifest = val_manifest if isinstance(val_manifest, dict) else load_manifest(val_manifest)
    fmt = manifest["info"].get("format", "coco")
    try:
        fn = EVALUATORS[fmt]
    except KeyError:
        raise ValueError(f"no evaluation for dataset format {fmt!r} "
                         f"(known: {', '.join(EVALUATORS)})") from None
    return fn(manifest, results, arch)
