"""Mixed precision and memory format of a training run (model keys ``amp``, ``channels_last``,
``cudnn_benchmark``), the same on a GPU and on the CPU.

* ``amp: bf16``: ``torch.autocast`` with bfloat16 (fp32's exponent range: no loss scaling).
* ``amp: fp16``: ``torch.autocast`` with float16 and a ``torch.amp.GradScaler``, whose state
  travels in the resume checkpoint.
* ``channels_last``: the 4-d weights of the backbone, the RPN and the mask / keypoint heads
  (one-stage: the head), and so their convolutions' outputs, in NHWC; on the CPU, strided 1x1
  convolutions with fewer than 16 input channels stay NCHW (a oneDNN bug, below), and the RoI
  heads' GroupNorms with at most 4 channels per group normalize an NCHW copy (faster, below).
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
        for part in ("backbone", "rpn", "head"):
            if hasattr(model, part):
                getattr(model, part).to(memory_format=torch.channels_last)
        # the mask and keypoint heads' convolutions too: in NCHW on the CPU, the predictor's
        # ConvTranspose2d and the 1x1 mask logits fall back to slow kernels (forward and
        # backward for 16 RoIs of the demo Mask R-CNN: 5.4 and 4.1 ms, in NHWC 2.5 and 1.1 ms;
        # 2-11 % of a demo iteration, timed interleaved). The keypoint loss views its
        # heatmaps (NHWC does not allow it): the keypoint predictor hands them back contiguous.
        heads = getattr(model, "roi_heads", None)
        for part in ("mask_head", "mask_predictor", "keypoint_head", "keypoint_predictor"):
            if getattr(heads, part, None) is not None:
                getattr(heads, part).to(memory_format=torch.channels_last)
        kp = getattr(heads, "keypoint_predictor", None)
        if kp is not None and not getattr(kp, "_anonbench_contiguous", False):
            # once: device_bench prepares the same model again for every row
            kp.register_forward_hook(_contiguous_output)
            kp._anonbench_contiguous = True
        if device.type == "cpu":
            _nchw_strided_1x1(model)
            _nchw_roi_group_norm(heads)
    return model


# oneDNN's strided 1x1 convolution writes past its workspace in backward_weights when the
# source is NHWC and has fewer input channels than the kernel's channel block (16 with AVX-512,
# 8 with AVX2): heap corruption, a segfault or abort in ``loss.backward()`` (oneDNN 3.12 in
# torch 2.14; uxlfoundation/oneDNN#6035, open). In a ResNet below width 0.1875 the first
# downsample shortcut is such a convolution; it runs in NCHW instead.
_ONEDNN_1X1_MIN_CHANNELS = 16


def _nchw_strided_1x1(model: nn.Module) -> None:
    """Keep strided 1x1 convolutions with few input channels in NCHW (weights and input)."""
    for m in model.modules():
        if (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.stride != (1, 1)
                and m.in_channels < _ONEDNN_1X1_MIN_CHANNELS):
            # a 1x1 weight is "contiguous" in both formats: .contiguous() would keep NHWC strides
            m.weight.data = m.weight.data.clone(memory_format=torch.contiguous_format)
            _feed_nchw(m)


# PyTorch's CPU GroupNorm is slow on NHWC input with few channels per group: forward and
# backward of 32 RoIs of 32 channels at 14x14 in 32 groups (the demo mask head's) take 2.8 ms on
# NHWC, 0.5 ms on an NCHW copy of it (0.4 ms on NCHW input; 1 thread, 2-core AMD EPYC Zen 4);
# 64 channels 2.8 / 0.9 ms, 128 channels 3.1 / 2.8 ms. With 8 channels per group the copy costs
# more than it saves (256 channels: 5.0 / 5.9 ms), and so on large maps (2 images of 64 channels
# at 80x128: 6.6 / 7.3 ms): only the RoI heads' narrow groups get the NCHW copy.
_NCHW_GROUP_NORM_MAX_CHANNELS_PER_GROUP = 4


def _nchw_roi_group_norm(roi_heads: nn.Module | None) -> None:
    """Give the RoI heads' GroupNorms with few channels per group an NCHW copy of their input."""
    if roi_heads is None:
        return
    for m in roi_heads.modules():
        if (isinstance(m, nn.GroupNorm)
                and m.num_channels // m.num_groups <= _NCHW_GROUP_NORM_MAX_CHANNELS_PER_GROUP):
            _feed_nchw(m)


def _feed_nchw(module: nn.Module) -> None:
    """Hand ``module`` an NCHW copy of its input; once (``device_bench`` prepares the same
    model again for every row)."""
    if not getattr(module, "_anonbench_nchw", False):
        module.register_forward_pre_hook(_contiguous_input)
        module._anonbench_nchw = True


def _contiguous_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (args[0].contiguous(),) + tuple(args[1:])


def _contiguous_output(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
    return output.contiguous()


def describe(cfg: dict[str, Any]) -> str:
    """``amp=bf16, channels_last`` style summary for the training log's first line."""
    parts = [f"amp={cfg.get('amp', 'off')}"]
    if cfg.get("channels_last"):
        parts.append("channels_last")
    if cfg.get("cudnn_benchmark"):
        parts.append("cudnn_benchmark")
    return ", ".join(parts)
