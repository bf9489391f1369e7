"""COCO 2017 (keypoints) as it lies on disk after the official download.

``annotations/instances_{split}2017.json`` gives every category's instances;
``annotations/person_keypoints_{split}2017.json`` adds the persons' keypoints. Persons to
anonymize (the study's rule for COCO): category person, not ``iscrowd``, at least one labelled
keypoint. Without a keypoints file (most users' own, instance-only COCO files) every non-crowd
person is eligible instead; ``persons: keypoints | all`` in the dataset's config chooses the rule
explicitly (``auto``, the default: ``keypoints`` when the keypoints file exists, else ``all``).
Images: ``{split}2017/``.

A COCO-format dataset laid out otherwise (most users' own) gives its files explicitly, relative
to ``root`` or absolute: ``annotations: {train: ..., val: ...}`` (instances files),
``keypoint_annotations: {train: ..., val: ...}`` (optional) and ``images: {train: dir, val:
dir}``; ``person_categories`` names the categories that are persons (default person,
pedestrian).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..manifest import (PERSON_CATEGORY_NAMES, Manifest, ManifestError,
                        person_category_ids)
from . import checks

REQUIRED_IMAGE_KEYS = ("id", "file_name", "width", "height")
REQUIRED_ANN_KEYS = ("id", "image_id", "category_id", "bbox", "segmentation")
#: COCO-17's face points: the keypoint face boxes come from them
FACE_KEYPOINT_NAMES = frozenset({"nose", "left_eye", "right_eye", "left_ear", "right_ear"})


def annotation_files(root: str | os.PathLike[str], split: str,
                     annotations: dict[str, str] | None = None,
                     keypoint_annotations: dict[str, str] | None = None) -> dict[str, Path]:
    """The instances and keypoints files of a split: the explicit paths (relative to ``root``)
    where given, else the COCO 2017 layout."""
    ann = Path(root) / "annotations"
    files = {"instances": ann / f"instances_{split}2017.json",
             "keypoints": ann / f"person_keypoints_{split}2017.json"}
    if annotations and split in annotations:
        files["instances"] = Path(root) / annotations[split]
        files["keypoints"] = Path(root) / f"{annotations[split]}.no-keypoints-file"
    if keypoint_annotations and split in keypoint_annotations:
        files["keypoints"] = Path(root) / keypoint_annotations[split]
    return files


def image_dir(root: str | os.PathLike[str], split: str,
              images: dict[str, str] | None = None) -> Path:
    """The split's image directory: ``images[split]`` (relative to ``root``) or ``{split}2017``."""
    return Path(root) / (images[split] if images and split in images else f"{split}2017")


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
    for kind, required in (("images", REQUIRED_IMAGE_KEYS), ("annotations", REQUIRED_ANN_KEYS)):
        for i, entry in enumerate(data[kind]):
            if not isinstance(entry, dict):
                raise ManifestError(f"{path}: {kind}[{i}] is a {type(entry).__name__}, "
                                    "not an object")
            missing = [k for k in required if k not in entry]
            if missing:
                ident = f" (id {entry['id']!r})" if "id" in entry else ""
                raise ManifestError(f"{path}: {kind}[{i}]{ident} lacks "
                                    f"{', '.join(missing)}")
            for key in ("id", "image_id") if kind == "annotations" else ("id",):
                if not _is_id(entry[key]):
                    raise ManifestError(f"{path}: {kind}[{i}] has {key} {entry[key]!r}, not an "
                                        "integer or a string")
    _check_categories(data["categories"], path)
    return data


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _check_categories(categories: list[Any], path: Path) -> None:
    """Every category an object with an integer (or string) ``id`` and a string ``name``, no id
    twice (one id both person and car)."""
    seen: dict[Any, str] = {}
    for i, c in enumerate(categories):
        if not isinstance(c, dict):
            raise ManifestError(f"{path}: categories[{i}] is a {type(c).__name__}, not an "
                                "object")
        cid, name = c.get("id"), c.get("name")
        if not _is_id(cid):
            raise ManifestError(f"{path}: categories[{i}] has id {cid!r}, not an integer or a "
                                "string")
        if not isinstance(name, str):
            raise ManifestError(f"{path}: categories[{i}] (id {cid!r}) has name {name!r}, not "
                                "a string")
        if cid in seen:
            raise ManifestError(f"{path}: category id {cid!r} appears twice ({seen[cid]!r} and "
                                f"{name!r})")
        seen[cid] = name


