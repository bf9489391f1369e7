"""Mask R-CNN / Keypoint R-CNN / RetinaNet / FCOS training and inference with plain torchvision.

The model is composed from torchvision parts: a ResNet body built from torchvision's
``BasicBlock``/``Bottleneck`` with a channel-width multiplier, wrapped in ``BackboneWithFPN``,
under torchvision's ``MaskRCNN``/``KeypointRCNN`` with configurable (smaller) heads, or under
the one-stage ``RetinaNet``/``FCOS`` (``arch: retinanet | fcos``; boxes only).  With
``depth: 50, width: 1.0, fpn_channels: 256`` and the default head settings this is torchvision's
R-50-FPN Mask/Keypoint R-CNN; the one-stage models follow torchvision's ``retinanet_resnet50_fpn``
and ``fcos_resnet50_fpn``: FPN on C3..C5 plus P6/P7 from P5 (``LastLevelP6P7``).  The ``demo``
preset (``DEMO_CONFIG``) is a much smaller model sized so that one training + validation
prediction takes about a minute on one CPU core (``demo_onestage``: the same with smaller
anchors, for RetinaNet/FCOS).

``pretrained: true`` loads torchvision's ImageNet ResNet weights from ``$ANONBENCH_WEIGHTS`` or
torch's hub cache (``$TORCH_HOME/hub/checkpoints/resnet<depth>-<hash>.pth``; the rule of
:mod:`anonbench.weights`), downloading them when missing and possible; otherwise :func:`train`
stops before it reads any data, naming the file and where to put it.

Model config keys (``models.<name>`` in config.yaml) and their defaults are in ``DEFAULTS``;
``preset: demo`` starts from ``DEMO_CONFIG`` instead.  Unknown keys are an error (typos would
otherwise silently fall back to a default).

Determinism: everything random comes from ``seed`` (torch generator state inside
``torch.random.fork_rng``; a ``numpy.random.Generator`` for data order and flips); with the same
seed and thread count a CPU run is bit-for-bit repeatable.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import cv2
import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.models.detection import FCOS, KeypointRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection import roi_heads as tv_roi_heads
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.fcos import (
    FCOSClassificationHead,
    FCOSHead,
    FCOSRegressionHead,
)
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign, roi_align
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from ..manifest import (
    Manifest,
    annotation_mask,
    encode_mask,
    image_path,
    iter_images,
    load_manifest,
)
from .categories import select_categories
from .precision import autocast, describe, grad_scaler, prepare_model
from .runtime import (
    Checkpointing,
    TrainingInterrupted,
    load_resume,
    log_lines_until,
    read_model_checkpoint,
    remove_resume,
    resolve_device,
    resume_key,
    resume_path,
    rng_state,
    save_checkpoint,
    save_resume,
    set_rng_state,
    torch_threads,
    walltime_deadline,
)
from .torchvision_config import (  # noqa: F401  (re-exported)
    _ARCHS,
    _META_KEYS,
    DEFAULTS,
    DEMO_CONFIG,
    DEMO_ONESTAGE_CONFIG,
    ONE_STAGE,
    PRESETS,
    PRETRAINED_URL,
    UNUSED_KEYS,
    pretrained_file,
    resolve_config,
)

CHECKPOINT_FORMAT = "anonbench-torchvision-v1"

_DEPTHS: dict[int, tuple[type[nn.Module], list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}
_COCO_KEYPOINTS = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
]


# --------------------------------------------------------------------------------------------
# model


def _channels(c: float) -> int:
    return max(8, int(round(c / 8.0)) * 8)


def _norm_layer(kind: str) -> Callable[[int], nn.Module]:
    if kind == "bn":
        return nn.BatchNorm2d
    if kind == "frozen_bn":
        return FrozenBatchNorm2d
    if kind == "gn":
        def gn(c: int) -> nn.Module:
            groups = 32
            while c % groups:
                groups //= 2
            return nn.GroupNorm(groups, c)
        return gn
    raise ValueError(f"unknown norm {kind!r}")


class ResNetBody(nn.Module):
    """A ResNet without the classifier, built from torchvision's blocks, with a width multiplier.

    Attribute names follow ``torchvision.models.ResNet`` (conv1, bn1, layer1..layer4), so
    ImageNet state dicts load into it at width 1.0.
    """

    def __init__(self, depth: int, width: float = 1.0, norm_layer: Callable[[int], nn.Module] =
                 nn.BatchNorm2d, zero_init_residual: bool = False) -> None:
        super().__init__()
        block, layers = _DEPTHS[depth]
        self.inplanes = _channels(64 * width)
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.stage_channels: list[int] = []
        for i, n in enumerate(layers):
            planes = _channels(64 * 2**i * width)
            setattr(self, f"layer{i + 1}", self._make_layer(block, planes, n, 1 if i == 0 else 2,
                                                            norm_layer))
            self.stage_channels.append(planes * block.expansion)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                last = getattr(m, "bn3", None) if isinstance(m, Bottleneck) else (
                    getattr(m, "bn2", None) if isinstance(m, BasicBlock) else None)
                if last is not None and getattr(last, "weight", None) is not None:
                    nn.init.constant_(last.weight, 0)

    def _make_layer(self, block: Any, planes: int, blocks: int, stride: int,
                    norm_layer: Callable[[int], nn.Module]) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                norm_layer(planes * block.expansion),
            )
        mods = [block(self.inplanes, planes, stride, downsample, norm_layer=norm_layer)]
        self.inplanes = planes * block.expansion
        mods += [block(self.inplanes, planes, norm_layer=norm_layer) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - not used by FPN
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _checkpoints_dir() -> str:
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def _pretrained_error(depth: int, path: str, e: BaseException) -> RuntimeError:
    from .. import weights

    fname = os.path.basename(path)
    why = ("; ".join(e.attempts) if isinstance(e, weights.FetchError)
           else f"{type(e).__name__}: {e}")
    return RuntimeError(
        f"pretrained: true needs the ImageNet ResNet-{depth} weights {fname}, "
        f"but {path} could not be loaded or downloaded ({PRETRAINED_URL}{fname}): {why}. "
        f"{weights.missing_message(weights.torchvision_file(depth), path)}. Without internet "
        f"access either put {fname} into {os.path.dirname(path)} ($TORCH_HOME/hub/checkpoints "
        f"or ${weights.ENV}) or set `pretrained: false` in the model config (train from scratch)."
    )


def fetch_pretrained(model_cfg: dict[str, Any]) -> str | None:
    """Path of the ImageNet weights a config needs, in torch's hub cache; None if none needed.

    A missing file is downloaded when possible; otherwise ``RuntimeError`` says which file to
    put where (or to set ``pretrained: false``).  :func:`train` calls this first, so that a job
    without the weights fails before it reads any data.
    """
    cfg = resolve_config(model_cfg)
    if not cfg["pretrained"]:
        return None
    from .. import weights

    entry = weights.torchvision_file(cfg["depth"])
    path = str(weights.location(entry))   # $ANONBENCH_WEIGHTS or $TORCH_HOME/hub/checkpoints
    if os.path.isfile(path):
        return path
    try:
        weights.download_for_loader(
            entry, Path(path),
            lambda url, dst: torch.hub.download_url_to_file(url, dst, progress=False))
    except Exception as e:  # FetchError (URLError, HTTPError, read-only cache ...), OSError
        raise _pretrained_error(cfg["depth"], path, e) from e
    return path


def _load_imagenet_weights(body: ResNetBody, depth: int) -> None:
    path = fetch_pretrained({"depth": depth, "pretrained": True})
    assert path is not None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign file
        raise _pretrained_error(depth, path, e) from e
    missing, unexpected = body.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    unexpected = [k for k in unexpected if not k.startswith("fc.")]
    if missing or unexpected:
        raise RuntimeError(f"ImageNet weights do not fit the backbone: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")


def _backbone_checkpoint(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise ValueError(f"backbone_weights: {path}: no such file (a model.pt of the "
                         "torchvision backend)")
    try:
        return read_model_checkpoint(path, CHECKPOINT_FORMAT, "torchvision")
    except ValueError as e:
        raise ValueError(f"backbone_weights: {e}") from None


def _load_backbone_weights(body: ResNetBody, path: str) -> None:
    """The ResNet body of another model's checkpoint (``backbone_weights``): its FPN and heads
    start anew, as with ImageNet weights."""
    ckpt = _backbone_checkpoint(path)
    prefix = "backbone.body."
    state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        body.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if "\n" in str(e) else str(e)
        first = first if len(first) <= 160 else first[:157] + "..."
        saved = ckpt.get("model_cfg", {})
        raise RuntimeError(
            f"backbone_weights: {path} holds a depth-{saved.get('depth')} width-"
            f"{saved.get('width')} ResNet ({saved.get('norm')} norm), which does not fit this "
            f"model's backbone ({first})"
        ) from None


def build_backbone(cfg: dict[str, Any]) -> BackboneWithFPN:
    """ResNet + FPN: two-stage archs on C2..C5 (+ max-pool level), one-stage archs on C3..C5
    with P6 and P7 from P5, as torchvision's ``retinanet_resnet50_fpn``/``fcos_resnet50_fpn``."""
    body = ResNetBody(cfg["depth"], cfg["width"], _norm_layer(cfg["norm"]),
                      zero_init_residual=cfg["zero_init_residual"] and not cfg["pretrained"]
                      and not cfg.get("backbone_weights"))
    if cfg["pretrained"]:
        _load_imagenet_weights(body, cfg["depth"])
    if cfg.get("backbone_weights"):
        _load_backbone_weights(body, cfg["backbone_weights"])
    train_layers = ["layer4", "layer3", "layer2", "layer1", "conv1"][: cfg["trainable_layers"]]
    if cfg["trainable_layers"] == 5:
        train_layers.append("bn1")
    for name, p in body.named_parameters():
        if not any(name.startswith(layer) for layer in train_layers):
            p.requires_grad_(False)
    fpn_norm = _norm_layer(cfg["fpn_norm"]) if cfg["fpn_norm"] else None
    if cfg["arch"] in ONE_STAGE:
        c = cfg["fpn_channels"]
        return BackboneWithFPN(
            body,
            return_layers={f"layer{i + 1}": str(i - 1) for i in range(1, 4)},
            in_channels_list=body.stage_channels[1:],
            out_channels=c,
            extra_blocks=LastLevelP6P7(c, c),  # in == out channels: P6 from P5
            norm_layer=fpn_norm,
        )
    return BackboneWithFPN(
        body,
        return_layers={f"layer{i + 1}": str(i) for i in range(4)},
        in_channels_list=body.stage_channels,
        out_channels=cfg["fpn_channels"],
        norm_layer=fpn_norm,
    )


