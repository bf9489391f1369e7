"""Annotation stage: face boxes and COCO-17 keypoints of the person instances to anonymize.

Person instances are the annotations marked ``anonymize`` (see :mod:`anonbench.manifest`).
The models are registries in :mod:`anonbench.annotators`; this module runs one over a shard:
reads each image with persons once, runs the model in batches, and (face detectors) matches the
detections to the instance masks with the study's rule (:mod:`anonbench.annotators.match`).

Faces file (one per shard)::

    {"detector", "threshold", "shard", "persons", "persons_with_face", "fraction_with_face",
     "detections", "unmatched_detections",
     "faces": [{"image_id", "annotation_id", "box": [x0, y0, x1, y1], "score", "iou", "source"}]}

Keypoints file (one per shard)::

    {"estimator", "threshold", "shard", "persons", "persons_with_keypoints",
     "fraction_with_keypoints",
     "keypoints": [{"image_id", "annotation_id", "box", "keypoints": [51], "num_keypoints",
                    "scores": [17] or null}]}
"""

from __future__ import annotations

import copy
import sys
from typing import Any, Iterable, Iterator

import numpy as np

from . import images as image_io
from . import regions
from .annotators import faces as face_models
from .annotators import pose as pose_models
from .annotators.match import MIN_IOU, box_mask_iou, greedy_match
from .manifest import Manifest, annotation_mask, image_path, iter_images


def _persons(anns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in anns if a.get("anonymize")]


def _progress(items: list, desc: str, enabled: bool) -> Iterable:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, file=sys.stderr, mininterval=2.0)


def _read(manifest: Manifest, img: dict[str, Any]) -> np.ndarray:
    path = image_path(manifest, img)
    image = image_io.read_image(path)
    if image.shape[:2] != (img["height"], img["width"]):
        raise ValueError(f"{path}: image is {image.shape[1]}x{image.shape[0]} but the manifest "
                         f"says {img['width']}x{img['height']}")
    return image


def _with_pixels(manifest: Manifest, batch_size: int, desc: str, progress: bool
                 ) -> Iterator[list[tuple[dict[str, Any], list[dict[str, Any]], np.ndarray]]]:
    """Batches of (image entry, person annotations, pixels), images without persons skipped."""
    todo = [(img, _persons(anns)) for img, anns in iter_images(manifest)]
    todo = [(img, p) for img, p in todo if p]
    batch: list = []
    for img, persons in _progress(todo, desc, progress):
        batch.append((img, persons, _read(manifest, img)))
        if len(batch) >= max(1, batch_size):
            yield batch
            batch = []
    if batch:
        yield batch


def with_keypoints(manifest: Manifest, keypoints: dict[str, Any] | None) -> Manifest:
    """The manifest with each person's ``keypoints`` replaced by a keypoints file's (an
    estimator's) where it has an entry for the annotation; unchanged for None."""
    if not keypoints:
        return manifest
    by_ann = {k["annotation_id"]: k for k in keypoints["keypoints"]}
    out = copy.copy(manifest)
    out["annotations"] = []
    for ann in manifest["annotations"]:
        k = by_ann.get(ann["id"])
        if k is not None:
            ann = {**ann, "keypoints": k["keypoints"], "num_keypoints": k["num_keypoints"]}
        out["annotations"].append(ann)
    return out


def faces_from_keypoints(manifest: Manifest) -> list[dict[str, Any]]:
    """WIDER-Face-style boxes from each person's face keypoints (no pixels, no matching)."""
    faces = []
    for img, anns in iter_images(manifest):
        for ann in _persons(anns):
            if "keypoints" not in ann:
                continue
            x, y, w, h = ann["bbox"]
            box = regions.face_box_from_keypoints(ann["keypoints"], (img["width"], img["height"]),
                                                  (x, y, x + w, y + h))
            if box is None:
                continue
            faces.append({"image_id": img["id"], "annotation_id": ann["id"],
                          "box": [round(v, 2) for v in box], "score": 1.0, "iou": None,
                          "source": "keypoints"})
    return faces


def match_image_faces(img: dict[str, Any], persons: list[dict[str, Any]], detections: np.ndarray,
                      source: str, unmatched: str = "anonymize") -> list[dict[str, Any]]:
    """Face entries of one image: detections matched one to one to the persons' masks (the
    study's rule); with ``unmatched`` ``anonymize``, also each detection left over that overlaps
    a person (IoU > MIN_IOU) as a further face of the person it overlaps most (``"extra":
    true``): a person's real face can lose the match to a false detection on its body."""
    masks = [annotation_mask(a, img["height"], img["width"]) for a in persons]
    dets = np.asarray(detections, dtype=np.float64).reshape(-1, 5)

    def entry(box: int, instance: int, iou: float, **extra: Any) -> dict[str, Any]:
        return {"image_id": img["id"], "annotation_id": persons[instance]["id"],
                "box": [round(float(v), 2) for v in dets[box, :4]],
                "score": round(float(dets[box, 4]), 4), "iou": round(iou, 4), "source": source,
                **extra}

    iou = box_mask_iou(dets[:, :4], masks)
    matches = greedy_match(iou, dets[:, 4])
    faces = [entry(m.box, m.instance, m.iou) for m in matches]
    if unmatched == "anonymize" and len(dets) > len(matches) and masks:
        used = {m.box for m in matches}
        for b in range(len(dets)):
            j = int(np.argmax(iou[b]))
            if b not in used and iou[b, j] > MIN_IOU:
                faces.append(entry(b, j, float(iou[b, j]), extra=True))
    return faces


