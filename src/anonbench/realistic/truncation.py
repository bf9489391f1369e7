"""Latent truncation: none, unimodal (towards the mean latent) and multi-modal (towards one of K
cluster centres of sampled latents), and the small k-means that finds those centres when a
generator has none stored.

With truncation value ``t`` (0..1): ``none`` keeps ``w``; ``unimodal`` gives
``w_avg + t (w - w_avg)``; ``multimodal`` gives ``c + t (w - c)`` for a centre ``c`` drawn per
person. The study's default is multi-modal with t = 0 (the person gets one of the K centres).
"""

from __future__ import annotations

import numpy as np
import torch

TRUNCATIONS = ("none", "unimodal", "multimodal")


def truncate(w: torch.Tensor, mode: str, value: float = 0.0, *, w_avg: torch.Tensor | None = None,
             centres: torch.Tensor | None = None, index: torch.Tensor | None = None) -> torch.Tensor:
    """Truncated latents (N, w_dim); ``index`` (N,) picks each row's centre (multimodal)."""
    t = float(min(max(value, 0.0), 1.0))
    if mode == "none":
        return w
    if mode == "unimodal":
        if w_avg is None:
            raise ValueError("unimodal truncation needs w_avg")
        return w_avg.to(w) + t * (w - w_avg.to(w))
    if mode == "multimodal":
        if centres is None or index is None:
            raise ValueError("multimodal truncation needs centres and an index per latent")
        c = centres.to(w)[index.to(w.device)]
        return c + t * (w - c)
    raise ValueError(f"unknown truncation {mode!r} (known: {', '.join(TRUNCATIONS)})")


def kmeans(x: np.ndarray, k: int, *, iterations: int = 25, seed: int = 0) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding; returns (k, d) float32 centres.

    Deterministic for a given ``seed``. Empty clusters keep their previous centre.
    """
    x = np.asarray(x, np.float32)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k-means: need 1 <= k <= n samples, got k={k}, n={n}")
    rng = np.random.default_rng(seed)
    sq = (x * x).sum(1)
    centres = np.empty((k, x.shape[1]), np.float32)
    centres[0] = x[rng.integers(n)]
    d2 = np.maximum(sq - 2 * x @ centres[0] + centres[0] @ centres[0], 0)
    for i in range(1, k):
        total = d2.sum()
        j = min(int(np.searchsorted(np.cumsum(d2), rng.random() * total)), n - 1) \
            if total > 0 else int(rng.integers(n))
        centres[i] = x[j]
        d2 = np.minimum(d2, np.maximum(sq - 2 * x @ centres[i] + centres[i] @ centres[i], 0))
    for _ in range(iterations):
        dist = sq[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None]
        label = dist.argmin(1)
        counts = np.bincount(label, minlength=k)
        sums = np.zeros_like(centres)
        np.add.at(sums, label, x)
        new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
        if np.allclose(new, centres, rtol=0, atol=1e-6):
            centres = new
            break
        centres = new
    return centres.astype(np.float32)
