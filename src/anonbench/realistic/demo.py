"""The ``demo`` generator: a small, untrained, seeded stand-in for DeepPrivacy2 in the demo world.

Same interface as the real generators, so truncation, HM and HM-LO run on it. A fixed random
mapping network turns z into w; fixed directions of w, whitened over sampled latents, give
independent appearance parameters, each about uniform on (0, 1) (colours of skin, hair, shirt,
trousers and shoes, sleeve length, limb thickness, shading), mapped into the demo world's own
ranges (``datasets.demo``: its skin and trouser palettes, shirts of any colour, dark hair and
shoes). The synthesis draws a new person in the world's style from the conditions DeepPrivacy2
gets, never from the pixels it replaces:

* bodies: a figure drawn from the keypoint skeleton only (COCO-17 in the crop): capsule legs,
  shoes pointing to the side the person faces, torso, arms, a neck and a round head with hair,
  and, when the eyes are visible, eyes and a mouth, painted back to front in the world's order;
  its size comes from the skeleton (torso length, shoulder or hip width), or, without any
  visible keypoint, a standing figure fitted to the (dilated) generate region; no part thinner
  than the world's 2 px lines at the image's resolution (``CropBatch.scale``). The rest of the
  generate region is filled from the kept pixels around it (normalised convolution at low
  resolution). The undilated person mask (``CropBatch.person``) is not used: the new person
  has its own silhouette.
* faces: a skin ellipse in the generate box, hair on top, two eyes and a mouth.

What made its people the world's (street world, body-realistic box AP_person, 3 seeds; the first
figures kept 3.9 of the original's 21.4 on an AVX-512 2-core machine, 2026-12-05; each step below
on a Zen 2 2-core machine, 2026-12-06, where the original has 20.7): the world's palettes
instead of one random projection's colours (9.6), parts at least 2 image px thick (11.5), shoes
and the world's paint order (16.8), two-valued sleeves (17.6). Crisper edges, no texture, a halo
filled from the nearest kept pixel, or pasting back without antialiasing each changed it by less
than its standard error.

Everything is differentiable in w. No weights are trained or downloaded.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..datasets.demo import SKIN, TROUSERS
from .base import ConditionalGenerator, CropBatch, register
from .crops import BODY_SIZE, FACE_HR_SIZE, FACE_SIZE

# Body parts (index into the part colour list); skeleton points are COCO-17 indices, 17 = neck,
# 18 = mid hip, 19 and 20 the left and right toe.
HEAD, TORSO, UPPER_ARM, FOREARM, LEG, SHOES = range(6)
#: The order the world paints a person's parts in (``datasets.demo._person``), back to front.
PAINT_ORDER = (LEG, SHOES, TORSO, UPPER_ARM, FOREARM, HEAD)
# Half widths (fractions of the person's height) of each part's capsules, the demo world's
# proportions (datasets.demo._person: legs 0.1 H thick, arms 0.08 H, the torso 0.17 H around the
# neck-hip line; the head an upright ellipse of half-height 0.075 H and half-width 0.05 H, the neck
# 0.6 of the head's half-width).
PART_CAPSULES = {
    TORSO: [((17, 18), 0.085), ((5, 6), 0.04), ((11, 12), 0.04), ((5, 11), 0.04), ((6, 12), 0.04)],
    UPPER_ARM: [((5, 7), 0.04), ((6, 8), 0.04)],
    FOREARM: [((7, 9), 0.04), ((8, 10), 0.04)],
    LEG: [((11, 13), 0.05), ((13, 15), 0.05), ((12, 14), 0.05), ((14, 16), 0.05)],
    SHOES: [((15, 19), 0.035), ((16, 20), 0.035)],  # ankle to toe
}
#: The part each body joint belongs to (COCO-17 indices; the ankles are the shoes' own).
JOINT_PARTS = {TORSO: (5, 6, 11, 12), UPPER_ARM: (7, 8), FOREARM: (9, 10), LEG: (13, 14)}
HEAD_RADIUS = 0.075       # half-height
HEAD_HALF_WIDTH = 0.05
NECK_HALF_WIDTH = 0.015
# The standing figure drawn when no keypoint is visible: COCO-17 (x, y) in units of the height,
# feet at y = 1, centred on x = 0 (the world's neutral pose).
STANDING = [(0.0, 0.10), (0.026, 0.07), (-0.026, 0.07), (0.075, 0.08), (-0.075, 0.08),
            (0.12, 0.20), (-0.12, 0.20), (0.14, 0.37), (-0.14, 0.37), (0.15, 0.52),
            (-0.15, 0.52), (0.085, 0.50), (-0.085, 0.50), (0.09, 0.74), (-0.09, 0.74),
            (0.09, 0.99), (-0.09, 0.99)]
SOFT = 0.75  # edge softness of the drawn figure, pixels
#: The narrowest half width of a limb, the torso, a shoe or the head, in image pixels: the world
#: draws every line at least 2 px thick (``datasets.demo``: ``max(2, round(0.08 H))`` for an arm),
#: so a far person is stockier than its proportions (a 15 px tall person's arms are 0.13 H
#: thick, not 0.08 H). The neck: half of it.
MIN_HALF_WIDTH = 1.0
# skin, hair, shirt, trousers and shoes; sleeve length, shading, limb thickness
BODY_PARAMS = 3 * 4 + 3
FACE_PARAMS = 3 * 4 + 1   # skin, hair, eyes, mouth; hair line
#: Sampled latents the appearance parameters are standardised on (see ``DemoGenerator``).
CALIBRATION_SAMPLES = 4096


def _palette(palette: np.ndarray, t: torch.Tensor, sharpness: float = 0.0) -> torch.Tensor:
    """(N, 3) colours [0, 1] along ``palette`` (K, 3; 0-255) at ``t`` (N, 1) in [0, 1]: linear
    between neighbouring entries, or (``sharpness`` > 0) a soft pick of one entry (K equal
    bins of ``t``). Differentiable in ``t``."""
    colours = torch.as_tensor(palette / 255.0, dtype=t.dtype, device=t.device)
    k = len(colours)
    index = torch.arange(k, dtype=t.dtype, device=t.device)
    if sharpness > 0:
        weight = torch.softmax(-sharpness * ((t - (index + 0.5) / k) * k).square(), dim=1)
    else:
        weight = (1 - (t * (k - 1) - index).abs()).clamp_min(0)
    return weight @ colours


def _colours(p: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Four (N, 3, 1, 1) colours from the first 12 parameters, in the demo world's ranges
    (``datasets.demo``): a skin tone along the world's skin palette (tone, brightness x 0.9 ..
    1.05), a dark hair colour (10-120 per channel), and two free colours (0-1)."""
    skin = _palette(SKIN, p[:, 0:1]) * (0.9 + 0.15 * p[:, 1:2])
    hair = (10 + 110 * p[:, 3:6]) / 255
    return tuple(c[:, :, None, None] for c in (skin, hair, p[:, 6:9], p[:, 9:12]))


