"""Cheap checks of a dataset on disk, shared by the ingesters: one clear error naming the file.

``prepare`` runs them before any anonymize or train job. An image is opened for its header
(format and size) and its last bytes are checked for the format's end marker (JPEG: EOI
``FF D9``; PNG: the ``IEND`` chunk), which catches a truncated download without decoding
every image of the split.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from ..images import WRITABLE_SUFFIXES
from ..manifest import ManifestError, rle_counts, rle_runs_error
from ..metadata import MetadataError, exif_orientation, jpeg_trailer_size

_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_JPEG_EOI = b"\xff\xd9"
_TAIL = 4096


def require_dir(path: str | os.PathLike[str], what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise ManifestError(f"{path}: {what} not found")
    return path


#: JPEG start-of-frame markers that neither Pillow nor OpenCV decode: hierarchical (C5-C7) and
#: arithmetic-coded (C9-CB, CD-CF) JPEG; baseline, extended, progressive and lossless decode.
_JPEG_UNSUPPORTED_SOF = {0xC5: "hierarchical", 0xC6: "hierarchical", 0xC7: "hierarchical",
                         0xC9: "arithmetic-coded", 0xCA: "arithmetic-coded",
                         0xCB: "arithmetic-coded", 0xCD: "arithmetic-coded",
                         0xCE: "arithmetic-coded", 0xCF: "arithmetic-coded"}
_SUFFIX_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}


def _jpeg_frame_marker(path: Path) -> int | None:
    """The JPEG's start-of-frame marker (0xC0-0xCF but DHT, JPG, DAC), read segment by segment
    from the start of the file, or None if the header ends first."""
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            return None
        while True:
            head = f.read(4)
            while head[:1] == b"\xff" and head[1:2] == b"\xff":  # fill bytes
                head = head[1:] + f.read(1)
            if len(head) < 4 or head[0] != 0xFF:
                return None
            marker = head[1]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                return marker
            if marker == 0xDA:
                return None
            f.seek(int.from_bytes(head[2:4], "big") - 2, os.SEEK_CUR)


def image_size(path: str | os.PathLike[str], *, upright: bool = False,
               stored_labels: bool = False) -> tuple[int, int]:
    """``(width, height)`` of an image file (``upright``: after its EXIF orientation); raises
    :class:`ManifestError` if it is missing, empty, not an image, or truncated (no end marker).
    ``stored_labels``: the labels lie on the stored pixels (Cityscapes' and BDD100K's masks), so
    an EXIF orientation, which the decoders apply, is refused. The full decode comes later, per
    shard (rule check_images)."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ManifestError(f"{path}: image file is empty (0 bytes)")
        with Image.open(path) as im:
            size, fmt = im.size, im.format
            orientation = im.getexif().get(0x0112, 1)
            if upright and orientation in (5, 6, 7, 8):
                size = (size[1], size[0])
            if stored_labels and orientation not in (0, 1):
                raise ManifestError(
                    f"{path}: EXIF orientation {orientation}, but its labels lie on the stored "
                    "pixels, which the anonymizers would turn upright first; remove the tag "
                    "(e.g. exiftool -Orientation= FILE)")
            if orientation not in (0, 1) and (
                    fmt != "JPEG" or exif_orientation(im.info.get("exif")) != orientation):
                # Pillow also reads it from XMP and PNG text chunks, which OpenCV (training),
                # browsers and labelling tools ignore: the labels may lie on either view
                raise ManifestError(
                    f"{path}: orientation {orientation} from "
                    f"{'XMP' if fmt == 'JPEG' else 'PNG metadata'}, which readers disagree "
                    "about applying (only a JPEG's EXIF orientation is applied everywhere); "
                    "save the image upright without the tag")
    except ManifestError:
        raise
    except FileNotFoundError:
        raise ManifestError(f"{path}: image not found") from None
    except Image.DecompressionBombError as e:
        raise ManifestError(f"{path}: too large to decode safely ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ManifestError(f"{path}: not a readable image ({e})") from None
    if fmt == "MPO":  # a JPEG with more images after its end (a phone's depth or gain map):
        fmt = "JPEG"  # the first is read; the copies and the anonymized images drop the others
    if fmt not in ("JPEG", "PNG"):
        raise ManifestError(f"{path}: {fmt} images are not supported (JPEG and PNG only: "
                            "anonymized copies are written in their source's format, without "
                            "metadata)")
    named = _SUFFIX_FORMAT.get(path.suffix.lower())
    if named and named != fmt:
        raise ManifestError(f"{path}: a {fmt} file named {path.suffix}: its anonymized copy "
                            f"would be a {named} and its unchanged copy a {fmt} under one name; "
                            "rename or convert it")
    if fmt == "JPEG" and (sof := _jpeg_frame_marker(path)) in _JPEG_UNSUPPORTED_SOF:
        raise ManifestError(f"{path}: {_JPEG_UNSUPPORTED_SOF[sof]} JPEG (SOF{sof - 0xC0}), "
                            "which the anonymizers' decoders cannot read; re-encode it "
                            "(e.g. jpegtran -optimize -outfile NEW FILE)")
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        n = f.tell()
        f.seek(max(0, n - _TAIL))
        tail = f.read()
    if fmt == "PNG" and not tail.endswith(_PNG_IEND):
        raise ManifestError(f"{path}: truncated PNG (no IEND chunk at the end)")
    if fmt == "JPEG" and not tail.rstrip(b"\x00\r\n ").endswith(_JPEG_EOI):
        # data after the end-of-image marker (a motion photo's video, a maker trailer) is
        # dropped by every copy; only a JPEG cut short is refused (the whole file is read)
        try:
            jpeg_trailer_size(path.read_bytes(), str(path))
        except MetadataError as e:
            raise ManifestError(str(e)) from None
    return size


def png_bit_depth(path: str | os.PathLike[str]) -> int | None:
    """The bit depth per channel in a PNG's header (IHDR), or None for another format. Pillow
    opens a 16-bit RGBA PNG as 8-bit RGBA, keeping the high bytes only."""
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24]


