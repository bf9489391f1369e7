"""What the face detectors and pose estimators share: errors, device choice, batching."""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np


class AnnotatorUnavailable(RuntimeError):
    """A model cannot run here: its package or its weights are missing. The message says what
    to install or where to put the weights."""


def torch_device(opts: dict[str, Any]) -> str:
    """``device`` option: ``auto`` (default: cuda when torch sees a GPU), ``cpu`` or ``cuda``."""
    device = opts.get("device", "auto")
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def batches_by_shape(images: Sequence[np.ndarray], batch_size: int,
                     key=lambda im: im.shape) -> Iterator[list[int]]:
    """Indices of ``images`` in batches of at most ``batch_size`` whose ``key`` is equal
    (models that stack a batch need one size per batch). Order within a key is kept."""
    groups: dict[Any, list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault(key(im), []).append(i)
    for idx in groups.values():
        for s in range(0, len(idx), max(1, batch_size)):
            yield idx[s:s + max(1, batch_size)]
