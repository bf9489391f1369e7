"""Which manifest categories a model trains, shared by the detectron2 and mmdet backends.

Pure Python (no torch): the checks run at parse time.  The semantics match the torchvision
backend's ``classes`` / ``exclude_classes`` keys.
"""

from __future__ import annotations

from typing import Any, Callable

PERSON_CATEGORY_NAMES = ("person", "pedestrian")
COCO_KEYPOINTS = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
]


def check_class_keys(cfg: dict[str, Any], arch: str, err: Callable[[str], Exception]) -> None:
    """Raise ``err(...)`` if ``classes`` / ``exclude_classes`` of ``cfg`` are malformed."""
    for key in ("classes", "exclude_classes"):
        v = cfg.get(key)
        if v is None:
            continue
        if isinstance(v, str) or not v or not all(isinstance(c, str) for c in v):
            raise err(f"{key} must be null or a non-empty list of category names")
        cfg[key] = list(v)
    if cfg.get("classes") is not None and cfg.get("exclude_classes") is not None:
        raise err("give classes (the categories to train) or exclude_classes (all others), "
                  "not both")
    if cfg.get("exclude_classes") is not None and arch == "keypoint_rcnn":
        raise err("exclude_classes: keypoint_rcnn trains the person categories only")


def select_categories(manifest: dict[str, Any], classes: list[str] | None,
                      exclude: list[str] | None, arch: str) -> list[dict[str, Any]]:
    """The trained categories, ``[{"id", "name"}]`` in id order (or in ``classes`` order)."""
    cats = sorted(manifest["categories"], key=lambda c: c["id"])
    by_name = {c["name"]: c for c in cats}
    if classes is not None:
        missing = [n for n in classes if n not in by_name]
        if missing:
            raise ValueError(f"classes {missing} are not categories of the manifest "
                             f"(it has: {', '.join(by_name)})")
        return [{"id": int(by_name[n]["id"]), "name": n} for n in classes]
    if arch == "keypoint_rcnn":
        cats = [c for c in cats if c["name"] in PERSON_CATEGORY_NAMES or c.get("keypoints")]
        if not cats:
            raise ValueError("keypoint_rcnn: the manifest has no person category with keypoints")
    if exclude is not None:
        missing = [n for n in exclude if n not in by_name]
        if missing:
            raise ValueError(f"exclude_classes {missing} are not categories of the manifest "
                             f"(it has: {', '.join(by_name)})")
        cats = [c for c in cats if c["name"] not in exclude]
        if not cats:
            raise ValueError(f"exclude_classes {list(exclude)} leaves no category to train")
    return [{"id": int(c["id"]), "name": str(c["name"])} for c in cats]


def keypoint_names(manifest: dict[str, Any], categories: list[dict[str, Any]]) -> list[str]:
    ids = {c["id"] for c in categories}
    for c in manifest["categories"]:
        if c["id"] in ids and c.get("keypoints"):
            return list(c["keypoints"])
    return list(COCO_KEYPOINTS)


def flip_map(names: list[str]) -> list[tuple[str, str]]:
    """``[("left_x", "right_x"), ...]``: detectron2's ``keypoint_flip_map``."""
    out = []
    for n in names:
        if n.startswith("left_") and "right_" + n[5:] in names:
            out.append((n, "right_" + n[5:]))
    return out


__all__ = ["COCO_KEYPOINTS", "PERSON_CATEGORY_NAMES", "check_class_keys", "flip_map",
           "keypoint_names", "select_categories"]