def _unique_images(images: list[dict[str, Any]], source: Path) -> set[Any]:
    """The image ids; a repeated id or file name is an error naming both entries."""
    by_id: dict[Any, str] = {}
    by_name: dict[str, Any] = {}
    for img in images:
        if img["id"] in by_id:
            raise ManifestError(f"{source}: image id {img['id']} appears twice "
                                f"({by_id[img['id']]!r} and {img['file_name']!r})")
        # 'a.jpg' and './a.jpg' are one file (symlinks and hard links: checks.confine_images)
        name = os.path.normpath(str(img["file_name"]))
        if name in by_name:
            raise ManifestError(f"{source}: file_name {img['file_name']!r} appears twice "
                                f"(images {by_name[name]} and {img['id']})")
        if not (isinstance(img["width"], int) and isinstance(img["height"], int)
                and img["width"] > 0 and img["height"] > 0):
            raise ManifestError(f"{source}: image {img['id']} has width/height "
                                f"{img['width']!r}x{img['height']!r}, not positive integers")
        by_id[img["id"]], by_name[name] = img["file_name"], img["id"]
    return set(by_id)


def _check_annotation(a: dict[str, Any], size: tuple[int, int], n_keypoints: int,
                      source: Path, keypoints_source: Path | None = None) -> None:
    """Shape checks pycocotools and the backends would otherwise fail on, naming nothing; the
    keypoints' own checks name ``keypoints_source`` (default ``source``)."""
    where = f"{source}: annotation {a['id']}"
    seg = a["segmentation"]
    if isinstance(seg, list):
        for i, poly in enumerate(seg):
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
                n = len(poly) if isinstance(poly, list) else type(poly).__name__
                raise ManifestError(f"{where}: polygon {i} has {n} coordinates; a polygon needs "
                                    "at least 3 points (6 numbers, x y pairs)")
            if (j := checks.first_not_finite(poly)) is not None:
                # pycocotools rasterizes NaN or null as a polygon of unbounded size
                raise ManifestError(f"{where}: polygon {i} holds {poly[j]!r} at {j}, not a "
                                    "finite number")
    elif not (isinstance(seg, dict) and "counts" in seg and "size" in seg):
        raise ManifestError(f"{where}: segmentation is neither polygons nor RLE")
    elif not isinstance(seg["size"], list) or seg["size"] != [size[1], size[0]]:
        raise ManifestError(f"{where}: RLE size {seg['size']} is not the image's "
                            f"[{size[1]}, {size[0]}] (height, width)")
    elif (bad := checks.rle_counts_error(seg["counts"], size[1], size[0])) is not None:
        raise ManifestError(f"{where}: {bad}")
    bbox = a.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and checks.first_not_finite(bbox) is None):
        raise ManifestError(f"{where}: bbox {bbox!r} is not [x, y, width, height] (finite "
                            "numbers)")
    kp = a.get("keypoints")
    if kp is not None:
        _check_keypoints(kp, size, n_keypoints, f"{keypoints_source or source}: annotation "
                                                f"{a['id']}")
    crowd = a.get("iscrowd", 0)
    if crowd is not None and (isinstance(crowd, str) or crowd not in (0, 1)):
        # a string "0" would count as crowd, and a crowd person is left as it is
        raise ManifestError(f"{where}: iscrowd {crowd!r} is not 0 or 1")


