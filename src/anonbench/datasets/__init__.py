"""Dataset formats: a ``format`` name in config.yaml maps to a loader of one split."""

from __future__ import annotations

from typing import Any, Callable

from ..manifest import Manifest


#: Dataset options that only the generic COCO format reads (explicit paths, person categories).
COCO_OPTIONS = ("annotations", "keypoint_annotations", "images", "person_categories")


def _coco(root: str, split: str, persons: str = "auto", **options: Any) -> Manifest:
    from . import coco

    return coco.load_split(root, split, persons=persons, **options)


def _cityscapes(root: str, split: str, persons: str = "all", **options: Any) -> Manifest:
    from . import cityscapes

    _fixed_layout("cityscapes", persons, options)
    return cityscapes.load_split(root, split)


def _bdd100k(root: str, split: str, persons: str = "all", **options: Any) -> Manifest:
    from . import bdd100k

    _fixed_layout("bdd100k", persons, options)
    return bdd100k.load_split(root, split)


def _fixed_layout(fmt: str, persons: str, options: dict[str, Any]) -> None:
    if persons not in ("auto", "all"):
        raise ValueError(f"persons: {persons!r}: {fmt} has no keypoints; its rule is 'all'")
    if options:
        raise ValueError(f"{', '.join(options)}: only format coco takes explicit paths and "
                         f"person categories; {fmt} is read in its own layout")


#: Registry: format name -> loader (root, split, persons=rule) -> manifest.
FORMATS: dict[str, Callable[..., Manifest]] = {
    "coco": _coco, "cityscapes": _cityscapes, "bdd100k": _bdd100k}

#: Files whose presence tells that a dataset root is plausible, checked at parse time.
#: ``a|b``: either will do. The ``.json`` ones are also the rule's inputs (see annotation_files).
ROOT_MARKERS: dict[str, list[str]] = {
    "coco": ["annotations/instances_{split}2017.json", "{split}2017"],
    "cityscapes": ["leftImg8bit/{split}", "gtFine/{split}"],
    "bdd100k": ["images/10k/{split}",
                "labels/ins_seg/bitmasks/{split}|labels/ins_seg/rles/ins_seg_{split}.json"],
}

#: Person instances kept (anonymized) in the real training sets, as the study reports them.
STUDY_PERSONS_KEPT: dict[str, int] = {"coco": 149_813, "cityscapes": 17_919, "bdd100k": 9_954}


def load_split(fmt: str, root: str, split: str, dataset: str, persons: str = "auto",
               **options: Any) -> Manifest:
    """One split of a dataset on disk as a manifest, with every image confined to the split's
    image directory and every person instance in a coverage bucket (:mod:`anonbench.coverage`)."""
    from ..coverage import account_prepared
    from .checks import confine_images

    try:
        loader = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown dataset format {fmt!r} (known: {', '.join(FORMATS)})") from None
    m = loader(root, split, persons=persons, **options)
    m["info"]["dataset"] = dataset
    confine_images(m, m["info"].get("annotation_file") or m["info"].get("label_file")
                   or m["info"]["image_root"])
    rule = m["info"].setdefault("persons_rule", "all")
    m["info"].setdefault("summary", {})["persons"] = account_prepared(m, rule)
    return m


def _markers(fmt: str, root: str, split: str, options: dict[str, Any] | None
             ) -> list[list[tuple[str, bool]]]:
    """Per marker its alternatives: a path and whether it is a file (else a directory). A COCO
    dataset with explicit paths has its own (its instances file, whatever its name ends in)."""
    import os

    if fmt == "coco" and options:
        from . import coco

        files = coco.annotation_files(root, split, options.get("annotations"),
                                      options.get("keypoint_annotations"))
        return [[(str(files["instances"]), True)],
                [(str(coco.image_dir(root, split, options.get("images"))), False)]]
    return [[(os.path.join(root, m.format(split=split)), m.endswith(".json"))
             for m in marker.split("|")] for marker in ROOT_MARKERS.get(fmt, [])]


def missing_root_files(fmt: str, root: str, splits: tuple[str, ...] = ("train", "val"),
                       options: dict[str, Any] | None = None) -> list[str]:
    """The markers of a dataset on disk that are missing or of the wrong kind, each as its path
    (alternatives joined by "or") and, for the wrong kind, what it is instead."""
    import os

    out = []
    for split in splits:
        for alts in _markers(fmt, root, split, options):
            if any(os.path.isfile(p) if is_file else os.path.isdir(p) for p, is_file in alts):
                continue
            wrong = [(p, is_file) for p, is_file in alts if os.path.exists(p)]
            if not wrong:
                out.append(" or ".join(p for p, _ in alts))
                continue
            p, is_file = wrong[0]
            out.append(f"{p} (a {'file' if os.path.isfile(p) else 'directory'}, where a "
                       f"{'file' if is_file else 'directory'} is expected)")
    return out


def annotation_files(fmt: str, root: str, split: str,
                     options: dict[str, Any] | None = None) -> list[str]:
    """The annotation files of a dataset on disk that exist (a single marker is listed even
    when missing, so that prepare names it)."""
    import os

    return [p for alts in _markers(fmt, root, split, options) for p, is_file in alts
            if is_file and (len(alts) == 1 or os.path.exists(p))]


def describe(summary: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in summary.items())


def summary_line(dataset: str, fmt: str, split: str, summary: dict[str, Any]) -> str:
    """One line per dataset and split: images, persons kept and skipped by reason; for a
    training split, the study's count on the real training set beside ours."""
    kept = summary.get("persons_kept", 0)
    skipped = summary.get("persons_skipped", {})
    line = (f"{dataset}/{split} ({fmt}): {summary.get('images', 0):,} images, {kept:,} person "
            f"instances kept")
    if split == "train" and fmt in STUDY_PERSONS_KEPT:
        line += f" (the study, real {fmt} train set: {STUDY_PERSONS_KEPT[fmt]:,})"
    line += "; skipped: " + (", ".join(f"{k} {v:,}" for k, v in skipped.items()) or "none")
    persons = summary.get("persons")
    if persons:
        skipped_all = ", ".join(f"{k} {v:,}" for k, v in persons["skipped"].items()) or "none"
        line += (f"; persons present {persons['present']:,} = eligible {persons['eligible']:,}"
                 f" + skipped ({skipped_all}); eligible by the rule '{persons['rule']}': "
                 f"{persons['rule_text']}")
        if persons["skipped"].get("rider"):
            line += "; riders stay a training class and are not anonymized (as the study)"
    others = {k: v for k, v in summary.items()
              if k not in ("images", "persons_kept", "persons_skipped", "persons")}
    if others:
        line += "; " + describe(others)
    return line
