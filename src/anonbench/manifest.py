"""The internal dataset format: a COCO-style manifest.

A manifest is a COCO instances dict (``images``, ``annotations``, ``categories``) plus an
``info`` block::

    info = {"dataset": "demo", "split": "train", "image_root": "<dir>", ...}

The image of ``images[i]`` lives at ``os.path.join(info["image_root"], images[i]["file_name"])``.
Annotations are plain COCO: ``bbox`` is ``[x, y, w, h]`` in pixels, ``segmentation`` is RLE or
polygons, ``iscrowd`` marks crowd/group/ignore regions, person annotations may carry COCO-17
``keypoints`` (51 numbers) and ``num_keypoints``.  Every annotation may carry ``anonymize``
(bool): whether the anonymization stage treats it as a person instance to anonymize.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from pycocotools import mask as mask_utils

Manifest = dict[str, Any]

PERSON_CATEGORY_NAMES = ("person", "pedestrian")


class ManifestError(ValueError):
    """A manifest or annotation file is not what the workflow expects."""


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: str | os.PathLike[str], *, directory: bool = False) -> None:
    """Give a file made by ``mkstemp`` (0600) or a folder made by ``mkdtemp`` (0700) the mode
    an ordinary ``open``/``mkdir`` would (0644/0755 under umask 022): results on a cluster are
    shared with a group."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def no_space_error(path: str | os.PathLike[str], exc: BaseException) -> OSError | None:
    """An ``OSError`` saying "no space left on device" (or "disk quota exceeded") with the path
    when ``exc`` or what it was raised from is one -- e.g. torch's ``RuntimeError: [enforce fail
    at inline_container.cc:...]`` raised while handling the ENOSPC of a checkpoint write."""
    import errno
    import shutil

    e: BaseException | None = exc
    while e is not None and not (isinstance(e, OSError)
                                 and e.errno in (errno.ENOSPC, errno.EDQUOT)):
        e = e.__cause__ or e.__context__
    if e is None:
        return None
    what = "disk quota exceeded" if e.errno == errno.EDQUOT else "no space left on device"
    try:
        free = f" ({shutil.disk_usage(Path(path).parent).free // 2**20} MiB free there)"
    except OSError:
        free = ""
    return OSError(e.errno, f"{path}: {what} while writing it{free}")


def fresh_output_dir(out: str | os.PathLike[str], sources: list[str]) -> Path:
    """Remove the output folder ``out`` and what killed jobs left beside it (their temporary
    folders), and return a new temporary folder beside it to build the output in (renamed onto
    ``out`` when complete). Raises ``ValueError`` when a source (a file or folder the job reads)
    lies inside ``out`` or is ``out``: removing it would delete the input."""
    import re
    import shutil

    out = Path(out)
    real_out = os.path.realpath(out)
    for src in sources:
        real = os.path.realpath(src)
        if os.path.commonpath([real_out, real]) == real_out:
            raise ValueError(f"{out}: the job's input {src} lies inside its output folder, "
                             "which the job replaces; keep datasets outside results/")
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    own = re.compile(rf"\.{re.escape(out.name)}\.[a-z0-9_]{{8}}")  # mkdtemp's, below
    for stale in out.parent.iterdir():  # left by a job killed with SIGKILL
        if own.fullmatch(stale.name) and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    follow_umask(tmp, directory=True)
    return tmp


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary file beside ``path`` to write: renamed onto ``path`` when the block ends
    without an error (its mode following the umask, as a plain ``open`` would give), removed
    otherwise, so that ``path`` is complete or absent. A full disk or quota is reported as
    "no space left on device" with the path (:func:`no_space_error`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        follow_umask(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        full = no_space_error(path, e)
        if full is not None:
            raise full from None
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = None) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, bytes):
        return o.decode("ascii")
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read a manifest and check its shape; errors name the file."""
    path = Path(path)
    try:
        with open(path) as f:
            m = json.load(f)
    except FileNotFoundError:
        raise ManifestError(f"{path}: manifest not found") from None
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}: not valid JSON ({e})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(m.get(key), list):
            raise ManifestError(f"{path}: expected a COCO-style manifest with a '{key}' list")
    if "image_root" not in m.get("info", {}):
        raise ManifestError(f"{path}: manifest has no info.image_root")
    return m


def image_path(manifest: Manifest, image: dict[str, Any]) -> str:
    return os.path.join(manifest["info"]["image_root"], image["file_name"])


def annotations_by_image(manifest: Manifest) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {img["id"]: [] for img in manifest["images"]}
    for ann in manifest["annotations"]:
        out.setdefault(ann["image_id"], []).append(ann)
    return out


def person_category_names(manifest: Manifest) -> tuple[str, ...]:
    """The category names that are persons: the dataset's ``person_categories`` (recorded in
    ``info`` by prepare) or :data:`PERSON_CATEGORY_NAMES`."""
    return tuple(manifest.get("info", {}).get("person_categories") or PERSON_CATEGORY_NAMES)


def person_category_ids(manifest: Manifest) -> set[int]:
    names = person_category_names(manifest)
    return {c["id"] for c in manifest["categories"] if c["name"] in names}


def annotation_rle(ann: dict[str, Any], height: int, width: int) -> dict[str, Any] | None:
    """The annotation's segmentation as one COCO RLE (polygons rasterized and merged by
    pycocotools; uncompressed counts kept as a list), or None for an empty polygon list."""
    seg = ann["segmentation"]
    if isinstance(seg, list):
        if not seg:
            return None
        return mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    if isinstance(seg["counts"], list):
        return {"size": list(seg["size"]), "counts": seg["counts"]}
    return {"size": seg["size"], "counts": seg["counts"].encode("ascii")
            if isinstance(seg["counts"], str) else seg["counts"]}


def annotation_mask(ann: dict[str, Any], height: int, width: int) -> np.ndarray:
    """The annotation's instance mask as a bool array of shape (height, width)."""
    rle = annotation_rle(ann, height, width)
    if rle is None:
        return np.zeros((height, width), dtype=bool)
    if isinstance(rle["counts"], list):
        rle = mask_utils.frPyObjects(rle, height, width)
    return mask_utils.decode(rle).astype(bool)


