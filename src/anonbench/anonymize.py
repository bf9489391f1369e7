"""Traditional anonymization (the study's Sec. 3): Gaussian blur and mask-out of face or body regions.

``I_new = I * (1 - M) + blur(I) * M`` with a Gaussian of sigma 7 and kernel size 3 * sigma, and
``I_new = I * (1 - M) + 127 * M``. Images are uint8 RGB (H, W, 3); masks are bool (H, W).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from . import images, regions
from .manifest import (Manifest, fresh_output_dir, image_path, iter_images, load_manifest,
                       write_json)
from .regions import IntBox, Region

__all__ = ["Region", "anonymize_image", "anonymize_shard", "region_mask"]

MaskMethod = Callable[[np.ndarray, Region, dict[str, Any]], np.ndarray]


def blur_kernel_size(sigma: float) -> int:
    """The study's kernel size, 3 * sigma, made odd (sigma 7 -> 21); at least 3 (a 1-pixel
    kernel leaves the image as it is, and the audit would count every region as flat)."""
    if not sigma >= 0.5:  # also NaN
        raise ValueError(f"blur sigma {sigma}: below 0.5 the kernel is 1 pixel, an identity")
    k = int(round(3 * sigma))
    return k if k % 2 == 1 else k + 1


def gaussian_blur(image: np.ndarray, sigma: float = 7.0) -> np.ndarray:
    """Gaussian blur with kernel 3 * sigma; borders reflect without repeating the edge pixel."""
    k = blur_kernel_size(sigma)
    return cv2.GaussianBlur(image, (k, k), sigmaX=sigma, sigmaY=sigma,
                            borderType=cv2.BORDER_REFLECT_101)


def blur_region(image: np.ndarray, mask: np.ndarray, sigma: float = 7.0,
                boxes: list[tuple[int, int, int, int]] | None = None) -> np.ndarray:
    """``I * (1 - M) + blur(I) * M``, blurring only the given boxes (default: the mask's box).

    Equal to blurring the whole image: every output pixel under the mask depends only on pixels
    of the original image within the kernel radius, each box is cut from the original with that
    margin, a cut keeps the image border where it touches it, and only the box itself (not the
    margin, where the cut's own border shows) is written. ``boxes`` (x0, y0, x1, y1) must
    together cover the mask.
    """
    if boxes is None:
        box = regions.mask_box(mask)
        boxes = [] if box is None else [tuple(int(v) for v in box)]
    r = blur_kernel_size(sigma) // 2
    h, w = mask.shape
    out = image.copy()
    for bx0, by0, bx1, by1 in boxes:
        x0, y0 = max(0, bx0 - r), max(0, by0 - r)
        x1, y1 = min(w, bx1 + r), min(h, by1 + r)
        blurred = gaussian_blur(image[y0:y1, x0:x1], sigma)
        _paste(out, blurred[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0], mask, (bx0, by0, bx1, by1))
    return out


def _paste(out: np.ndarray, values: np.ndarray, mask: np.ndarray, box: IntBox) -> None:
    """``out[box][mask[box]] = values[mask[box]]`` (OpenCV's masked copy: several times faster
    than NumPy's boolean indexing)."""
    x0, y0, x1, y1 = box
    dst = out[y0:y1, x0:x1]
    dst[...] = cv2.copyTo(values, mask[y0:y1, x0:x1].view(np.uint8), dst)


def maskout_region(image: np.ndarray, mask: np.ndarray, value: int = 127,
                   boxes: list[IntBox] | None = None) -> np.ndarray:
    """``I * (1 - M) + value * M``; with ``boxes`` (which hold every pixel of ``mask``, as the
    region's boxes do) only those are visited."""
    out = image.copy()
    if boxes is None:
        out[mask] = value
        return out
    for x0, y0, x1, y1 in boxes:
        _paste(out, np.full((y1 - y0, x1 - x0, out.shape[2]), value, out.dtype), mask,
               (x0, y0, x1, y1))
    return out


def _blur(image: np.ndarray, region: Region, opts: dict[str, Any]) -> np.ndarray:
    return blur_region(image, region.mask, float(opts.get("sigma", 7.0)), region.boxes)


def _maskout(image: np.ndarray, region: Region, opts: dict[str, Any]) -> np.ndarray:
    return maskout_region(image, region.mask, int(opts.get("value", 127)), region.boxes)


def _realistic(image: np.ndarray, region: Region, opts: dict[str, Any]) -> np.ndarray:
    from .realistic import anonymize_realistic  # torch and the generators load on first use

    return anonymize_realistic(image, region, opts)


#: Registry: variant ``method`` -> function (image, region, variant options) -> image.
METHODS: dict[str, MaskMethod] = {"blur": _blur, "maskout": _maskout, "realistic": _realistic}


def region_mask(height: int, width: int, anns: list[dict[str, Any]], faces: list[dict[str, Any]],
                variant: dict[str, Any]) -> Region:
    """The regions a variant anonymizes in one image.

    ``face``: the matched face boxes. ``body``: every person instance marked ``anonymize``,
    its mask dilated (``dilation`` option, see :mod:`anonbench.regions`); bodies whose tight
    box is smaller than ``min_body_size``^2 are skipped when that option is set.
    ``realistic``: the same, with each face/person's crop in ``instances``.
    """
    if variant.get("method") == "realistic":
        from .realistic import realistic_region

        return realistic_region(height, width, anns, faces, variant)
    region = Region(np.zeros((height, width), dtype=bool))
    if variant["region"] == "face":
        for f in faces:
            box = regions.box_mask_into(region.mask, tuple(f["box"]))
            if box is not None:
                region.boxes.append(box)
                region.covered.add(f.get("annotation_id"))
    elif variant["region"] == "body":
        fraction = float(variant.get("dilation", regions.BODY_DILATION_FRACTION))
        for ann, crop, box in regions.bodies_to_anonymize(anns, height, width,
                                                          variant.get("min_body_size")):
            region.boxes.append(regions.dilate_body_crop_into(region.mask, crop, box, fraction))
            region.covered.add(ann.get("id"))
    else:
        raise ValueError(f"unknown region {variant['region']!r} (face, body)")
    return region


def anonymize_image(image: np.ndarray, region: Region, variant: dict[str, Any]) -> np.ndarray:
    try:
        method = METHODS[variant["method"]]
    except KeyError:
        raise ValueError(f"unknown anonymization method {variant['method']!r} "
                         f"(known: {', '.join(sorted(METHODS))})") from None
    return method(image, region, variant)


def load_faces(path: str | os.PathLike[str]) -> dict[int, list[dict[str, Any]]]:
    with open(path) as f:
        data = json.load(f)
    out: dict[int, list[dict[str, Any]]] = {}
    for face in data["faces"]:
        out.setdefault(face["image_id"], []).append(face)
    return out


def anonymize_shard(shard_manifest: str, faces_json: str | None, variant: dict[str, Any],
                    out_dir: str, *, keypoints_json: str | None = None,
                    progress: bool = True) -> dict[str, Any]:
    """Anonymize every image of one shard into ``out_dir`` (same relative file names).

    Images with no region to anonymize are copied with their metadata (EXIF, XMP, comments,
    text chunks) stripped and their pixels as they were (:mod:`anonbench.metadata`); anonymized
    ones are encoded anew, without metadata. Every file is written below ``out_dir`` (a name
    that would leave it is refused); originals are only read. The directory is built under a
    temporary name and renamed when complete, so a killed job leaves no partial shard. Writes
    ``out_dir/summary.json`` with per-shard counts and the person coverage
    (:mod:`anonbench.coverage`), and returns it. ``keypoints_json``: an estimator's keypoints of
    the shard (rule keypoints), which replace the persons' own for keypoint-conditioned
    generators.
    """
    from . import coverage, metadata
    from .annotate import with_keypoints

    manifest: Manifest = load_manifest(shard_manifest)
    if keypoints_json:
        with open(keypoints_json) as f:
            manifest = with_keypoints(manifest, json.load(f))
    faces = load_faces(faces_json) if faces_json else {}
    out = Path(out_dir)
    tmp = fresh_output_dir(out, [manifest["info"]["image_root"]])
    stats: dict[str, Any] = {"images": 0, "anonymized_images": 0, "copied_images": 0,
                             "regions": 0, "region_pixels": 0}
    cov = coverage.new_coverage()
    person_cats = coverage.person_like_ids(manifest)
    try:
        items = list(iter_images(manifest))
        bar = _progress(items, f"anonymize {manifest['info'].get('shard', '')}", progress)
        for img, anns in bar:
            src = image_path(manifest, img)
            dst = images.output_path(tmp, img["file_name"])
            dst.parent.mkdir(parents=True, exist_ok=True)
            image = images.read_image(src)
            h, w = image.shape[:2]
            if (h, w) != (img["height"], img["width"]):
                raise ValueError(f"{src}: image is {w}x{h} but the manifest says "
                                 f"{img['width']}x{img['height']}")
            img_faces = faces.get(img["id"], [])
            region = region_mask(h, w, anns, img_faces, variant)
            coverage.add_image(cov, img, anns, coverage.image_coverage(
                anns, img_faces, region.covered, variant, h, w), person_cats)
            stats["images"] += 1
            if not region.any():
                metadata.copy_without_metadata(src, dst)
                stats["copied_images"] += 1
                continue
            images.write_image(dst, anonymize_image(image, region, variant))
            stats["anonymized_images"] += 1
            stats["regions"] += (len(img_faces) if variant["region"] == "face"
                                 else sum(1 for a in anns if a.get("anonymize")))
            stats["region_pixels"] += int(np.count_nonzero(region.mask))
        coverage.check_sums(cov, str(out))
        stats["coverage"] = cov
        write_json(tmp / "summary.json", {"variant": variant, **stats}, indent=1)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return stats


def _progress(items: list, desc: str, enabled: bool):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, file=sys.stderr, mininterval=2.0)
