"""Split a training manifest into shards, and put anonymized shards back together."""

from __future__ import annotations

import os
from typing import Any

from .manifest import Manifest


def shard_names(n: int) -> list[str]:
    """``['000', '001', ...]``: zero-padded so that names sort like their numbers."""
    width = max(3, len(str(n - 1)))
    return [f"{i:0{width}d}" for i in range(n)]


def split_shards(manifest: Manifest, n: int) -> list[Manifest]:
    """``n`` shards of consecutive images (in image-id order), sizes differing by at most one.

    A shard may be empty when there are fewer images than shards; it still exists, so the
    DAG does not depend on the data.
    """
    if n < 1:
        raise ValueError("the number of shards must be >= 1")
    images = sorted(manifest["images"], key=lambda img: img["id"])
    anns_of: dict[int, list[dict[str, Any]]] = {img["id"]: [] for img in images}
    for a in manifest["annotations"]:  # one pass: O(images + annotations) for any n
        anns_of.setdefault(a["image_id"], []).append(a)
    names = shard_names(n)
    out = []
    for i, name in enumerate(names):
        part = images[len(images) * i // n: len(images) * (i + 1) // n]
        out.append({
            "info": {**manifest["info"], "shard": name, "num_shards": n},
            "images": part,
            "annotations": [a for img in part for a in anns_of[img["id"]]],
            "categories": manifest["categories"],
        })
    return out


def anonymized_manifest(prepared: Manifest, anonymized_root: str | None, n_shards: int,
                        variant: str) -> Manifest:
    """The training manifest of one variant.

    ``anonymized_root`` is the variant's directory holding one sub-directory per shard; the
    images keep their file names below it. ``None`` (the original variant) points at the
    original images.
    """
    m: Manifest = {
        "info": {**prepared["info"], "variant": variant},
        "images": [dict(img) for img in prepared["images"]],
        "annotations": prepared["annotations"],
        "categories": prepared["categories"],
    }
    if anonymized_root is None:
        return m
    m["info"]["image_root"] = str(anonymized_root)
    shard_of: dict[int, str] = {}
    for shard in split_shards(prepared, n_shards):
        for img in shard["images"]:
            shard_of[img["id"]] = shard["info"]["shard"]
    for img in m["images"]:
        img["file_name"] = os.path.join(shard_of[img["id"]], img["file_name"])
    return m


def summary(manifest: Manifest) -> dict[str, Any]:
    return {"images": len(manifest["images"]), "annotations": len(manifest["annotations"]),
            "persons_to_anonymize": sum(1 for a in manifest["annotations"] if a.get("anonymize"))}