def rle_counts(rle: dict[str, Any]) -> np.ndarray:
    """The run lengths of a COCO RLE (column-major; runs alternate 0, 1, 0, ... starting with
    0): a list as it is, a compressed string decoded as pycocotools' ``rleFrString`` does (6-bit
    characters from 48, 5 payload bits each, 0x20 = more to come, 0x10 of the last = negative;
    from the fourth run on, each value is a difference to the run two before it)."""
    counts = rle["counts"]
    if isinstance(counts, list):
        return np.asarray(counts, dtype=np.int64)
    c = np.frombuffer(counts.encode("ascii") if isinstance(counts, str) else counts,
                      dtype=np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, np.int64)
    last = (c & 0x20) == 0                           # the last character of each number
    starts = np.flatnonzero(np.r_[True, last[:-1]])
    k = np.arange(c.size) - np.repeat(starts, np.diff(np.r_[starts, c.size]))
    x = np.add.reduceat((c & 0x1F) << (5 * k), starts)
    ends = np.flatnonzero(last)
    x -= np.where((c[ends] & 0x10) != 0, 1 << (5 * (k[ends] + 1)), 0)
    x[2::2] = np.cumsum(x[2::2])                     # x[m] += x[m - 2] for m > 2
    x[1::2] = np.cumsum(x[1::2])
    return x


def rle_runs_error(runs: np.ndarray, height: int, width: int) -> str | None:
    """Why run lengths (:func:`rle_counts`) are not a mask of ``height`` x ``width``, or None."""
    if (runs < 0).any():
        return "RLE counts hold a negative run length"
    if int(runs.sum()) != height * width:
        return (f"RLE counts cover {int(runs.sum())} pixels, not the image's {height} x {width} "
                f"= {height * width}")
    return None


def annotation_mask_crop(ann: dict[str, Any], height: int, width: int
                         ) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """(the instance mask inside its tightest box, that box ``x0, y0, x1, y1`` with exclusive
    right/bottom edges), or None for an empty mask. Equal to cropping :func:`annotation_mask`
    (a view; copy it to write), at the cost of the columns the mask spans: only those are
    decoded from the runs."""
    rle = annotation_rle(ann, height, width)
    if rle is None:
        return None
    h, w = (int(v) for v in rle["size"])
    runs = rle_counts(rle)
    bad = rle_runs_error(runs, h, w)
    if bad is not None:
        raise ValueError(f"annotation {ann.get('id', '?')}: {bad}")
    ends = np.cumsum(runs)
    starts = ends - runs
    ones = np.arange(runs.size) % 2 == 1
    on = ones & (runs > 0)
    if not on.any():
        return None
    c0, c1 = int(starts[on][0]) // h, (int(ends[on][-1]) - 1) // h + 1
    if 2 * (c1 - c0) > w:  # a mask across most of the image: pycocotools decodes it all
        cols = annotation_mask(ann, height, width).T[c0:c1]
    else:
        lens = np.clip(ends, c0 * h, c1 * h) - np.clip(starts, c0 * h, c1 * h)
        cols = np.repeat(ones, lens).reshape(c1 - c0, h)
    # cols: one row per image column (column-major, as the runs)
    used, rows = np.flatnonzero(cols.any(axis=1)), np.flatnonzero(cols.any(axis=0))
    x0, x1, y0, y1 = int(used[0]), int(used[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    return cols[x0:x1, y0:y1].T, (c0 + x0, y0, c0 + x1, y1)


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """Compressed COCO RLE of a bool mask, JSON-ready (counts as str)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def iter_images(manifest: Manifest) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    by_image = annotations_by_image(manifest)
    for img in manifest["images"]:
        yield img, by_image.get(img["id"], [])


def subset(manifest: Manifest, image_ids: list[int], **info: Any) -> Manifest:
    """The manifest restricted to ``image_ids`` (order kept), with extra info fields."""
    keep = set(image_ids)
    return {
        "info": {**manifest["info"], **info},
        "images": [img for img in manifest["images"] if img["id"] in keep],
        "annotations": [a for a in manifest["annotations"] if a["image_id"] in keep],
        "categories": manifest["categories"],
    }
