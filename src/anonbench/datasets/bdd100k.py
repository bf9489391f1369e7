"""BDD100K 10K instance segmentation as it lies on disk after the official download.

Images: ``images/10k/{split}/*.jpg``. Labels, whichever is present (bitmasks first, as the
toolkit's ``to_coco`` conversion that the study's MMDetection setup reads starts from them):

- ``labels/ins_seg/bitmasks/{split}/<image stem>.png``: RGBA; R = category id (1-8, 0 =
  background), G = attribute bits ``(truncated << 3) + (occluded << 2) + (crowd << 1) + ignored``,
  instance id = ``(B << 8) + A`` (``bdd100k/label/to_mask.py``; pixels with the same
  category, attributes and instance id form one instance, as in ``to_coco.bitmasks_loader``);
- ``labels/ins_seg/rles/ins_seg_{split}.json``: Scalabel format (a list of frames, or
  ``{"frames": [...]}``); each label has ``category``, ``attributes`` (``crowd``,
  ``ignored``, ...) and ``rle`` (COCO compressed RLE, ``size`` = ``[height, width]``).

The ``bdd100k`` toolkit itself is not imported: it installs on Python 3.11 but its ``scalabel``
models need ``pydantic<2`` while Snakemake 9 needs pydantic 2, so the documented formats are
decoded here. Categories (ids as the toolkit's ``ins_seg`` config): pedestrian, rider, car, truck,
bus, train, motorcycle, bicycle; the toolkit's name mapping (``person`` -> pedestrian, ...) and
ignored mapping (``other person`` -> pedestrian, ignored, ...) are applied to RLE labels; any
other category (and a bitmask category id outside 1-8) is refused rather than skipped, since a
misspelt ``Pedestrian`` would leave its people as they are.
Persons anonymized: ``pedestrian`` only, not crowd, not ignored. Crowd and ignored instances stay
in the manifest as ``iscrowd`` regions (ignored in training and evaluation).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from ..manifest import Manifest, ManifestError, encode_mask
from . import checks

CATEGORY_NAMES = ["pedestrian", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]
CATEGORIES = [{"id": i, "name": n, "supercategory": s} for i, (n, s) in enumerate(zip(
    CATEGORY_NAMES, ["human", "human", "vehicle", "vehicle", "vehicle", "vehicle", "bike", "bike"]),
    start=1)]
PERSON = "pedestrian"
#: ``bdd100k/configs/ins_seg.toml``: [name_mapping] and [ignored_mapping].
NAME_MAPPING = {"bike": "bicycle", "caravan": "car", "motor": "motorcycle", "person": "pedestrian",
                "van": "car"}
IGNORED_MAPPING = {"other person": "pedestrian", "other vehicle": "car", "trailer": "truck"}
CROWD_BIT, IGNORED_BIT, OCCLUDED_BIT, TRUNCATED_BIT = 2, 1, 4, 8


def label_paths(root: str | os.PathLike[str], split: str) -> dict[str, Path]:
    ins = Path(root) / "labels" / "ins_seg"
    return {"bitmasks": ins / "bitmasks" / split, "rles": ins / "rles" / f"ins_seg_{split}.json"}


def decode_bitmask(bitmask: np.ndarray) -> list[dict[str, Any]]:
    """Instances of one RGBA bitmask: ``{"category_id", "instance_id", "crowd", "ignored",
    "occluded", "truncated", "mask"}``, sorted by instance id; category 0 (background) skipped."""
    if bitmask.ndim != 3 or bitmask.shape[2] != 4 or bitmask.dtype != np.uint8:
        raise ValueError(f"expected an RGBA uint8 bitmask, got {bitmask.dtype} {bitmask.shape}")
    b = bitmask.astype(np.int64)
    identity = (b[..., 0] << 24) + (b[..., 1] << 16) + (b[..., 2] << 8) + b[..., 3]
    out = []
    for ident in np.unique(identity):
        ident = int(ident)
        cat, attr, inst = (ident >> 24) & 255, (ident >> 16) & 255, ident & 65535
        if cat == 0:
            continue
        out.append({"category_id": cat, "instance_id": inst, "crowd": bool(attr & CROWD_BIT),
                    "ignored": bool(attr & IGNORED_BIT), "occluded": bool(attr & OCCLUDED_BIT),
                    "truncated": bool(attr & TRUNCATED_BIT), "mask": identity == ident})
    out.sort(key=lambda r: (r["instance_id"], r["category_id"]))
    return out


def read_bitmask(path: str | os.PathLike[str]) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            arr = np.asarray(im)
    except FileNotFoundError:
        raise ManifestError(f"{path}: bitmask not found") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ManifestError(f"{path}: not a readable bitmask ({e})") from None
    depth = checks.png_bit_depth(path)
    if mode != "RGBA" or depth not in (None, 8):
        got = f"{depth}-bit {mode}" if depth else f"mode {mode}"
        raise ManifestError(f"{path}: expected an 8-bit RGBA bitmask (R category, G attributes, "
                            f"B/A instance id), got {got}")
    return arr


def map_category(name: str) -> tuple[str, bool]:
    """The toolkit's mappings: (category name, ignored)."""
    if name in IGNORED_MAPPING:
        return IGNORED_MAPPING[name], True
    return NAME_MAPPING.get(name, name), False