def _build_one_stage(cfg: dict[str, Any], backbone: BackboneWithFPN, num_classes: int
                     ) -> nn.Module:
    """torchvision's RetinaNet / FCOS on P3..P7; ``num_classes`` includes background (which
    RetinaNet/FCOS do not use: they get ``num_classes`` logits, label 0 is never a target)."""
    c = cfg["fpn_channels"]
    common = dict(
        min_size=tuple(cfg["min_size"]) if isinstance(cfg["min_size"], list) else cfg["min_size"],
        max_size=cfg["max_size"],
        score_thresh=cfg["box_score_thresh"],
        nms_thresh=cfg["box_nms_thresh"],
        detections_per_img=cfg["box_detections_per_img"],
        topk_candidates=cfg["topk_candidates"],
    )
    if cfg["arch"] == "retinanet":
        n = int(cfg["octave_scales"])
        sizes = tuple(tuple(int(s * 2 ** (i / n)) for i in range(n)) for s in cfg["anchor_sizes"])
        anchors = AnchorGenerator(
            sizes, (tuple(float(a) for a in cfg["aspect_ratios"]),) * len(sizes))
        head = RetinaNetHead(c, anchors.num_anchors_per_location()[0], num_classes,
                             norm_layer=_norm_layer("gn") if cfg["head_norm"] == "gn" else None)
        return RetinaNet(backbone, num_classes, anchor_generator=anchors, head=head,
                         fg_iou_thresh=cfg["fg_iou_thresh"], bg_iou_thresh=cfg["bg_iou_thresh"],
                         **common)
    # FCOS: one location per stride of P3..P7, as torchvision's default anchor generator
    anchors = AnchorGenerator(((8,), (16,), (32,), (64,), (128,)), ((1.0,),) * 5)
    head = FCOSHead(c, 1, num_classes, num_convs=0)  # placeholders, replaced below
    gn = _norm_layer("gn")  # GroupNorm(32) as torchvision's, fewer groups for narrow FPNs
    head.classification_head = FCOSClassificationHead(c, 1, num_classes, 4, norm_layer=gn)
    head.regression_head = FCOSRegressionHead(c, 1, 4, norm_layer=gn)
    return FCOS(backbone, num_classes, anchor_generator=anchors, head=head,
                center_sampling_radius=cfg["center_sampling_radius"], **common)


