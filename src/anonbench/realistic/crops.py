"""Crop geometry of realistic anonymization: which box of the image a generator sees, at which
size, with which keep/generate masks, keypoints and joint map, and how its output goes back.

The rules follow the study's generators (DeepPrivacy2, read from its code; our own
implementation):

* bodies: tight box of the instance mask; both axes grown by ``int(sqrt(h * w) * 0.1)``; the box
  expanded to the generator's aspect (288 x 160, height / width); if the mask covers more than
  70 % of it, the box is enlarged until 30 % is background. The box may extend past the image
  (zero padding). The instance mask is resized (nearest) to 288 x 160 and dilated there with a
  disk of radius ``int(sqrt(288 * 160) * 0.02)`` = 4, not into the padding.
* faces (FDF128): the face box made square inside the image, grown by ``int(0.35 * side)`` on
  every side as far as the image allows; a face larger than the image's short side falls back to
  a centred square of 1.7 x the longer side. FDF256 ("HR"): a centred square of 1.4 x the longer
  side. The generate mask is the face box.
* resizing: faces are downscaled with area interpolation and upscaled bicubic; bodies are resized
  bicubic with antialiasing, or nearest when the crop is smaller than 288 x 160 on both axes.
  Output crops go back bicubic with antialiasing.

Boxes here are integer ``(x0, y0, x1, y1)`` with exclusive right/bottom edges. Arrays are NumPy:
images uint8 (H, W, 3), masks bool (H, W).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from skimage.morphology import disk

IntBox = tuple[int, int, int, int]

#: (height, width) of the full-body generator's crops.
BODY_SIZE = (288, 160)
FACE_SIZE = (128, 128)
FACE_HR_SIZE = (256, 256)
#: Both axes of a body's tight box grow by this fraction of sqrt(area) (in total, not per side).
BODY_AXIS_GROWTH = 0.1
#: A body crop keeps at least this fraction of background.
BODY_MIN_BACKGROUND = 0.3
#: Dilation of the body mask at crop resolution: disk(int(sqrt(288 * 160) * 0.02)) = disk(4).
BODY_DILATION = 0.02
FACE_EXPANSION = 0.35
FACE_HR_EXPANSION = 0.4
#: Crops with a smaller area (in image pixels) are not anonymized (the study's scripts: 8 x 8).
MIN_CROP_AREA = 8 * 8
#: The HR variant uses the 256 x 256 face generator for faces whose FDF128 crop is this large.
HR_MIN_AREA = 128 * 128

NECK, MID_HIP = 17, 18
#: Lines of the joint map, drawn in this order, one pixel wide, value = label:
#: 1 head, 2 left arm, 3 right arm, 4 torso, 5 left leg, 6 right leg (0 = none).
JOINT_LINES = (
    (0, 1, 1), (0, 2, 1), (0, NECK, 1), (1, 2, 1), (1, 3, 1), (2, 4, 1),
    (5, 6, 4), (5, 7, 2), (5, 11, 4), (6, 8, 3), (6, 12, 4), (7, 9, 2), (8, 10, 3),
    (11, 12, 4), (11, 13, 5), (12, 14, 6), (13, 15, 5), (14, 16, 6), (NECK, MID_HIP, 4),
    (NECK, 0, 1),
)


def expand_axis(start: int, end: int, target: int, limit: int) -> tuple[int, int]:
    """``[start, end)`` grown (or shrunk) to length ``target`` around its centre, then shifted
    back into ``[0, limit)`` where it overflows one side only and there is room."""
    start = start - (target - (end - start)) // 2
    end = start + target
    if start < 0 and end < limit:
        shift = min(-start, limit - end)
        start, end = start + shift, end + shift
    elif end > limit and start > 0:
        shift = min(end - limit, start)
        start, end = start - shift, end - shift
    return start, end


def body_crop_box(mask_box: IntBox, mask_pixels: int, image_hw: tuple[int, int],
                  size: tuple[int, int] = BODY_SIZE) -> IntBox:
    """The crop box of a person whose tight mask box is ``mask_box`` (may leave the image)."""
    img_h, img_w = image_hw
    x0, y0, x1, y1 = mask_box
    h, w = y1 - y0, x1 - x0
    grow = int(math.sqrt(h * w) * BODY_AXIS_GROWTH)
    x0, x1 = expand_axis(x0, x1, min(w + grow, img_w), img_w)
    y0, y1 = expand_axis(y0, y1, min(h + grow, img_h), img_h)
    aspect = size[0] / size[1]
    h, w = y1 - y0, x1 - x0
    if h / w < aspect:
        y0, y1 = expand_axis(y0, y1, int(w * aspect), img_h)
    elif h / w > aspect:
        x0, x1 = expand_axis(x0, x1, int(h / aspect), img_w)
    h, w = y1 - y0, x1 - x0
    if 1 - mask_pixels / (h * w) <= BODY_MIN_BACKGROUND:
        scale = math.sqrt(mask_pixels / (1 - BODY_MIN_BACKGROUND) / (h * w))
        x0, x1 = expand_axis(x0, x1, int(math.ceil(scale * w)), img_w)
        y0, y1 = expand_axis(y0, y1, int(math.ceil(scale * h)), img_h)
    return x0, y0, x1, y1


def _centred_square(box: IntBox, factor: float) -> IntBox:
    x0, y0, x1, y1 = box
    cx, cy = x0 + (x1 - x0) // 2, y0 + (y1 - y0) // 2
    half = int(math.floor(max(x1 - x0, y1 - y0) * factor / 2))
    return cx - half, cy - half, cx + half, cy + half


def face_crop_box(box: IntBox, image_hw: tuple[int, int], hr: bool = False) -> IntBox:
    """The square crop box of a face box: FDF128's rule, or FDF256's (``hr``)."""
    if hr:
        return _centred_square(box, 1 + FACE_HR_EXPANSION)
    img_h, img_w = image_hw
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    if side > min(img_h, img_w):
        return _centred_square(box, 1 + 2 * FACE_EXPANSION)
    if y1 - y0 < side:
        y0 = max(0, y0 - (side - (y1 - y0)) // 2)
    if x1 - x0 < side:
        x0 = max(0, x0 - (side - (x1 - x0)) // 2)
    x0, y0 = min(x0, img_w - side), min(y0, img_h - side)
    grow = min(int(side * FACE_EXPANSION), (img_h - side) // 2, (img_w - side) // 2)
    if grow > 0:
        side += 2 * grow
        x0, y0 = min(max(0, x0 - grow), img_w - side), min(max(0, y0 - grow), img_h - side)
    out = (x0, y0, x0 + side, y0 + side)
    if not (out[0] <= box[0] and out[1] <= box[1] and out[2] >= box[2] and out[3] >= box[3]):
        return _centred_square(box, 1 + 2 * FACE_EXPANSION)
    return out


def box_area(box: IntBox) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def inside(box: IntBox, image_hw: tuple[int, int]) -> IntBox:
    """The part of ``box`` inside the image."""
    return max(0, box[0]), max(0, box[1]), min(image_hw[1], box[2]), min(image_hw[0], box[3])


def cut(array: np.ndarray, box: IntBox, fill: int | bool = 0) -> np.ndarray:
    """``array[y0:y1, x0:x1]`` for a box that may leave the array, padded with ``fill``."""
    x0, y0, x1, y1 = box
    out = np.full((y1 - y0, x1 - x0, *array.shape[2:]), fill, dtype=array.dtype)
    ix0, iy0, ix1, iy1 = inside(box, array.shape[:2])
    if ix1 > ix0 and iy1 > iy0:
        out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = array[iy0:iy1, ix0:ix1]
    return out


def _interpolate(crop: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32)).permute(2, 0, 1)[None]
    if mode == "nearest":
        t = F.interpolate(t, size=size, mode="nearest")
    else:
        t = F.interpolate(t, size=size, mode="bicubic", align_corners=False, antialias=True)
    return t[0].permute(1, 2, 0).numpy()


def resize_crop(crop: np.ndarray, size: tuple[int, int], face: bool) -> np.ndarray:
    """A uint8 (h, w, 3) crop resized to ``size`` = (H, W) by the generator's rule."""
    h, w = crop.shape[:2]
    if (h, w) == tuple(size):
        return crop.copy()
    if face:
        if h * w >= size[0] * size[1]:
            return cv2.resize(crop, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        mode = "bicubic"
    else:
        mode = "nearest" if h < size[0] and w < size[1] else "bicubic"
    return np.clip(np.round(_interpolate(crop, size, mode)), 0, 255).astype(np.uint8)


def resize_back(crop: np.ndarray, box_hw: tuple[int, int]) -> np.ndarray:
    """A float (H, W, 3) synthesized crop in [0, 255] resized to the box: uint8 (h, w, 3)."""
    return np.clip(np.round(_interpolate(crop, box_hw, "bicubic")), 0, 255).astype(np.uint8)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a bool mask to ``size`` = (H, W)."""
    return cv2.resize(mask.astype(np.uint8), (size[1], size[0]),
                      interpolation=cv2.INTER_NEAREST).astype(bool)


def cover_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Crop-resolution pixels that overlap any pixel of the box-resolution ``mask`` (so that a
    generate mask made from it covers every image pixel that will be replaced)."""
    if not mask.any():
        return np.zeros(size, bool)
    area = cv2.resize(mask.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_AREA)
    near = cv2.resize(mask.astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    return (area > 1e-6) | near.astype(bool)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask.copy()
    kernel = disk(radius).astype(np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT,
                      borderValue=0).astype(bool)


def body_dilation_radius(size: tuple[int, int] = BODY_SIZE) -> int:
    return int(math.sqrt(size[0] * size[1]) * BODY_DILATION)


def in_image_mask(box: IntBox, image_hw: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Crop-resolution pixels that are not padding (the padding is rounded down, as DP2)."""
    x0, y0, x1, y1 = box
    img_h, img_w = image_hw
    sy, sx = size[0] / (y1 - y0), size[1] / (x1 - x0)
    top, left = int(max(0, -y0) * sy), int(max(0, -x0) * sx)
    bottom, right = int(max(0, y1 - img_h) * sy), int(max(0, x1 - img_w) * sx)
    out = np.zeros(size, bool)
    out[top:size[0] - bottom, left:size[1] - right] = True
    return out


def normalise_keypoints(keypoints: np.ndarray | None, box: IntBox) -> np.ndarray:
    """COCO-17 keypoints (pixels, v) relative to the crop box: x, y in [0, 1], v in {0, 1};
    keypoints outside the box are invisible."""
    out = np.zeros((17, 3), np.float32)
    if keypoints is None:
        return out
    kp = np.asarray(keypoints, np.float64).reshape(17, 3)
    x0, y0, x1, y1 = box
    out[:, 0] = (kp[:, 0] - x0) / (x1 - x0)
    out[:, 1] = (kp[:, 1] - y0) / (y1 - y0)
    inside_box = (out[:, 0] >= 0) & (out[:, 0] <= 1) & (out[:, 1] >= 0) & (out[:, 1] <= 1)
    out[:, 2] = (kp[:, 2] > 0) & inside_box
    return out


def joint_map(keypoints: np.ndarray, size: tuple[int, int] = BODY_SIZE) -> np.ndarray:
    """uint8 (H, W) limb-line labels (0 none, 1..6, see ``JOINT_LINES``) from normalised keypoints."""
    h, w = size
    pts = np.zeros((19, 2))
    vis = np.zeros(19, bool)
    pts[:17], vis[:17] = keypoints[:, :2] * (w, h), keypoints[:, 2] > 0
    for mid, (a, b) in ((NECK, (5, 6)), (MID_HIP, (11, 12))):
        if vis[a] and vis[b]:
            pts[mid], vis[mid] = (pts[a] + pts[b]) / 2, True
    im = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(im)

    def line(a: np.ndarray, b: np.ndarray, label: int) -> None:
        draw.line((tuple(int(v) for v in np.round(a)), tuple(int(v) for v in np.round(b))),
                  fill=label, width=1)

    for a, b, label in JOINT_LINES:
        if vis[a] and vis[b]:
            line(pts[a], pts[b], label)
    if not vis[0] and vis[NECK] and vis[1] and vis[2]:  # no nose: the eyes' midpoint to the neck
        line((pts[1] + pts[2]) / 2, pts[NECK], 1)
    return np.asarray(im, np.uint8)


def paste(out: np.ndarray, crop: np.ndarray, box: IntBox, mask: np.ndarray) -> None:
    """Write the box-sized uint8 ``crop`` into ``out`` where the box-sized ``mask`` is set."""
    ix0, iy0, ix1, iy1 = inside(box, out.shape[:2])
    if ix1 <= ix0 or iy1 <= iy0:
        return
    sl = (slice(iy0 - box[1], iy1 - box[1]), slice(ix0 - box[0], ix1 - box[0]))
    np.copyto(out[iy0:iy1, ix0:ix1], crop[sl], where=mask[sl][..., None])