def _frames(path: Path) -> list[dict[str, Any]]:
    data = checks.read_json(path, "RLE label file")
    frames = data.get("frames") if isinstance(data, dict) else data
    if not isinstance(frames, list):
        raise ManifestError(f"{path}: not a Scalabel label file (expected a list of frames "
                            "or an object with a 'frames' list)")
    for i, fr in enumerate(frames):
        if not isinstance(fr, dict) or not isinstance(fr.get("name"), str):
            raise ManifestError(f"{path}: frame {i} has no 'name'")
        labels = fr.get("labels") or []
        if not isinstance(labels, list):
            raise ManifestError(f"{path}: frame {fr['name']!r}: 'labels' is not a list")
        for lab in labels:
            rle = lab.get("rle") if isinstance(lab, dict) else None
            if not (isinstance(lab, dict) and isinstance(lab.get("category"), str)
                    and isinstance(rle, dict) and "counts" in rle and "size" in rle):
                raise ManifestError(f"{path}: frame {fr['name']!r}: every label needs "
                                    "'category' and 'rle' {counts, size}")
    return frames


def _records_from_rles(frame: dict[str, Any], path: Path, h: int, w: int
                       ) -> list[dict[str, Any]]:
    out = []
    for lab in frame.get("labels") or []:
        rle = lab["rle"]
        if not isinstance(rle["size"], list) or rle["size"] != [h, w]:
            raise ManifestError(f"{path}: frame {frame['name']!r}: RLE size {rle['size']} is not "
                                f"the image's [{h}, {w}]")
        counts = rle["counts"]
        bad = checks.rle_counts_error(counts, h, w)
        if bad is not None:
            raise ManifestError(f"{path}: frame {frame['name']!r}: label {lab.get('id')!r}: {bad}")
        seg = {"size": [h, w], "counts": counts}
        coco_rle = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str)
                    else counts}
        if isinstance(counts, list):
            coco_rle = mask_utils.frPyObjects(seg, h, w)
            seg = {"size": [h, w], "counts": coco_rle["counts"].decode("ascii")}
        where = f"{path}: frame {frame['name']!r}: label {lab.get('id')!r}"
        attrs = lab.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise ManifestError(f"{where}: attributes {attrs!r} are not an object")
        for flag in ("crowd", "ignored"):
            if attrs.get(flag) not in (None, True, False):  # 0 and 1 are False and True
                # a string "false" would count as true, and such a person is left as it is
                raise ManifestError(f"{where}: attribute {flag} is {attrs[flag]!r}, not a "
                                    "boolean")
        name, ignored = map_category(lab["category"])
        if name not in CATEGORY_NAMES:
            mapped = ", ".join([*NAME_MAPPING, *IGNORED_MAPPING])
            raise ManifestError(f"{where}: category {lab['category']!r} is not one of the "
                                f"toolkit's ins_seg categories ({', '.join(CATEGORY_NAMES)}) or "
                                f"their mapped names ({mapped})")
        out.append({"category": name, "instance_id": lab.get("id"),
                    "crowd": bool(attrs.get("crowd", False)),
                    "ignored": ignored or bool(attrs.get("ignored", False)),
                    "segmentation": seg, "area": int(mask_utils.area(coco_rle)),
                    "bbox": [float(v) for v in mask_utils.toBbox(coco_rle)]})
    return out


