"""An anonymized dataset in its own layout: ``results/{dataset}/export/{variant}/``.

The export is a dataset root that the dataset's own loader (and the user's training code) reads
as it reads the source: the training images replaced by the variant's anonymized ones under the
source's file names, and everything else the dataset definition uses -- the annotation files of
both splits, Cityscapes' ``gtFine`` files, BDD100K's labels, the val images -- copied as they
are. Nothing else of the source root is exported (other splits, stray files), so the export
holds no image that the workflow did not check. Files lie at the same paths relative to the root
as in the source (a COCO dataset given with explicit paths keeps them); a file outside the root
goes under ``annotations/`` or ``images/{split}/``.

Annotations keep their meaning: no variant changes what an annotation describes (the instance
masks, boxes and keypoints stay where the persons were). Their JSON files are written
with only the keys the format's loaders read (:data:`JSON_KEEP`): COCO's ``flickr_url``,
``coco_url`` and ``date_captured``, an ``info.contributor``, a Cityscapes polygon's ``user``
and ``date``, a BDD100K frame's ``url`` and any key of the user's own would otherwise locate the
original photos or name people; README.txt counts what was dropped. Label images (Cityscapes'
``gtFine`` PNGs, BDD100K's bitmasks) and every image are written without metadata
(:mod:`anonbench.metadata`), pixels as in their source: the anonymized shard for train, the
original for val (never anonymized: the study evaluates on the originals). A ``README.txt``
records the variant, its parameters, the anonbench version, the date and the privacy audit's
person coverage.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

from . import __version__
from .coverage import REASONS
from .images import WRITABLE_SUFFIXES, output_path
from .manifest import Manifest, fresh_output_dir, image_path

#: (source file, path in the export, "image" | "file")
Item = tuple[str, str, str]

#: The keys an exported annotation JSON keeps, per format and level ("" the top level, then the
#: list or object under that key; "objects" of a Cityscapes file, "frames"/"labels" of BDD100K).
JSON_KEEP: dict[str, dict[str, frozenset[str]]] = {
    "coco": {"": frozenset({"images", "annotations", "categories", "info", "licenses"}),
             "info": frozenset({"description", "version", "year"}),
             "licenses": frozenset({"id", "name", "url"}),
             "images": frozenset({"id", "file_name", "width", "height", "license"}),
             "annotations": frozenset({"id", "image_id", "category_id", "bbox", "segmentation",
                                       "area", "iscrowd", "keypoints", "num_keypoints"}),
             "categories": frozenset({"id", "name", "supercategory", "keypoints", "skeleton"})},
    "cityscapes": {"": frozenset({"imgWidth", "imgHeight", "objects"}),
                   "objects": frozenset({"label", "polygon", "deleted", "verified", "id"})},
    "bdd100k": {"": frozenset({"frames", "config"}),
                "frames": frozenset({"name", "videoName", "frameIndex", "attributes", "labels"}),
                "labels": frozenset({"id", "index", "category", "attributes", "rle", "box2d",
                                     "poly2d", "manualShape", "manualAttributes"})},
}


def _keep(value: Any, keep: frozenset[str], where: str, dropped: dict[str, int]) -> Any:
    """``value`` (an object) with only the keys ``keep``; the others counted as ``where.key``."""
    if not isinstance(value, dict):
        return value
    for k in value.keys() - keep:
        name = f"{where}.{k}" if where else k
        dropped[name] = dropped.get(name, 0) + 1
    return {k: v for k, v in value.items() if k in keep}


def sanitized_json(data: Any, fmt: str, dropped: dict[str, int]) -> Any:
    """An annotation file's JSON with only the keys of :data:`JSON_KEEP`; counts the dropped
    keys (``images.flickr_url``: 118287) into ``dropped``."""
    rules = JSON_KEEP[fmt]
    if fmt == "bdd100k" and isinstance(data, list):  # a list of frames
        data = {"frames": data}
        listed = True
    else:
        listed = False
    data = _keep(data, rules[""], "", dropped)
    if not isinstance(data, dict):
        return data
    for key, keys in rules.items():
        if not key or key == "labels" or key not in data:
            continue
        if isinstance(data[key], list):
            data[key] = [_keep(v, keys, key, dropped) for v in data[key]]
        else:
            data[key] = _keep(data[key], keys, key, dropped)
    if fmt == "bdd100k":
        for frame in data.get("frames") or []:
            if isinstance(frame, dict) and isinstance(frame.get("labels"), list):
                frame["labels"] = [_keep(v, rules["labels"], "labels", dropped)
                                   for v in frame["labels"]]
        if listed:
            return data["frames"]
    return data


def _relative(path: str | os.PathLike[str], root: str | os.PathLike[str], fallback: str) -> str:
    """``path`` relative to ``root``, or ``fallback`` when it lies outside the root."""
    p, r = os.path.realpath(path), os.path.realpath(root)
    return os.path.relpath(p, r) if os.path.commonpath([p, r]) == r and p != r else fallback


def _annotation_files(m: Manifest) -> Iterator[str]:
    """The annotation files that a prepared split was read from (all three formats)."""
    info = m["info"]
    yield from info.get("source_files", [])
    if info.get("format") == "bdd100k":
        if info.get("labels") == "rles":
            yield info["label_file"]
        else:
            for img in m["images"]:
                yield os.path.join(info["label_file"], Path(img["file_name"]).stem + ".png")
    if info.get("format") == "cityscapes":
        gt_root = Path(info["gt_root"])
        for img in m["images"]:
            stem = Path(img["gt_file"])
            prefix = stem.name.split("_gtFine")[0] + "_gtFine_"
            yield from sorted(str(p) for p in (gt_root / stem.parent).glob(prefix + "*"))


def plan(root: str, train: Manifest, val: Manifest, anonymized: Manifest) -> list[Item]:
    """Every file of the export: where it comes from and where it goes."""
    items: list[Item] = []
    anon_by_id = {img["id"]: img for img in anonymized["images"]}
    for split, m in (("train", train), ("val", val)):
        image_dir = _relative(m["info"]["image_root"], root, f"images/{split}")
        for img in m["images"]:
            src = (image_path(anonymized, anon_by_id[img["id"]]) if split == "train"
                   else image_path(m, img))
            items.append((src, os.path.join(image_dir, img["file_name"]), "image"))
        for f in _annotation_files(m):
            items.append((f, _relative(f, root, f"annotations/{os.path.basename(f)}"), "file"))
    seen: dict[str, str] = {}
    out = []
    for src, dst, kind in items:  # a file both splits use (BDD100K, COCO) goes once
        if seen.get(dst) == src:
            continue
        if dst in seen:
            raise ValueError(f"export: {src} and {seen[dst]} would both be written to {dst}")
        seen[dst] = src
        out.append((src, dst, kind))
    return out


def _without_local_paths(value: Any) -> Any:
    """``value`` with each file path (a DeepPrivacy2 checkpoint, ``dp2_root``) cut to its file
    name: a README.txt that travels with the data should not carry the user's folders."""
    if isinstance(value, dict):
        return {k: _without_local_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_local_paths(v) for v in value]
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith("~")
                                   or os.sep in value and os.path.exists(value)):
        return os.path.basename(value.rstrip(os.sep)) or value
    return value


