"""Person coverage: every person instance of a training split ends in exactly one bucket.

A *person instance* is an annotation (or a labelled instance the loader dropped) of a person-like
category (:data:`PERSON_LIKE`: person, pedestrian, rider). ``prepare`` decides which are
*eligible* (``anonymize: true``) and gives every other one a ``skip_reason``; each variant then
anonymizes an eligible person or names why it did not (a face variant that found no face, a body
below ``min_body_size``, ...). So for every dataset and variant::

    persons present = anonymized + sum(skipped by reason)

The counts and the annotation ids per bucket go into the anonymize step's ``summary.json`` and
the variant's audit; a variant that anonymizes nobody of a split with eligible persons fails
before any training job (:func:`check_not_empty`), unless it sets ``allow_empty: true``.
"""

from __future__ import annotations

from typing import Any, Iterable

from .manifest import Manifest, ManifestError, PERSON_CATEGORY_NAMES, person_category_names
from .regions import face_labelled

#: Categories whose instances are persons for the accounting (riders are persons, but a training
#: class that the study does not anonymize).
PERSON_LIKE = (*PERSON_CATEGORY_NAMES, "rider")  # the default; see person_like_ids
ANONYMIZED = "anonymized"

#: Every reason a person can be left as it is, with the words the summaries use.
REASONS: dict[str, str] = {
    "crowd": "crowd or group region (iscrowd)",
    "ignored": "marked ignore in the source labels",
    "rider": "rider: a training class that is not anonymized (as the study)",
    "no_pixels": "no visible pixels (empty mask)",
    "no_keypoints": "no labelled keypoint (the study's COCO rule, persons: keypoints)",
    "below_min_body_size": "body box below the variant's min_body_size^2",
    "no_face": "face variant: no face box matched to the person",
    "face_outside_image": "face variant: the face box lies outside the image",
    "crop_too_small": "realistic: crop smaller than 8 x 8 pixels",
}

#: ``persons`` rules of a dataset: which persons prepare marks eligible.
RULES: dict[str, str] = {
    "keypoints": "non-crowd persons with at least one labelled keypoint (the paper's COCO rule)",
    "all": "every non-crowd, non-ignored person with visible pixels",
}


def person_like_ids(manifest: Manifest) -> dict[int, str]:
    """Category id -> name of the person-like categories (the dataset's person categories and
    riders)."""
    names = (*person_category_names(manifest), "rider")
    return {c["id"]: c["name"] for c in manifest["categories"] if c["name"] in names}


def account_prepared(manifest: Manifest, rule: str) -> dict[str, Any]:
    """Give every person-like annotation of a prepared split its bucket, in place.

    Loaders set ``anonymize`` (and may set ``skip_reason``); here a person with an empty mask
    and no labelled face becomes ``no_pixels``, a rider ``rider``, any other unflagged person
    ``crowd`` or the loader's reason. Images may list ``dropped_persons`` (``{"instance_id",
    "reason"}``) that the loader did not keep as annotations. Returns the split's ``persons``
    summary.
    """
    from pycocotools import mask as mask_utils

    from .manifest import annotation_mask

    cats = person_like_ids(manifest)
    rider_class = "rider" not in person_category_names(manifest)  # else riders are persons
    sizes = {img["id"]: (img["height"], img["width"]) for img in manifest["images"]}
    skipped: dict[str, int] = {}
    present = eligible = 0
    for a in manifest["annotations"]:
        name = cats.get(a["category_id"])
        if name is None:
            a["anonymize"] = False
            continue
        present += 1
        if a.get("anonymize"):
            if rider_class and name == "rider":
                raise ManifestError(f"annotation {a['id']}: a rider marked to anonymize")
            seg = a.get("segmentation")
            empty = not seg or (isinstance(seg, dict) and seg.get("counts") in ("", []))
            if not empty:
                h, w = sizes[a["image_id"]]
                if isinstance(seg, dict) and isinstance(seg.get("counts"), str):
                    rle = {"size": seg["size"], "counts": seg["counts"].encode("ascii")}
                    empty = int(mask_utils.area(rle)) == 0
                else:
                    empty = not annotation_mask(a, h, w).any()
            if empty and not face_labelled(a.get("keypoints") or []):
                a["anonymize"], a["skip_reason"] = False, "no_pixels"
            else:  # an empty mask with a labelled face: its face box needs no mask (a body
                # variant reports it as no_pixels, image_coverage)
                a.pop("skip_reason", None)
                eligible += 1
                continue
        reason = a.get("skip_reason") or ("rider" if rider_class and name == "rider" else
                                          "crowd" if a.get("iscrowd") else "ignored")
        a["skip_reason"] = reason
        skipped[reason] = skipped.get(reason, 0) + 1
    for img in manifest["images"]:
        for d in img.get("dropped_persons", []):
            present += 1
            skipped[d["reason"]] = skipped.get(d["reason"], 0) + 1
    return {"rule": rule, "rule_text": RULES[rule], "present": present, "eligible": eligible,
            "skipped": dict(sorted(skipped.items()))}


