"""Model config of the torchvision backend: defaults, presets and checks (no torch import).

Kept apart from :mod:`anonbench.backends.torchvision_backend` so that the workflow can check a
model config when it parses config.yaml, before any job starts, without importing torch.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .presets import CHECKPOINT_DEFAULTS, check_checkpoint_keys, with_preset

# Paper scale: torchvision's R-50-FPN Mask R-CNN defaults and a detectron2-style 1x schedule.
DEFAULTS: dict[str, Any] = {
    "arch": "mask_rcnn",             # mask_rcnn | keypoint_rcnn (two-stage) | retinanet | fcos
    # backbone
    "depth": 50,                     # ResNet 18/34/50/101/152
    "width": 1.0,                    # channel multiplier of the ResNet stem and stages
    "norm": "auto",                  # bn | gn | frozen_bn | auto (frozen_bn if pretrained, else bn)
    "zero_init_residual": False,     # zero-init the last norm of each residual block
    "pretrained": False,             # ImageNet backbone weights through torchvision (width 1.0)
    # the ResNet body of another model's checkpoint (this backend's model.pt) instead: the
    # workflow's `backbone_weights: {dataset, model}` names a run it trains first
    "backbone_weights": None,
    "trainable_layers": None,        # backbone stages to train; None: 3 if the backbone starts
                                     # from weights (pretrained, backbone_weights) else 5 (all)
    "fpn_channels": 256,
    "fpn_norm": None,                # None | bn | gn: normalization in the FPN convs
    "head_norm": None,               # None | bn | gn: normalization in the mask head convs
                                     # (keypoint_rcnn: none, as torchvision's); retinanet: in
                                     # its head convs (None | gn); fcos: always gn
    # GeneralizedRCNNTransform
    "min_size": None,                # shorter side; a list: random choice per image in training;
                                     # None: 800 (mask_rcnn), [640, 672, ..., 800] (keypoint_rcnn)
    "max_size": 1333,
    # anchors (not fcos: its one "anchor" per location is the level's stride)
    "anchor_sizes": [32, 64, 128, 256, 512],   # one per FPN level: two-stage P2..P5, pool;
                                               # retinanet P3..P7
    "aspect_ratios": [0.5, 1.0, 2.0],          # height / width
    # RPN (two-stage)
    "rpn_pre_nms_top_n_train": 2000,           # per FPN level
    "rpn_pre_nms_top_n_test": 1000,
    "rpn_post_nms_top_n_train": 2000,          # per image
    "rpn_post_nms_top_n_test": 1000,
    "rpn_batch_size_per_image": 256,
    # detections (all archs)
    "box_detections_per_img": 100,
    "box_score_thresh": 0.05,
    "box_nms_thresh": 0.5,
    # RoI heads (two-stage)
    "box_batch_size_per_image": 512,
    "box_positive_fraction": 0.25,
    "roi_sampling_ratio": 2,         # RoIAlign samples per bin side (0: adaptive)
    "representation_size": 1024,
    "mask_head_layers": 4,
    "mask_head_channels": 256,
    # mask_rcnn: the mask head's targets cut from the ground-truth masks with RoIAlign
    # aligned=True (detectron2's ROIAlignV2 convention), which is where torchvision's
    # paste_masks_in_image puts a predicted mask back. torchvision cuts them with aligned=False,
    # half a pixel off: harmless for COCO-sized persons, not for 7x20-px ones. The street demo
    # world's 262 validation persons, each mask cut in its own box and pasted back (a perfect
    # mask head): segm AP_person 50.4 with torchvision's targets, 82.9 with these.
    "mask_targets_aligned": False,   # False: as torchvision
    # mask_rcnn: the mask head also pools the input image itself (the transform's normalized
    # RGB, stride 1) on its M x M grid, beside the FPN features (3 more input channels of its
    # first conv). A miniature's stand-in for resolution: the study's persons span tens of P2
    # cells, the demo street world's 7x20-px persons 2x5. Not Mask R-CNN's head: off by default.
    "mask_head_pixels": False,
    # mask_rcnn: the mask loss's weight in the summed training loss (torchvision, detectron2: 1;
    # MMDetection's loss_mask.loss_weight)
    "mask_loss_weight": 1.0,
    # mask_rcnn: the weight of a Dice loss added to the mask head's per-pixel cross-entropy
    # (backends.torchvision_backend.mask_loss; CondInst, SOLO). 0: torchvision's loss alone
    "mask_dice_weight": 0.0,
    # mask_rcnn: the mask head's learning rate (roi_heads.mask_head, .mask_predictor) as a
    # multiple of lr, warm-up and steps included
    "mask_head_lr_mult": 1.0,
    # mask_rcnn: what ranks a predicted mask in the segm evaluations: box (the detection's
    # score, as Mask R-CNN) | maskness (that score times the mean foreground probability of the
    # binarized mask, SOLOv2's "maskness"; the boxes keep their score)
    "mask_score": "box",
    "keypoint_head_layers": 8,
    "keypoint_head_channels": 512,
    # one-stage (torchvision's RetinaNet / FCOS defaults)
    "octave_scales": 3,              # retinanet: anchor sizes per level s * 2^(i/n), i < n
    "fg_iou_thresh": 0.5,            # retinanet: anchor-to-box matching
    "bg_iou_thresh": 0.4,
    "center_sampling_radius": 1.5,   # fcos: positives within this many strides of a box centre
    "topk_candidates": 1000,         # candidates per level before NMS
    # schedule (SGD, linear warm-up, step decay x0.1 at fractions of `iterations`)
    "iterations": 90000,
    "batch_size": 16,
    "lr": 0.02,
    "momentum": 0.9,
    "weight_decay": 0.0001,
    "warmup_iters": 1000,
    "warmup_factor": 0.001,
    "steps": [0.667, 0.889],         # <1: fraction of iterations; >=1: iteration number
    "optimizer": "sgd",              # sgd (momentum) | adamw (momentum -> beta1)
    "clip_grad_norm": None,          # max gradient norm, or None
    # data
    "classes": None,                 # None: all categories (keypoint_rcnn: person categories)
    "exclude_classes": None,         # None | category names to leave out of `classes`/all
    "horizontal_flip": 0.5,
    "workers": 4,                    # DataLoader worker processes; 0: load in the training process
                                     # and keep decoded images in memory (small datasets)
    "prefetch_factor": 4,            # batches each worker loads ahead (workers > 0)
    "device": "auto",                # auto (cuda if available) | cpu | cuda | cuda:N
    # speed (the study trains in fp32: amp off); see the README's Performance section
    "amp": "off",                    # off | fp16 (autocast + GradScaler) | bf16 (autocast)
    "channels_last": False,          # NHWC memory format for the backbone and RPN convolutions
    "cudnn_benchmark": False,        # cuDNN autotuning of conv algorithms (GPU; not deterministic)
    "log_every": 20,
    # resume checkpoint (out_dir/resume.pt, removed when model.pt is written): every N
    # iterations and every M minutes, on SIGUSR1/SIGTERM, and before a SLURM job's end time
    **CHECKPOINT_DEFAULTS,
}

# Demo scale: ~200 images of 256x160, 2 CPU cores, ~1 min per training + val prediction.
DEMO_CONFIG: dict[str, Any] = {
    **DEFAULTS,
    "depth": 18,
    "width": 0.25,
    "norm": "bn",
    "fpn_channels": 32,
    "min_size": 160,
    "max_size": 256,
    "anchor_sizes": [16, 32, 64, 128, 256],
    "rpn_pre_nms_top_n_train": 300,
    "rpn_pre_nms_top_n_test": 200,
    "rpn_post_nms_top_n_train": 150,
    "rpn_post_nms_top_n_test": 100,
    "rpn_batch_size_per_image": 128,
    "box_batch_size_per_image": 32,
    "roi_sampling_ratio": 1,
    "representation_size": 256,
    "mask_head_layers": 3,           # with mask_head_pixels; 2: segm AP_person 8.6, 4: 9.5 (s0-1)
    "mask_head_channels": 32,        # 64: 11 % more time per iteration, the same box AP_person
    "mask_targets_aligned": True,    # segm AP_person x1.5, the same box AP (see DEFAULTS)
    "mask_head_pixels": True,        # street segm AP_person 6.1 -> 10.4, the same box AP_person
    # GroupNorm after each mask head conv: street, seeds 0-2, segm AP_person 11.4 / 10.4 / 9.6 ->
    # 13.7 / 13.2 / 10.6, box AP_person 22.5 / 19.3 / 20.5 -> 21.8 / 20.8 / 17.6; 6 % more time
    # per iteration (benchmarks/bench_interleaved.py; bn: 11.9, seed 0; box_batch_size_per_image
    # 64 as well: 14.1 / 13.8 / 12.7 for 25 % more training time)
    "head_norm": "gn",
    # The mask head learns more in the same 500 iterations (street world, seeds 0-2, segm /
    # box AP_person, benchmarks/bench_demo_ap.py; Zen 4, 1 thread, two runs side by side):
    # 13.4 / 12.2 / 11.6 and 23.4 / 21.4 / 19.3 before; its lr x6: 15.1 / 13.7 / 13.6 (x3: 13.0
    # on average, x12: 13.4); a Dice loss of weight 2: 15.1 / 13.6 / 12.4 (1: 12.4 on average);
    # both: 15.5 / 13.6 / 15.2 and 24.3 / 21.8 / 19.4 (Dice 4: 14.0 / 15.8 / 15.6); no more time
    "mask_head_lr_mult": 6.0,
    "mask_dice_weight": 2.0,
    # masks ranked by maskness: seed 0 of the two above 15.5 -> 17.4 (before them 13.4 -> 14.8);
    # mask threshold 0.3 / 0.4 / 0.5 / 0.6 with it: 15.3 / 17.3 / 17.4 / 16.3
    "mask_score": "maskness",
    # mask_loss_weight stays 1: 2 gave the street original segm AP_person 10.4 -> 11.9, but in the
    # whole demo face blur then cost 3.9 box AP_person instead of 2.5 and realistic bodies kept
    # 73 % instead of 84 % (README, benchmark rows)
    "keypoint_head_layers": 3,
    "keypoint_head_channels": 64,
    # from scratch on ~200 images: AdamW learns in 600 iterations what SGD (lr 0.02) does not
    # (segm AP_person on the demo val set 6.6 vs 3.1, box AP_person 20 vs 13; seed 0)
    "iterations": 600,
    "batch_size": 2,
    "optimizer": "adamw",
    "lr": 0.001,
    "weight_decay": 0.05,
    "warmup_iters": 20,
    "steps": [0.75, 0.9],
    "clip_grad_norm": 10.0,
    "workers": 0,
    # NHWC backbone and RPN: 10-15 % less time per CPU iteration (oneDNN), the same AP
    "channels_last": True,
}

# Demo scale for RetinaNet / FCOS: DEMO_CONFIG (its anchor sizes 16..256 now on P3..P7, strides
# 8..128) with GroupNorm in the RetinaNet head, as FCOS has.  Demo world, 600 iterations, seed 0,
# box AP / AP_person on its val set: retinanet 9.9 / 7.6 (without GN 6.4 / 9.3; anchors 8..128:
# 2.3 / 2.2; 12..192 with GN: 6.6 / 5.1), fcos 23.3 / 16.3 (mask_rcnn demo: 27.8 / 20.1).
# The two-stage keys of DEMO_CONFIG are unused by these archs and left out of resolved configs.
DEMO_ONESTAGE_CONFIG: dict[str, Any] = {
    **DEMO_CONFIG,
    "arch": "retinanet",
    "head_norm": "gn",
}

PRESETS = {"paper": DEFAULTS, "demo": DEMO_CONFIG, "demo_onestage": DEMO_ONESTAGE_CONFIG}
# keys of a workflow model entry that are not about the model itself (threads: the job's cores)
_META_KEYS = {"backend", "preset", "description", "threads"}
TWO_STAGE = ("mask_rcnn", "keypoint_rcnn")
ONE_STAGE = ("retinanet", "fcos")      # box-only detectors: no masks, no keypoints
_ARCHS = TWO_STAGE + ONE_STAGE
DEPTHS = (18, 34, 50, 101, 152)
# What each arch's evaluation can ask of its predictions (COCOeval iou types).
OUTPUTS: dict[str, tuple[str, ...]] = {
    "mask_rcnn": ("bbox", "segm"), "keypoint_rcnn": ("bbox", "keypoints"),
    "retinanet": ("bbox",), "fcos": ("bbox",),
}
_TWO_STAGE_ONLY = frozenset({
    "rpn_pre_nms_top_n_train", "rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_train",
    "rpn_post_nms_top_n_test", "rpn_batch_size_per_image", "box_batch_size_per_image",
    "box_positive_fraction", "roi_sampling_ratio", "representation_size", "mask_head_layers",
    "mask_head_channels", "mask_targets_aligned", "mask_head_pixels", "mask_loss_weight",
    "mask_dice_weight", "mask_head_lr_mult", "mask_score", "keypoint_head_layers",
    "keypoint_head_channels"})
_ONE_STAGE_ONLY = frozenset({"octave_scales", "fg_iou_thresh", "bg_iou_thresh",
                             "center_sampling_radius", "topk_candidates"})
# Keys an arch does not use: set in a model config they are an error (they would silently do
# nothing); resolved configs leave them out.
UNUSED_KEYS: dict[str, frozenset[str]] = {
    "mask_rcnn": _ONE_STAGE_ONLY,
    "keypoint_rcnn": _ONE_STAGE_ONLY | {"mask_targets_aligned", "mask_head_pixels",
                                        "mask_loss_weight", "mask_dice_weight",
                                        "mask_head_lr_mult", "mask_score", "head_norm"},
    "retinanet": _TWO_STAGE_ONLY | {"center_sampling_radius"},
    "fcos": _TWO_STAGE_ONLY | {"anchor_sizes", "aspect_ratios", "octave_scales", "fg_iou_thresh",
                               "bg_iou_thresh"},
}
# torchvision's ImageNet ResNet weights (IMAGENET1K_V1), as torch.hub caches them in
# $TORCH_HOME/hub/checkpoints (checked against torchvision by the tests)
PRETRAINED_URL = "https://download.pytorch.org/models/"
PRETRAINED_FILES: dict[int, str] = {
    18: "resnet18-f37072fd.pth", 34: "resnet34-b627a593.pth", 50: "resnet50-0676ba61.pth",
    101: "resnet101-63fe2227.pth", 152: "resnet152-394f9c45.pth",
}


#: Mixed-precision modes of ``amp``: autocast dtype (None: fp32) and whether a GradScaler is
#: needed (fp16's narrow exponent range underflows small gradients; bf16 has fp32's range).
AMP_MODES: dict[str, tuple[str | None, bool]] = {
    "off": (None, False), "fp16": ("float16", True), "bf16": ("bfloat16", False),
}


#: What ranks a predicted mask in the segm evaluations (``mask_score``).
MASK_SCORES = ("box", "maskness")

# Numeric bounds checked at parse time: key -> (minimum, maximum or None, minimum exclusive).
_BOUNDS: dict[str, tuple[float, float | None, bool]] = {
    "lr": (0, None, True), "momentum": (0, 1, False), "weight_decay": (0, None, False),
    "warmup_iters": (0, None, False), "warmup_factor": (0, 1, True),
    "clip_grad_norm": (0, None, True), "log_every": (1, None, False),
    "box_score_thresh": (0, 1, False), "box_nms_thresh": (0, 1, False),
    "box_positive_fraction": (0, 1, True), "roi_sampling_ratio": (0, None, False),
    "rpn_pre_nms_top_n_train": (1, None, False), "rpn_pre_nms_top_n_test": (1, None, False),
    "rpn_post_nms_top_n_train": (1, None, False), "rpn_post_nms_top_n_test": (1, None, False),
    "rpn_batch_size_per_image": (1, None, False), "mask_head_layers": (1, None, False),
    "mask_head_channels": (1, None, False), "keypoint_head_layers": (1, None, False),
    "keypoint_head_channels": (1, None, False), "mask_loss_weight": (0, None, True),
    "mask_dice_weight": (0, None, False), "mask_head_lr_mult": (0, None, True),
}


def resolve_config(model_cfg: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults (of ``preset``, default ``paper``) + ``model_cfg``, checked; JSON-ready."""
    cfg, model_cfg, preset = with_preset(model_cfg, PRESETS, DEFAULTS, _META_KEYS, "torchvision")
    cfg["backend"] = "torchvision"

    def err(msg: str) -> ValueError:
        return ValueError(f"model config: {msg}")

    if cfg["arch"] not in _ARCHS:
        raise err(f"arch must be one of {', '.join(_ARCHS)}, got {cfg['arch']!r}")
    arch = cfg["arch"]
    one_stage = arch in ONE_STAGE
    unused = sorted(UNUSED_KEYS[arch] & set(model_cfg))
    if unused:
        raise err(f"{', '.join(unused)} {'has' if len(unused) == 1 else 'have'} no meaning for "
                  f"arch {arch} ({'one' if one_stage else 'two'}-stage); remove "
                  f"{'it' if len(unused) == 1 else 'them'}")
    for key in UNUSED_KEYS[arch]:
        cfg.pop(key, None)
    if int(cfg["depth"]) not in DEPTHS:
        raise err(f"depth must be one of {list(DEPTHS)}, got {cfg['depth']!r}")
    cfg["depth"] = int(cfg["depth"])
    if not float(cfg["width"]) > 0:
        raise err(f"width must be > 0, got {cfg['width']!r}")
    cfg["width"] = float(cfg["width"])
    weights = cfg["backbone_weights"]
    if weights is not None and (not isinstance(weights, str) or not weights):
        raise err(f"backbone_weights must be a checkpoint file (model.pt), got {weights!r}")
    if weights is not None and cfg["pretrained"]:
        raise err("give pretrained: true (ImageNet weights) or backbone_weights (another "
                  "model's), not both")
    from_weights = bool(cfg["pretrained"] or weights)
    if cfg["norm"] == "auto":
        cfg["norm"] = "frozen_bn" if from_weights else "bn"
    if cfg["norm"] not in ("bn", "gn", "frozen_bn"):
        raise err(f"norm must be bn, gn, frozen_bn or auto, got {cfg['norm']!r}")
    for key in ("fpn_norm", "head_norm"):
        if key not in cfg:
            continue
        if cfg[key] not in (None, "none", "bn", "gn"):
            raise err(f"{key} must be null, bn or gn, got {cfg[key]!r}")
        if cfg[key] == "none":
            cfg[key] = None
    if arch == "retinanet" and cfg["head_norm"] == "bn":
        raise err("retinanet: head_norm must be null or gn (its head convs are shared by all "
                  "FPN levels, batch statistics are not)")
    if arch == "fcos":
        if cfg["head_norm"] == "bn":
            raise err("fcos: head_norm must be gn or null (torchvision's FCOS head always uses "
                      "GroupNorm)")
        cfg["head_norm"] = "gn"
    if cfg["exclude_classes"] is not None:
        ex = cfg["exclude_classes"]
        if isinstance(ex, str) or not ex or not all(isinstance(c, str) for c in ex):
            raise err("exclude_classes must be null or a non-empty list of category names")
        if cfg["classes"] is not None:
            raise err("give classes (the categories to train) or exclude_classes (all others), "
                      "not both")
        if arch == "keypoint_rcnn":
            raise err("exclude_classes: keypoint_rcnn trains the person categories only")
    if cfg["optimizer"] not in ("sgd", "adamw"):
        raise err(f"optimizer must be sgd or adamw, got {cfg['optimizer']!r}")
    if cfg["pretrained"] and cfg["width"] != 1.0:
        raise err("pretrained: true needs width: 1.0 (ImageNet weights exist only for real ResNets)")
    if cfg["trainable_layers"] is None:  # torchvision's default, detectron2's FREEZE_AT: 2
        cfg["trainable_layers"] = 3 if from_weights else 5
    if not 0 <= int(cfg["trainable_layers"]) <= 5:
        raise err(f"trainable_layers must be in 0..5, got {cfg['trainable_layers']!r}")
    if "anchor_sizes" in cfg and len(cfg["anchor_sizes"]) != 5:
        raise err("anchor_sizes needs 5 sizes, one per FPN level ("
                  + ("P3..P7" if one_stage else "P2, P3, P4, P5, pool") + ")")
    if arch == "retinanet":
        if int(cfg["octave_scales"]) < 1:
            raise err(f"octave_scales must be >= 1, got {cfg['octave_scales']!r}")
        if not 0.0 < float(cfg["bg_iou_thresh"]) <= float(cfg["fg_iou_thresh"]) <= 1.0:
            raise err("retinanet needs 0 < bg_iou_thresh <= fg_iou_thresh <= 1, got "
                      f"{cfg['bg_iou_thresh']!r}, {cfg['fg_iou_thresh']!r}")
    if arch == "fcos" and not float(cfg["center_sampling_radius"]) > 0:
        raise err(f"center_sampling_radius must be > 0, got {cfg['center_sampling_radius']!r}")
    if one_stage and int(cfg["topk_candidates"]) < 1:
        raise err(f"topk_candidates must be >= 1, got {cfg['topk_candidates']!r}")
    if cfg["min_size"] is None:
        cfg["min_size"] = [640, 672, 704, 736, 768, 800] if arch == "keypoint_rcnn" else 800
    sizes = cfg["min_size"] if isinstance(cfg["min_size"], (list, tuple)) else [cfg["min_size"]]
    if not sizes or any(int(v) < 1 for v in sizes):
        raise err(f"min_size must be a size or a list of sizes, got {cfg['min_size']!r}")
    for key, (lo, hi, open_lo) in _BOUNDS.items():
        v = cfg.get(key)
        if v is None and key == "clip_grad_norm":
            continue
        if key not in cfg:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise err(f"{key} must be a number, got {v!r}")
        if (v <= lo if open_lo else v < lo) or (hi is not None and v > hi):
            rng = f"{'>' if open_lo else '>='} {lo}" + (f" and <= {hi}" if hi is not None else "")
            raise err(f"{key} must be {rng}, got {v!r}")
    check_checkpoint_keys(cfg, err)
    steps = cfg["steps"]
    if isinstance(steps, (str, bytes)) or not isinstance(steps, (list, tuple)) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in steps):
        raise err(f"steps must be a list of positive numbers (fractions < 1 or iterations), "
                  f"got {steps!r}")
    for key in ("iterations", "batch_size", "max_size", "fpn_channels",
                "representation_size", "box_batch_size_per_image", "box_detections_per_img"):
        if key in cfg and int(cfg[key]) < 1:
            raise err(f"{key} must be >= 1, got {cfg[key]!r}")
    if not 0.0 <= float(cfg["horizontal_flip"]) <= 1.0:
        raise err(f"horizontal_flip is a probability, got {cfg['horizontal_flip']!r}")
    if int(cfg["workers"]) < 0:
        raise err(f"workers must be >= 0, got {cfg['workers']!r}")
    if int(cfg["prefetch_factor"]) < 1:
        raise err(f"prefetch_factor must be >= 1, got {cfg['prefetch_factor']!r}")
    if cfg["amp"] is False:          # YAML 1.1 reads a bare `off` as false
        cfg["amp"] = "off"
    if cfg["amp"] not in AMP_MODES:
        raise err(f"amp must be one of {', '.join(AMP_MODES)}, got {cfg['amp']!r}")
    for key in ("channels_last", "cudnn_benchmark", "mask_targets_aligned", "mask_head_pixels"):
        if key not in cfg:
            continue
        if not isinstance(cfg[key], bool):
            raise err(f"{key} must be true or false, got {cfg[key]!r}")
    if "mask_score" in cfg and cfg["mask_score"] not in MASK_SCORES:
        raise err(f"mask_score must be one of {', '.join(MASK_SCORES)}, "
                  f"got {cfg['mask_score']!r}")
    if not (cfg["device"] in ("auto", "cpu", "cuda") or str(cfg["device"]).startswith("cuda:")):
        raise err(f"device must be auto, cpu, cuda or cuda:N, got {cfg['device']!r}")
    if cfg["classes"] is not None and (
        isinstance(cfg["classes"], str) or not all(isinstance(c, str) for c in cfg["classes"])
    ):
        raise err("classes must be null or a list of category names")
    # JSON-ready (the config is stored in the checkpoint, which is loaded with weights_only=True)
    for key in ("anchor_sizes", "aspect_ratios", "steps", "classes", "exclude_classes", "min_size"):
        if cfg.get(key) is not None:
            cfg[key] = list(cfg[key]) if isinstance(cfg[key], (list, tuple)) else cfg[key]
    return json.loads(json.dumps(cfg))


def pretrained_file(depth: int) -> str:
    """File name of the ImageNet ResNet weights for ``depth`` in torch's hub cache."""
    return PRETRAINED_FILES[int(depth)]


__all__ = ["AMP_MODES", "DEFAULTS", "DEMO_CONFIG", "DEMO_ONESTAGE_CONFIG", "DEPTHS", "ONE_STAGE", "OUTPUTS",
           "PRESETS", "PRETRAINED_FILES", "TWO_STAGE", "UNUSED_KEYS", "pretrained_file",
           "resolve_config"]