class _SameSizeTransform(GeneralizedRCNNTransform):
    """torchvision's transform, except that an image already at its target size is not
    resized: torchvision interpolates it (and every instance mask) at scale 1.0, which copies
    the pixels exactly (the demo Mask R-CNN's batch: 1.4 ms of transform, 0.25 ms without the
    copy, in a 60 ms training step on 2 threads). Training still draws the
    size from torch's random stream, as torchvision does, so the same seed gives the same model."""

    @classmethod
    def like(cls, t: GeneralizedRCNNTransform) -> "_SameSizeTransform":
        return cls(t.min_size, t.max_size, t.image_mean, t.image_std,
                   size_divisible=t.size_divisible, fixed_size=t.fixed_size,
                   _skip_resize=t._skip_resize)

    def resize(self, image: torch.Tensor, target: dict[str, torch.Tensor] | None = None
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        if self.fixed_size is None and len(self.min_size) == 1:
            h, w = image.shape[-2:]
            if min(self.min_size[0] / min(h, w), self.max_size / max(h, w)) == 1.0:
                if self.training and not self._skip_resize:
                    self.torch_choice(self.min_size)
                return image, target
        return super().resize(image, target)


def aligned_mask_targets(gt_masks: torch.Tensor, boxes: torch.Tensor,
                         matched_idxs: torch.Tensor, M: int) -> torch.Tensor:
    """torchvision's ``project_masks_on_boxes`` with RoIAlign ``aligned=True``: the ``M x M``
    mask-head target of each box (``boxes`` in image pixels, pixel ``j`` covering ``[j, j+1)``),
    cut from the ground-truth mask ``gt_masks[matched_idxs]``. This is the grid on which
    ``paste_masks_in_image`` puts a predicted mask back into the image (``mask_targets_aligned``)."""
    rois = torch.cat([matched_idxs.to(boxes)[:, None], boxes], dim=1)
    return roi_align(gt_masks[:, None].to(rois), rois, (M, M), 1.0, aligned=True)[:, 0]


def mask_loss(mask_logits: torch.Tensor, proposals: list[torch.Tensor],
              gt_masks: list[torch.Tensor], gt_labels: list[torch.Tensor],
              mask_matched_idxs: list[torch.Tensor], *, aligned: bool = False,
              dice_weight: float = 0.0) -> torch.Tensor:
    """torchvision's ``maskrcnn_loss`` (per-pixel binary cross-entropy of each positive RoI's
    ``M x M`` mask logits of its class against its target), with the targets of
    :func:`aligned_mask_targets` if ``aligned``, plus ``dice_weight`` times the mean Dice loss
    ``1 - (2 sum(p t) + 1) / (sum(p^2) + sum(t^2) + 1)`` of each RoI (V-Net's form, as CondInst
    and SOLO train their masks). Dice counts a mask's overlap, whatever its size, where the
    cross-entropy is a mean over pixels that a person's interior dominates."""
    size = mask_logits.shape[-1]
    project = aligned_mask_targets if aligned else tv_roi_heads.project_masks_on_boxes
    labels = torch.cat([lab[i] for lab, i in zip(gt_labels, mask_matched_idxs)])
    targets = torch.cat([project(m, p, i, size)
                         for m, p, i in zip(gt_masks, proposals, mask_matched_idxs)])
    if targets.numel() == 0:         # torchvision: no positive RoI in the batch
        return mask_logits.sum() * 0
    logits = mask_logits[torch.arange(labels.shape[0], device=labels.device), labels]
    loss = nn.functional.binary_cross_entropy_with_logits(logits, targets)
    if dice_weight:
        p, t = logits.sigmoid().flatten(1), targets.flatten(1)
        dice = 1 - (2 * (p * t).sum(1) + 1) / ((p * p).sum(1) + (t * t).sum(1) + 1)
        loss = loss + dice_weight * dice.mean()
    return loss


class _MaskLossRoIHeads(tv_roi_heads.RoIHeads):
    """torchvision's RoI heads whose training loss is :func:`mask_loss` with this module's
    ``mask_targets_aligned`` and ``mask_dice_weight`` (plain attributes, not in the state dict).

    torchvision's ``RoIHeads.forward`` calls the module function ``maskrcnn_loss`` and offers no
    argument for it, so it is swapped for the length of this module's forward only (and put back
    on any exit); other torchvision models in the process are unaffected."""

    mask_targets_aligned: bool = False
    mask_dice_weight: float = 0.0

    def forward(self, *args: Any, **kwargs: Any):
        original = tv_roi_heads.maskrcnn_loss
        tv_roi_heads.maskrcnn_loss = functools.partial(
            mask_loss, aligned=self.mask_targets_aligned, dice_weight=self.mask_dice_weight)
        try:
            return super().forward(*args, **kwargs)
        finally:
            tv_roi_heads.maskrcnn_loss = original


class _PixelsAndFeaturesPool(MultiScaleRoIAlign):
    """The mask head's RoI pooling with ``mask_head_pixels``: torchvision's multi-scale RoIAlign
    of the FPN features, and beside it the detector's input batch itself (the transform's
    normalized images, stride 1) cut on the same grid with RoIAlign ``aligned=True``.

    The input batch is what the backbone receives: :meth:`keep_input` is a forward pre-hook on
    the backbone, and the batch is let go once pooled. No parameters of its own."""

    _images: torch.Tensor | None = None

    def keep_input(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._images = args[0]

    def forward(self, x: dict[str, torch.Tensor], boxes: list[torch.Tensor],
                image_shapes: list[tuple[int, int]]) -> torch.Tensor:
        if self._images is None:
            raise RuntimeError("mask_head_pixels: the mask head's pooling ran before the "
                               "backbone saw an input batch")
        images, self._images = self._images, None
        pooled = super().forward(x, boxes, image_shapes)
        pixels = roi_align(images.contiguous(), [b.to(images.dtype) for b in boxes],
                           self.output_size, 1.0, self.sampling_ratio, aligned=True)
        return torch.cat([pooled, pixels.to(pooled.dtype)], dim=1)


def build_model(model_cfg: dict[str, Any], num_classes: int, num_keypoints: int = 17) -> nn.Module:
    """The detector for a (resolved or raw) model config; ``num_classes`` includes background."""
    cfg = resolve_config(model_cfg)
    model = _build_detector(cfg, num_classes, num_keypoints)
    model.transform = _SameSizeTransform.like(model.transform)
    if cfg.get("mask_targets_aligned") or cfg.get("mask_dice_weight"):
        # the same module with the same parameters and state dict, only its loss differs
        model.roi_heads.__class__ = _MaskLossRoIHeads
        model.roi_heads.mask_targets_aligned = bool(cfg.get("mask_targets_aligned"))
        model.roi_heads.mask_dice_weight = float(cfg.get("mask_dice_weight", 0.0))
    return model


def _build_detector(cfg: dict[str, Any], num_classes: int, num_keypoints: int) -> nn.Module:
    backbone = build_backbone(cfg)
    if cfg["arch"] in ONE_STAGE:
        return _build_one_stage(cfg, backbone, num_classes)
    c = cfg["fpn_channels"]
    anchors = AnchorGenerator(
        sizes=tuple((int(s),) for s in cfg["anchor_sizes"]),
        aspect_ratios=(tuple(float(a) for a in cfg["aspect_ratios"]),) * len(cfg["anchor_sizes"]),
    )
    box_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2", "3"], output_size=7,
                                  sampling_ratio=cfg["roi_sampling_ratio"])
    rep = cfg["representation_size"]
    common = dict(
        min_size=tuple(cfg["min_size"]) if isinstance(cfg["min_size"], list) else cfg["min_size"],
        max_size=cfg["max_size"],
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=cfg["rpn_pre_nms_top_n_train"],
        rpn_pre_nms_top_n_test=cfg["rpn_pre_nms_top_n_test"],
        rpn_post_nms_top_n_train=cfg["rpn_post_nms_top_n_train"],
        rpn_post_nms_top_n_test=cfg["rpn_post_nms_top_n_test"],
        rpn_batch_size_per_image=cfg["rpn_batch_size_per_image"],
        box_roi_pool=box_pool,
        box_head=TwoMLPHead(c * 7 * 7, rep),
        box_predictor=FastRCNNPredictor(rep, num_classes),
        box_score_thresh=cfg["box_score_thresh"],
        box_nms_thresh=cfg["box_nms_thresh"],
        box_detections_per_img=cfg["box_detections_per_img"],
        box_batch_size_per_image=cfg["box_batch_size_per_image"],
        box_positive_fraction=cfg["box_positive_fraction"],
    )
    if cfg["arch"] == "mask_rcnn":
        mc = cfg["mask_head_channels"]
        pixels = bool(cfg.get("mask_head_pixels"))
        mask_pool = (_PixelsAndFeaturesPool if pixels else MultiScaleRoIAlign)(
            ["0", "1", "2", "3"], output_size=14, sampling_ratio=cfg["roi_sampling_ratio"])
        if pixels:
            backbone.register_forward_pre_hook(mask_pool.keep_input)
        return MaskRCNN(
            backbone,
            mask_roi_pool=mask_pool,
            mask_head=MaskRCNNHeads(c + 3 * pixels, [mc] * cfg["mask_head_layers"], 1,
                                    norm_layer=_norm_layer(cfg["head_norm"]) if cfg["head_norm"]
                                    else None),
            mask_predictor=MaskRCNNPredictor(mc if cfg["mask_head_layers"] else c, mc, num_classes),
            **common,
        )
    kc = cfg["keypoint_head_channels"]
    return KeypointRCNN(
        backbone,
        keypoint_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], output_size=14,
                                         sampling_ratio=cfg["roi_sampling_ratio"]),
        keypoint_head=KeypointRCNNHeads(c, [kc] * cfg["keypoint_head_layers"]),
        keypoint_predictor=KeypointRCNNPredictor(kc if cfg["keypoint_head_layers"] else c,
                                                 num_keypoints),
        **common,
    )


