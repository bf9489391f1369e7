"""Regions to anonymize: face boxes and dilated full-body masks.

Boxes are ``(x0, y0, x1, y1)`` floats in pixels; masks are bool arrays of shape (H, W).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

import cv2
import numpy as np

from .manifest import annotation_mask_crop

Box = tuple[float, float, float, float]


@dataclass
class Region:
    """What one image's variant anonymizes: the union mask and boxes that together cover it."""

    mask: np.ndarray  # bool (H, W)
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # x0, y0, x1, y1
    #: per face/person data for methods that synthesize each one (realistic; see anonbench.realistic)
    instances: list[Any] = field(default_factory=list)
    #: the annotation ids of the persons whose face or body is in the region (anonbench.coverage)
    covered: set[Any] = field(default_factory=set)

    def any(self) -> bool:
        return bool(self.boxes) and bool(self.mask.any())


NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR = range(5)

#: DeepPrivacy2 dilates the body mask with ``disk(int(sqrt(288 * 160) * 0.02))`` = disk(4) on its
#: 288 x 160 crop of the person. We dilate at image resolution with the same relative radius:
#: ``r = max(1, round(0.02 * sqrt(box_w * box_h)))`` of the person's (DP2-grown) box.
BODY_DILATION_FRACTION = 0.02
#: DP2 grows both box axes by ``int(sqrt(H * W) * 0.1)`` before cropping.
BODY_BOX_GROWTH = 0.1


def body_dilation_radius(mask_box: Box, fraction: float = BODY_DILATION_FRACTION) -> int:
    """Dilation radius (pixels) for a person whose tight mask box is ``mask_box``."""
    x0, y0, x1, y1 = mask_box
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    grow = 2 * int(math.sqrt(w * h) * BODY_BOX_GROWTH)
    return max(1, int(round(fraction * math.sqrt((w + grow) * (h + grow)))))


def mask_box(mask: np.ndarray) -> Box | None:
    """Tightest box around a bool mask (exclusive right/bottom edges), or None if empty."""
    cols = np.flatnonzero(mask.any(axis=0))
    if len(cols) == 0:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


IntBox = tuple[int, int, int, int]


def dilate_body_mask_into(out: np.ndarray, mask: np.ndarray,
                          fraction: float = BODY_DILATION_FRACTION) -> IntBox | None:
    """OR the instance mask, dilated with a disk of the relative radius, into ``out``.

    Only the mask's box plus the radius is touched, so the cost follows the person's size.
    Returns the integer box that was touched (None for an empty mask).
    """
    box = mask_box(mask)
    if box is None:
        return None
    x0, y0, x1, y1 = (int(v) for v in box)
    return dilate_body_crop_into(out, mask[y0:y1, x0:x1], (x0, y0, x1, y1), fraction)


