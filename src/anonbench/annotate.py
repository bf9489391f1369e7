"""Annotation stage: face boxes of the person instances to anonymize.

Detectors form a registry; ``keypoints`` derives a WIDER-Face-style box from the COCO face
keypoints (nose, eyes, ears) of each instance (the demo world's ground truth keypoints).
"""

from __future__ import annotations

from typing import Any, Callable

from . import regions
from .manifest import Manifest, iter_images

FaceDetector = Callable[[Manifest, dict[str, Any]], list[dict[str, Any]]]


def _faces_from_keypoints(manifest: Manifest, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    faces = []
    for img, anns in iter_images(manifest):
        for ann in anns:
            if not ann.get("anonymize") or "keypoints" not in ann:
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


#: Registry: ``faces.detector`` in config.yaml -> function (shard manifest, options) -> faces.
FACE_DETECTORS: dict[str, FaceDetector] = {"keypoints": _faces_from_keypoints}


def detect_faces(manifest: Manifest, cfg: dict[str, Any]) -> dict[str, Any]:
    name = cfg.get("detector", "keypoints")
    try:
        detector = FACE_DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown face detector {name!r} "
                         f"(known: {', '.join(sorted(FACE_DETECTORS))})") from None
    faces = detector(manifest, cfg)
    persons = sum(1 for a in manifest["annotations"] if a.get("anonymize"))
    return {"detector": name, "shard": manifest["info"].get("shard"), "persons": persons,
            "persons_with_face": len({f["annotation_id"] for f in faces}), "faces": faces}