# --------------------------------------------------------------------------------------------
# data


@dataclass
class _Sample:
    image: torch.Tensor            # uint8 (3, H, W), RGB
    boxes: torch.Tensor            # float32 (N, 4) xyxy
    labels: torch.Tensor           # int64 (N,)
    masks: torch.Tensor | None     # uint8 (N, H, W)
    keypoints: torch.Tensor | None  # float32 (N, K, 3)


def _read_rgb(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _keypoint_names(manifest: Manifest, categories: list[dict]) -> list[str]:
    ids = {c["id"] for c in categories}
    for c in manifest["categories"]:
        if c["id"] in ids and c.get("keypoints"):
            return list(c["keypoints"])
    return list(_COCO_KEYPOINTS)


def _flip_permutation(names: list[str]) -> list[int]:
    index = {n: i for i, n in enumerate(names)}
    perm = []
    for n in names:
        if n.startswith("left_"):
            perm.append(index.get("right_" + n[5:], index[n]))
        elif n.startswith("right_"):
            perm.append(index.get("left_" + n[6:], index[n]))
        else:
            perm.append(index[n])
    return perm


def _load_sample(manifest: Manifest, img: dict, anns: list[dict], label_of: dict[int, int],
                 arch: str, num_keypoints: int) -> _Sample:
    rgb = _read_rgb(image_path(manifest, img))
    h, w = rgb.shape[:2]
    boxes, labels, masks, kps = [], [], [], []
    for ann in anns:
        if ann.get("iscrowd", 0) or ann["category_id"] not in label_of:
            continue
        x, y, bw, bh = (float(v) for v in ann["bbox"])
        x1, y1, x2, y2 = max(0.0, x), max(0.0, y), min(float(w), x + bw), min(float(h), y + bh)
        if x2 - x1 < 1.0 or y2 - y1 < 1.0:
            continue
        if arch == "mask_rcnn":
            m = annotation_mask(ann, h, w)
            if not m.any():
                continue
            masks.append(m)
        elif arch == "keypoint_rcnn":
            k = np.zeros((num_keypoints, 3), np.float32)
            if ann.get("keypoints"):
                k = np.asarray(ann["keypoints"], np.float32).reshape(num_keypoints, 3).copy()
                k[k[:, 2] <= 0] = 0.0
            kps.append(k)
        boxes.append([x1, y1, x2, y2])
        labels.append(label_of[ann["category_id"]])
    n = len(boxes)
    return _Sample(
        image=torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))),
        boxes=torch.tensor(boxes, dtype=torch.float32).reshape(n, 4),
        labels=torch.tensor(labels, dtype=torch.int64),
        masks=(torch.from_numpy(np.stack(masks).astype(np.uint8)) if masks
               else torch.zeros((0, h, w), dtype=torch.uint8)) if arch == "mask_rcnn" else None,
        keypoints=(torch.from_numpy(np.stack(kps)) if kps
                   else torch.zeros((0, num_keypoints, 3))) if arch == "keypoint_rcnn" else None,
    )


