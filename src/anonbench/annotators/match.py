"""Matching detector face boxes to person instance masks (the study's rule).

IoU used: **pixel IoU between the rasterised face box and the instance mask**,
``|B & M| / |B | M|``, where ``B`` is the set of pixels ``(x, y)`` with
``int(x0) <= x < int(x1)`` and ``int(y0) <= y < int(y1)`` (coordinates truncated towards zero,
as in the authors' ``annotate_faces.py``; clipped to the image) and ``M`` the bool instance mask.
A face covers a small part of a body, so IoUs are small: the study keeps candidate pairs with
IoU > 0.01, sorts them by ``(-IoU, -score)``, then (as the authors' code) by the number of
candidates the instance has (fewer first), then by box and instance index so that the result
never depends on the input order of exact ties, and assigns greedily one to one.

Boxes are ``(x0, y0, x1, y1)`` floats in pixels; masks are bool arrays of shape (H, W).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: The study keeps box/instance pairs with IoU strictly above this.
MIN_IOU = 0.01


def box_pixels(box: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """The pixel block of a box: ``int()`` of each coordinate, clipped to the image."""
    x0, y0, x1, y1 = (int(v) for v in box[:4])
    return (min(max(x0, 0), width), min(max(y0, 0), height),
            min(max(x1, 0), width), min(max(y1, 0), height))


def box_mask_iou(boxes: np.ndarray, masks: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Pixel IoU of every box (rows) with every mask (columns), shape (len(boxes), len(masks))."""
    boxes = np.asarray(boxes, dtype=np.float64)
    boxes = boxes.reshape(len(boxes), -1) if boxes.size else np.zeros((0, 4))
    iou = np.zeros((len(boxes), len(masks)), dtype=np.float64)
    if len(boxes) == 0 or len(masks) == 0:
        return iou
    height, width = masks[0].shape
    blocks = [box_pixels(b, height, width) for b in boxes]
    for j, mask in enumerate(masks):
        area_m = int(np.count_nonzero(mask))
        for i, (x0, y0, x1, y1) in enumerate(blocks):
            if x1 <= x0 or y1 <= y0:
                continue
            inter = int(np.count_nonzero(mask[y0:y1, x0:x1]))
            union = (x1 - x0) * (y1 - y0) + area_m - inter
            iou[i, j] = inter / union if union > 0 else 0.0
    return iou


@dataclass(frozen=True)
class Match:
    box: int       # index into the boxes
    instance: int  # index into the masks
    iou: float
    score: float


def greedy_match(iou: np.ndarray, scores: Sequence[float], min_iou: float = MIN_IOU) -> list[Match]:
    """One-to-one assignment of boxes (rows) to instances (columns), best pairs first.

    Candidates: ``iou > min_iou``. Order: ``(-iou, -score, candidates of the instance,
    box index, instance index)``. Each box and each instance is used at most once.
    """
    iou = np.asarray(iou, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if iou.size == 0:
        return []
    rows, cols = np.nonzero(iou > min_iou)
    n_candidates = np.bincount(cols, minlength=iou.shape[1])
    order = sorted(range(len(rows)), key=lambda k: (-iou[rows[k], cols[k]], -scores[rows[k]],
                                                    n_candidates[cols[k]], rows[k], cols[k]))
    used_box, used_inst, out = set(), set(), []
    for k in order:
        b, m = int(rows[k]), int(cols[k])
        if b in used_box or m in used_inst:
            continue
        used_box.add(b)
        used_inst.add(m)
        out.append(Match(b, m, float(iou[b, m]), float(scores[b])))
    return out


def match_faces(detections: np.ndarray, masks: Sequence[np.ndarray],
                min_iou: float = MIN_IOU) -> list[Match]:
    """Match detections ``(N, 5)`` = x0, y0, x1, y1, score to instance masks."""
    detections = np.asarray(detections, dtype=np.float64).reshape(-1, 5)
    return greedy_match(box_mask_iou(detections[:, :4], masks), detections[:, 4], min_iou)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression on continuous box IoU; indices kept, best score first."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        lo = np.maximum(boxes[i, :2], boxes[rest, :2])
        hi = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
        union = area[i] + area[rest] - inter
        ov = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
        order = rest[ov < iou_threshold]
    return np.asarray(keep, dtype=np.int64)
