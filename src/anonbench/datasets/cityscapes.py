"""Cityscapes (gtFine) as it lies on disk after the official download.

Images: ``leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png``; ground truth:
``gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_instanceIds.png`` (16 bit; an instance's
pixels hold ``label_id * 1000 + k``, a group region such as ``persongroup`` holds the bare
``label_id``). The instance image gives every object's *visible* pixels (later polygons occlude
earlier ones). When it is absent, ``_gtFine_polygons.json`` is rasterised with cityscapesscripts'
own converter (``json2instanceImg.createInstanceImage``), which is how the instance images of the
release were made.

Categories: the 8 Cityscapes instance classes that are evaluated (``hasInstances`` and not
``ignoreInEval`` in cityscapesscripts' label table: person, rider, car, truck, bus, train,
motorcycle, bicycle), with their Cityscapes label ids as category ids. Group regions become
``iscrowd`` annotations. Persons anonymized: ``person`` instances, not groups; ``rider`` is a
training class and is never anonymized. Cityscapes has no keypoints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..manifest import Manifest, ManifestError, encode_mask
from . import checks

IMAGE_SUFFIX = "_leftImg8bit.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
POLYGON_SUFFIX = "_gtFine_polygons.json"
PERSON = "person"


def categories() -> list[dict[str, Any]]:
    """The 8 evaluated instance classes, from cityscapesscripts' label table."""
    from cityscapesscripts.helpers.labels import labels

    return [{"id": int(l.id), "name": l.name, "supercategory": l.category}
            for l in labels if l.hasInstances and not l.ignoreInEval]


def gt_stem(image_file: str) -> str:
    """``aachen/aachen_000000_000019_leftImg8bit.png`` -> ``aachen/aachen_000000_000019_gtFine``."""
    if not image_file.endswith(IMAGE_SUFFIX):
        raise ManifestError(f"{image_file}: not a Cityscapes image name (*{IMAGE_SUFFIX})")
    return image_file[: -len(IMAGE_SUFFIX)] + "_gtFine"


def read_instance_ids(path: str | os.PathLike[str]) -> np.ndarray:
    """The 16-bit instance-id image as int32 (H, W), read without any conversion to 8 bit."""
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im)
    except FileNotFoundError:
        raise ManifestError(f"{path}: instance image not found") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ManifestError(f"{path}: not a readable instance image ({e})") from None
    if arr.ndim != 2 or arr.dtype.kind not in "iu":
        raise ManifestError(f"{path}: expected a single-channel integer instance image, "
                            f"got {arr.dtype} {arr.shape}")
    if arr.dtype.itemsize < 2:
        # ids are label id x 1000 + instance: in 8 bits the persons merge or vanish
        raise ManifestError(f"{path}: an 8-bit instance image cannot hold Cityscapes' instance "
                            "ids (label id x 1000 + index, 16-bit); use the original file, or "
                            "delete it and the polygons are rasterized instead")
    return arr.astype(np.int32)


def _polygon_error(polygon: list[Any]) -> str | None:
    """Why the toolkit cannot draw ``polygon`` (a list of [x, y] points), or None; NaN would be
    drawn at 0, and fewer than 3 points or other shapes fail inside PIL with no file named."""
    if len(polygon) < 3:
        return f"has {len(polygon)} points; a polygon needs at least 3 [x, y] points"
    for j, pt in enumerate(polygon):
        if not (isinstance(pt, list) and len(pt) == 2 and checks.first_not_finite(pt) is None):
            return f"point {j} is {pt!r}, not [x, y] (finite numbers)"
    return None


def render_polygons(path: str | os.PathLike[str]) -> np.ndarray:
    """``*_gtFine_polygons.json`` rasterised by cityscapesscripts to an instance-id image."""
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2instanceImg import createInstanceImage

    data = checks.read_json(path, "polygon file")
    if not (isinstance(data, dict) and isinstance(data.get("objects"), list)
            and "imgWidth" in data and "imgHeight" in data):
        raise ManifestError(f"{path}: not a Cityscapes polygon file "
                            "(expected imgWidth, imgHeight and an 'objects' list)")
    for i, obj in enumerate(data["objects"]):
        if not (isinstance(obj, dict) and "label" in obj and isinstance(obj.get("polygon"), list)):
            raise ManifestError(f"{path}: object {i} lacks 'label' or 'polygon'")
        if (bad := _polygon_error(obj["polygon"])) is not None:
            raise ManifestError(f"{path}: object {i} ({obj['label']!r}): polygon {bad}")
    ann = Annotation()
    try:
        ann.fromJsonFile(str(path))
        img = createInstanceImage(ann, "ids")
    except SystemExit:  # the toolkit's printError exits on an unknown label
        raise ManifestError(f"{path}: the Cityscapes toolkit cannot rasterise it "
                            "(unknown label?)") from None
    return np.asarray(img, dtype=np.int32)


