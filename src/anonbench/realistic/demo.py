"""The ``demo`` generator: a small, untrained, seeded stand-in for DeepPrivacy2 in the demo world.

Same interface as the real generators, so truncation, HM and HM-LO run on it. A fixed random
mapping network turns z into w; a fixed random linear map turns w into appearance parameters
(colours of skin, hair, shirt, trousers, sleeves, shading); the synthesis draws them softly:

* bodies: the person's silhouette (the undilated mask the generator is given), coloured per body
  part by the nearest limb of the keypoint skeleton (softmin over distances to the limb segments;
  a vertical torso/legs split when no keypoint is visible); the rest of the generate region is
  filled from the kept pixels around it (normalised convolution at low resolution).
* faces: a skin ellipse in the generate box, hair on top, two eyes and a mouth.

Everything is differentiable in w. No weights are trained or downloaded.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .base import ConditionalGenerator, CropBatch, register
from .crops import BODY_SIZE, FACE_HR_SIZE, FACE_SIZE

# Body parts (index into the part colour list) and their limb segments (COCO-17 indices;
# 17 = neck, 18 = mid hip).
HEAD, TORSO, UPPER_ARM, FOREARM, LEG = range(5)
PART_SEGMENTS = {
    HEAD: [(0, 1), (0, 2), (1, 3), (2, 4), (0, 17), (1, 2)],
    TORSO: [(5, 6), (5, 11), (6, 12), (11, 12), (17, 18)],
    UPPER_ARM: [(5, 7), (6, 8)],
    FOREARM: [(7, 9), (8, 10)],
    LEG: [(11, 13), (13, 15), (12, 14), (14, 16)],
}
BODY_PARAMS = 3 * 4 + 2   # skin, hair, shirt, trousers; sleeve length, shading
FACE_PARAMS = 3 * 4 + 1   # skin, hair, eyes, mouth; hair line
#: Skin colours lie between these two tones (RGB in [0, 1]).
SKIN_LIGHT = (1.0, 0.88, 0.77)
SKIN_DARK = (0.36, 0.23, 0.12)


def _colours(p: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Four (N, 3, 1, 1) colours from the first 12 parameters: a skin tone (tone, brightness),
    a darker hair colour, and two free colours."""
    light = torch.tensor(SKIN_LIGHT, device=p.device)
    dark = torch.tensor(SKIN_DARK, device=p.device)
    tone, bright = p[:, 0:1], p[:, 1:2]
    skin = (light + tone * (dark - light)) * (0.9 + 0.15 * bright)
    hair = p[:, 3:6] * 0.5
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
        self.register_buffer("fc1", _seeded((z_dim, hidden), gen, 1 / math.sqrt(z_dim)))
        self.register_buffer("fc2", _seeded((hidden, w_dim), gen, 1 / math.sqrt(hidden)))
        self.register_buffer("to_params", _seeded((w_dim, n_params), gen, 2.0 / math.sqrt(w_dim)))
        self.register_buffer("param_bias", _seeded((n_params,), gen, 0.5))
        h, w = self.imsize
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32) + 0.5,
                                torch.arange(w, dtype=torch.float32) + 0.5, indexing="ij")
        self.register_buffer("grid", torch.stack([xs, ys]))  # (2, H, W) pixel centres
        # a fixed fine texture so that surfaces are not flat
        self.register_buffer("texture", _seeded((1, 1, h, w), gen, 0.03))

    # -- latent ------------------------------------------------------------------------------
    def map(self, z: torch.Tensor) -> torch.Tensor:
        z = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        return F.leaky_relu(z @ self.fc1, 0.2) @ self.fc2

    def params(self, w: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(w @ self.to_params + self.param_bias)

    # -- synthesis ---------------------------------------------------------------------------
    def synthesize(self, batch: CropBatch, w: torch.Tensor) -> torch.Tensor:
        key = f"demo-{self.kind}"
        if key not in batch.cache:  # everything that does not depend on w, once per batch
            batch.cache[key] = self._layout(batch)
        layout = batch.cache[key]
        p = self.params(w)
        colour = self._body(layout, p) if self.kind == "body" else self._face(layout, p)
        colour = colour * (1 + self.texture)
        alpha = layout["alpha"]
        x = alpha * colour + (1 - alpha) * layout["fill"]
        return (x * 2 - 1).clamp(-1, 1)

    def _layout(self, batch: CropBatch) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            out = {"fill": background_fill(batch.condition, batch.mask)}
            if self.kind == "body":
                n = len(batch)
                person = batch.person if batch.person is not None else 1 - batch.mask
                out["alpha"] = F.avg_pool2d(person, 3, stride=1, padding=1,
                                            count_include_pad=False)
                kp = batch.keypoints if batch.keypoints is not None else torch.zeros(n, 17, 3)
                kp = kp.to(person.device)
                # part weights from the skeleton, at half resolution
                dist = self._part_distances(kp, scale=2)
                weight = torch.softmax(-dist / 1.5, dim=1)
                out["weight"] = F.interpolate(weight, size=self.imsize, mode="bilinear",
                                              align_corners=False)
                top = self._head_centre_y(kp)
                out["hair"] = out["weight"][:, HEAD:HEAD + 1] * torch.sigmoid(
                    (top - self.grid[1]) / 2.0)
            else:
                out.update(self._face_layout(batch))
        return out

    def _body(self, layout: dict[str, torch.Tensor], p: torch.Tensor) -> torch.Tensor:
        skin, hair, shirt, trousers = _colours(p)
        trousers = trousers * 0.85
        sleeve, shade = p[:, 12, None, None, None], p[:, 13, None, None, None]
        forearm = sleeve * shirt + (1 - sleeve) * skin
        parts = torch.stack([skin, shirt, shirt, forearm, trousers], dim=1)  # (N, 5, 3, 1, 1)
        colour = (layout["weight"][:, :, None] * parts).sum(1)
        colour = layout["hair"] * hair + (1 - layout["hair"]) * colour
        y = self.grid[1] / self.imsize[0]
        return colour * (1 - 0.4 * (shade - 0.5) * (y - 0.5))

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

    def _head_centre_y(self, kp: torch.Tensor) -> torch.Tensor:
        pts, vis = self._points(kp)
        face = vis[:, :5].float()
        y = (pts[:, :5, 1] * face).sum(1) / face.sum(1).clamp_min(1)
        y = torch.where(face.sum(1) > 0, y, torch.full_like(y, 0.08 * self.imsize[0]))
        return y[:, None, None, None]

    def _part_distances(self, kp: torch.Tensor, scale: int = 1) -> torch.Tensor:
        """(N, 5, H / scale, W / scale) distance (in units of ``scale`` pixels) of each pixel to
        each body part's skeleton segments."""
        n = kp.shape[0]
        h, w = self.imsize[0] // scale, self.imsize[1] // scale
        pts, vis = self._points(kp)
        pts = pts / scale
        big = torch.tensor(1e4, device=kp.device)
        grid = F.avg_pool2d(self.grid[None], scale)[0].to(kp.device) / scale
        out = torch.full((n, 5, h, w), 1e4, device=kp.device)
        for part, segs in PART_SEGMENTS.items():
            for a, b in segs:
                ok = vis[:, a] & vis[:, b]
                if not ok.any():
                    continue
                d = _segment_distance(grid, pts[:, a], pts[:, b])
                out[:, part] = torch.minimum(out[:, part], torch.where(ok[:, None, None], d, big))
        # no visible keypoint at all: head on top, torso, legs below
        none = ~vis[:, :17].any(1)
        if none.any():
            y = grid[1] / h
            fallback = torch.stack([(y - 0.08).abs(), (y - 0.35).abs(), (y - 0.35).abs() + 0.1,
                                    (y - 0.45).abs() + 0.1, (y - 0.78).abs()]) * h
            out[none] = fallback.expand(int(none.sum()), -1, -1, -1)
        return out

    def _face_layout(self, batch: CropBatch) -> dict[str, torch.Tensor]:
        gen = (batch.mask < 0.5)[:, 0]
        n = gen.shape[0]
        h, w = self.imsize
        boxes = torch.zeros(n, 4, device=gen.device)
        for i in range(n):
            ys, xs = torch.nonzero(gen[i], as_tuple=True)
            if len(ys) == 0:
                boxes[i] = torch.tensor([0, 0, w, h], dtype=torch.float32)
            else:
                boxes[i] = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
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


def _segment_distance(grid: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, H, W) distance of every pixel centre of ``grid`` (2, H, W) to segments a-b (N, 2)."""
    a = a[:, :, None, None]
    ab = b[:, :, None, None] - a
    ap = grid[None] - a
    t = ((ap * ab).sum(1) / (ab * ab).sum(1).clamp_min(1e-6)).clamp(0, 1)
    return (ap - t[:, None] * ab).norm(dim=1)


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