def dilate_body_crop_into(out: np.ndarray, crop: np.ndarray, box: IntBox,
                          fraction: float = BODY_DILATION_FRACTION) -> IntBox:
    """:func:`dilate_body_mask_into` for an instance mask given as ``crop``, its pixels inside
    its tight integer ``box`` (``manifest.annotation_mask_crop``); returns the touched box."""
    x0, y0, x1, y1 = box
    if fraction <= 0:
        out[y0:y1, x0:x1] |= crop
        return box
    r = body_dilation_radius((float(x0), float(y0), float(x1), float(y1)), fraction)
    h, w = out.shape
    ox0, oy0, ox1, oy1 = max(0, x0 - r), max(0, y0 - r), min(w, x1 + r), min(h, y1 + r)
    padded = np.zeros((oy1 - oy0, ox1 - ox0), np.uint8)
    padded[y0 - oy0:y1 - oy0, x0 - ox0:x1 - ox0] = crop
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    grown = cv2.dilate(padded, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    out[oy0:oy1, ox0:ox1] |= grown.astype(bool)
    return ox0, oy0, ox1, oy1


def bodies_to_anonymize(anns: Iterable[dict[str, Any]], height: int, width: int,
                        min_body_size: float | None = None
                        ) -> Iterator[tuple[dict[str, Any], np.ndarray, IntBox]]:
    """(annotation, instance mask inside its tight box, that integer box) of each person to
    anonymize in one image: annotations flagged ``anonymize`` with a non-empty mask whose box
    area is at least ``min_body_size ** 2`` (the skip-small-bodies variants; None keeps every
    size). Only the columns each mask spans are decoded (``manifest.annotation_mask_crop``)."""
    for ann in anns:
        if not ann.get("anonymize"):
            continue
        found = annotation_mask_crop(ann, height, width)
        if found is None:
            continue
        crop, (x0, y0, x1, y1) = found
        if min_body_size is not None and (x1 - x0) * (y1 - y0) < min_body_size ** 2:
            continue
        yield ann, crop, (x0, y0, x1, y1)


def place(crop: np.ndarray, box: IntBox, height: int, width: int) -> np.ndarray:
    """The full (height, width) bool mask of a ``crop`` inside ``box``."""
    x0, y0, x1, y1 = box
    out = np.zeros((height, width), dtype=bool)
    out[y0:y1, x0:x1] = crop
    return out


def dilate_body_mask(mask: np.ndarray, fraction: float = BODY_DILATION_FRACTION) -> np.ndarray:
    """The instance mask dilated with an elliptical (disk) kernel of the relative radius."""
    out = np.zeros_like(mask, dtype=bool)
    dilate_body_mask_into(out, mask, fraction)
    return out


def face_labelled(keypoints: Sequence[float]) -> bool:
    """A face is seen when an eye or the nose is labelled (v > 0); ears alone are a head seen
    from behind."""
    kp = list(keypoints)
    return any(3 * i + 2 < len(kp) and kp[3 * i + 2] > 0 for i in (NOSE, LEFT_EYE, RIGHT_EYE))


def face_box_from_keypoints(keypoints: Sequence[float], image_size: tuple[int, int],
                            person_box: Box | None = None) -> Box | None:
    """A WIDER-Face-style face box (forehead to chin, cheek to cheek) from COCO-17 keypoints.

    Uses the labelled (v > 0) nose, eyes and ears. A face is only seen when an eye or the nose is
    labelled (ears alone: a head seen from behind, no face). The face width ``s`` comes from the
    ear-to-ear distance, else 2.5 x the eye distance, else the eye-ear / eye-nose distance, else
    a fifth of the person's box width. The box spans ``s`` horizontally around the face centre
    and from ``0.5 s`` above the eye line to ``0.7 s`` below it. Clipped to the image.
    """
    if not face_labelled(keypoints):
        return None
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)[:5]
    seen = kp[:, 2] > 0
    pts = {i: kp[i, :2] for i in range(5) if seen[i]}

    def dist(a: int, b: int) -> float:
        return float(np.linalg.norm(pts[a] - pts[b]))

    if LEFT_EAR in pts and RIGHT_EAR in pts:
        s = dist(LEFT_EAR, RIGHT_EAR)
    elif LEFT_EYE in pts and RIGHT_EYE in pts:
        s = 2.5 * dist(LEFT_EYE, RIGHT_EYE)
    else:
        pairs = [(a, b, f) for a, b, f in ((LEFT_EYE, LEFT_EAR, 2.0), (RIGHT_EYE, RIGHT_EAR, 2.0),
                                           (NOSE, LEFT_EAR, 1.6), (NOSE, RIGHT_EAR, 1.6),
                                           (NOSE, LEFT_EYE, 3.0), (NOSE, RIGHT_EYE, 3.0))
                 if a in pts and b in pts]
        if pairs:
            a, b, f = pairs[0]
            s = f * dist(a, b)
        elif person_box is not None:
            s = 0.2 * (person_box[2] - person_box[0])
        else:
            return None
    s = max(s, 2.0)
    eyes = [pts[i] for i in (LEFT_EYE, RIGHT_EYE) if i in pts]
    centre_pts = eyes + ([pts[NOSE]] if NOSE in pts else [])
    if LEFT_EAR in pts and RIGHT_EAR in pts and len(centre_pts) < 2:
        centre_pts.append((pts[LEFT_EAR] + pts[RIGHT_EAR]) / 2)
    cx = float(np.mean([p[0] for p in centre_pts]))
    if eyes:
        eye_y = float(np.mean([p[1] for p in eyes]))
    else:
        eye_y = float(pts[NOSE][1]) - 0.15 * s
    w, h = image_size
    x0, x1 = max(0.0, cx - s / 2), min(float(w), cx + s / 2)
    y0, y1 = max(0.0, eye_y - 0.5 * s), min(float(h), eye_y + 0.7 * s)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return x0, y0, x1, y1


def box_mask_into(out: np.ndarray, box: Box) -> IntBox | None:
    """Set every pixel the box touches (partial pixels included); returns the integer box."""
    height, width = out.shape
    x0, y0, x1, y1 = box
    xa, ya = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
    xb, yb = min(width, int(math.ceil(x1))), min(height, int(math.ceil(y1)))
    if xb <= xa or yb <= ya:
        return None
    out[ya:yb, xa:xb] = True
    return xa, ya, xb, yb


def box_mask(box: Box, height: int, width: int) -> np.ndarray:
    """Bool mask of the pixels the box touches."""
    m = np.zeros((height, width), dtype=bool)
    box_mask_into(m, box)
    return m


def box_iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