def detect_faces(manifest: Manifest, cfg: dict[str, Any], *,
                 keypoints: dict[str, Any] | None = None, threads: int = 1,
                 progress: bool = False) -> dict[str, Any]:
    """Face boxes of one shard's persons with the detector ``cfg["detector"]``.

    ``keypoints``: an estimator's keypoints file, used by the ``keypoints`` detector instead of
    the dataset's own keypoints. Image detectors only read images that have persons; their
    ``detections`` count is over those images.
    """
    name = cfg.get("detector", "keypoints")
    cls = face_models.get_face_detector(name)
    n_detections = 0
    threshold = None
    if not cls.needs_pixels:
        with_kp = with_keypoints(manifest, keypoints)
        eligible = [a for a in with_kp["annotations"] if a.get("anonymize")]
        if eligible and not any("keypoints" in a for a in eligible):
            dataset = manifest["info"].get("dataset", "<dataset>")
            raise ValueError(
                f"datasets.{dataset}.faces.detector: {name} draws face boxes from keypoints, and "
                f"none of the {len(eligible)} persons of shard {manifest['info'].get('shard')} "
                "has any (the dataset has no keypoint annotations): set faces: {detector: "
                "centerface}, or a keypoints estimator")
        faces = faces_from_keypoints(with_kp)
    else:
        detector = cls(cfg, threads=threads)
        threshold = detector.threshold
        faces = []
        shard = manifest["info"].get("shard", "")
        for batch in _with_pixels(manifest, detector.batch_size, f"faces {shard}", progress):
            dets = detector.detect([pixels for _, _, pixels in batch])
            for (img, persons, _), d in zip(batch, dets):
                n_detections += len(d)
                faces += match_image_faces(img, persons, d, name,
                                           cfg.get("unmatched", "anonymize"))
    persons = sum(1 for a in manifest["annotations"] if a.get("anonymize"))
    with_face = len({f["annotation_id"] for f in faces})
    return {"detector": name, "threshold": threshold, "shard": manifest["info"].get("shard"),
            "persons": persons, "persons_with_face": with_face,
            "fraction_with_face": round(with_face / persons, 4) if persons else None,
            "detections": n_detections,
            "extra_faces": sum(1 for f in faces if f.get("extra")),
            "unmatched_detections": n_detections - len(faces) if cls.needs_pixels else 0,
            "faces": faces}


def estimate_keypoints(manifest: Manifest, cfg: dict[str, Any], *, threads: int = 1,
                       progress: bool = False) -> dict[str, Any]:
    """COCO-17 keypoints of one shard's persons with the estimator ``cfg["estimator"]``,
    top-down on the tightest box around each instance mask."""
    name = cfg.get("estimator", "groundtruth")
    cls = pose_models.get_pose_estimator(name)
    out = []
    threshold = None
    if not cls.needs_pixels:
        for img, anns in iter_images(manifest):
            for ann in _persons(anns):
                if "keypoints" not in ann:
                    continue
                x, y, w, h = ann["bbox"]
                kp = list(ann["keypoints"])
                out.append({"image_id": img["id"], "annotation_id": ann["id"],
                            "box": [x, y, x + w, y + h], "keypoints": kp,
                            "num_keypoints": sum(1 for v in kp[2::3] if v > 0), "scores": None})
    else:
        estimator = cls(cfg, threads=threads)
        threshold = estimator.threshold
        shard = manifest["info"].get("shard", "")
        for batch in _with_pixels(manifest, 1, f"keypoints {shard}", progress):
            for img, persons, pixels in batch:
                boxes, kept = [], []
                for ann in persons:
                    box = regions.mask_box(annotation_mask(ann, img["height"], img["width"]))
                    if box is None:  # no mask pixels: fall back to the annotation's box
                        x, y, w, h = ann["bbox"]
                        box = (x, y, x + w, y + h)
                    if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                        continue
                    boxes.append(box)
                    kept.append(ann)
                if not boxes:
                    continue
                xy, conf = estimator.estimate(pixels, np.asarray(boxes))
                for ann, box, p, c in zip(kept, boxes, xy, conf):
                    kp = pose_models.coco_keypoints(p, c, threshold)
                    out.append({"image_id": img["id"], "annotation_id": ann["id"],
                                "box": [round(float(v), 2) for v in box], "keypoints": kp,
                                "num_keypoints": sum(1 for v in kp[2::3] if v > 0),
                                "scores": [round(float(v), 4) for v in c]})
    persons = sum(1 for a in manifest["annotations"] if a.get("anonymize"))
    with_kp = sum(1 for k in out if k["num_keypoints"] > 0)
    return {"estimator": name, "threshold": threshold, "shard": manifest["info"].get("shard"),
            "persons": persons, "persons_with_keypoints": with_kp,
            "fraction_with_keypoints": round(with_kp / persons, 4) if persons else None,
            "keypoints": out}


def uses_gpu(kind: str, name: str) -> bool:
    """Whether the face detector / pose estimator ``name`` wants a GPU (``kind``: faces or
    keypoints), for the workflow's resource hints."""
    registry = face_models.FACE_DETECTORS if kind == "faces" else pose_models.POSE_ESTIMATORS
    cls = registry.get(name)
    return bool(cls is not None and cls.uses_gpu)


# Kept for callers of the earlier API: the registry of face detector names.
FACE_DETECTORS = face_models.FACE_DETECTORS
