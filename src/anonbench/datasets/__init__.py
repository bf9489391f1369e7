"""Dataset formats: a ``format`` name in config.yaml maps to a loader of one split."""

from __future__ import annotations

from typing import Any, Callable

from ..manifest import Manifest


def _coco(root: str, split: str) -> Manifest:
    from . import coco

    return coco.load_split(root, split)


#: Registry: format name -> loader (root, split) -> manifest.
FORMATS: dict[str, Callable[[str, str], Manifest]] = {"coco": _coco}

#: Files whose presence tells that a dataset root is plausible, checked at parse time.
ROOT_MARKERS: dict[str, list[str]] = {
    "coco": ["annotations/instances_{split}2017.json", "{split}2017"],
}


def load_split(fmt: str, root: str, split: str, dataset: str) -> Manifest:
    try:
        loader = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown dataset format {fmt!r} (known: {', '.join(FORMATS)})") from None
    m = loader(root, split)
    m["info"]["dataset"] = dataset
    return m


def missing_root_files(fmt: str, root: str, splits: tuple[str, ...] = ("train", "val")) -> list[str]:
    import os

    out = []
    for split in splits:
        for marker in ROOT_MARKERS.get(fmt, []):
            p = os.path.join(root, marker.format(split=split))
            if not os.path.exists(p):
                out.append(p)
    return out


def describe(summary: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in summary.items())