def confined_image_path(image_root: str | os.PathLike[str], image: dict[str, Any],
                        source: str | os.PathLike[str]) -> Path:
    """The image's path below ``image_root``; raises :class:`ManifestError` naming ``source``
    (the annotation file), the image id and the path when ``file_name`` is absolute or resolves,
    after symlinks, outside the image directory (an anonymized copy of it would be written
    outside the variant's output, or over the original)."""
    name = str(image.get("file_name", ""))
    root = Path(image_root)
    where = f"{source}: image {image.get('id')} file_name {name!r}"
    if not name or os.path.isabs(name) or name.startswith("\\") or ":" in name[:3]:
        raise ManifestError(f"{where} is not a relative path inside the image directory {root}")
    if ".." in name.split("/"):
        # the writers resolve 'a/../b' to 'b', the readers would not (and a/ may not exist)
        raise ManifestError(f"{where} has a '..' part; give the path inside the image "
                            f"directory without it")
    if Path(name).suffix.lower() not in WRITABLE_SUFFIXES:
        raise ManifestError(f"{where}: anonymized copies are written in the format their name "
                            f"says, and {Path(name).suffix or 'no extension'!r} is not one "
                            f"({', '.join(WRITABLE_SUFFIXES)}); rename the file")
    real_root = os.path.realpath(root)
    p = os.path.realpath(root / name)
    if os.path.commonpath([real_root, p]) != real_root or p == real_root:
        raise ManifestError(f"{where} resolves to {p}, outside the image directory {real_root}")
    return root / name


