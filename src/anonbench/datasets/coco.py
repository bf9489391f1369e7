"""COCO 2017 (keypoints) as it lies on disk after the official download.

``annotations/instances_{split}2017.json`` gives every category's instances;
``annotations/person_keypoints_{split}2017.json`` adds the persons' keypoints. Persons to
anonymize (the study's rule for COCO): category person, not ``iscrowd``, at least one labelled
keypoint. Images: ``{split}2017/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..manifest import Manifest, ManifestError, person_category_ids

REQUIRED_IMAGE_KEYS = ("id", "file_name", "width", "height")
REQUIRED_ANN_KEYS = ("id", "image_id", "category_id", "bbox", "segmentation")


def annotation_files(root: str | os.PathLike[str], split: str) -> dict[str, Path]:
    ann = Path(root) / "annotations"
    return {"instances": ann / f"instances_{split}2017.json",
            "keypoints": ann / f"person_keypoints_{split}2017.json"}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ManifestError(f"{path}: annotation file not found") from None
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list)
                                             for k in ("images", "annotations", "categories")):
        raise ManifestError(f"{path}: not a COCO annotation file "
                            "(expected 'images', 'annotations' and 'categories' lists)")
    for img in data["images"][:1]:
        missing = [k for k in REQUIRED_IMAGE_KEYS if k not in img]
        if missing:
            raise ManifestError(f"{path}: image entries lack {', '.join(missing)}")
    for a in data["annotations"][:1]:
        missing = [k for k in REQUIRED_ANN_KEYS if k not in a]
        if missing:
            raise ManifestError(f"{path}: annotation entries lack {', '.join(missing)}")
    return data


def load_split(root: str | os.PathLike[str], split: str, *, check_images: bool = True) -> Manifest:
    """One split as a manifest; raises :class:`ManifestError` naming the offending file."""
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: COCO root directory not found")
    files = annotation_files(root, split)
    inst = _read_json(files["instances"])
    kps = _read_json(files["keypoints"]) if files["keypoints"].exists() else None
    image_root = root / f"{split}2017"
    if not inst["images"]:
        raise ManifestError(f"{files['instances']}: split '{split}' has no images")
    if check_images and not image_root.is_dir():
        raise ManifestError(f"{image_root}: image directory of split '{split}' not found")
    keypoints_by_id: dict[int, dict[str, Any]] = {}
    person_cat: dict[str, Any] | None = None
    if kps is not None:
        keypoints_by_id = {a["id"]: a for a in kps["annotations"]}
        person_cat = next((c for c in kps["categories"] if c["name"] == "person"), None)
    categories = [dict(c) for c in inst["categories"]]
    if person_cat is not None:
        for c in categories:
            if c["id"] == person_cat["id"]:
                c.update({k: person_cat[k] for k in ("keypoints", "skeleton") if k in person_cat})
    manifest: Manifest = {
        "info": {"format": "coco", "split": split, "image_root": str(image_root)},
        "images": inst["images"],
        "annotations": inst["annotations"],
        "categories": categories,
    }
    persons = person_category_ids(manifest)
    image_ids = {img["id"] for img in manifest["images"]}
    skipped = {"crowd": 0, "no_keypoints": 0}
    kept = 0
    for a in manifest["annotations"]:
        if a["image_id"] not in image_ids:
            raise ManifestError(f"{files['instances']}: annotation {a['id']} points at "
                                f"image {a['image_id']}, which is not in the file")
        k = keypoints_by_id.get(a["id"])
        if k is not None and "keypoints" in k:
            a["keypoints"], a["num_keypoints"] = k["keypoints"], k.get("num_keypoints", 0)
        a.setdefault("iscrowd", 0)
        if a["category_id"] in persons:
            if a["iscrowd"]:
                skipped["crowd"] += 1
                a["anonymize"] = False
            elif a.get("num_keypoints", 0) <= 0:
                skipped["no_keypoints"] += 1
                a["anonymize"] = False
            else:
                a["anonymize"] = True
                kept += 1
        else:
            a["anonymize"] = False
    if check_images:
        for img in manifest["images"]:
            p = image_root / img["file_name"]
            if not p.is_file():
                raise ManifestError(f"{files['instances']}: image {img['id']} points at "
                                    f"{p}, which does not exist")
    manifest["info"]["summary"] = {"images": len(manifest["images"]), "persons_kept": kept,
                                   "persons_skipped": skipped}
    return manifest
