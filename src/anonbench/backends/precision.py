"""Mixed precision and memory format of a training run (model keys ``amp``, ``channels_last``,
``cudnn_benchmark``), the same on a GPU and on the CPU.

* ``amp: bf16``: ``torch.autocast`` with bfloat16 (fp32's exponent range: no loss scaling).
* ``amp: fp16``: ``torch.autocast`` with float16 and a ``torch.amp.GradScaler``, whose state
  travels in the resume checkpoint.
* ``channels_last``: the backbone's and RPN's (one-stage: the head's) 4-d weights, and so
  their convolutions' outputs, in NHWC.
* ``cudnn_benchmark``: cuDNN picks conv algorithms by timing them (per input shape; GPU only).

Losses are summed and checked in fp32 either way; autocast keeps reductions in fp32.
"""

from __future__ import annotations

import contextlib
from typing import Any, ContextManager

import torch
from torch import nn

from .torchvision_config import AMP_MODES


def autocast(device: torch.device, amp: str) -> ContextManager[Any]:
    """The autocast context of ``amp`` on ``device`` (a no-op context for ``off``)."""
    dtype, _ = AMP_MODES[amp]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, dtype))


def grad_scaler(device: torch.device, amp: str) -> torch.amp.GradScaler | None:
    """A GradScaler where ``amp`` needs one (fp16), else None."""
    if not AMP_MODES[amp][1]:
        return None
    return torch.amp.GradScaler(device.type)


def prepare_model(model: nn.Module, device: torch.device, cfg: dict[str, Any]) -> nn.Module:
    """Move ``model`` to ``device`` in the configured memory format; set cuDNN autotuning."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(cfg.get("cudnn_benchmark", False))
    model.to(device)
    if cfg.get("channels_last"):
        # the backbone and the RPN hold nearly all the convolution work; the RoI heads stay
        # NCHW (torchvision's keypoint loss views its heatmaps, which NHWC does not allow)
        for part in ("backbone", "rpn", "head"):
            if hasattr(model, part):
                getattr(model, part).to(memory_format=torch.channels_last)
    return model


def describe(cfg: dict[str, Any]) -> str:
    """``amp=bf16, channels_last`` style summary for the training log's first line."""
    parts = [f"amp={cfg.get('amp', 'off')}"]
    if cfg.get("channels_last"):
        parts.append("channels_last")
    if cfg.get("cudnn_benchmark"):
        parts.append("cudnn_benchmark")
    return ", ".join(parts)
