"""Post-processing of synthesized crops: histogram matching (HM) and latent optimisation (HM-LO).

HM (the study's definition): ``skimage.exposure.match_histograms`` of the synthesized crop to the
original crop, per RGB channel, blended in with the person mask blurred by a 19 x 19 Gaussian of
sigma 9. DeepPrivacy2's code differs: one joint histogram over the channels and sigma 10
(``joint``, ``sigma``).

HM-LO: Adam on the latent w; loss = W1(S) + W1(V), the 1-Wasserstein distances between soft
histograms of the HSV saturation and value of the original crop and of the synthesis; at most 100
steps, stopping when the loss falls below 0.02. W1 is measured on values in [0, 1]
(``sum |CDF_a - CDF_b| * bin width``), so 0.02 is a mean shift of 2 % of the range.

Privacy: the reference is always the crop's *kept* pixels (those the generator may see), never the
pixels being replaced; DeepPrivacy2 uses the whole original crop, which leaks the replaced pixels'
colour statistics into the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
import torch
from skimage.exposure import match_histograms

HM_KERNEL = 19
HM_SIGMA = 9.0
LO_STEPS = 100
LO_THRESHOLD = 0.02
LO_LR = 1e-3
BINS = 256


# ---------------------------------------------------------------------------------------------
# HM


def histogram_match(image: np.ndarray, reference: np.ndarray, *, joint: bool = False
                    ) -> np.ndarray:
    """``image`` (H, W, 3) matched to the colour distribution of ``reference`` pixels (K, 3):
    per channel, or one histogram over all channels (``joint``). Returns float (H, W, 3)."""
    ref = np.asarray(reference).reshape(-1, 1, 3)
    if joint:
        out = match_histograms(image, ref, channel_axis=None)
    else:
        out = match_histograms(image, ref, channel_axis=-1)
    return np.asarray(out, np.float32)


def blend_weights(person: np.ndarray, *, sigma: float = HM_SIGMA, kernel: int = HM_KERNEL
                  ) -> np.ndarray:
    """The person mask (bool H x W) blurred by a ``kernel``-square Gaussian, scaled to max 1."""
    g = cv2.GaussianBlur(person.astype(np.float32), (kernel, kernel), sigmaX=sigma, sigmaY=sigma,
                         borderType=cv2.BORDER_CONSTANT)
    top = float(g.max())
    return g / top if top > 0 else g


def apply_hm(synth: np.ndarray, reference: np.ndarray, person: np.ndarray, *, joint: bool = False,
             sigma: float = HM_SIGMA) -> np.ndarray:
    """``w * HM(synth) + (1 - w) * synth`` with ``w`` the blurred person mask (float [0, 255])."""
    if len(reference) == 0:
        return synth
    src = np.clip(np.round(synth), 0, 255).astype(np.uint8)
    matched = histogram_match(src, reference, joint=joint)
    wgt = blend_weights(person, sigma=sigma)[..., None]
    return wgt * matched + (1 - wgt) * synth


# ---------------------------------------------------------------------------------------------
# HM-LO


def rgb_to_sv(rgb: torch.Tensor, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """HSV saturation and value of (N, 3, H, W) RGB in [0, 1]; differentiable."""
    v = rgb.max(dim=1).values
    lo = rgb.min(dim=1).values
    s = (v - lo) / (v + eps)
    return s, v


def soft_histogram(values: torch.Tensor, weights: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """(N, bins) normalised histograms of ``values`` (N, P) in [0, 1] with linear binning: each
    value splits its weight between its two nearest bin centres (differentiable in values)."""
    pos = values.clamp(0, 1) * (bins - 1)
    i0 = pos.detach().floor().clamp(0, bins - 2).long()
    frac = pos - i0
    hist = torch.zeros(values.shape[0], bins, dtype=values.dtype, device=values.device)
    hist = hist.scatter_add(1, i0, (1 - frac) * weights)
    hist = hist.scatter_add(1, i0 + 1, frac * weights)
    return hist / hist.sum(1, keepdim=True).clamp_min(1e-12)


def wasserstein1(hist_a: torch.Tensor, hist_b: torch.Tensor) -> torch.Tensor:
    """(N,) W1 distances between normalised histograms on [0, 1]."""
    bins = hist_a.shape[1]
    return (hist_a.cumsum(1) - hist_b.cumsum(1)).abs().sum(1) / (bins - 1)


def sv_histograms(rgb: torch.Tensor, weights: torch.Tensor, bins: int = BINS
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    s, v = rgb_to_sv(rgb)
    wf = weights.flatten(1)
    return soft_histogram(s.flatten(1), wf, bins), soft_histogram(v.flatten(1), wf, bins)


def hmlo_loss(fake_rgb: torch.Tensor, fake_weights: torch.Tensor,
              real_hists: tuple[torch.Tensor, torch.Tensor], bins: int = BINS) -> torch.Tensor:
    """(N,) W1(S) + W1(V) of the synthesis (weighted pixels) against reference histograms."""
    fs, fv = sv_histograms(fake_rgb, fake_weights, bins)
    return wasserstein1(real_hists[0], fs) + wasserstein1(real_hists[1], fv)


@dataclass
class LOResult:
    w: torch.Tensor           # (N, w_dim) the latents of the returned synthesis
    synthesis: torch.Tensor   # (N, 3, H, W) in [-1, 1], detached
    losses: list[list[float]]  # per crop, the loss at each evaluated step
    steps: list[int]          # per crop, the number of Adam steps taken


def optimise_latent(render: Callable[[torch.Tensor], torch.Tensor], w0: torch.Tensor,
                    real_rgb: torch.Tensor, real_weights: torch.Tensor,
                    fake_weights: torch.Tensor, *, steps: int = LO_STEPS,
                    threshold: float = LO_THRESHOLD, lr: float = LO_LR, bins: int = BINS
                    ) -> LOResult:
    """HM-LO: Adam on ``w`` to bring the S and V histograms of ``render(w)`` (N, 3, H, W in
    [-1, 1], the composed synthesis) to those of ``real_rgb`` (N, 3, H, W in [0, 1], weighted
    by ``real_weights``: the kept pixels). Each crop stops on its own when its loss falls below
    ``threshold``; the returned synthesis is the one its last loss was measured on."""
    with torch.no_grad():
        real = sv_histograms(real_rgb, real_weights, bins)
    w = w0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    n = w.shape[0]
    active = torch.ones(n, dtype=torch.bool, device=w.device)
    out_w = w0.detach().clone()
    out_x: torch.Tensor | None = None
    losses: list[list[float]] = [[] for _ in range(n)]
    taken = [0] * n
    with torch.enable_grad():
        for step in range(steps + 1):
            x = render(w)
            loss = hmlo_loss((x + 1) / 2, fake_weights, real, bins)
            if out_x is None:
                out_x = x.detach().clone()
            for i in torch.nonzero(active).flatten().tolist():
                losses[i].append(float(loss[i].detach()))
                out_x[i] = x[i].detach()
                out_w[i] = w[i].detach()
                taken[i] = step
            active = active & (loss.detach() >= threshold)
            if step == steps or not active.any():
                break
            opt.zero_grad()
            (loss * active.to(loss.dtype)).sum().backward()
            w.grad[~active] = 0
            opt.step()
    return LOResult(out_w, out_x, losses, taken)
