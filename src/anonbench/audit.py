"""Privacy audit: is anonymized data really anonymized?

For every region a variant should have anonymized (each matched face box, or each dilated
person mask), compare the anonymized image as written on disk with the original: the fraction
of the region's pixels whose value is within ``tolerance`` levels of the original in every
channel ("unchanged").  JPEG re-encoding moves untouched pixels by a level or two, hence the
tolerance.  Blur leaves flat, uniformly coloured areas unchanged too, so a fraction below 1 is
a number to read, not a verdict.  A region with at least ``UNTOUCHED`` (99 %) of its pixels
unchanged was not anonymized, and that is an error (:class:`UntouchedRegionError`), never a
number in a table -- unless the variant's own method, applied to the original, would leave it
unchanged too (a blur of a flat, clipped-black region): such regions are counted as ``flat``.
(Re-encoding a JPEG at quality 100 leaves about 99.96 % of a photo's pixels within 2 levels,
hence 99 % and not 100 %.)

The audit reads the files independently of the anonymize step, so it checks what training
will see.  It also checks that the anonymized shard holds no hard link to an original image
that has a region to anonymize.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from . import images
from .anonymize import anonymize_image, load_faces, region_mask
from .manifest import Manifest, image_path, iter_images, load_manifest

TOLERANCE = 2
UNTOUCHED = 0.99


class UntouchedRegionError(RuntimeError):
    """A region that should be anonymized is identical to the original."""


def unchanged_fraction(original: np.ndarray, anonymized: np.ndarray, mask: np.ndarray,
                       tolerance: int = TOLERANCE) -> float:
    """Fraction of ``mask``'s pixels where every channel differs by at most ``tolerance``."""
    if original.shape != anonymized.shape:
        raise ValueError(f"image shapes differ: {original.shape} vs {anonymized.shape}")
    n = int(mask.sum())
    if n == 0:
        raise ValueError("empty region")
    diff = np.abs(original[mask].astype(np.int16) - anonymized[mask].astype(np.int16))
    same = diff.max(axis=-1) <= tolerance if diff.ndim == 2 else diff <= tolerance
    return float(same.sum()) / n


def image_regions(height: int, width: int, anns: list[dict[str, Any]],
                  faces: list[dict[str, Any]], variant: dict[str, Any]
                  ) -> list[tuple[str, np.ndarray]]:
    """``(label, mask)`` for each region of one image: one per face box or per person."""
    out = []
    if variant["region"] == "face":
        for f in faces:
            m = region_mask(height, width, anns, [f], variant).mask
            if m.any():
                out.append((f"face of annotation {f.get('annotation_id', '?')}", m))
    else:
        for a in anns:
            if not a.get("anonymize"):
                continue
            m = region_mask(height, width, [a], [], variant).mask
            if m.any():
                out.append((f"person annotation {a.get('id', '?')}", m))
    return out


def audit_shard(shard_manifest: str | Manifest, faces_json: str | None, variant: dict[str, Any],
                anonymized_dir: str, *, tolerance: int = TOLERANCE,
                progress: bool = False) -> dict[str, Any]:
    """Audit one anonymized shard; raises :class:`UntouchedRegionError` on an untouched region."""
    m = shard_manifest if isinstance(shard_manifest, dict) else load_manifest(shard_manifest)
    if variant.get("method", "none") == "none":
        raise ValueError("the original variant anonymizes nothing; there is nothing to audit")
    faces = load_faces(faces_json) if faces_json else {}
    fractions: list[float] = []
    flat = 0
    items = list(iter_images(m))
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="audit", file=sys.stderr, mininterval=2.0)
    for img, anns in items:
        h, w = img["height"], img["width"]
        regions = image_regions(h, w, anns, faces.get(img["id"], []), variant)
        if not regions:
            continue
        src = image_path(m, img)
        dst = os.path.join(anonymized_dir, img["file_name"])
        if not os.path.isfile(dst):
            raise FileNotFoundError(f"{dst}: anonymized image missing")
        if os.path.samefile(src, dst):
            raise UntouchedRegionError(f"{dst} is a link to the original {src}, which has "
                                       f"{len(regions)} region(s) to anonymize")
        original, anonymized = images.read_image(src), images.read_image(dst)
        expected = None
        for label, mask in regions:
            f = unchanged_fraction(original, anonymized, mask, tolerance)
            if f >= UNTOUCHED:
                if expected is None:
                    expected = anonymize_image(original, region_mask(h, w, anns, faces.get(
                        img["id"], []), variant), variant)
                if unchanged_fraction(original, expected, mask, tolerance) >= UNTOUCHED:
                    flat += 1  # the method itself cannot change this region
                    continue
                raise UntouchedRegionError(
                    f"{dst}: {label} ({int(mask.sum())} px) is unchanged from the original "
                    f"({100 * f:.2f} % of its pixels within {tolerance} levels): it was not "
                    "anonymized")
            fractions.append(f)
    return {**summarize(fractions, tolerance), "flat_regions": flat}


def summarize(fractions: list[float], tolerance: int = TOLERANCE) -> dict[str, Any]:
    a = np.asarray(fractions, dtype=np.float64)
    return {
        "regions": int(a.size),
        "tolerance": tolerance,
        "unchanged_mean": float(a.mean()) if a.size else None,
        "unchanged_p95": float(np.percentile(a, 95)) if a.size else None,
        "unchanged_max": float(a.max()) if a.size else None,
        "fractions": [round(float(x), 5) for x in a],
    }


def merge(shard_audits: list[dict[str, Any]], variant_name: str,
          variant: dict[str, Any]) -> dict[str, Any]:
    """One audit per variant from its shards' audits (the per-region fractions are kept)."""
    tol = {s["tolerance"] for s in shard_audits} or {TOLERANCE}
    if len(tol) > 1:
        raise ValueError(f"shard audits used different tolerances {sorted(tol)}")
    fractions = [f for s in shard_audits for f in s["fractions"]]
    return {"variant": variant_name, "variant_config": variant, "shards": len(shard_audits),
            **summarize(fractions, tol.pop()),
            "flat_regions": sum(s.get("flat_regions", 0) for s in shard_audits)}


__all__ = ["TOLERANCE", "UNTOUCHED", "UntouchedRegionError", "audit_shard", "image_regions", "merge",
           "summarize", "unchanged_fraction"]