def _to_input(s: _Sample, flip: bool, flip_perm: list[int] | None):
    img = s.image
    target: dict[str, torch.Tensor] = {"boxes": s.boxes, "labels": s.labels}
    if s.masks is not None:
        target["masks"] = s.masks
    if s.keypoints is not None:
        target["keypoints"] = s.keypoints
    if flip:
        w = img.shape[-1]
        img = img.flip(-1)
        b = s.boxes.clone()
        b[:, 0], b[:, 2] = w - s.boxes[:, 2], w - s.boxes[:, 0]
        target["boxes"] = b
        if s.masks is not None:
            target["masks"] = s.masks.flip(-1)
        if s.keypoints is not None:
            k = s.keypoints[:, flip_perm].clone()
            k[..., 0] = torch.where(k[..., 2] > 0, w - k[..., 0], k[..., 0])
            target["keypoints"] = k
    # uint8 to the device (a quarter of float32's bytes to pin and copy); to_float there
    return img, target


def to_float(image: torch.Tensor) -> torch.Tensor:
    """A uint8 (3, H, W) image as float in [0, 1], on the device it is on."""
    return image.float().div_(255.0)


_CACHE_MAX_IMAGES = 10000  # decoded-image cache (workers: 0) only for datasets up to this size


class _TrainSet(torch.utils.data.Dataset):
    """Training samples by ``(index, flip)``; with ``cache`` decoded samples stay in memory."""

    def __init__(self, manifest: Manifest, label_of: dict[int, int], arch: str,
                 kp_names: list[str], cache: bool) -> None:
        self.manifest = manifest
        self.entries = list(iter_images(manifest))
        self.label_of = label_of
        self.arch = arch
        self.num_keypoints = len(kp_names)
        self.flip_perm = _flip_permutation(kp_names) if arch == "keypoint_rcnn" else None
        self.cache: dict[int, _Sample] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.entries)

    def sample(self, i: int) -> _Sample:
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        img, anns = self.entries[i]
        s = _load_sample(self.manifest, img, anns, self.label_of, self.arch, self.num_keypoints)
        if self.cache is not None:
            self.cache[i] = s
        return s

    def __getitem__(self, key: tuple[int, bool]):
        i, flip = key
        return _to_input(self.sample(i), flip, self.flip_perm)


class _Batches:
    """``iterations`` batches of ``(index, flip)``: epochs of shuffled indices, coin-flip flips.

    All randomness is drawn here, in the training process, from one numpy Generator, so the
    data order does not depend on DataLoader workers.  :meth:`state` is the sampler's state in
    front of a batch (the Generator's state, the epoch's permutation and how much of it is
    left), kept for the batches drawn but not yet trained on (DataLoader workers prefetch);
    ``_Batches(..., start=it, state=that)`` continues the same stream from batch ``it``.
    """

    def __init__(self, n: int, batch_size: int, iterations: int, flip_p: float,
                 rng: np.random.Generator, start: int = 0,
                 state: dict[str, Any] | None = None) -> None:
        self.n, self.batch_size, self.iterations, self.flip_p, self.rng = (
            n, batch_size, iterations, flip_p, rng)
        self.start = int(start)
        self._perm: list[int] = []
        self._left = 0
        if state is not None:
            rng.bit_generator.state = state["rng"]
            self._perm, self._left = list(state["perm"]), int(state["left"])
        elif start:
            raise ValueError("_Batches: start > 0 needs the sampler state")
        self._states: dict[int, dict[str, Any]] = {}
        self._next = self.start   # the batch the generator draws next

    def __len__(self) -> int:
        return self.iterations - self.start

    def _snapshot(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "perm": self._perm, "left": self._left}

    def state(self, it: int) -> dict[str, Any]:
        """The sampler's state in front of batch ``it`` (drawn already, or the next one)."""
        if it == self._next:
            snap = self._snapshot()
        else:
            snap = self._states[it]
        for k in [k for k in self._states if k < it]:
            del self._states[k]
        return {"rng": snap["rng"], "perm": list(snap["perm"]), "left": snap["left"]}

    def __iter__(self):
        for it in range(self.start, self.iterations):
            self._states[it] = self._snapshot()
            idx = []
            while len(idx) < self.batch_size:
                if not self._left:
                    self._perm = self.rng.permutation(self.n).tolist()
                    self._left = len(self._perm)
                self._left -= 1
                idx.append(self._perm[self._left])
            flips = self.rng.random(len(idx)) < self.flip_p
            self._next = it + 1
            yield [(i, bool(f)) for i, f in zip(idx, flips)]


def _collate(batch):
    return tuple(zip(*batch))


