"""Image reading and writing at the workflow's boundaries: uint8 RGB arrays of shape (H, W, 3)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .manifest import atomic_path

#: The study writes anonymized JPEGs at quality 100 without chroma subsampling (4:4:4).
JPEG_QUALITY = 100
#: PNG (Cityscapes) is written with a fast zlib level: the encoder dominates anonymization time.
PNG_COMPRESS_LEVEL = 1
#: The file name extensions an anonymized copy can be written under (its format follows it).
WRITABLE_SUFFIXES = (".jpg", ".jpeg", ".png")


class ImageReadError(OSError):
    """An image is missing, unreadable or truncated; the message names the file."""


def transparency_error(im: Image.Image) -> str | None:
    """Why an image with pixels that are not fully opaque cannot be anonymized, or None: the
    anonymized copy has no alpha, so what transparent pixels hide (a person under alpha 0)
    would show, and the training readers drop alpha as well."""
    if im.mode not in ("RGBA", "LA", "PA", "RGBa", "La") and "transparency" not in im.info:
        return None
    alpha = np.asarray(im.convert("RGBA"))[..., 3]
    n = int(np.count_nonzero(alpha < 255))
    if not n:
        return None
    return (f"{n:,} of its {alpha.size:,} pixels are transparent (alpha < 255): what they hide "
            "would show in the anonymized copy and in training, which drop alpha; flatten the "
            "image onto its background first")


#: Pillow's modes of a 16-bit greyscale PNG.
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I")


def _high_byte(im: Image.Image) -> np.ndarray:
    """A 16-bit greyscale image in 8 bits as OpenCV's ``IMREAD_COLOR`` makes it (value >> 8;
    Pillow does the same for 16-bit RGB), so that every reader sees the same pixels."""
    return (np.asarray(im, dtype=np.int64) >> 8).clip(0, 255).astype(np.uint8)


def wide_grey_error(im: Image.Image) -> str | None:
    """Why a 16-bit greyscale image cannot be used, or None: one whose values all lie below
    256 (8-bit data stored in 16 bits) is black in the high byte that every reader keeps."""
    if im.mode not in _WIDE_GREY or int(np.asarray(im).max(initial=0)) > 255:
        return None
    return ("a 16-bit greyscale image whose values all lie below 256: OpenCV (training) and "
            "the anonymizers keep the high byte and read it black; save it as 8-bit")


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode ``path`` to uint8 RGB, EXIF orientation applied (annotations are upright). An
    image with transparent pixels is an :class:`ImageReadError` (:func:`transparency_error`),
    and so is a black 16-bit one (:func:`wide_grey_error`)."""
    try:
        with Image.open(path) as im:
            im.load()  # raises on truncated data
            if (why := transparency_error(im) or wide_grey_error(im)) is not None:
                raise ImageReadError(f"{path}: {why}")
            ImageOps.exif_transpose(im, in_place=True)  # no copy when upright already
            if im.mode != "RGB":
                if im.mode in _WIDE_GREY:  # as OpenCV (training) reads it: the high byte
                    im = Image.fromarray(_high_byte(im))
                im = im.convert("RGB")
            return np.asarray(im, dtype=np.uint8).copy()
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{path}: image not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"{path}: cannot decode image ({e})") from None


#: EXIF orientations that swap width and height (the manifest holds the upright size).
_TRANSPOSING = (5, 6, 7, 8)


def verify_image(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Decode ``path`` in full and return its upright ``(width, height)``.

    Stricter than :func:`read_image`: a zero-byte file, a truncated one (also one with an end
    marker appended) and libjpeg's recoverable warnings ("premature end of data segment",
    "corrupt data") are errors (:class:`ImageReadError` naming the file). JPEGs are decoded by
    libjpeg-turbo through simplejpeg with ``strict=True``; other formats by Pillow, which raises
    on truncated data (PNG: missing zlib data, bad CRC).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: image not found") from None
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read image ({e.strerror})") from None
    if not data:
        raise ImageReadError(f"{path}: image file is empty (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, size = im.format, im.size
            orientation = im.getexif().get(0x0112, 1)
            refusal = None
            if fmt != "JPEG":
                im.load()
                refusal = transparency_error(im) or wide_grey_error(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"{path}: cannot decode image ({e})") from None
    if refusal is not None:
        raise ImageReadError(f"{path}: {refusal}")
    if fmt == "JPEG":
        _verify_jpeg(path, data)
    w, h = size
    return (h, w) if orientation in _TRANSPOSING else (w, h)


def _verify_jpeg(path: str | os.PathLike[str], data: bytes) -> None:
    import simplejpeg

    try:
        simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
    except ValueError as e:
        if "nsupported" not in str(e):  # a colour space libjpeg-turbo cannot convert: Pillow
            raise ImageReadError(f"{path}: corrupt JPEG ({e})") from None
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
        except (OSError, SyntaxError, ValueError) as e2:
            raise ImageReadError(f"{path}: corrupt JPEG ({e}; Pillow: {e2})") from None


def output_path(out_dir: str | os.PathLike[str], file_name: str) -> Path:
    """``out_dir / file_name``, asserting that it stays below ``out_dir`` after symlinks (an
    absolute name or ``..`` from an annotation file must never reach an original)."""
    base = os.path.realpath(out_dir)
    p = os.path.realpath(os.path.join(base, file_name))
    if os.path.isabs(file_name) or os.path.commonpath([base, p]) != base or p == base:
        raise ValueError(f"{file_name!r}: refusing to write outside the output directory {base}")
    return Path(p)


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Encode ``image`` (uint8 RGB) to ``path`` atomically; the format follows the suffix."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{path}: expected uint8 RGB (H, W, 3), got {image.dtype} {image.shape}")
    suffix = Path(path).suffix.lower()
    if suffix not in WRITABLE_SUFFIXES:
        raise ValueError(f"{path}: unsupported image format {suffix!r} (jpg, jpeg, png)")
    im = Image.fromarray(image)
    with atomic_path(path) as tmp:
        if suffix == ".png":
            im.save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        else:
            im.save(tmp, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