def _check_keypoints(kp: Any, size: tuple[int, int], n_keypoints: int, where: str) -> None:
    """x, y, v triples of finite numbers, v 0, 1 or 2, every labelled point inside the image
    (1 px of slack)."""
    if not isinstance(kp, list):
        raise ManifestError(f"{where}: keypoints {kp!r} are not a list")
    if n_keypoints and len(kp) != 3 * n_keypoints:
        raise ManifestError(f"{where}: {len(kp)} keypoint numbers, expected 3 x "
                            f"{n_keypoints} = {3 * n_keypoints} (x, y, v per keypoint)")
    if len(kp) % 3:
        raise ManifestError(f"{where}: {len(kp)} keypoint numbers, not x, y, v triples")
    if (j := checks.first_not_finite(kp)) is not None:
        raise ManifestError(f"{where}: keypoints hold {kp[j]!r} at {j}, not a finite number")
    w, h = size
    for i in range(len(kp) // 3):
        x, y, v = kp[3 * i:3 * i + 3]
        if v not in (0, 1, 2):
            raise ManifestError(f"{where}: keypoint {i} has visibility {v!r}; COCO's are 0 "
                                "(not labelled), 1 (labelled, not visible), 2 (visible)")
        if not v:
            continue
        if not (-1 <= x <= w + 1 and -1 <= y <= h + 1):
            raise ManifestError(f"{where}: keypoint {i} at ({x:g}, {y:g}) lies outside the "
                                f"{w}x{h} image (keypoints are in pixels of the image)")


def _face_point_off_box(a: dict[str, Any], face_keypoints: tuple[int, ...]) -> str | None:
    """A labelled face point (nose, eyes, ears) farther from the person's box than the box's
    own size, described; None when there is none. A few persons have one (a face hidden
    behind another object, labelled where it would be, beside a small visible box); keypoints
    in another frame (normalized to [0, 1], scaled for another image size) have one on most."""
    kp, (bx, by, bw, bh) = a["keypoints"], a["bbox"]
    margin = max(bw, bh)
    for i in face_keypoints:
        x, y, v = kp[3 * i:3 * i + 3]
        if v > 0 and not (bx - margin <= x <= bx + bw + margin
                          and by - margin <= y <= by + bh + margin):
            return (f"annotation {a['id']}: keypoint {i} at ({x:g}, {y:g}), box [{bx:g}, "
                    f"{by:g}, {bw:g}, {bh:g}]")
    return None


def _clip_bbox(a: dict[str, Any], size: tuple[int, int]) -> int:
    """Clip the bbox to the image in place; 1 when it had to be clipped."""
    w, h = size
    x, y, bw, bh = (float(v) for v in a["bbox"])
    x0, y0 = min(max(x, 0.0), w), min(max(y, 0.0), h)
    x1, y1 = min(max(x + bw, 0.0), w), min(max(y + bh, 0.0), h)
    if (x0, y0, x1, y1) == (x, y, x + bw, y + bh):
        return 0
    a["bbox"] = [x0, y0, x1 - x0, y1 - y0]
    return 1


def _check_keypoint_file(kps: dict[str, Any], inst: dict[str, Any], source: Path,
                         instances: Path) -> None:
    """The keypoints file adds points to the instances file's annotations by id: each of its
    annotations must be one of those, on the same image and of the same category."""
    by_id = {a["id"]: a for a in inst["annotations"]}
    for k in kps["annotations"]:
        a = by_id.get(k["id"])
        if a is None:
            raise ManifestError(f"{source}: annotation {k['id']!r} is not in {instances} (the "
                                "keypoints file adds points to its annotations by id)")
        for key in ("image_id", "category_id"):
            if k[key] != a[key]:
                raise ManifestError(f"{source}: annotation {k['id']!r} has {key} {k[key]!r}, "
                                    f"but {instances} has {a[key]!r}")


def _check_person_categories(categories: list[dict[str, Any]], requested: list[str] | None,
                             source: Path) -> None:
    """Every requested person category (default: any of person, pedestrian) is a category of
    the file: a name that matches none would leave its people as they are, silently."""
    present = [str(c.get("name")) for c in categories]
    listing = ", ".join(repr(n) for n in present) or "none"
    if requested:
        unknown = [n for n in requested if n not in present]
        if unknown:
            raise ManifestError(f"{source}: person_categories {', '.join(map(repr, unknown))} "
                                f"match no category of the file (its categories: {listing})")
    elif not set(PERSON_CATEGORY_NAMES) & set(present):
        raise ManifestError(f"{source}: no category named {' or '.join(PERSON_CATEGORY_NAMES)} "
                            f"(its categories: {listing}); name the ones that are persons in "
                            "the dataset's person_categories")


def persons_rule(requested: str, has_keypoints: bool, keypoints_file: Path) -> str:
    """The eligibility rule that applies: ``keypoints`` or ``all`` (see the module doc)."""
    if requested == "auto":
        return "keypoints" if has_keypoints else "all"
    if requested == "keypoints" and not has_keypoints:
        raise ManifestError(f"{keypoints_file}: not found, but the dataset's persons: keypoints "
                            "needs it (use persons: all for an instance-only dataset)")
    if requested not in ("keypoints", "all"):
        raise ManifestError(f"persons: {requested!r} is not a rule (auto, keypoints, all)")
    return requested


def load_split(root: str | os.PathLike[str], split: str, *, check_images: bool = True,
               persons: str = "auto", annotations: dict[str, str] | None = None,
               keypoint_annotations: dict[str, str] | None = None,
               images: dict[str, str] | None = None,
               person_categories: list[str] | None = None) -> Manifest:
    """One split as a manifest; raises :class:`ManifestError` naming the offending file."""
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: COCO root directory not found")
    files = annotation_files(root, split, annotations, keypoint_annotations)
    if keypoint_annotations and split in keypoint_annotations and not files["keypoints"].exists():
        raise ManifestError(f"{files['keypoints']}: keypoint annotation file not found")
    inst = _read_json(files["instances"])
    kps = _read_json(files["keypoints"]) if files["keypoints"].exists() else None
    rule = persons_rule(persons, kps is not None, files["keypoints"])
    sizes = {img["id"]: (img["width"], img["height"]) for img in inst["images"]}
    image_root = image_dir(root, split, images)
    if not inst["images"]:
        raise ManifestError(f"{files['instances']}: split '{split}' has no images")
    if check_images and not image_root.is_dir():
        raise ManifestError(f"{image_root}: image directory of split '{split}' not found")
    keypoints_by_id: dict[int, dict[str, Any]] = {}
    person_cat: dict[str, Any] | None = None
    if kps is not None:
        keypoints_by_id = {a["id"]: a for a in kps["annotations"]}
        names = person_categories or ("person",)
        person_cat = next((c for c in kps["categories"] if c["name"] in names), None)
    categories = [dict(c) for c in inst["categories"]]
    _check_person_categories(categories, person_categories, files["instances"])
    if person_cat is not None:
        for c in categories:
            if c["id"] == person_cat["id"]:
                c.update({k: person_cat[k] for k in ("keypoints", "skeleton") if k in person_cat})
    manifest: Manifest = {
        "info": {"format": "coco", "split": split, "image_root": str(image_root),
                 "annotation_file": str(files["instances"]), "persons_rule": rule,
                 "source_files": [str(p) for p in files.values() if p.is_file()],
                 **({"person_categories": list(person_categories)} if person_categories
                    else {})},
        "images": inst["images"],
        "annotations": inst["annotations"],
        "categories": categories,
    }
    persons = person_category_ids(manifest)
    image_ids = _unique_images(manifest["images"], files["instances"])
    n_keypoints = {c["id"]: len(c.get("keypoints") or []) for c in categories}
    face_keypoints = {c["id"]: tuple(i for i, n in enumerate(c.get("keypoints") or [])
                                     if n in FACE_KEYPOINT_NAMES) for c in categories}
    if kps is not None:
        _check_keypoint_file(kps, inst, files["keypoints"], files["instances"])
    clipped = 0
    if check_images:
        for img in manifest["images"]:
            p = checks.confined_image_path(image_root, img, files["instances"])
            if not p.is_file():
                raise ManifestError(f"{files['instances']}: image {img['id']} points at "
                                    f"{p}, which does not exist")
            size = checks.image_size(p, upright=True)
            if size != (img["width"], img["height"]):
                raise ManifestError(f"{files['instances']}: image {img['id']} is "
                                    f"{img['width']}x{img['height']} in the annotations but "
                                    f"{p} is {size[0]}x{size[1]}")
    skipped = {"crowd": 0, "no_keypoints": 0} if rule == "keypoints" else {"crowd": 0}
    kept = with_face = 0
    face_off: list[str] = []
    seen: set[Any] = set()
    for a in manifest["annotations"]:
        if a["id"] in seen:
            raise ManifestError(f"{files['instances']}: annotation id {a['id']} appears twice")
        seen.add(a["id"])
        if a["image_id"] not in image_ids:
            raise ManifestError(f"{files['instances']}: annotation {a['id']} points at "
                                f"image {a['image_id']!r}, which is not in the file")
        if a["category_id"] not in n_keypoints:
            # an id of another type ("1" against 1) or of no category: its persons would be
            # neither counted nor anonymized
            raise ManifestError(f"{files['instances']}: annotation {a['id']} has category_id "
                                f"{a['category_id']!r}, which is no category of the file (its "
                                f"ids: {', '.join(repr(c) for c in n_keypoints)})")
        k = keypoints_by_id.get(a["id"])
        if k is not None and "keypoints" in k:
            a["keypoints"] = k["keypoints"]
        _check_annotation(a, sizes[a["image_id"]], n_keypoints[a["category_id"]],
                          files["instances"], files["keypoints"] if k is not None else None)
        if "keypoints" in a:  # counted from the points: the file's num_keypoints may be stale
            a["num_keypoints"] = sum(1 for v in a["keypoints"][2::3] if v > 0)
            faces = face_keypoints[a["category_id"]]
            if any(a["keypoints"][3 * i + 2] > 0 for i in faces):
                with_face += 1
                if (off := _face_point_off_box(a, faces)) is not None:
                    face_off.append(off)
        clipped += _clip_bbox(a, sizes[a["image_id"]])
        a["iscrowd"] = int(a.get("iscrowd") or 0)
        if a["category_id"] in persons:
            if a["iscrowd"]:
                skipped["crowd"] += 1
                a["anonymize"], a["skip_reason"] = False, "crowd"
            elif rule == "keypoints" and a.get("num_keypoints", 0) <= 0:
                skipped["no_keypoints"] += 1
                a["anonymize"], a["skip_reason"] = False, "no_keypoints"
            else:
                a["anonymize"] = True
                kept += 1
        else:
            a["anonymize"] = False
    if face_off and 2 * len(face_off) > with_face:
        # face boxes from these points would blur background and count the faces as done
        raise ManifestError(f"{files['keypoints'] if kps is not None else files['instances']}: "
                            f"the face keypoints of {len(face_off)} of the {with_face} "
                            "annotations with any lie far outside their boxes (first: "
                            f"{face_off[0]}); keypoints in another frame (normalized to [0, 1], "
                            "scaled for another image size)?")
    manifest["info"]["summary"] = {"images": len(manifest["images"]), "persons_kept": kept,
                                   "persons_skipped": skipped, "bboxes_clipped": clipped}
    return manifest