def _device(name: str) -> torch.device:
    return torch.device(resolve_device(name))


def _rng_devices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


# --------------------------------------------------------------------------------------------
# training


def _lr_factor(it: int, cfg: dict[str, Any]) -> float:
    f = 1.0
    if it < cfg["warmup_iters"]:
        a = it / cfg["warmup_iters"]
        f = cfg["warmup_factor"] * (1 - a) + a
    for s in cfg["steps"]:
        step_it = int(round(s * cfg["iterations"])) if s < 1 else int(s)
        if it >= step_it:
            f *= 0.1
    return f


def versions() -> dict[str, str]:
    try:
        from importlib.metadata import version
        pcc = version("pycocotools")
    except Exception:  # pragma: no cover
        pcc = "unknown"
    return {"torch": str(torch.__version__), "torchvision": str(torchvision.__version__),
            "pycocotools": str(pcc), "numpy": str(np.__version__)}


def train_step(model: nn.Module, opt: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler | None, images: list[torch.Tensor],
               targets: list[dict[str, torch.Tensor]], cfg: dict[str, Any],
               params: list[torch.Tensor], device: torch.device, it: int = 0
               ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One optimizer step (forward under the configured autocast, backward, clipping, step);
    the losses in fp32.  Also what ``benchmarks/device_bench.py`` times."""
    with autocast(device, cfg["amp"]):
        losses = model(images, targets)
    losses = {k: v.float() for k, v in losses.items()}
    # the losses are logged unweighted; a checkpoint's config from before the key has no weight
    mask_weight = float(cfg.get("mask_loss_weight", 1.0))
    loss = sum(mask_weight * v if k == "loss_mask" else v for k, v in losses.items())
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"training diverged at iteration {it} (loss {float(loss)}; "
            f"{ {k: v.item() for k, v in losses.items()} }); lower lr or set clip_grad_norm")
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        if cfg["clip_grad_norm"]:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, cfg["clip_grad_norm"])
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        if cfg["clip_grad_norm"]:
            torch.nn.utils.clip_grad_norm_(params, cfg["clip_grad_norm"])
        opt.step()
    return losses, loss


def param_groups(model: nn.Module, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: every trainable parameter at ``lr``, except, where
    ``mask_head_lr_mult`` is not 1, the mask head's (``roi_heads.mask_head`` and
    ``roi_heads.mask_predictor``), at that multiple of it (the group's ``lr_mult``)."""
    mult = float(cfg.get("mask_head_lr_mult", 1.0))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if mult == 1.0:
        return [{"params": [p for _, p in named]}]
    in_mask = [n.startswith(("roi_heads.mask_head.", "roi_heads.mask_predictor."))
               for n, _ in named]
    return [{"params": [p for (_, p), m in zip(named, in_mask) if not m]},
            {"params": [p for (_, p), m in zip(named, in_mask) if m], "lr_mult": mult,
             "lr": cfg["lr"] * mult}]


def make_optimizer(cfg: dict[str, Any],
                   params: list[torch.Tensor] | list[dict[str, Any]]) -> torch.optim.Optimizer:
    """The configured optimizer (SGD with momentum, or AdamW with beta1 = momentum).

    Fused (one kernel for all parameters): the demo model's ~100 small tensors made the
    per-tensor AdamW step 12-14 ms of a ~170 ms CPU iteration; fused it is ~3.5 ms."""
    if cfg["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=cfg["lr"], betas=(cfg["momentum"], 0.999),
                                 weight_decay=cfg["weight_decay"], fused=True)
    return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"],
                           weight_decay=cfg["weight_decay"], fused=True)