def load_split(root: str | os.PathLike[str], split: str, *, check_images: bool = True) -> Manifest:
    """One split as a manifest; raises :class:`ManifestError` naming the offending file."""
    root = checks.require_dir(root, "BDD100K root directory")
    img_dir = checks.require_dir(root / "images" / "10k" / split,
                                 f"image directory of split '{split}'")
    paths = label_paths(root, split)
    if paths["bitmasks"].is_dir():
        source, label_file = "bitmasks", paths["bitmasks"]
        entries: list[tuple[str, Any]] = [(p.stem + ".jpg", p)
                                          for p in sorted(paths["bitmasks"].glob("*.png"))]
    elif paths["rles"].is_file():
        source, label_file = "rles", paths["rles"]
        entries = [(fr["name"], fr) for fr in _frames(paths["rles"])]
    else:
        raise ManifestError(f"{root}: no instance-segmentation labels for split '{split}' "
                            f"(neither {paths['bitmasks']}/ nor {paths['rles']})")
    if not entries:
        raise ManifestError(f"{label_file}: split '{split}' has no images")
    cat_id = {c["name"]: c["id"] for c in CATEGORIES}
    summary = checks.new_summary(("ignored",))
    summary["instances"] = {n: 0 for n in CATEGORY_NAMES}
    summary["skipped_empty"] = 0
    images, anns = [], []
    seen: set[str] = set()
    for image_id, (name, entry) in enumerate(entries, start=1):
        if name in seen:
            raise ManifestError(f"{label_file}: image {name!r} is labelled twice")
        seen.add(name)
        img_path = img_dir / name
        if not img_path.is_file():
            raise ManifestError(f"{label_file}: labels of {name!r} point at {img_path}, "
                                "which does not exist")
        if source == "bitmasks":
            bitmask = read_bitmask(entry)
            h, w = bitmask.shape[:2]
            records = []
            for inst in decode_bitmask(bitmask):
                if not 1 <= inst["category_id"] <= len(CATEGORY_NAMES):
                    raise ManifestError(
                        f"{entry}: instance {inst['instance_id']} has category id "
                        f"{inst['category_id']} in R, outside the toolkit's ins_seg ids "
                        f"1-{len(CATEGORY_NAMES)} (0: background)")
                m = inst.pop("mask")
                records.append({**inst, "category": CATEGORY_NAMES[inst["category_id"] - 1],
                                "segmentation": encode_mask(m), "area": int(m.sum()),
                                "bbox": checks.mask_bbox(m)})
            where = entry
        else:
            w, h = checks.image_size(img_path, stored_labels=True) if check_images else (None, None)
            if h is None:
                sizes = [lab["rle"]["size"] for lab in entry.get("labels") or []]
                if not sizes:
                    w, h = checks.image_size(img_path, stored_labels=True)
                else:
                    h, w = (int(v) for v in sizes[0])
            records = _records_from_rles(entry, label_file, h, w)
            where = label_file
        if check_images and source == "bitmasks":
            size = checks.image_size(img_path, stored_labels=True)
            if size != (w, h):
                raise ManifestError(f"{img_path}: image is {size[0]}x{size[1]} but its bitmask "
                                    f"{where} is {w}x{h}")
        image = {"id": image_id, "file_name": name, "width": int(w), "height": int(h)}
        images.append(image)
        for r in records:
            person = r["category"] == PERSON
            if r["area"] <= 0:
                summary["skipped_empty"] += 1
                if r["category"] in (PERSON, "rider"):  # accounted for (anonbench.coverage)
                    image.setdefault("dropped_persons", []).append(
                        {"instance_id": r["instance_id"], "reason": "no_pixels"})
                continue
            ignore = r["crowd"] or r["ignored"]
            if person and r["crowd"]:
                summary["persons_skipped"]["crowd"] += 1
            elif person and r["ignored"]:
                summary["persons_skipped"]["ignored"] += 1
            elif not ignore:
                summary["instances"][r["category"]] += 1
                summary["persons_kept"] += int(person)
            anns.append({"id": len(anns) + 1, "image_id": image_id,
                         "category_id": cat_id[r["category"]], "segmentation": r["segmentation"],
                         "area": r["area"], "bbox": r["bbox"], "iscrowd": int(ignore),
                         "crowd": int(r["crowd"]), "ignored": int(r["ignored"]),
                         "instance_id": r["instance_id"],
                         "anonymize": bool(person and not ignore),
                         **({"skip_reason": "crowd" if r["crowd"] else "ignored"}
                            if person and ignore else {})})
    summary["images"] = len(images)
    # images without labels cannot be anonymized: they are left out of the manifest and so of
    # the export, and the summary says how many
    unlabelled = sum(1 for f in img_dir.rglob("*")
                     if f.suffix.lower() in (".jpg", ".jpeg") and
                     f.relative_to(img_dir).as_posix() not in seen)
    if unlabelled:
        summary["images_without_labels_left_out"] = unlabelled
    return {
        "info": {"format": "bdd100k", "split": split, "image_root": str(img_dir),
                 "labels": source, "label_file": str(label_file), "summary": summary},
        "images": images,
        "annotations": anns,
        "categories": [dict(c) for c in CATEGORIES],
    }
