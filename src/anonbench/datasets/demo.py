"""The demo worlds: deterministic generated scenes written as a COCO 2017 keypoints dataset.

People are articulated figures drawn from a COCO-17 skeleton (torso, limbs, shoes, a head with
hair or a hat and, when seen from the front, a face with two eyes and a mouth), of many sizes,
poses, shirt colours (any), trouser colours (a street palette) and skin tones; cars and bicycles
are the other categories; near objects occlude far ones. Masks are the exact visible pixels (every object
is drawn with the same primitives into an instance-id map, without anti-aliasing). Two styles:

- ``street`` (Cityscapes / BDD100K-like): up to 10 people per image, most far away (most person
  boxes under 1 % of the image area, faces a few pixels tall), 40 % seen from behind, cars,
  bicycles, and in some images a crowd: a group of small overlapping people annotated as one
  ``iscrowd`` region;
- ``closeup`` (COCO-like): one to three large people (their heads in the frame, feet often
  not), 10 % seen from behind, a few small ones behind them, sometimes a bicycle or a car.

Heads are upright ellipses two thirds as wide as tall, with hair, or a hat or cap of any colour
(a quarter of the people), and a face oval below the hairline. Face keypoints, for a head of
centre ``(cx, cy)``, half-width ``a`` and half-height ``b``: eyes at ``(cx -+ 0.45 a, cy)`` (left
eye = the person's left = image right for a person facing the camera), nose at
``(cx, cy + 0.3 b)``, ears at ``(cx -+ a, cy + 0.1 b)``; so a WIDER-Face box from them (see
:func:`anonbench.regions.face_box_from_keypoints`) covers the face and leaves the crown, as on a
real head. People seen from behind have no face drawn and their eyes and nose are not labelled
(v = 0); their ears are.

Every image comes from its own ``numpy.random.default_rng((seed, split, index))``: the same seed
gives byte-identical files, and image k does not depend on how many images a split has.

    python -m anonbench.datasets.demo ROOT [--seed S] [--train N] [--val N] [--width W]
                                           [--height H] [--style street|closeup]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from ..manifest import follow_umask

KEYPOINTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
             "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
             "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
            [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person", "keypoints": KEYPOINTS,
     "skeleton": SKELETON},
    {"id": 2, "name": "bicycle", "supercategory": "vehicle"},
    {"id": 3, "name": "car", "supercategory": "vehicle"},
]
SPLIT_CODE = {"train": 1, "val": 2}
MIN_PIXELS = 6
SKIN = np.array([[255, 224, 196], [241, 194, 125], [224, 172, 105], [198, 134, 66],
                 [141, 85, 36], [92, 58, 30]], dtype=np.float64)
#: What people wear on their legs (denim, black, greys, navy, khaki, brown): a narrow palette, as
#: in real streets, unlike the shirts and everything else in the world (any colour).
TROUSERS = np.array([[40, 55, 90], [70, 95, 140], [25, 25, 30], [60, 60, 65], [110, 110, 115],
                     [30, 35, 60], [150, 135, 100], [90, 65, 45]], dtype=np.float64)


@dataclass
class Obj:
    kind: str            # person, crowd, car, bicycle
    depth: float         # feet y: larger = nearer, drawn later
    draw: Any            # callable(img, label, id) drawing into both
    keypoints: np.ndarray | None = None
    face_labelled: bool = True


def _colour(rng: np.random.Generator, lo: int = 20, hi: int = 235) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0])), int(round(p[1]))


def _background(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, int]:
    img = np.zeros((h, w, 3), np.uint8)
    horizon = int(h * rng.uniform(0.35, 0.5))
    sky_top, sky_bottom = np.array(_colour(rng, 90, 230)), np.array(_colour(rng, 120, 250))
    t = np.linspace(0, 1, horizon)[:, None]
    img[:horizon] = (sky_top * (1 - t) + sky_bottom * t)[:, None, :].astype(np.uint8)
    x = 0
    while x < w:  # buildings
        bw = int(rng.integers(w // 10, w // 3))
        top = int(rng.integers(0, max(1, horizon - 10)))
        col = _colour(rng, 40, 220)
        cv2.rectangle(img, (x, top), (x + bw, horizon), col, -1)
        win = tuple(int(c * 0.5) for c in col)
        for wy in range(top + 4, horizon - 6, 10):
            for wx in range(x + 3, x + bw - 5, 9):
                if rng.random() < 0.4:
                    cv2.rectangle(img, (wx, wy), (wx + 4, wy + 5), win, -1)
        x += bw
    road = _colour(rng, 60, 140)
    img[horizon:] = road
    walk = int(horizon + (h - horizon) * rng.uniform(0.05, 0.2))
    img[horizon:walk] = _colour(rng, 110, 200)
    for lx in range(int(rng.integers(0, 30)), w, 40):  # lane marks
        y = int(horizon + (h - horizon) * 0.6)
        cv2.line(img, (lx, y), (lx + 18, y), (230, 230, 210), 2)
    for _ in range(int(rng.integers(0, 4))):  # poles
        px = int(rng.integers(0, w))
        cv2.line(img, (px, int(rng.integers(0, horizon))), (px, walk), _colour(rng, 30, 90), 2)
    noise = rng.normal(0, rng.uniform(2, 6), img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8), horizon


def _person(rng: np.random.Generator, fx: float, fy: float, height: float,
            back: float = 0.2) -> Obj:
    """A person of ``height`` pixels standing at ``(fx, fy)``; seen from behind with
    probability ``back``."""
    H = height
    facing_back = rng.random() < back
    skin = tuple(int(v) for v in SKIN[rng.integers(0, len(SKIN))] * rng.uniform(0.9, 1.05))
    shirt, hair = _colour(rng), _colour(rng, 10, 120)
    trousers = tuple(int(v) for v in np.clip(
        TROUSERS[rng.integers(0, len(TROUSERS))] + rng.uniform(-15, 15, 3), 0, 255))
    shoes = tuple(int(v) for v in rng.integers(15, 60, 3))
    long_sleeves = rng.random() < 0.5
    lean = rng.uniform(-0.06, 0.06)
    # the head: an upright ellipse two thirds as wide as tall (ears at its sides, eyes half-way
    # down), so that a WIDER-Face box from the face keypoints leaves the crown above it, as on a
    # real head; hair, or a hat or cap (any colour) on a quarter of the people
    r, rw = 0.075 * H, 0.05 * H          # half-height, half-width
    hat = _colour(rng) if rng.random() < 0.25 else None
    brim = hat is not None and rng.random() < 0.5
    head = np.array([fx + lean * H, fy - 0.92 * H])
    neck = np.array([fx + lean * H * 0.8, fy - 0.80 * H])
    hip_c = np.array([fx + lean * H * 0.3, fy - 0.50 * H])
    sw, hw = 0.12 * H, 0.085 * H
    # COCO left = the person's left = image right when facing the camera
    side = -1.0 if facing_back else 1.0
    kp = np.zeros((17, 2))
    kp[5], kp[6] = neck + [side * sw, 0], neck - [side * sw, 0]
    kp[11], kp[12] = hip_c + [side * hw, 0], hip_c - [side * hw, 0]
    up, fore, thigh, shin = 0.17 * H, 0.15 * H, 0.24 * H, 0.25 * H
    arms_up = rng.random() < 0.15
    for s, e, w_ in ((5, 7, 9), (6, 8, 10)):
        sgn = 1 if kp[s][0] >= neck[0] else -1
        a = math.radians(rng.uniform(120, 170) if arms_up else rng.uniform(-25, 45))
        b = a + math.radians(rng.uniform(0, 70))
        kp[e] = kp[s] + up * np.array([sgn * math.sin(a), math.cos(a)])
        kp[w_] = kp[e] + fore * np.array([sgn * math.sin(b), math.cos(b)])
    stride = rng.uniform(-25, 25)
    for h_, k, an, sgn in ((11, 13, 15, 1), (12, 14, 16, -1)):
        a = math.radians(sgn * stride + rng.uniform(-5, 5))
        b = a + math.radians(rng.uniform(-20, 5))
        kp[k] = kp[h_] + thigh * np.array([math.sin(a), math.cos(a)])
        kp[an] = kp[k] + shin * np.array([math.sin(b), math.cos(b)])
    if facing_back:
        kp[3], kp[4] = head + [-rw, 0.1 * r], head + [rw, 0.1 * r]
    else:
        kp[1], kp[2] = head + [0.45 * rw, 0], head + [-0.45 * rw, 0]
        kp[0] = head + [0, 0.3 * r]
        kp[3], kp[4] = head + [rw, 0.1 * r], head + [-rw, 0.1 * r]
    limb = max(2, int(round(0.08 * H)))
    leg = max(2, int(round(0.1 * H)))

    def draw(img: np.ndarray, label: np.ndarray, iid: int) -> None:
        def both(fn, colour, *args):
            fn(img, *args[:-1], colour, args[-1], cv2.LINE_8)
            fn(label, *args[:-1], iid, args[-1], cv2.LINE_8)

        for a, b in ((11, 13), (13, 15), (12, 14), (14, 16)):
            both(cv2.line, trousers, _pt(kp[a]), _pt(kp[b]), leg)
        for a in (15, 16):  # shoes, a little wider than the leg, pointing to the image side
            toe = kp[a] + [0.04 * H * (1 if a == 15 else -1) * side, 0.02 * H]
            both(cv2.line, shoes, _pt(kp[a]), _pt(toe), max(2, int(round(0.07 * H))))
        torso = np.array([_pt(kp[5]), _pt(kp[6]), _pt(kp[12]), _pt(kp[11])], np.int32)
        cv2.fillPoly(img, [torso], shirt, cv2.LINE_8)
        cv2.fillPoly(label, [torso], iid, cv2.LINE_8)
        both(cv2.line, shirt, _pt(neck), _pt(hip_c), max(2, int(round(0.17 * H))))
        for s, e, w_ in ((5, 7, 9), (6, 8, 10)):
            both(cv2.line, shirt, _pt(kp[s]), _pt(kp[e]), limb)
            both(cv2.line, shirt if long_sleeves else skin, _pt(kp[e]), _pt(kp[w_]), limb)
        both(cv2.line, skin, _pt(neck), _pt(head), max(1, int(round(0.6 * rw))))
        axes = (max(1, int(round(rw))), max(1, int(round(r))))
        both(cv2.ellipse, skin, _pt(head), axes, 0, 0, 360, -1)
        if brim:  # a cap's brim, wider than the head
            both(cv2.line, hat, _pt(head + [-1.2 * rw, -0.4 * r]), _pt(head + [1.2 * rw, -0.4 * r]),
                 max(1, int(round(0.15 * r))))
        # hair, hat and face are painted inside the head's own pixels only (its mask is exact)
        x0, y0 = max(0, int(head[0] - rw) - 2), max(0, int(head[1] - r) - 2)
        x1 = min(img.shape[1], int(head[0] + rw) + 3)
        y1 = min(img.shape[0], int(head[1] + r) + 3)
        if x1 <= x0 or y1 <= y0:
            return
        crop = img[y0:y1, x0:x1].copy()
        c = _pt(head - [x0, y0])
        cv2.ellipse(crop, c, axes, 0, 0, 360, hair, -1, cv2.LINE_8)
        if not facing_back:  # the face: a skin oval below the hairline
            face_c = _pt(head - [x0, y0] + [0, 0.25 * r])
            cv2.ellipse(crop, face_c, (max(1, int(round(0.85 * rw))), max(1, int(round(0.75 * r)))),
                        0, 0, 360, skin, -1, cv2.LINE_8)
            eye = max(1, int(round(0.2 * rw)))
            for p in (kp[1], kp[2]):
                cv2.circle(crop, _pt(p - [x0, y0]), eye, (25, 20, 20), -1, cv2.LINE_8)
            m0, m1 = head - [x0, y0] + [-0.35 * rw, 0.6 * r], head - [x0, y0] + [0.35 * rw, 0.6 * r]
            cv2.line(crop, _pt(m0), _pt(m1), (150, 40, 50), max(1, int(round(0.1 * r))))
        if hat is not None:  # covers the crown down to the forehead
            top = np.zeros(crop.shape[:2], np.uint8)
            cv2.ellipse(top, c, axes, 0, 0, 360, 1, -1, cv2.LINE_8)
            top[max(0, int(round(head[1] - y0 - 0.4 * r))):] = 0
            crop[top > 0] = hat
        inside = label[y0:y1, x0:x1] == iid
        img[y0:y1, x0:x1][inside] = crop[inside]

    return Obj("person", fy, draw, kp, not facing_back)


def _car(rng: np.random.Generator, fx: float, fy: float, scale: float) -> Obj:
    L, Hh = 1.0 * scale, 0.38 * scale
    body, glass = _colour(rng), (70, 90, 110)

    def draw(img: np.ndarray, label: np.ndarray, iid: int) -> None:
        x0, y0 = int(fx - L / 2), int(fy - Hh)
        pts = [np.array([(x0, int(fy - 0.12 * scale)), (x0 + int(L), int(fy - 0.12 * scale)),
                         (x0 + int(L), y0 + int(0.4 * Hh)), (x0 + int(0.75 * L), y0 + int(0.4 * Hh)),
                         (x0 + int(0.62 * L), y0), (x0 + int(0.3 * L), y0),
                         (x0 + int(0.18 * L), y0 + int(0.4 * Hh)), (x0, y0 + int(0.4 * Hh))],
                        np.int32)]
        cv2.fillPoly(img, pts, body, cv2.LINE_8)
        cv2.fillPoly(label, pts, iid, cv2.LINE_8)
        win = np.array([(x0 + int(0.33 * L), y0 + 2), (x0 + int(0.6 * L), y0 + 2),
                        (x0 + int(0.7 * L), y0 + int(0.4 * Hh)),
                        (x0 + int(0.22 * L), y0 + int(0.4 * Hh))], np.int32)
        cv2.fillPoly(img, [win], glass, cv2.LINE_8)
        wr = max(1, int(0.1 * scale))
        for wx in (x0 + int(0.2 * L), x0 + int(0.8 * L)):
            cv2.circle(img, (wx, int(fy - wr)), wr, (20, 20, 20), -1, cv2.LINE_8)
            cv2.circle(label, (wx, int(fy - wr)), wr, iid, -1, cv2.LINE_8)

    return Obj("car", fy, draw)


def _bicycle(rng: np.random.Generator, fx: float, fy: float, scale: float) -> Obj:
    wr = max(2, int(0.16 * scale))
    frame = _colour(rng)
    t = max(1, int(0.03 * scale))

    def draw(img: np.ndarray, label: np.ndarray, iid: int) -> None:
        a, b = (int(fx - 1.3 * wr), int(fy - wr)), (int(fx + 1.3 * wr), int(fy - wr))
        seat, bar = (int(fx - 0.3 * wr), int(fy - 2.1 * wr)), (int(fx + 0.9 * wr), int(fy - 2.3 * wr))
        crank = (int(fx), int(fy - wr))
        for fn, args, col in ((cv2.circle, (a, wr), (30, 30, 30)), (cv2.circle, (b, wr), (30, 30, 30))):
            fn(img, *args, col, t, cv2.LINE_8)
            fn(label, *args, iid, t, cv2.LINE_8)
        for p, q in ((a, seat), (seat, crank), (crank, a), (seat, bar), (bar, b), (bar, crank)):
            cv2.line(img, p, q, frame, t, cv2.LINE_8)
            cv2.line(label, p, q, iid, t, cv2.LINE_8)

    return Obj("bicycle", fy, draw)


def _crowd(rng: np.random.Generator, fx: float, fy: float, height: float) -> Obj:
    members = [_person(rng, fx + rng.uniform(-1.2, 1.2) * height * 0.3, fy + rng.uniform(-2, 2),
                       height * rng.uniform(0.85, 1.1)) for _ in range(int(rng.integers(4, 8)))]

    def draw(img: np.ndarray, label: np.ndarray, iid: int) -> None:
        for m in members:
            m.draw(img, label, iid)

    return Obj("crowd", fy, draw)


def _street_objects(rng: np.random.Generator, w: int, h: int, horizon: int) -> list[Obj]:
    """A Cityscapes-like street: up to 10 people, most of them small and far away, cars,
    bicycles, sometimes a far crowd."""
    ground = h - horizon

    def feet_y(u: float) -> float:
        return horizon + 4 + (ground - 4) * u

    objs: list[Obj] = []
    n_people = 0 if rng.random() < 0.08 else int(rng.integers(2, 11))
    for _ in range(n_people):
        # strongly biased towards the horizon: most people far away and small (Cityscapes:
        # most persons under 1 % of the image area), a few near the camera
        u = rng.random() ** 4.0
        fy = feet_y(u)
        height = max(14.0, (fy - horizon) * rng.uniform(1.4, 2.0))
        objs.append(_person(rng, rng.uniform(0.03, 0.97) * w, fy, height, back=0.4))
    for _ in range(int(rng.integers(0, 3))):
        fy = feet_y(rng.uniform(0.1, 1.0))
        objs.append(_car(rng, rng.uniform(0, 1) * w, fy, max(12.0, (fy - horizon) * 2.2)))
    for _ in range(int(rng.integers(0, 3))):
        fy = feet_y(rng.uniform(0.1, 1.0))
        objs.append(_bicycle(rng, rng.uniform(0, 1) * w, fy, max(10.0, (fy - horizon) * 1.3)))
    if rng.random() < 0.12:
        fy = feet_y(rng.uniform(0.0, 0.25))
        objs.append(_crowd(rng, rng.uniform(0.15, 0.85) * w, fy, max(9.0, (fy - horizon) * 1.5)))
    return objs


def _closeup_objects(rng: np.random.Generator, w: int, h: int, horizon: int) -> list[Obj]:
    """A COCO-like close-up: one to three large people facing the camera (their feet often
    out of the frame), sometimes a few small ones behind them and a bicycle."""
    objs: list[Obj] = []
    for _ in range(int(rng.integers(0, 3))):  # small people in the background
        fy = horizon + rng.uniform(4, 0.25 * (h - horizon))
        objs.append(_person(rng, rng.uniform(0.05, 0.95) * w, fy, h * rng.uniform(0.12, 0.3)))
    n_people = 0 if rng.random() < 0.05 else int(rng.integers(1, 4))
    for _ in range(n_people):
        height = h * rng.uniform(0.5, 1.3)
        # feet low in the frame, the head always inside it (its top a little below the edge)
        fy = max(h * rng.uniform(0.8, 1.0), height + h * rng.uniform(0.02, 0.1))
        objs.append(_person(rng, rng.uniform(0.1, 0.9) * w, fy, height, back=0.1))
    if rng.random() < 0.3:
        fy = h * rng.uniform(0.75, 1.0)
        objs.append(_bicycle(rng, rng.uniform(0.1, 0.9) * w, fy, h * rng.uniform(0.3, 0.6)))
    if rng.random() < 0.3:
        fy = horizon + rng.uniform(0.1, 0.4) * (h - horizon)
        objs.append(_car(rng, rng.uniform(0, 1) * w, fy, max(12.0, (fy - horizon) * 2.2)))
    return objs


#: World style -> the objects of one scene (rng, width, height, horizon).
STYLES = {"street": _street_objects, "closeup": _closeup_objects}


def render_image(rng: np.random.Generator, w: int, h: int, style: str = "street"
                 ) -> tuple[np.ndarray, list[dict]]:
    """One scene of ``style``: the RGB image and its objects (kind, visible mask, keypoints)."""
    img, horizon = _background(rng, w, h)
    objs = STYLES[style](rng, w, h, horizon)
    objs.sort(key=lambda o: o.depth)
    label = np.zeros((h, w), np.uint16)
    for i, o in enumerate(objs, start=1):
        o.draw(img, label, i)
    out = []
    for i, o in enumerate(objs, start=1):
        mask = label == i
        if mask.sum() < MIN_PIXELS:
            continue
        rec: dict[str, Any] = {"kind": o.kind, "mask": mask}
        if o.kind == "person":
            kps = np.zeros((17, 3))
            for j, (x, y) in enumerate(o.keypoints):
                if j in (0, 1, 2) and not o.face_labelled:
                    continue
                xi, yi = int(round(x)), int(round(y))
                if not (0 <= xi < w and 0 <= yi < h):
                    continue
                y0, x0 = max(0, yi - 1), max(0, xi - 1)
                visible = (label[y0:yi + 2, x0:xi + 2] == i).any()
                kps[j] = (round(float(x), 2), round(float(y), 2), 2 if visible else 1)
            rec["keypoints"] = kps
        out.append(rec)
    return img, out


def _bbox(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
            float(ys.max() - ys.min() + 1)]


def _split(root: Path, split: str, n: int, seed: int, w: int, h: int, style: str = "street"
           ) -> tuple[dict, dict, dict]:
    images, inst, kp_anns = [], [], []
    counts = {"images": n, "persons": 0, "small_persons": 0, "crowd": 0, "cars": 0,
              "bicycles": 0, "faces_labelled": 0}
    (root / f"{split}2017").mkdir(parents=True)
    ann_id = 1
    for k in range(n):
        rng = np.random.default_rng([seed, SPLIT_CODE[split], k])
        img, objs = render_image(rng, w, h, style)
        image_id = k + 1
        name = f"{image_id:012d}.jpg"
        Image.fromarray(img).save(root / f"{split}2017" / name, quality=95)
        images.append({"id": image_id, "file_name": name, "width": w, "height": h,
                       "license": 1})
        for o in objs:
            crowd = o["kind"] == "crowd"
            m = o["mask"]
            if crowd:
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                seg: Any = {"size": [h, w], "counts": _uncompressed_counts(m)}
            else:
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                seg = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
            cat = {"person": 1, "crowd": 1, "bicycle": 2, "car": 3}[o["kind"]]
            a = {"id": ann_id, "image_id": image_id, "category_id": cat, "segmentation": seg,
                 "area": int(m.sum()), "bbox": _bbox(m), "iscrowd": int(crowd)}
            ann_id += 1
            inst.append(a)
            if cat == 1:
                kps = o.get("keypoints", np.zeros((17, 3)))
                ka = {**a, "keypoints": [float(v) if i % 3 < 2 else int(v)
                                         for i, v in enumerate(kps.ravel())],
                      "num_keypoints": int((kps[:, 2] > 0).sum())}
                kp_anns.append(ka)
                if crowd:
                    counts["crowd"] += 1
                else:
                    counts["persons"] += 1
                    counts["small_persons"] += int(a["area"] < 32 ** 2)
                    counts["faces_labelled"] += int(kps[1, 2] > 0 or kps[2, 2] > 0)
            else:
                counts["cars" if cat == 3 else "bicycles"] += 1
    description = "anonbench demo world (synthetic)"  # street: the bytes of before styles
    if style != "street":
        description = f"anonbench demo world (synthetic, {style})"
    info = {"description": description, "version": "1.0",
            "year": 2026, "contributor": "anonbench", "seed": seed}
    licenses = [{"id": 1, "name": "CC0 (generated data)", "url": ""}]
    base = {"info": info, "licenses": licenses, "images": images}
    return ({**base, "annotations": inst, "categories": CATEGORIES},
            {**base, "annotations": kp_anns, "categories": CATEGORIES[:1]}, counts)


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    flat = mask.ravel(order="F").astype(np.uint8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return runs if flat[0] == 0 else [0] + runs


def generate_world(root: str | os.PathLike[str], *, seed: int = 0, n_train: int = 200,
                   n_val: int = 60, width: int = 256, height: int = 160,
                   style: str = "street") -> dict:
    """Write the world under ``root`` (COCO 2017 layout); returns counts per split.

    ``style``: ``street`` (Cityscapes-like, most persons under 1 % of the image area) or
    ``closeup`` (COCO-like: fewer, larger persons with visible faces)."""
    if style not in STYLES:
        raise ValueError(f"unknown demo world style {style!r} (known: {', '.join(STYLES)})")
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root}: exists and is not empty")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    follow_umask(tmp, directory=True)
    try:
        (tmp / "annotations").mkdir()
        summary = {}
        for split, n in (("train", n_train), ("val", n_val)):
            inst, kps, counts = _split(tmp, split, n, seed, width, height, style)
            for name, data in (("instances", inst), ("person_keypoints", kps)):
                with open(tmp / "annotations" / f"{name}_{split}2017.json", "w") as f:
                    json.dump(data, f)
            summary[split] = counts
        if root.exists():
            root.rmdir()
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary



# ----------------------------------------------------------------------------------------------
# The same world in the Cityscapes and BDD100K layouts (converted from the COCO layout above).

#: Cityscapes label names of the world's kinds (cityscapesscripts' label table gives the ids).
CITYSCAPES_LABELS = {"person": "person", "bicycle": "bicycle", "car": "car"}
#: Two "cities", so that the per-city directories of the layout are exercised.
CITIES = ("alphaville", "betatown")
#: The semantic label of every pixel no object covers (a real class, so that the Cityscapes
#: evaluation does not treat the background as void and ignore false positives there).
CITYSCAPES_BACKGROUND = "road"
#: BDD100K ins_seg category ids (bdd100k/configs/ins_seg.toml order, from 1).
BDD100K_CATEGORIES = {"person": (1, "pedestrian"), "car": (3, "car"), "bicycle": (8, "bicycle")}


def _world_split(world_root: Path, split: str) -> dict:
    with open(world_root / "annotations" / f"instances_{split}2017.json") as f:
        return json.load(f)


def _world_images(world_root: Path, split: str):
    """(image dict, its annotations in drawing order, category names by id) of a COCO world."""
    data = _world_split(world_root, split)
    names = {c["id"]: c["name"] for c in data["categories"]}
    by_image: dict[int, list[dict]] = {img["id"]: [] for img in data["images"]}
    for a in sorted(data["annotations"], key=lambda a: a["id"]):
        by_image[a["image_id"]].append(a)
    for img in data["images"]:
        yield img, by_image[img["id"]], names


def _ann_mask(a: dict, h: int, w: int) -> np.ndarray:
    seg = a["segmentation"]
    rle = mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else \
        {"size": seg["size"], "counts": seg["counts"].encode("ascii")}
    return mask_utils.decode(rle).astype(bool)


def _polygon(mask: np.ndarray) -> list[list[int]]:
    """The outline of the mask's largest part: boundary pixel centres, which PIL's polygon fill
    (the toolkit's rasteriser) covers exactly for a part without holes."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    c = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))[:, 0, :]
    pts = [[int(x), int(y)] for x, y in c]
    while len(pts) < 3:
        pts.append(list(pts[-1]))
    return pts


def cityscapes_stem(image_id: int) -> tuple[str, str]:
    """(city, ``{city}_{seq}_{frame}``) of a world image in the Cityscapes layout."""
    city = CITIES[(image_id - 1) % len(CITIES)]
    return city, f"{city}_{image_id:06d}_000019"


def write_cityscapes_layout(world_root: str | os.PathLike[str],
                            out_root: str | os.PathLike[str]) -> dict:
    """Write the COCO-layout world at ``world_root`` as Cityscapes gtFine under ``out_root``.

    ``leftImg8bit/{split}/{city}/*_leftImg8bit.png`` (the decoded world images),
    ``gtFine/{split}/{city}/*_gtFine_{instanceIds,labelIds}.png`` from the exact masks with the
    toolkit's id convention (instance ``label_id * 1000 + k``, k counting per class in drawing
    order; a crowd is a ``persongroup`` region holding the bare label id; background ``road``),
    and ``*_gtFine_polygons.json`` written with cityscapesscripts' ``Annotation``/``CsPoly``
    (outline of each object's largest part, in drawing order after a full-image road polygon).
    Returns counts per split.
    """
    from cityscapesscripts.helpers.annotation import Annotation, CsPoly, Point
    from cityscapesscripts.helpers.labels import name2label

    world_root, out_root = Path(world_root), Path(out_root)
    background = name2label[CITYSCAPES_BACKGROUND].id
    summary = {}
    for split in ("train", "val"):
        counts = {"images": 0, "instances": 0, "groups": 0}
        for img, anns, names in _world_images(world_root, split):
            h, w = img["height"], img["width"]
            city, stem = cityscapes_stem(img["id"])
            img_dir = out_root / "leftImg8bit" / split / city
            gt_dir = out_root / "gtFine" / split / city
            img_dir.mkdir(parents=True, exist_ok=True)
            gt_dir.mkdir(parents=True, exist_ok=True)
            with Image.open(world_root / f"{split}2017" / img["file_name"]) as im:
                im.convert("RGB").save(img_dir / f"{stem}_leftImg8bit.png")
            ids = np.full((h, w), background, np.uint16)
            nth: dict[str, int] = {}
            annotation = Annotation()
            annotation.imgWidth, annotation.imgHeight = w, h
            road = CsPoly()
            road.label = CITYSCAPES_BACKGROUND
            road.polygon = [Point(0, 0), Point(w - 1, 0), Point(w - 1, h - 1), Point(0, h - 1)]
            annotation.objects.append(road)
            for a in anns:
                label = CITYSCAPES_LABELS[names[a["category_id"]]]
                m = _ann_mask(a, h, w)
                if not m.any():
                    continue
                if a.get("iscrowd"):
                    value, poly_label = name2label[label].id, label + "group"
                    counts["groups"] += 1
                else:
                    value = name2label[label].id * 1000 + nth.get(label, 0)
                    nth[label] = nth.get(label, 0) + 1
                    poly_label = label
                    counts["instances"] += 1
                ids[m] = value
                obj = CsPoly()
                obj.label = poly_label
                obj.polygon = [Point(x, y) for x, y in _polygon(m)]
                annotation.objects.append(obj)
            cv2.imwrite(str(gt_dir / f"{stem}_gtFine_instanceIds.png"), ids)
            labels = np.where(ids >= 1000, ids // 1000, ids).astype(np.uint8)
            Image.fromarray(labels).save(gt_dir / f"{stem}_gtFine_labelIds.png")
            with open(gt_dir / f"{stem}_gtFine_polygons.json", "w") as f:
                json.dump(annotation.toJsonText(), f, indent=4)
            counts["images"] += 1
        summary[split] = counts
    return summary


def bdd100k_name(split: str, image_id: int) -> str:
    """A BDD100K-like image name (``xxxxxxxx-xxxxxxxx.jpg``) of a world image."""
    return f"{SPLIT_CODE[split]:08x}-{image_id:08x}.jpg"


def write_bdd100k_layout(world_root: str | os.PathLike[str],
                         out_root: str | os.PathLike[str]) -> dict:
    """Write the COCO-layout world at ``world_root`` as BDD100K 10K ins_seg under ``out_root``.

    ``images/10k/{split}/*.jpg`` (the world's JPEG bytes), ``labels/ins_seg/bitmasks/{split}/
    *.png`` (RGBA: R category, G ``crowd << 1``, instance id ``(B << 8) + A``, as
    ``bdd100k/label/to_mask.py`` writes them) and ``labels/ins_seg/rles/ins_seg_{split}.json``
    (Scalabel frames with COCO RLEs). The toolkit's own writers need ``scalabel`` with pydantic 1,
    which cannot share an environment with Snakemake 9, so the documented formats are written here.
    Returns counts per split.
    """
    world_root, out_root = Path(world_root), Path(out_root)
    summary = {}
    for split in ("train", "val"):
        counts = {"images": 0, "instances": 0, "crowd": 0}
        img_dir = out_root / "images" / "10k" / split
        bm_dir = out_root / "labels" / "ins_seg" / "bitmasks" / split
        rle_dir = out_root / "labels" / "ins_seg" / "rles"
        for d in (img_dir, bm_dir, rle_dir):
            d.mkdir(parents=True, exist_ok=True)
        frames = []
        for img, anns, names in _world_images(world_root, split):
            h, w = img["height"], img["width"]
            name = bdd100k_name(split, img["id"])
            shutil.copyfile(world_root / f"{split}2017" / img["file_name"], img_dir / name)
            bitmask = np.zeros((h, w, 4), np.uint8)
            labels = []
            for a in anns:
                m = _ann_mask(a, h, w)
                if not m.any():
                    continue
                cat_id, cat = BDD100K_CATEGORIES[names[a["category_id"]]]
                crowd = bool(a.get("iscrowd"))
                index = len(labels) + 1
                bitmask[m] = (cat_id, int(crowd) << 1, index >> 8, index & 255)
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                labels.append({"id": str(index), "category": cat,
                               "attributes": {"occluded": False, "truncated": False,
                                              "crowd": crowd},
                               "rle": {"counts": rle["counts"].decode("ascii"),
                                       "size": [h, w]}})
                counts["crowd" if crowd else "instances"] += 1
            Image.fromarray(bitmask, mode="RGBA").save(bm_dir / (name[:-4] + ".png"))
            frames.append({"name": name, "labels": labels})
            counts["images"] += 1
        config = {"imageSize": {"height": int(h), "width": int(w)} if frames else None,
                  "categories": [{"name": n} for _, n in sorted(BDD100K_CATEGORIES.values())]}
        with open(rle_dir / f"ins_seg_{split}.json", "w") as f:
            json.dump({"frames": frames, "config": config}, f)
        summary[split] = counts
    return summary


#: Layout name (a dataset ``format``) -> writer (COCO world root, output root) -> counts.
LAYOUTS = {"cityscapes": write_cityscapes_layout, "bdd100k": write_bdd100k_layout}


def generate_world_in_layout(root: str | os.PathLike[str], layout: str = "coco", **kwargs) -> dict:
    """:func:`generate_world` (same arguments), written in ``layout`` (coco, cityscapes, bdd100k).

    The COCO world is made in a temporary directory beside ``root`` and converted; ``root``
    appears complete or not at all. Returns the world's counts per split and, for another
    layout, the converter's under ``"layout"``.
    """
    if layout == "coco":
        return generate_world(root, **kwargs)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} (known: coco, {', '.join(LAYOUTS)})")
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root}: exists and is not empty")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    follow_umask(tmp, directory=True)
    try:
        summary = generate_world(tmp / "coco", **kwargs)
        summary["layout"] = LAYOUTS[layout](tmp / "coco", tmp / "out")
        if root.exists():
            root.rmdir()
        os.replace(tmp / "out", root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Write the anonbench demo world (COCO 2017 layout).")
    ap.add_argument("root")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--val", type=int, default=60)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=160)
    ap.add_argument("--style", choices=sorted(STYLES), default="street")
    a = ap.parse_args(argv)
    print(json.dumps(generate_world(a.root, seed=a.seed, n_train=a.train, n_val=a.val,
                                    width=a.width, height=a.height, style=a.style), indent=1))


if __name__ == "__main__":
    main()