def instance_image(gt_root: Path, gt_file: str) -> np.ndarray:
    """The instance-id image of one ground-truth entry (a ``.png`` or a polygon ``.json``)."""
    p = gt_root / gt_file
    return render_polygons(p) if gt_file.endswith(".json") else read_instance_ids(p)


def instances_from_ids(ids: np.ndarray, category_ids: set[int]) -> list[dict[str, Any]]:
    """One record per instance (or group region) of the given categories in an instance image.

    ``{"category_id", "mask", "iscrowd", "instance_id"}``; ids >= 1000 are instances of class
    ``id // 1000``, ids < 1000 are group regions of class ``id``.
    """
    out = []
    for v in np.unique(ids):
        v = int(v)
        label = v // 1000 if v >= 1000 else v
        if label not in category_ids:
            continue
        out.append({"category_id": label, "mask": ids == v, "iscrowd": int(v < 1000),
                    "instance_id": v})
    return out


def _find_gt(gt_dir: Path, city: str, stem: str, image: Path) -> str:
    for suffix in (INSTANCE_SUFFIX, POLYGON_SUFFIX):
        rel = f"{city}/{stem}{suffix}"
        if (gt_dir / rel).is_file():
            return rel
    raise ManifestError(f"{image}: no ground truth ({gt_dir / city / (stem + INSTANCE_SUFFIX)} "
                        f"and {POLYGON_SUFFIX} missing)")


def load_split(root: str | os.PathLike[str], split: str, *, check_images: bool = True) -> Manifest:
    """One split as a manifest; raises :class:`ManifestError` naming the offending file."""
    root = checks.require_dir(root, "Cityscapes root directory")
    img_dir = checks.require_dir(root / "leftImg8bit" / split, f"image directory of split '{split}'")
    gt_dir = checks.require_dir(root / "gtFine" / split, f"gtFine directory of split '{split}'")
    files = sorted(img_dir.glob(f"*/*{IMAGE_SUFFIX}"))
    if not files:
        raise ManifestError(f"{img_dir}: split '{split}' has no images "
                            f"({{city}}/*{IMAGE_SUFFIX})")
    cats = categories()
    cat_ids = {c["id"] for c in cats}
    names = {c["id"]: c["name"] for c in cats}
    person_id = next(c["id"] for c in cats if c["name"] == PERSON)
    summary = checks.new_summary()
    summary["instances"] = {c["name"]: 0 for c in cats}
    images, anns = [], []
    for image_id, path in enumerate(files, start=1):
        city = path.parent.name
        stem = path.name[: -len(IMAGE_SUFFIX)]
        gt_file = _find_gt(gt_dir, city, stem, path)
        ids = instance_image(gt_dir, gt_file)
        h, w = ids.shape
        if check_images:
            size = checks.image_size(path, stored_labels=True)
            if size != (w, h):
                raise ManifestError(f"{path}: image is {size[0]}x{size[1]} but its ground "
                                    f"truth {gt_dir / gt_file} is {w}x{h}")
        images.append({"id": image_id, "file_name": f"{city}/{path.name}", "width": w,
                       "height": h, "gt_file": gt_file})
        for inst in instances_from_ids(ids, cat_ids):
            m = inst["mask"]
            person = inst["category_id"] == person_id
            if inst["iscrowd"]:
                summary["persons_skipped"]["crowd"] += int(person)
            else:
                summary["instances"][names[inst["category_id"]]] += 1
                summary["persons_kept"] += int(person)
            anns.append({"id": len(anns) + 1, "image_id": image_id,
                         "category_id": inst["category_id"], "segmentation": encode_mask(m),
                         "area": int(m.sum()), "bbox": checks.mask_bbox(m),
                         "iscrowd": inst["iscrowd"], "instance_id": inst["instance_id"],
                         "anonymize": bool(person and not inst["iscrowd"])})
    summary["images"] = len(images)
    return {
        "info": {"format": "cityscapes", "split": split, "image_root": str(img_dir),
                 "gt_root": str(gt_dir), "summary": summary},
        "images": images,
        "annotations": anns,
        "categories": cats,
    }