def image_coverage(anns: Iterable[dict[str, Any]], faces: list[dict[str, Any]],
                   covered: set[Any], variant: dict[str, Any], height: int, width: int
                   ) -> dict[int, str]:
    """Annotation id -> bucket of each eligible person of one image for one variant.

    ``covered``: the annotation ids whose region the variant placed (see
    :attr:`anonbench.regions.Region.covered`).
    """
    from .manifest import annotation_mask
    from .regions import mask_box

    out: dict[int, str] = {}
    face_of = {f.get("annotation_id"): f for f in faces}
    min_size = variant.get("min_body_size")
    for a in anns:
        if not a.get("anonymize"):
            continue
        if a["id"] in covered:
            out[a["id"]] = ANONYMIZED
        elif variant["region"] == "face":
            f = face_of.get(a["id"])
            if f is None:
                out[a["id"]] = "no_face"
            else:
                x0, y0, x1, y1 = f["box"]
                inside = min(x1, width) > max(x0, 0) and min(y1, height) > max(y0, 0)
                out[a["id"]] = "crop_too_small" if inside else "face_outside_image"
        else:
            box = mask_box(annotation_mask(a, height, width))
            if box is None:
                out[a["id"]] = "no_pixels"
            elif min_size is not None and (box[2] - box[0]) * (box[3] - box[1]) < min_size ** 2:
                out[a["id"]] = "below_min_body_size"
            else:
                out[a["id"]] = "crop_too_small"
    return out


def new_coverage() -> dict[str, Any]:
    return {"present": 0, "anonymized": 0, "skipped": {}, "ids": {}}


def add_image(cov: dict[str, Any], img: dict[str, Any], anns: Iterable[dict[str, Any]],
              buckets: dict[int, str], person_cats: dict[int, str]) -> None:
    """Add one image's persons to ``cov``: prepare's reasons, then the variant's ``buckets``."""
    def put(bucket: str, ident: Any) -> None:
        cov["present"] += 1
        if bucket == ANONYMIZED:
            cov["anonymized"] += 1
        else:
            cov["skipped"][bucket] = cov["skipped"].get(bucket, 0) + 1
        cov["ids"].setdefault(bucket, []).append(ident)

    for a in anns:
        if a["category_id"] not in person_cats:
            continue
        put(buckets[a["id"]] if a.get("anonymize") else a.get("skip_reason", "crowd"), a["id"])
    for d in img.get("dropped_persons", []):
        put(d["reason"], f"image {img['id']} instance {d.get('instance_id', '?')}")


def merge(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One coverage from several shards' coverages."""
    out = new_coverage()
    for p in parts:
        out["present"] += p["present"]
        out["anonymized"] += p["anonymized"]
        for k, v in p["skipped"].items():
            out["skipped"][k] = out["skipped"].get(k, 0) + v
        for k, v in p["ids"].items():
            out["ids"].setdefault(k, []).extend(v)
    out["skipped"] = dict(sorted(out["skipped"].items()))
    return out


def check_sums(cov: dict[str, Any], where: str) -> None:
    """The buckets add up to the persons present (an internal invariant)."""
    total = cov["anonymized"] + sum(cov["skipped"].values())
    ids = sum(len(v) for v in cov["ids"].values())
    if not total == ids == cov["present"]:
        raise AssertionError(f"{where}: person coverage does not add up: {cov['present']} "
                             f"present, {total} in buckets, {ids} ids")


def percent_anonymized(cov: dict[str, Any] | None) -> float | None:
    if not cov or not cov["present"]:
        return None
    return 100.0 * cov["anonymized"] / cov["present"]


def describe(cov: dict[str, Any]) -> str:
    """``'12 of 20 persons anonymized (60.0 %); skipped: crowd 3, rider 5'``."""
    skipped = ", ".join(f"{k} {v:,}" for k, v in cov["skipped"].items()) or "none"
    pct = percent_anonymized(cov)
    return (f"{cov['anonymized']:,} of {cov['present']:,} persons anonymized"
            + (f" ({pct:.1f} %)" if pct is not None else "") + f"; skipped: {skipped}")


class NothingAnonymizedError(RuntimeError):
    """A variant anonymized no person of a split that has eligible persons."""


#: The reasons a variant (not prepare) leaves an eligible person as it was.
VARIANT_REASONS = ("below_min_body_size", "no_face", "face_outside_image", "crop_too_small")
_HINTS = {
    "no_face": "the face detector found no face for any of the {n:,} eligible persons",
    "below_min_body_size": "all {n:,} eligible bodies are below min_body_size",
    "face_outside_image": "all {n:,} eligible persons' face boxes lie outside the image",
    "crop_too_small": "all {n:,} eligible persons' crops are below 8 x 8 pixels",
}


def _why_nobody(cov: dict[str, Any]) -> str:
    eligible = {k: v for k, v in cov["skipped"].items() if k in VARIANT_REASONS}
    if not eligible:
        hint = "no person is eligible"
        if cov["skipped"].get("no_keypoints"):
            hint += " (none has a labelled keypoint: set the dataset's persons: all)"
        return hint
    top = max(eligible.items(), key=lambda kv: kv[1])[0]
    return _HINTS[top].format(n=sum(eligible.values()))


def check_not_empty(cov: dict[str, Any], dataset: str, variant_name: str,
                    variant: dict[str, Any]) -> None:
    """Raise :class:`NothingAnonymizedError` when a variant that anonymizes something left every
    person of a split with persons as it was (``allow_empty: true`` on the variant opts out)."""
    if variant.get("method", "none") == "none" or variant.get("allow_empty", False):
        return
    if cov["present"] == 0 or cov["anonymized"] > 0:
        return
    raise NothingAnonymizedError(
        f"{dataset}/{variant_name}: anonymized 0 of {cov['present']:,} persons present "
        f"({', '.join(f'{k} {v:,}' for k, v in cov['skipped'].items())}): {_why_nobody(cov)}; "
        f"set variants.{variant_name}.allow_empty: true to accept")
