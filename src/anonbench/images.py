"""Image reading and writing at the workflow's boundaries: uint8 RGB arrays of shape (H, W, 3)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: The study writes anonymized JPEGs at quality 100 without chroma subsampling (4:4:4).
JPEG_QUALITY = 100
#: PNG (Cityscapes) is written with a fast zlib level: the encoder dominates anonymization time.
PNG_COMPRESS_LEVEL = 1


class ImageReadError(OSError):
    """An image is missing, unreadable or truncated; the message names the file."""


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode ``path`` to uint8 RGB, EXIF orientation applied (annotations are upright)."""
    try:
        with Image.open(path) as im:
            im.load()  # raises on truncated data
            im = ImageOps.exif_transpose(im)
            if im.mode != "RGB":
                if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                    arr = np.asarray(im, dtype=np.float64)
                    top = 65535.0 if arr.max() > 255 else 255.0
                    im = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
                im = im.convert("RGB")
            return np.asarray(im, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: image not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"{path}: cannot decode image ({e})") from None


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Encode ``image`` (uint8 RGB) to ``path`` atomically; the format follows the suffix."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{path}: expected uint8 RGB (H, W, 3), got {image.dtype} {image.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        im = Image.fromarray(image)
        if suffix in (".jpg", ".jpeg"):
            im.save(tmp, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
        elif suffix == ".png":
            im.save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        else:
            raise ValueError(f"{path}: unsupported image format {suffix!r} (jpg, jpeg, png)")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
