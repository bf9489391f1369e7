"""The conditional-generator interface of realistic anonymization, and its registry.

A generator takes a batch of crops (:class:`CropBatch`: the masked crop, the keep/generate mask,
for bodies the undilated person mask, normalised COCO-17 keypoints and the joint map) and a
latent ``w`` per crop, and returns the synthesized crops. Everything around it (crop boxes,
resizing, dilation, truncation, histogram matching, latent optimisation, paste-back) is ours
(:mod:`anonbench.realistic.pipeline`), the same for every generator.

Plugins register a builder ``(kind, options) -> ConditionalGenerator`` under a name in
:data:`GENERATORS`; ``kind`` is ``body``, ``face`` or ``face_hr``. Heavy dependencies are
imported inside the builder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from . import truncation

KINDS = ("body", "face", "face_hr")


class GeneratorUnavailable(RuntimeError):
    """A generator cannot be built here (its package or a checkpoint is missing)."""


@dataclass
class CropBatch:
    """N crops of one generator, as tensors on the generator's device.

    ``condition``: (N, 3, H, W) float in [-1, 1], zero where the mask says generate.
    ``mask``: (N, 1, H, W) float, 1 = keep, 0 = generate.
    ``person``: (N, 1, H, W) float, 1 = the undilated person (bodies; None for faces).
    ``keypoints``: (N, 17, 3) float, x and y in [0, 1] of the crop, v in {0, 1} (bodies).
    ``joint_map``: (N, 1, H, W) long, limb labels 0..6 (bodies).
    ``scale``: (N,) float, crop pixels per image pixel (the crop's height over its box's height
    in the image): how coarse the person is in the image.
    ``cache``: a generator may keep work that does not depend on w here, for the repeated calls
    of latent optimisation on the same batch.
    """

    condition: torch.Tensor
    mask: torch.Tensor
    person: torch.Tensor | None = None
    keypoints: torch.Tensor | None = None
    joint_map: torch.Tensor | None = None
    scale: torch.Tensor | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.condition.shape[0])


class ConditionalGenerator(torch.nn.Module):
    """Base class: a mapping z -> w, a synthesis (crops, w) -> crops, and the latent statistics
    truncation needs. Subclasses set ``kind``, ``imsize`` (H, W), ``z_dim``, ``w_dim`` and
    implement :meth:`map` and :meth:`synthesize`; ``stored_centres`` returns cluster centres
    that come with the generator (None: k-means over sampled latents)."""

    kind: str = "body"
    imsize: tuple[int, int] = (288, 160)
    z_dim: int = 64
    w_dim: int = 512

    def __init__(self) -> None:
        super().__init__()
        self._centres: dict[tuple[int, int], torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")

    def map(self, z: torch.Tensor) -> torch.Tensor:  # (N, z_dim) -> (N, w_dim)
        raise NotImplementedError

    def synthesize(self, batch: CropBatch, w: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1]; differentiable in ``w``. Only the generate region is used."""
        raise NotImplementedError

    def w_avg(self) -> torch.Tensor:
        """The mean latent; default: the mean of 10,000 mapped samples (seeded)."""
        if not hasattr(self, "_w_avg"):
            z = torch.from_numpy(np.random.default_rng(0).standard_normal((10_000, self.z_dim),
                                                                        dtype=np.float32))
            with torch.no_grad():
                self._w_avg = torch.cat([self.map(c.to(self.device)) for c in z.split(2048)]
                                        ).mean(0)
        return self._w_avg

    def stored_centres(self) -> torch.Tensor | None:
        return None

    def w_centres(self, k: int = 512, *, samples_per_centre: int = 8,
                  seed: int = 0) -> torch.Tensor:
        """K cluster centres of mapped latents: the generator's own when it has them, else
        k-means over ``samples_per_centre * k`` latents (seeded; cached)."""
        stored = self.stored_centres()
        if stored is not None:
            return stored
        key = (k, seed)
        if key not in self._centres:
            rng = np.random.default_rng(seed)
            z = torch.from_numpy(rng.standard_normal((samples_per_centre * k, self.z_dim),
                                                     dtype=np.float32))
            with torch.no_grad():
                w = torch.cat([self.map(c.to(self.device)) for c in z.split(4096)]).cpu().numpy()
            self._centres[key] = torch.from_numpy(truncation.kmeans(w, k, seed=seed)
                                                  ).to(self.device)
        return self._centres[key]


GeneratorBuilder = Callable[[str, dict[str, Any]], ConditionalGenerator]

#: Registry: variant option ``generator`` -> builder (kind, variant options) -> generator.
GENERATORS: dict[str, GeneratorBuilder] = {}


def register(name: str) -> Callable[[GeneratorBuilder], GeneratorBuilder]:
    def deco(fn: GeneratorBuilder) -> GeneratorBuilder:
        GENERATORS[name] = fn
        return fn

    return deco


def build_generator(name: str, kind: str, opts: dict[str, Any]) -> ConditionalGenerator:
    if kind not in KINDS:
        raise ValueError(f"unknown generator kind {kind!r} (known: {', '.join(KINDS)})")
    try:
        builder = GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown generator {name!r} (known: {', '.join(sorted(GENERATORS))})"
                         ) from None
    return builder(kind, opts)