def readme(dataset: str, variant_name: str, variant: dict[str, Any], fmt: str,
           audit: dict[str, Any] | None, n_train: int, n_val: int,
           dropped: dict[str, int] | None = None) -> str:
    cov = (audit or {}).get("coverage")
    lines = [f"Anonymized copy of dataset '{dataset}' ({fmt} layout), made by anonbench "
             f"{__version__} on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.",
             "", f"Variant: {variant_name}",
             f"Parameters: {json.dumps(_without_local_paths(variant), sort_keys=True)}", "",
             f"train: {n_train} images, anonymized with the variant above.",
             f"val: {n_val} images, NOT anonymized (copied from the source: the study evaluates "
             "on the original validation images).",
             "Annotations are the source's: the variant changes no pixel that an annotation "
             "describes differently (masks, boxes and keypoints stay valid). Their JSON files "
             "keep only the keys the loaders read; dropped (they can locate the original "
             "photos or name people): " + (", ".join(f"{k} ({v})" for k, v in
                                                      sorted((dropped or {}).items()))
                                           or "none") + ".",
             "Every image and label image is written without metadata (EXIF, GPS, XMP, IPTC, "
             "comments, text chunks, thumbnails); images the variant did not change keep their "
             "pixels exactly.",
             ""]
    if cov:
        lines.append(f"Persons of the training split: {cov['present']} present, "
                     f"{cov['anonymized']} anonymized; left as they were:")
        lines += [f"  {k}: {v} ({REASONS.get(k, k)})" for k, v in cov["skipped"].items()]
        if not cov["skipped"]:
            lines.append("  none")
    return "\n".join(lines) + "\n"


def export_dataset(root: str, train: Manifest, val: Manifest, anonymized: Manifest,
                   audit: dict[str, Any] | None, variant_name: str, variant: dict[str, Any],
                   out_dir: str, *, progress: bool = True) -> dict[str, Any]:
    """Write the export into ``out_dir`` (built under a temporary name, renamed when complete)."""
    from .metadata import copy_without_metadata

    items = plan(root, train, val, anonymized)
    out = Path(out_dir)
    tmp = fresh_output_dir(out, [root, train["info"]["image_root"], val["info"]["image_root"],
                                 *(src for src, _, kind in items if kind == "file")])
    bar: Any = items
    if progress:
        from tqdm import tqdm

        bar = tqdm(items, desc=f"export {variant_name}", mininterval=2.0)
    fmt = train["info"].get("format", "coco")
    dropped: dict[str, int] = {}
    try:
        for src, dst, kind in bar:
            target = output_path(tmp, dst)
            target.parent.mkdir(parents=True, exist_ok=True)
            suffix = Path(src).suffix.lower()
            if kind == "image" or suffix in WRITABLE_SUFFIXES:
                copy_without_metadata(src, target)
            elif suffix == ".json":
                with open(src) as f:
                    data = sanitized_json(json.load(f), fmt, dropped)
                with open(target, "w") as f:
                    json.dump(data, f)
            else:
                shutil.copyfile(src, target)
        (tmp / "README.txt").write_text(readme(train["info"].get("dataset", "?"), variant_name,
                                               variant, fmt, audit, len(train["images"]),
                                               len(val["images"]), dropped))
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"files": len(items), "images": sum(1 for i in items if i[2] == "image")}