def _file_key(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """The file's identity (device, inode): one for every name, symlink or hard link of it."""
    st = _stat(path)
    return None if st is None else (st.st_dev, st.st_ino)


def _stat(path: str | os.PathLike[str]) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _digest(path: str) -> bytes | None:
    """The file's BLAKE2b digest; None when it cannot be read."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.digest()


def disjoint_splits(train: dict[str, Any], val: dict[str, Any]) -> list[tuple[Any, Any]]:
    """Raises :class:`ManifestError` when a val image is a file the train split lists too (by
    any name, symlink or hard link): the evaluation would score images the model trained on.
    Returns the (train image, val image) pairs of byte-identical copies in separate files, for
    a warning: generated test data often draws many images alike (a blank frame in every
    split), which is no leak to refuse. Only the train files of a val file's size are read (a
    copy has the size of its original), each once, so with sizes that differ the check costs a
    ``stat`` per image."""
    train_files: dict[tuple[int, int], Any] = {}
    train_sizes: dict[int, list[tuple[str, Any]]] = {}
    for img in train["images"]:
        path = os.path.join(train["info"]["image_root"], img["file_name"])
        st = _stat(path)
        if st is not None:
            train_files.setdefault((st.st_dev, st.st_ino), img)
            train_sizes.setdefault(st.st_size, []).append((path, img))
    by_content: dict[int, dict[bytes | None, Any]] = {}  # size -> digest -> train image
    shared, copies = [], []
    for img in val["images"]:
        path = os.path.join(val["info"]["image_root"], img["file_name"])
        st = _stat(path)
        if st is None:
            continue  # missing files are the image check's to name
        same = train_files.get((st.st_dev, st.st_ino))
        if same is not None:
            shared.append((same, img))
        elif st.st_size in train_sizes:
            if st.st_size not in by_content:
                by_content[st.st_size] = {}
                for p, t in train_sizes[st.st_size]:
                    by_content[st.st_size].setdefault(_digest(p), t)
            digest = _digest(path)
            if digest is not None and digest in by_content[st.st_size]:
                copies.append((by_content[st.st_size][digest], img))
    if shared:
        t, v = shared[0]
        source = val["info"].get("annotation_file") or val["info"]["image_root"]
        raise ManifestError(
            f"{source}: val image {v['id']} ({v['file_name']!r}) is the train split's image "
            f"{t['id']} ({os.path.join(train['info']['image_root'], t['file_name'])}); "
            f"{len(shared)} of the {len(val['images'])} val images are train images, so the "
            "evaluation would score images the model was trained on: give each split its own "
            "images")
    return copies


def confine_images(manifest: dict[str, Any], source: str | os.PathLike[str]) -> None:
    """:func:`confined_image_path` for every image of a manifest, and no file listed twice:
    two entries of one file (``a.jpg`` and ``./a.jpg``, a symlink or a hard link to it) would
    be anonymized apart, each copy keeping the persons of the other entry."""
    root = manifest["info"]["image_root"]
    seen: dict[tuple[int, int], Any] = {}
    for img in manifest["images"]:
        key = _file_key(confined_image_path(root, img, source))
        if key is None:
            continue  # missing files are the loaders' to name
        other = seen.setdefault(key, img)
        if other is not img:
            raise ManifestError(
                f"{source}: images {other.get('id')} ({other.get('file_name')!r}) and "
                f"{img.get('id')} ({img.get('file_name')!r}) are the same file; list it once "
                "(each entry would be anonymized with only its own persons)")


def first_not_finite(values: list[Any]) -> int | None:
    """The index of the first value that is not a finite number, or None. JSON's true and
    false are not numbers, though Python sums them as 1 and 0."""
    try:  # fast: _check_annotation of 860k COCO-sized annotations takes about 3 s in all
        if math.isfinite(sum(values)) and bool not in set(map(type, values)):
            return None
    except (TypeError, OverflowError):
        pass
    for i, v in enumerate(values):
        try:
            if isinstance(v, bool) or not math.isfinite(v):
                return i
        except (TypeError, OverflowError):
            return i
    return None  # only the sum overflowed


def read_json(path: str | os.PathLike[str], what: str) -> Any:
    path = Path(path)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ManifestError(f"{path}: {what} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: not valid JSON ({e})") from None


def new_summary(extra_reasons: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"images": 0, "persons_kept": 0,
            "persons_skipped": {r: 0 for r in ("crowd", *extra_reasons)},
            "instances": {}}


def mask_bbox(mask) -> list[float]:
    """COCO ``[x, y, w, h]`` of a non-empty bool mask (pixel extents, like pycocotools)."""
    import numpy as np

    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    return [float(xs[0]), float(ys[0]), float(xs[-1] - xs[0] + 1), float(ys[-1] - ys[0] + 1)]


def rle_counts_error(counts: Any, height: int, width: int) -> str | None:
    """Why RLE ``counts`` (a COCO-compressed string or a list of run lengths) are not a mask of
    ``height`` x ``width``, or None. pycocotools decodes too few pixels as memory it never
    wrote, and too many as an error that names nothing."""
    if not isinstance(counts, (str, bytes, list)) or (
            isinstance(counts, list) and not all(isinstance(c, int) for c in counts)):
        return f"RLE counts must be a string or a list of integers, got {type(counts).__name__}"
    try:
        runs = rle_counts({"counts": counts})
    except (UnicodeError, ValueError) as e:
        return f"RLE counts are not a COCO RLE ({e})"
    return rle_runs_error(runs, height, width)