def _seeded(shape: tuple[int, ...], gen: torch.Generator, scale: float) -> torch.Tensor:
    return torch.randn(shape, generator=gen) * scale


class DemoGenerator(ConditionalGenerator):
    def __init__(self, kind: str = "body", *, seed: int = 0, z_dim: int = 32, w_dim: int = 16
                 ) -> None:
        super().__init__()
        self.kind = kind
        self.imsize = {"body": BODY_SIZE, "face": FACE_SIZE, "face_hr": FACE_HR_SIZE}[kind]
        self.z_dim, self.w_dim = z_dim, w_dim
        gen = torch.Generator().manual_seed(1000 * seed + {"body": 1, "face": 2, "face_hr": 2}[kind])
        hidden = 64
        n_params = BODY_PARAMS if kind == "body" else FACE_PARAMS
        if n_params > w_dim:
            raise ValueError(f"w_dim={w_dim}: needs at least {n_params}, one per appearance "
                             "parameter")
        self.register_buffer("fc1", _seeded((z_dim, hidden), gen, 1 / math.sqrt(z_dim)))
        self.register_buffer("fc2", _seeded((hidden, w_dim), gen, 1 / math.sqrt(hidden)))
        # the appearance parameters: n_params directions of w, whitened over sampled latents so
        # that, under the latent prior, each is about uniform on (0, 1) and independent of the
        # others (a random projection alone skews and correlates the colours: the figures of a
        # world drawn from one mean colour, a purple one for seed 0)
        with torch.no_grad():
            w = self.map(_seeded((CALIBRATION_SAMPLES, z_dim), gen, 1.0))
            mean = w.mean(0)
            vals, vecs = torch.linalg.eigh(torch.cov((w - mean).T))
            whiten = vecs @ torch.diag(vals.clamp_min(1e-8).rsqrt()) @ vecs.T
            directions, _ = torch.linalg.qr(_seeded((w_dim, n_params), gen, 1.0))  # orthonormal
        self.register_buffer("w_mean", mean)
        self.register_buffer("to_params", whiten @ directions)
        h, w = self.imsize
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32) + 0.5,
                                torch.arange(w, dtype=torch.float32) + 0.5, indexing="ij")
        self.register_buffer("grid", torch.stack([xs, ys]))  # (2, H, W) pixel centres
        # a fixed fine texture so that surfaces are not flat
        self.register_buffer("texture", _seeded((1, 1, h, w), gen, 0.03))

    # -- latent ------------------------------------------------------------------------------
    def map(self, z: torch.Tensor) -> torch.Tensor:
        z = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        return _rows_matmul(F.leaky_relu(_rows_matmul(z, self.fc1), 0.2), self.fc2)

    def params(self, w: torch.Tensor) -> torch.Tensor:
        """(N, n_params) in (0, 1): sigmoid(1.702 x) is within 0.01 of the normal CDF."""
        return torch.sigmoid(1.702 * _rows_matmul(w - self.w_mean, self.to_params))

    # -- synthesis ---------------------------------------------------------------------------
    def synthesize(self, batch: CropBatch, w: torch.Tensor) -> torch.Tensor:
        key = f"demo-{self.kind}"
        if key not in batch.cache:  # everything that does not depend on w, once per batch
            batch.cache[key] = self._layout(batch)
        layout = batch.cache[key]
        p = self.params(w)
        if self.kind == "body":
            colour, alpha = self._body(layout, p)
        else:
            colour, alpha = self._face(layout, p), layout["alpha"]
        colour = colour * (1 + self.texture)
        x = alpha * colour + (1 - alpha) * layout["fill"]
        return (x * 2 - 1).clamp(-1, 1)

    def _layout(self, batch: CropBatch) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            out = {"fill": background_fill(batch.condition, batch.mask)}
            if self.kind == "body":
                out.update(self._figure_layout(batch))
            else:
                out.update(self._face_layout(batch))
        return out

    def _body(self, layout: dict[str, torch.Tensor], p: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(colour, alpha) of the figure for appearance parameters ``p``."""
        skin, hair, shirt, _ = _colours(p)
        # the world's clothes: a shirt of any colour (20-235 per channel), trousers from its
        # narrow palette (a soft pick, brightness x 0.9 .. 1.1), dark shoes (15-60)
        shirt = (20 + 215 * shirt) / 255
        trousers = (_palette(TROUSERS, p[:, 9:10], sharpness=4.0)
                    * (0.9 + 0.2 * p[:, 10:11]))[:, :, None, None]
        shoes = ((15 + 45 * p[:, 11:12]) / 255)[:, :, None, None].expand(-1, 3, -1, -1)
        shade = p[:, 13, None, None, None]
        # long or short sleeves, half and half (the world's; a steep sigmoid, not a step, so
        # that the colour stays differentiable in w)
        sleeve = torch.sigmoid(16 * (p[:, 12, None, None, None] - 0.5))
        thick = 0.9 + 0.2 * p[:, 14, None, None, None]  # limb thickness, x 0.9 .. 1.1
        height = layout["height"]
        # signed distance to each part's surface (negative inside), pixels; limbs w-thick
        sd = layout["dist"] - layout["is_limb"] * layout["half"] * height * (thick - 1)
        coverage = torch.sigmoid(-sd / SOFT)  # (N, parts, H, W)
        forearm = sleeve * shirt + (1 - sleeve) * skin
        # the head: skin, hair above the face (or all over it, seen from behind), eyes, mouth
        head = layout["hair"] * hair + (1 - layout["hair"]) * skin
        head = layout["eyes"] * 0.1 + (1 - layout["eyes"]) * head
        lips = torch.tensor([0.59, 0.16, 0.2], device=p.device)[None, :, None, None]
        head = layout["mouth"] * lips + (1 - layout["mouth"]) * head
        colours = {HEAD: head, TORSO: shirt, UPPER_ARM: shirt, FOREARM: forearm, LEG: trousers,
                   SHOES: shoes}
        # painted back to front, as the world paints its people (premultiplied "over")
        painted = torch.zeros_like(head)
        alpha = torch.zeros_like(coverage[:, :1])
        for part in PAINT_ORDER:
            a = coverage[:, part:part + 1]
            painted = a * colours[part] + (1 - a) * painted
            alpha = a + (1 - a) * alpha
        colour = painted / alpha.clamp_min(1e-6)
        y = self.grid[1] / self.imsize[0]
        return colour * (1 - 0.4 * (shade - 0.5) * (y - 0.5)), alpha

    def _points(self, kp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = self.imsize
        pts = torch.zeros(kp.shape[0], 19, 2, device=kp.device)
        vis = torch.zeros(kp.shape[0], 19, dtype=torch.bool, device=kp.device)
        pts[:, :17] = kp[:, :, :2] * torch.tensor([w, h], device=kp.device, dtype=kp.dtype)
        vis[:, :17] = kp[:, :, 2] > 0
        for mid, (a, b) in ((17, (5, 6)), (18, (11, 12))):
            both = vis[:, a] & vis[:, b]
            pts[:, mid] = torch.where(both[:, None], (pts[:, a] + pts[:, b]) / 2, pts[:, mid])
            vis[:, mid] = both
        return pts, vis

    def _standing(self, mask: torch.Tensor) -> torch.Tensor:
        """(N, 17, 3) keypoints of a standing figure filling each crop's generate region."""
        n = mask.shape[0]
        h, w = self.imsize
        kp = torch.zeros(n, 17, 3, device=mask.device)
        pose = torch.tensor(STANDING, device=mask.device)
        boxes, found = _region_boxes(mask)
        for i in range(n):
            if not found[i]:
                continue
            x0, y0, x1, y1 = boxes[i]
            cx = (x0 + x1) / 2
            # the dilation adds a margin on every side: the figure is 85 % of the region's
            # height, and 90 % of its width at most (arms out, it is 0.38 of its height wide)
            height = torch.minimum(0.85 * (y1 - y0), 0.9 * (x1 - x0) / 0.38)
            top = (y0 + y1) / 2 - height / 2
            kp[i, :, 0] = (cx + pose[:, 0] * height) / w
            kp[i, :, 1] = (top + pose[:, 1] * height) / h
            kp[i, :, 2] = 1
        return kp

    def _figure_layout(self, batch: CropBatch) -> dict[str, torch.Tensor]:
        """What does not depend on w: the signed distance (pixels, negative inside) of every
        pixel to each part's surface, the parts' half widths, the figure's height, and where
        hair, eyes and mouth go."""
        n = len(batch)
        dev = batch.mask.device
        kp = batch.keypoints.to(dev) if batch.keypoints is not None else torch.zeros(n, 17, 3,
                                                                                      device=dev)
        none = ~(kp[:, :, 2] > 0).any(1)
        if none.any():
            kp = torch.where(none[:, None, None], self._standing(batch.mask), kp)
        pts, vis = self._points(kp)
        height = _figure_height(pts, vis, batch.mask, self.imsize[0])  # (N,)
        head, head_ok = _head_centre(pts, vis, height)
        # the toes: the shoes point to the image side the person faces (the world's COCO left is
        # the image's right when the person faces the camera)
        facing = torch.where(vis[:, 5] & vis[:, 6] & (pts[:, 5, 0] < pts[:, 6, 0]), -1.0, 1.0)
        for ankle, sign in ((15, 1.0), (16, -1.0)):
            step = torch.stack([0.04 * sign * facing, torch.full_like(facing, 0.02)], 1)
            toe = pts[:, ankle] + step * height[:, None]
            pts = torch.cat([pts, toe[:, None]], 1)
            vis = torch.cat([vis, vis[:, ankle, None]], 1)
        # crop pixels per image pixel (1 where the pipeline does not say)
        scale = (batch.scale.to(dev) if batch.scale is not None
                 else torch.ones(n, device=dev))[:, None, None]

        def half_width(fraction: float, least: float = MIN_HALF_WIDTH) -> torch.Tensor:
            """(N, 1, 1) a part's half width in crop pixels: ``fraction`` of the height, at
            least ``least`` image pixels."""
            return torch.maximum(fraction * height[:, None, None], least * scale)

        grid = self.grid.to(dev)
        h, w = self.imsize
        far = torch.full((n, h, w), 1e4, device=dev)
        dist = [far.clone() for _ in range(len(PART_CAPSULES) + 1)]
        half = torch.zeros(n, len(dist), 1, 1, device=dev)
        joined = torch.zeros_like(vis)  # a visible joint that some drawn capsule ends at
        for part, capsules in PART_CAPSULES.items():
            for (a, b), hw in capsules:
                ok = vis[:, a] & vis[:, b]
                if not ok.any():
                    continue
                joined[:, a] |= ok
                joined[:, b] |= ok
                d = _segment_distance(grid, pts[:, a], pts[:, b]) - half_width(hw)
                dist[part] = torch.minimum(dist[part], torch.where(ok[:, None, None], d, far))
            half[:, part] = capsules[0][1]
        # a visible joint whose neighbours are all hidden (an elbow with its shoulder and wrist
        # out of view) still gets its part: a disc of the part's half width
        for part, joints in JOINT_PARTS.items():
            for j in joints:
                lone = vis[:, j] & ~joined[:, j]
                if lone.any():
                    d = (_length(grid[None] - pts[:, j, :, None, None])
                         - half_width(PART_CAPSULES[part][0][1]))
                    dist[part] = torch.minimum(dist[part], torch.where(lone[:, None, None], d, far))
        # the head: an upright ellipse (distances measured with x stretched to make it a disc
        # of radius r), and the neck (to the head centre), both skin
        r = half_width(HEAD_RADIUS)
        a = half_width(HEAD_HALF_WIDTH)
        off = grid[None] - head[:, :, None, None]
        disc = _length(torch.stack([off[:, 0] * (r / a), off[:, 1]], 1)) - r
        neck = _segment_distance(grid, pts[:, 17], head) - half_width(NECK_HALF_WIDTH, 0.5)
        neck = torch.where((vis[:, 17] & head_ok)[:, None, None], neck, far)
        dist[HEAD] = torch.where(head_ok[:, None, None], torch.minimum(disc, neck), far)
        dist = torch.stack(dist, 1)
        is_limb = torch.tensor([p in (UPPER_ARM, FOREARM, LEG) for p in range(len(half[0]))],
                               device=dev)[None, :, None, None]
        # hair: the whole head seen from behind (no eye visible), else above the face (whose
        # top is half-way between the eyes and the crown)
        front = vis[:, 1] | vis[:, 2]
        dy = grid[1][None] - head[:, 1, None, None]
        top = torch.sigmoid(-(dy + 0.5 * r) / SOFT)
        hair = torch.where(front[:, None, None], top, torch.ones_like(top))[:, None]
        eye_r = (0.15 * r).clamp_min(0.6)
        eyes = torch.zeros(n, h, w, device=dev)
        for k in (1, 2):
            e = torch.sigmoid((eye_r - _length(grid[None] - pts[:, k, :, None, None])) / SOFT)
            eyes = torch.maximum(eyes, torch.where(vis[:, k, None, None], e, torch.zeros_like(e)))
        m0 = head + torch.stack([-0.35 * a[:, 0, 0], 0.6 * r[:, 0, 0]], 1)
        m1 = head + torch.stack([0.35 * a[:, 0, 0], 0.6 * r[:, 0, 0]], 1)
        md = _segment_distance(grid, m0, m1)
        mouth = torch.sigmoid(((0.05 * r).clamp_min(0.5) - md) / SOFT)
        mouth = torch.where((front & head_ok)[:, None, None], mouth, torch.zeros_like(mouth))
        return {"dist": dist, "half": half, "is_limb": is_limb,
                "height": height[:, None, None, None], "hair": hair,
                "eyes": eyes[:, None], "mouth": mouth[:, None]}

    def _face_layout(self, batch: CropBatch) -> dict[str, torch.Tensor]:
        h, w = self.imsize
        boxes, found = _region_boxes(batch.mask)
        boxes[~found] = torch.tensor([0.0, 0.0, w, h], device=boxes.device)
        cx = ((boxes[:, 0] + boxes[:, 2]) / 2)[:, None, None, None]
        cy = ((boxes[:, 1] + boxes[:, 3]) / 2)[:, None, None, None]
        rx = ((boxes[:, 2] - boxes[:, 0]) / 2 * 0.95).clamp_min(1)[:, None, None, None]
        ry = ((boxes[:, 3] - boxes[:, 1]) / 2).clamp_min(1)[:, None, None, None]
        u = (self.grid[0] - cx) / rx
        v = (self.grid[1] - cy) / ry
        r = torch.sqrt(u * u + v * v + 1e-6)
        eye = sum(torch.exp(-(((u - ex) / 0.1) ** 2 + ((v + 0.05) / 0.07) ** 2))
                  for ex in (-0.35, 0.35))
        mouth = torch.exp(-((v - 0.45) / 0.05) ** 2) * torch.sigmoid((0.3 - u.abs()) * 20)
        return {"alpha": torch.sigmoid((1 - r) * 12), "v": v, "eye": eye, "mouth": mouth}

    def _face(self, layout: dict[str, torch.Tensor], p: torch.Tensor) -> torch.Tensor:
        skin, hair, eyes, mouth = _colours(p)
        eyes = eyes * 0.3
        mouth = 0.3 + 0.4 * mouth * torch.tensor([1.0, 0.4, 0.5], device=p.device)[:, None, None]
        hair_line = p[:, 12, None, None, None]
        h, w = self.imsize
        colour = skin.expand(-1, -1, h, w)
        hair_w = torch.sigmoid(((hair_line - 0.5) * 0.6 - 0.25 - layout["v"]) * 15)
        colour = hair_w * hair + (1 - hair_w) * colour
        eye_w = layout["eye"]
        colour = eye_w * eyes + (1 - eye_w) * colour
        mouth_w = layout["mouth"]
        return mouth_w * mouth + (1 - mouth_w) * colour


def _region_boxes(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 4) float box x0, y0, x1, y1 (pixels, exclusive end) of each crop's generate region
    (``mask`` < 0.5), and (N,) whether it has one (boxes of empty regions are 0)."""
    gen = mask[:, 0] < 0.5
    boxes = torch.zeros(gen.shape[0], 4, device=mask.device)
    for i in range(gen.shape[0]):
        ys, xs = torch.nonzero(gen[i], as_tuple=True)
        if len(ys):
            boxes[i] = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
    return boxes, gen.flatten(1).any(1)


def _segment_distance(grid: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, H, W) distance of every pixel centre of ``grid`` (2, H, W) to segments a-b (N, 2)."""
    a = a[:, :, None, None]
    ab = b[:, :, None, None] - a
    ap = grid[None] - a
    t = ((ap * ab).sum(1) / (ab * ab).sum(1).clamp_min(1e-6)).clamp(0, 1)
    return _length(ap - t[:, None] * ab)


def _rows_matmul(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``x @ m`` one row at a time: a person's colours must not depend on how many crops share
    its batch, and a batched matmul sums in another order than one row's (the last bit differs,
    and a pixel one level)."""
    return torch.cat([x[i:i + 1] @ m for i in range(x.shape[0])]) if x.shape[0] else x @ m


def _length(v: torch.Tensor) -> torch.Tensor:
    """Euclidean length of (N, 2, ...) vectors along dim 1.  ``torch.hypot`` of the two
    components: ``Tensor.norm(dim=1)`` on CPU reduces over the strided dim about 150x slower
    (54 vs 0.3 ms for 8 x 2 x 288 x 160), which made it 73 % of body-realistic's time."""
    return torch.hypot(v[:, 0], v[:, 1])


def _figure_height(pts: torch.Tensor, vis: torch.Tensor, mask: torch.Tensor, crop_h: int
                   ) -> torch.Tensor:
    """(N,) the height in pixels of the person a skeleton belongs to, from the demo world's
    proportions: the neck-hip line is 0.30 of it, shoulders 0.24, hips 0.17, ears 0.15; without
    any of them, 85 % of the generate region's height."""
    def length(a: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (pts[:, a] - pts[:, b]).norm(dim=1), vis[:, a] & vis[:, b]

    rows = (mask[:, 0] < 0.5).any(2).float()  # (N, H) rows with a pixel to generate
    idx = torch.arange(rows.shape[1], device=mask.device, dtype=torch.float32)
    extent = torch.where(rows.any(1), (rows * idx).amax(1) - torch.where(
        rows > 0, idx, torch.full_like(idx, 1e9)).amin(1) + 1, torch.full_like(idx[:1], crop_h))
    height = 0.85 * extent
    for (a, b), frac in reversed((((17, 18), 0.30), ((5, 6), 0.24), ((11, 12), 0.17),
                                  ((3, 4), 0.15))):
        d, ok = length(a, b)
        height = torch.where(ok & (d > 1), d / frac, height)
    return height.clamp(4.0, 3.0 * crop_h)


def _head_centre(pts: torch.Tensor, vis: torch.Tensor, height: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 2) the head's centre and (N,) whether there is one: a little above the ears, level
    with the eyes, above the nose, or above the neck on the hip-neck line (the world's
    proportions)."""
    r = HEAD_RADIUS * height[:, None]
    centre = torch.zeros_like(pts[:, 0])
    ok = torch.zeros_like(vis[:, 0])
    neck_up = pts[:, 17] + (pts[:, 17] - pts[:, 18]) * 0.4
    eyes = vis[:, 1] & vis[:, 2]
    candidates = (
        (vis[:, 17] & vis[:, 18], neck_up),
        (vis[:, 0], pts[:, 0] - r * torch.tensor([0.0, 0.3], device=pts.device)),
        (eyes, (pts[:, 1] + pts[:, 2]) / 2),
        (vis[:, 3] & vis[:, 4], (pts[:, 3] + pts[:, 4]) / 2
         - r * torch.tensor([0.0, 0.1], device=pts.device)),
    )
    for cond, c in candidates:  # the last that applies wins: the most direct evidence
        centre = torch.where(cond[:, None], c, centre)
        ok = ok | cond
    return centre, ok


def background_fill(condition: torch.Tensor, mask: torch.Tensor, factor: int = 8) -> torch.Tensor:
    """Colours [0, 1] for the generate region from the kept pixels around it: a normalised
    convolution at 1/``factor`` resolution, upsampled (grey where nothing is kept nearby)."""
    img = (condition + 1) / 2 * mask
    h, w = condition.shape[-2:]
    small = F.avg_pool2d(img, factor, ceil_mode=True)
    weight = F.avg_pool2d(mask, factor, ceil_mode=True)
    for _ in range(3):
        small = F.avg_pool2d(small, 5, stride=1, padding=2)
        weight = F.avg_pool2d(weight, 5, stride=1, padding=2)
    fill = small / weight.clamp_min(1e-4)
    fill = torch.where(weight > 1e-4, fill, torch.full_like(fill, 0.5))
    return F.interpolate(fill, size=(h, w), mode="bilinear", align_corners=False)


_CACHE: dict[tuple[Any, ...], DemoGenerator] = {}


@register("demo")
def build_demo(kind: str, opts: dict[str, Any]) -> DemoGenerator:
    """The demo generator of ``kind``; its weights come from ``opts['generator_seed']`` (0)."""
    key = (kind, int(opts.get("generator_seed", 0)))
    if key not in _CACHE:
        _CACHE[key] = DemoGenerator(kind, seed=key[1]).eval()
    return _CACHE[key]