def train(train_manifest: str, model_cfg: dict[str, Any], seed: int, out_dir: str, *,
          threads: int = 1, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train on ``train_manifest``; write ``out_dir/model.pt`` and ``out_dir/train_log.jsonl``."""
    cfg = resolve_config(model_cfg)
    fetch_pretrained(cfg)  # before any data is read: a missing weights file fails the job now
    if cfg["backbone_weights"]:  # as early: a missing or foreign file
        _backbone_checkpoint(cfg["backbone_weights"])
    manifest = load_manifest(train_manifest)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    categories = select_categories(manifest, cfg["classes"], cfg.get("exclude_classes"),
                                   cfg["arch"])
    label_of = {c["id"]: i + 1 for i, c in enumerate(categories)}
    kp_names = _keypoint_names(manifest, categories)
    device = _device(cfg["device"])

    def emit(line: str) -> None:
        if log is not None:
            log(line)
        elif not use_bar:
            print(line, file=sys.stderr, flush=True)

    def emit_always(line: str) -> None:   # resume / stale-checkpoint notes: also with a bar
        if log is not None:
            log(line)
        else:
            print(line, file=sys.stderr, flush=True)

    use_bar = log is None and sys.stderr.isatty()
    workers = int(cfg["workers"])
    data = _TrainSet(manifest, label_of, cfg["arch"], kp_names,
                     cache=workers == 0 and len(manifest["images"]) <= _CACHE_MAX_IMAGES)
    if not len(data):
        raise ValueError(f"{train_manifest}: no images to train on")
    if data.cache is not None:  # decode everything up front (also counts the usable instances)
        n_inst: int | None = sum(len(data.sample(i).labels) for i in range(len(data)))
    else:
        n_inst = None
    n_ann = sum(1 for a in manifest["annotations"]
                if not a.get("iscrowd", 0) and a["category_id"] in label_of)
    emit(f"[torchvision] {cfg['arch']} R{cfg['depth']}x{cfg['width']:g} seed={seed}: "
         f"{len(data)} images, {n_inst if n_inst is not None else n_ann} instances, "
         f"{len(categories)} classes, {cfg['iterations']} iterations x {cfg['batch_size']}, "
         f"threads={threads}, device={device}, workers={workers}, {describe(cfg)}")

    old_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    rng = np.random.default_rng(seed)
    log_path = out / "train_log.jsonl"
    tmp_log = out / ".train_log.jsonl.tmp"
    key = resume_key(cfg, train_manifest, seed)
    resume = load_resume(out, key, warn=lambda m: emit_always(f"[torchvision] {m}"))
    start = int(resume["iteration"]) if resume is not None else 0
    attempt = int(resume.get("attempt", 1)) + 1 if resume is not None else 1
    ckpt_plan = Checkpointing(cfg["checkpoint_every_iters"], cfg["checkpoint_every_minutes"],
                              cfg["stop_before_walltime_minutes"], walltime_deadline())
    interrupted: TrainingInterrupted | None = None
    last_losses: dict[str, float] | None = None
    try:
        # the log of the iterations before the checkpoint (a later attempt appends to it); its
        # records after the checkpoint's iteration belong to work that is redone
        kept = log_lines_until(tmp_log, start) if resume is not None else []
        with torch.random.fork_rng(devices=_rng_devices(device)), \
                open(tmp_log, "w") as flog, ckpt_plan.signals():
            for line in kept:
                flog.write(line + "\n")
            torch.manual_seed(seed)
            model = build_model(cfg, num_classes=len(categories) + 1, num_keypoints=len(kp_names))
            prepare_model(model, device, cfg)
            model.train()
            scaler = grad_scaler(device, cfg["amp"])
            params = [p for p in model.parameters() if p.requires_grad]
            opt = make_optimizer(cfg, param_groups(model, cfg))
            if resume is not None:
                model.load_state_dict(resume["model"])
                opt.load_state_dict(resume["optimizer"])
                if scaler is not None and resume.get("scaler") is not None:
                    scaler.load_state_dict(resume["scaler"])
                set_rng_state(resume["rng"])
                msg = (f"resumed from {resume_path(out)} at iteration {start}/{cfg['iterations']} "
                       f"(attempt {attempt}; saved on {resume.get('reason')})")
                flog.write(json.dumps({"event": "resume", "iter": start, "attempt": attempt,
                                       "reason": resume.get("reason")}) + "\n")
                flog.flush()
                emit_always(f"[torchvision] {msg}")
            sampler = _Batches(len(data), cfg["batch_size"], cfg["iterations"],
                               cfg["horizontal_flip"], rng, start=start,
                               state=resume["sampler"] if resume is not None else None)
            loader = torch.utils.data.DataLoader(
                data, batch_sampler=sampler,
                collate_fn=_collate, num_workers=workers, pin_memory=device.type == "cuda",
                # one pass over the batch sampler covers all iterations: persistent workers would
                # change nothing; each worker keeps prefetch_factor batches ready
                prefetch_factor=int(cfg["prefetch_factor"]) if workers > 0 else None,
                # the loader draws its worker base seed from this, not from the model's stream
                generator=torch.Generator().manual_seed(int(seed)))

            def save_resume_now(done: int, reason: str) -> None:
                state = {
                    "iteration": done, "attempt": attempt, "reason": reason,
                    "model": model.state_dict(), "optimizer": opt.state_dict(),
                    # the LR schedule is a function of the iteration (_lr_factor)
                    "scheduler": None,
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "rng": rng_state(device), "sampler": sampler.state(done),
                    "model_cfg": cfg, "seed": int(seed),
                }
                secs, size = save_resume(state, key, out)
                ckpt_plan.saved()
                emit(f"[torchvision] resume checkpoint at iteration {done} ({reason}): "
                     f"{size / 2**20:.1f} MiB in {secs:.2f} s")

            sums: dict[str, float] = {}
            n_sum = 0
            t0 = t_last = t_ready = time.perf_counter()
            waited = waited_total = 0.0   # seconds spent waiting for the next batch
            bar = None
            if use_bar:
                from tqdm import tqdm
                bar = tqdm(total=cfg["iterations"], initial=start, desc=f"train seed={seed}",
                           file=sys.stderr, mininterval=1.0)
            for it, (images, targets) in enumerate(loader, start):
                wait = time.perf_counter() - t_ready
                waited += wait
                waited_total += wait
                images = [to_float(im.to(device, non_blocking=True)) for im in images]
                targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()}
                           for t in targets]
                lr = cfg["lr"] * _lr_factor(it, cfg)
                for g in opt.param_groups:
                    g["lr"] = lr * g.get("lr_mult", 1.0)
                losses, loss = train_step(model, opt, scaler, images, targets, cfg, params,
                                          device, it)
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v.item()
                sums["loss"] = sums.get("loss", 0.0) + loss.item()
                n_sum += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
                if (it + 1) % cfg["log_every"] == 0 or it + 1 == cfg["iterations"]:
                    now = time.perf_counter()
                    rec = {"iter": it + 1, "lr": lr,
                           "losses": {k: v / n_sum for k, v in sums.items()},
                           "seconds": round(now - t0, 3),
                           "s_per_iter": round((now - t_last) / n_sum, 4),
                           # share of this interval's wall time spent waiting for data
                           "data_wait": round(waited / max(now - t_last, 1e-9), 4),
                           "attempt": attempt}
                    flog.write(json.dumps(rec) + "\n")
                    flog.flush()
                    emit(f"[torchvision] iter {it + 1}/{cfg['iterations']} "
                         f"loss {rec['losses']['loss']:.3f} lr {lr:.4g} "
                         f"{rec['s_per_iter']:.3f} s/iter, "
                         f"data wait {100 * rec['data_wait']:.0f} %")
                    last_losses = rec["losses"]
                    sums, n_sum, t_last, waited = {}, 0, now, 0.0
                if it + 1 < cfg["iterations"]:
                    reason = ckpt_plan.due(it + 1)
                    if reason is not None:
                        save_resume_now(it + 1, reason)
                        if reason.startswith("signal") or reason == "walltime":
                            interrupted = TrainingInterrupted(
                                f"training stopped at iteration {it + 1}/{cfg['iterations']} "
                                f"({reason}); resume checkpoint {resume_path(out)}: the job's "
                                f"retry (or a rerun) resumes from it")
                            break
                t_ready = time.perf_counter()
            if bar is not None:
                bar.close()
            seconds = time.perf_counter() - t0
            if interrupted is None:
                ckpt = {
                    "format": CHECKPOINT_FORMAT,
                    "state_dict": model.state_dict(),
                    "model_cfg": cfg,
                    "categories": categories,
                    "keypoint_names": kp_names if cfg["arch"] == "keypoint_rcnn" else None,
                    "seed": int(seed),
                    "iterations": int(cfg["iterations"]),
                    "threads": int(threads),
                    "device": str(device),
                    "versions": versions(),
                }
        if interrupted is not None:
            emit_always(f"[torchvision] {interrupted}")
            raise interrupted
        save_checkpoint(ckpt, out / "model.pt")
        os.replace(tmp_log, log_path)
        remove_resume(out)
    finally:
        torch.set_num_threads(old_threads)
        # the partial log stays while a resume checkpoint does (the retry appends to it)
        if tmp_log.exists() and not resume_path(out).exists():
            tmp_log.unlink()
    trained = max(1, int(cfg["iterations"]) - start)
    return {
        "checkpoint": str(out / "model.pt"),
        "train_log": str(log_path),
        "arch": cfg["arch"],
        "seed": int(seed),
        "iterations": int(cfg["iterations"]),
        "num_images": len(data),
        "num_instances": n_inst,    # usable instances (None when not decoded up front)
        "num_annotations": n_ann,   # non-crowd annotations of the trained categories
        "categories": categories,
        "seconds": round(seconds, 3),
        "s_per_iter": round(seconds / trained, 4),
        "data_wait_fraction": round(waited_total / max(seconds, 1e-9), 4),
        "amp": cfg["amp"],
        "final_losses": last_losses,
        "resumed_from": start,      # iteration this attempt started at (0: from scratch)
        "attempt": attempt,
        "threads": int(threads),
        "device": str(device),
    }


# --------------------------------------------------------------------------------------------
# inference


def load_checkpoint(checkpoint: str, device: str | torch.device = "cpu"
                    ) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint (no weights are downloaded) in eval mode."""
    ckpt = read_model_checkpoint(checkpoint, CHECKPOINT_FORMAT, "torchvision")
    saved = ckpt["model_cfg"]
    # keys its arch does not use (an older version resolved some, e.g. keypoint_rcnn's head_norm;
    # they had no effect on the model) would fail the config check: dropped
    unused = UNUSED_KEYS.get(saved.get("arch"), frozenset())
    cfg = {**{k: v for k, v in saved.items() if k not in unused}, "pretrained": False,
           "backbone_weights": None}
    kp = ckpt.get("keypoint_names") or _COCO_KEYPOINTS
    model = build_model(cfg, num_classes=len(ckpt["categories"]) + 1, num_keypoints=len(kp))
    model.load_state_dict(ckpt["state_dict"])
    prepare_model(model, torch.device(device), cfg)
    model.eval()
    return model, ckpt


def _batches(seq: list, n: int) -> Iterable[list]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def predict(checkpoint: str, manifest: str | Manifest, *, threads: int = 1,
            batch_size: int = 4, device: str = "auto") -> list[dict[str, Any]]:
    """COCO results (bbox, score, category_id[, segmentation | keypoints]) for the manifest's
    images; one-stage archs (retinanet, fcos) give boxes only."""
    m = manifest if isinstance(manifest, dict) else load_manifest(manifest)
    with torch_threads(threads):
        device = _device(device) if isinstance(device, str) else device
        model, ckpt = load_checkpoint(checkpoint, device)
        cat_ids = [c["id"] for c in ckpt["categories"]]
        arch = ckpt["model_cfg"]["arch"]
        with_maskness = ckpt["model_cfg"].get("mask_score", "box") == "maskness"
        results: list[dict[str, Any]] = []
        with torch.inference_mode():
            for batch in _batches(m["images"], max(1, int(batch_size))):
                imgs = [torch.from_numpy(np.ascontiguousarray(
                    _read_rgb(image_path(m, img)).transpose(2, 0, 1))).to(device).float().div_(255.0)
                    for img in batch]
                outs = [{k: v.cpu() for k, v in o.items()} for o in model(imgs)]
                for img, o in zip(batch, outs):
                    results.extend(_to_coco(img["id"], o, cat_ids, arch,
                                            with_maskness=with_maskness))
    return results


def maskness(probs: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """SOLOv2's maskness of each predicted mask: the mean foreground probability ``probs``
    (N, H, W) over the pixels of its binarized mask ``masks`` (N, H, W; bool), 0 for an empty
    one. Near 1 where the head is sure of every pixel it keeps, near 0.5 where it is not."""
    kept = masks.flatten(1).to(probs.dtype)
    return (probs.flatten(1) * kept).sum(1) / kept.sum(1).clamp_min(1)


def _to_coco(image_id: int, o: dict[str, torch.Tensor], cat_ids: list[int],
             arch: str, with_maskness: bool = False) -> list[dict[str, Any]]:
    """COCO results of one image's detections. ``with_maskness`` (``mask_score: maskness``):
    each mask also gets ``segm_score``, the detection's score times its :func:`maskness`, by
    which the segm evaluations rank masks (the box score still ranks the boxes)."""
    res = []
    boxes = o["boxes"].tolist()
    scores = o["scores"].tolist()
    labels = o["labels"].tolist()
    masks = segm_scores = None
    if arch == "mask_rcnn":
        probs = o["masks"][:, 0]
        binary = probs > 0.5
        if with_maskness:
            segm_scores = (o["scores"] * maskness(probs, binary)).tolist()
        masks = binary.numpy()
    for i, (b, s, lab) in enumerate(zip(boxes, scores, labels)):
        if lab < 1:  # one-stage heads have a never-trained logit 0 (the label of "background")
            continue
        r = {"image_id": image_id, "category_id": cat_ids[lab - 1],
             "bbox": [round(b[0], 2), round(b[1], 2), round(b[2] - b[0], 2), round(b[3] - b[1], 2)],
             "score": round(float(s), 5)}
        if masks is not None:
            r["segmentation"] = encode_mask(masks[i])
            if segm_scores is not None:
                r["segm_score"] = round(float(segm_scores[i]), 5)
        elif arch == "keypoint_rcnn":
            k = o["keypoints"][i].clone()
            k[:, 2] = torch.sigmoid(o["keypoints_scores"][i]).clamp_min(1e-4)
            r["keypoints"] = [round(float(v), 3) for v in k.reshape(-1)]
        res.append(r)
    return res
