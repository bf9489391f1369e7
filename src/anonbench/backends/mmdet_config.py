"""Model config of the mmdet backend and its MMDetection 3.x config dict (no torch import).

The study trained its BDD100K model with MMDetection 2.27 (commit b95583270c) from the BDD100K
model zoo's ``mask_rcnn_r50_fpn_3x_ins_seg_bdd100k.py``: Mask R-CNN R-50 FPN, 36 epochs, SGD
lr 0.02, momentum 0.9, weight decay 1e-4, 500-iteration linear warm-up, LR steps at epochs 24
and 33, 2 images per GPU on one GPU, multi-scale training 1280 x {600..720} (test 1280 x 720).
:func:`build_mmdet_config` writes that recipe as an MMDetection 3.x config dict (the 2.x names
translated: ``RandomResize`` for the multi-scale ``Resize``, ``optim_wrapper``,
``param_scheduler``, ``train_cfg``), with our manifest written as COCO json for mmdet's
``CocoDataset``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

from .categories import check_class_keys
from .presets import CHECKPOINT_DEFAULTS, check_checkpoint_keys, with_preset

# torchvision's ImageNet ResNets, which mmdet's ``torchvision://resnetNN`` loads from torch's hub
# cache ($TORCH_HOME/hub/checkpoints)
TORCHVISION_FILES: dict[int, str] = {
    50: "resnet50-0676ba61.pth", 101: "resnet101-63fe2227.pth", 152: "resnet152-394f9c45.pth",
}
MMDET_COMMIT = "b95583270c"  # the study's (MMDetection 2.27)

DEFAULTS: dict[str, Any] = {
    "arch": "mask_rcnn",       # the only arch of this backend
    "depth": 50,               # ResNet 50/101/152 (mmdet ``ResNet``; the study's ablations)
    "pretrained": True,        # ImageNet backbone (torchvision://resnetNN), as the BDD100K config
    "load_from": None,         # a whole-model checkpoint to start from (mmdet ``load_from``)
    "epochs": 36,
    "iterations": None,        # set: an iteration-based loop of this length instead of epochs
    "batch_size": 2,           # images per GPU (the study: one GPU)
    "lr": 0.02,
    "momentum": 0.9,
    "weight_decay": 0.0001,
    "warmup_iters": 500,
    "warmup_ratio": 0.001,
    "steps": [24, 33],         # epochs (or, with iterations: <1 fraction, >=1 iteration number)
    "scales": [[1280, 600], [1280, 720]],  # training: random size in this range (w, h), keep ratio
    "test_scale": [1280, 720],
    "flip": 0.5,
    # model (mmdet's mask_rcnn_r50_fpn defaults)
    "fpn_channels": 256,
    "rpn_pre_nms_train": 2000,
    "rpn_post_nms_train": 1000,
    "rpn_pre_nms_test": 1000,
    "rpn_post_nms_test": 1000,
    "roi_batch_size": 512,
    "score_thr": 0.05,
    "max_per_img": 100,
    "classes": None,
    "exclude_classes": None,
    "workers": 2,
    "device": "auto",          # auto | cpu | cuda | cuda:N
    "log_every": 50,
    # mmengine CheckpointHook interval of iteration loops (epoch loops: every epoch); a
    # job that fails resumes from it (runner resume=True; mmdet_backend)
    "checkpoint_every_iters": CHECKPOINT_DEFAULTS["checkpoint_every_iters"],
}
# Demo scale: the demo world (256 x 160 images) on a CPU in minutes. R-18 from scratch, 600
# iterations at lr 0.01 (~0.25 s/iter on 2 threads; demo original seed 0: bbox AP 19.7, segm AP
# 6.2). Measured alternatives: R-50 300 it. lr 0.005 bbox AP ~10, segm AP ~1.6; R-18 at lr 0.02
# collapses to AP 0.
DEMO_CONFIG: dict[str, Any] = {
    **DEFAULTS,
    "depth": 18,
    "pretrained": False,
    "iterations": 600,
    "lr": 0.01,
    "warmup_iters": 20,
    "steps": [0.75, 0.9],
    "scales": [[256, 144], [256, 176]],
    "test_scale": [256, 160],
    "fpn_channels": 64,
    "rpn_pre_nms_train": 300,
    "rpn_post_nms_train": 150,
    "rpn_pre_nms_test": 200,
    "rpn_post_nms_test": 100,
    "roi_batch_size": 64,
    "workers": 0,
    "log_every": 20,
}
PRESETS = {"paper": DEFAULTS, "demo": DEMO_CONFIG}
_META_KEYS = {"backend", "preset", "description", "threads"}
DEPTHS = (18, 34, 50, 101, 152)
OUTPUTS = {"mask_rcnn": ("bbox", "segm")}


def resolve_config(model_cfg: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults (of ``preset``, default ``paper``) + ``model_cfg``, checked; JSON-ready."""
    cfg, model_cfg, preset = with_preset(model_cfg, PRESETS, DEFAULTS, _META_KEYS, "mmdet")
    cfg["backend"] = "mmdet"

    def err(msg: str) -> ValueError:
        return ValueError(f"model config: {msg}")

    if cfg["arch"] != "mask_rcnn":
        raise err(f"the mmdet backend trains arch mask_rcnn only, got {cfg['arch']!r}")
    if int(cfg["depth"]) not in DEPTHS:
        raise err(f"depth must be one of {list(DEPTHS)}, got {cfg['depth']!r}")
    cfg["depth"] = int(cfg["depth"])
    if cfg["pretrained"] and cfg["depth"] not in TORCHVISION_FILES:
        raise err(f"pretrained: true needs depth 50, 101 or 152, got {cfg['depth']}")
    for key in ("epochs", "batch_size", "fpn_channels", "rpn_pre_nms_train", "rpn_post_nms_train",
                "rpn_pre_nms_test", "rpn_post_nms_test", "roi_batch_size", "max_per_img"):
        if int(cfg[key]) < 1:
            raise err(f"{key} must be >= 1, got {cfg[key]!r}")
    if cfg["iterations"] is not None and int(cfg["iterations"]) < 1:
        raise err(f"iterations must be >= 1 or null, got {cfg['iterations']!r}")
    if int(cfg["warmup_iters"]) < 0:
        raise err(f"warmup_iters must be >= 0, got {cfg['warmup_iters']!r}")
    if not float(cfg["lr"]) > 0:
        raise err(f"lr must be > 0, got {cfg['lr']!r}")
    steps = cfg["steps"]
    if isinstance(steps, (str, bytes)) or not all(isinstance(s, (int, float)) and s > 0
                                                  for s in steps):
        raise err(f"steps must be a list of positive numbers, got {steps!r}")
    if cfg["iterations"] is None and not all(float(s).is_integer() for s in steps):
        raise err(f"steps are epochs when iterations is not set: whole numbers, got {steps!r}")
    for key in ("scales", "test_scale"):
        v = cfg[key]
        pairs = v if key == "scales" else [v]
        if not isinstance(pairs, (list, tuple)) or not pairs or not all(
                isinstance(p, (list, tuple)) and len(p) == 2 and all(int(x) >= 1 for x in p)
                for p in pairs):
            raise err(f"{key} must be " + ("a list of [width, height] pairs" if key == "scales"
                                          else "[width, height]") + f", got {v!r}")
    if not 0.0 <= float(cfg["flip"]) <= 1.0:
        raise err(f"flip is a probability, got {cfg['flip']!r}")
    check_class_keys(cfg, "mask_rcnn", err)
    if int(cfg["workers"]) < 0:
        raise err(f"workers must be >= 0, got {cfg['workers']!r}")
    if not (cfg["device"] in ("auto", "cpu", "cuda") or str(cfg["device"]).startswith("cuda:")):
        raise err(f"device must be auto, cpu, cuda or cuda:N, got {cfg['device']!r}")
    check_checkpoint_keys(cfg, err)
    return json.loads(json.dumps(cfg))


def torchvision_weights_path(depth: int) -> str:
    """Where the ImageNet backbone is looked for (:func:`anonbench.weights.location`):
    ``$ANONBENCH_WEIGHTS/<file>`` when set, else where mmengine looks for
    ``torchvision://resnet<depth>`` (torch's hub cache, ``$TORCH_HOME/hub/checkpoints``)."""
    from .. import weights

    return str(weights.location(weights.torchvision_file(depth)))


def _steps(cfg: dict[str, Any]) -> list[int]:
    if cfg["iterations"] is None:
        return [int(s) for s in cfg["steps"]]
    it = int(cfg["iterations"])
    return [int(round(s * it)) if s < 1 else int(s) for s in cfg["steps"]]


def build_mmdet_config(cfg: dict[str, Any], *, classes: list[str], train_ann: str | None,
                       image_root: str | None, work_dir: str, seed: int) -> dict[str, Any]:
    """An MMDetection 3.x config dict (``mmengine.Config(...)``) for a resolved model config."""
    n = len(classes)
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    backbone: dict[str, Any] = {
        "type": "ResNet", "depth": cfg["depth"], "num_stages": 4, "out_indices": (0, 1, 2, 3),
        "frozen_stages": 1 if cfg["pretrained"] else -1,
        "norm_cfg": {"type": "BN", "requires_grad": True}, "norm_eval": bool(cfg["pretrained"]),
        "style": "pytorch"}
    if cfg["pretrained"]:
        # torchvision://resnetNN reads torch's hub cache; with $ANONBENCH_WEIGHTS set, the same
        # file from there (mmdet's ResNet has torchvision's parameter names)
        ckpt = f"torchvision://resnet{cfg['depth']}"
        if os.environ.get("ANONBENCH_WEIGHTS"):
            ckpt = torchvision_weights_path(cfg["depth"])
        backbone["init_cfg"] = {"type": "Pretrained", "checkpoint": ckpt}
    in_ch = [64, 128, 256, 512] if cfg["depth"] < 50 else [256, 512, 1024, 2048]
    fpn = int(cfg["fpn_channels"])
    model = {
        "type": "MaskRCNN",
        "data_preprocessor": {"type": "DetDataPreprocessor", "mean": mean, "std": std,
                              "bgr_to_rgb": True, "pad_mask": True, "pad_size_divisor": 32},
        "backbone": backbone,
        "neck": {"type": "FPN", "in_channels": in_ch, "out_channels": fpn, "num_outs": 5},
        "rpn_head": {
            "type": "RPNHead", "in_channels": fpn, "feat_channels": fpn,
            "anchor_generator": {"type": "AnchorGenerator", "scales": [8],
                                 "ratios": [0.5, 1.0, 2.0], "strides": [4, 8, 16, 32, 64]},
            "bbox_coder": {"type": "DeltaXYWHBBoxCoder", "target_means": [0.0] * 4,
                           "target_stds": [1.0] * 4},
            "loss_cls": {"type": "CrossEntropyLoss", "use_sigmoid": True, "loss_weight": 1.0},
            "loss_bbox": {"type": "L1Loss", "loss_weight": 1.0}},
        "roi_head": {
            "type": "StandardRoIHead",
            "bbox_roi_extractor": {"type": "SingleRoIExtractor",
                                   "roi_layer": {"type": "RoIAlign", "output_size": 7,
                                                 "sampling_ratio": 0},
                                   "out_channels": fpn, "featmap_strides": [4, 8, 16, 32]},
            "bbox_head": {"type": "Shared2FCBBoxHead", "in_channels": fpn, "fc_out_channels": 1024,
                          "roi_feat_size": 7, "num_classes": n,
                          "bbox_coder": {"type": "DeltaXYWHBBoxCoder", "target_means": [0.0] * 4,
                                         "target_stds": [0.1, 0.1, 0.2, 0.2]},
                          "reg_class_agnostic": False,
                          "loss_cls": {"type": "CrossEntropyLoss", "use_sigmoid": False,
                                       "loss_weight": 1.0},
                          "loss_bbox": {"type": "L1Loss", "loss_weight": 1.0}},
            "mask_roi_extractor": {"type": "SingleRoIExtractor",
                                   "roi_layer": {"type": "RoIAlign", "output_size": 14,
                                                 "sampling_ratio": 0},
                                   "out_channels": fpn, "featmap_strides": [4, 8, 16, 32]},
            "mask_head": {"type": "FCNMaskHead", "num_convs": 4, "in_channels": fpn,
                          "conv_out_channels": fpn, "num_classes": n,
                          "loss_mask": {"type": "CrossEntropyLoss", "use_mask": True,
                                        "loss_weight": 1.0}}},
        "train_cfg": {
            "rpn": {"assigner": {"type": "MaxIoUAssigner", "pos_iou_thr": 0.7, "neg_iou_thr": 0.3,
                                 "min_pos_iou": 0.3, "match_low_quality": True,
                                 "ignore_iof_thr": -1},
                    "sampler": {"type": "RandomSampler", "num": 256, "pos_fraction": 0.5,
                                "neg_pos_ub": -1, "add_gt_as_proposals": False},
                    "allowed_border": -1, "pos_weight": -1, "debug": False},
            "rpn_proposal": {"nms_pre": int(cfg["rpn_pre_nms_train"]),
                             "max_per_img": int(cfg["rpn_post_nms_train"]),
                             "nms": {"type": "nms", "iou_threshold": 0.7}, "min_bbox_size": 0},
            "rcnn": {"assigner": {"type": "MaxIoUAssigner", "pos_iou_thr": 0.5, "neg_iou_thr": 0.5,
                                  "min_pos_iou": 0.5, "match_low_quality": True,
                                  "ignore_iof_thr": -1},
                     "sampler": {"type": "RandomSampler", "num": int(cfg["roi_batch_size"]),
                                 "pos_fraction": 0.25, "neg_pos_ub": -1,
                                 "add_gt_as_proposals": True},
                     "mask_size": 28, "pos_weight": -1, "debug": False}},
        "test_cfg": {
            "rpn": {"nms_pre": int(cfg["rpn_pre_nms_test"]),
                    "max_per_img": int(cfg["rpn_post_nms_test"]),
                    "nms": {"type": "nms", "iou_threshold": 0.7}, "min_bbox_size": 0},
            "rcnn": {"score_thr": float(cfg["score_thr"]),
                     "nms": {"type": "nms", "iou_threshold": 0.5},
                     "max_per_img": int(cfg["max_per_img"]), "mask_thr_binary": 0.5}},
    }
    scales = [tuple(int(x) for x in s) for s in cfg["scales"]]
    train_pipeline = [
        {"type": "LoadImageFromFile"},
        {"type": "LoadAnnotations", "with_bbox": True, "with_mask": True},
        ({"type": "RandomResize", "scale": scales, "keep_ratio": True} if len(scales) > 1
         else {"type": "Resize", "scale": scales[0], "keep_ratio": True}),
        {"type": "RandomFlip", "prob": float(cfg["flip"])},
        {"type": "PackDetInputs"},
    ]
    test_pipeline = [
        {"type": "LoadImageFromFile"},
        {"type": "Resize", "scale": tuple(int(x) for x in cfg["test_scale"]), "keep_ratio": True},
        {"type": "PackDetInputs",
         "meta_keys": ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")},
    ]
    metainfo = {"classes": tuple(classes)}
    workers = int(cfg["workers"])
    train_dataloader = {
        "batch_size": int(cfg["batch_size"]), "num_workers": workers,
        "persistent_workers": workers > 0,
        "sampler": {"type": "DefaultSampler", "shuffle": True},
        "batch_sampler": {"type": "AspectRatioBatchSampler"},
        "dataset": {"type": "CocoDataset", "data_root": "", "metainfo": metainfo,
                    "ann_file": train_ann, "data_prefix": {"img": image_root},
                    "filter_cfg": {"filter_empty_gt": True, "min_size": 32},
                    "pipeline": train_pipeline},
    }
    steps = _steps(cfg)
    if cfg["iterations"] is None:
        train_cfg = {"type": "EpochBasedTrainLoop", "max_epochs": int(cfg["epochs"]),
                     "val_interval": int(cfg["epochs"]) + 1}
        by_epoch, end = True, int(cfg["epochs"])
    else:
        train_cfg = {"type": "IterBasedTrainLoop", "max_iters": int(cfg["iterations"]),
                     "val_interval": int(cfg["iterations"]) + 1}
        by_epoch, end = False, int(cfg["iterations"])
    param_scheduler = [
        {"type": "MultiStepLR", "begin": 0, "end": end, "by_epoch": by_epoch,
         "milestones": steps, "gamma": 0.1}]
    if int(cfg["warmup_iters"]) > 0:
        param_scheduler.insert(0, {"type": "LinearLR", "start_factor": float(cfg["warmup_ratio"]),
                                   "by_epoch": False, "begin": 0,
                                   "end": int(cfg["warmup_iters"])})
    # the runner's own checkpoints are the resume checkpoints (mmdet_backend: resume=True)
    ckpt_interval = 1 if by_epoch else min(int(cfg["iterations"]),
                                           int(cfg["checkpoint_every_iters"] or cfg["iterations"]))
    return {
        "default_scope": "mmdet",
        "model": model,
        "train_dataloader": train_dataloader,
        "train_cfg": train_cfg,
        "val_dataloader": None, "val_cfg": None, "val_evaluator": None,
        "test_dataloader": None, "test_cfg": None, "test_evaluator": None,
        "test_pipeline": test_pipeline,
        "optim_wrapper": {"type": "OptimWrapper",
                          "optimizer": {"type": "SGD", "lr": float(cfg["lr"]),
                                        "momentum": float(cfg["momentum"]),
                                        "weight_decay": float(cfg["weight_decay"])}},
        "param_scheduler": param_scheduler,
        "auto_scale_lr": {"enable": False, "base_batch_size": 16},
        "default_hooks": {
            "timer": {"type": "IterTimerHook"},
            "logger": {"type": "LoggerHook", "interval": int(cfg["log_every"])},
            "param_scheduler": {"type": "ParamSchedulerHook"},
            "checkpoint": {"type": "CheckpointHook", "interval": ckpt_interval,
                           "by_epoch": by_epoch, "max_keep_ckpts": 1},
            "sampler_seed": {"type": "DistSamplerSeedHook"},
            "visualization": {"type": "DetVisualizationHook"}},
        "env_cfg": {"cudnn_benchmark": False,
                    "mp_cfg": {"mp_start_method": "fork", "opencv_num_threads": 0},
                    "dist_cfg": {"backend": "nccl"}},
        "log_processor": {"type": "LogProcessor", "window_size": 50, "by_epoch": by_epoch},
        "log_level": "INFO",
        "load_from": cfg["load_from"],
        "resume": False,
        "randomness": {"seed": int(seed), "deterministic": False},
        "work_dir": work_dir,
    }


def train_log_records(scalars_lines: Iterable[str]) -> list[dict[str, Any]]:
    """mmengine's ``vis_data/scalars.json`` (one JSON object a line, written every
    ``log_every`` iterations) as the records of the other backends' ``train_log.jsonl``:
    ``{"iter", "lr", "losses": {"loss", "loss_cls", ...}, "seconds", "s_per_iter"}``.
    mmengine logs window means of ``time`` per iteration; ``seconds`` adds them up."""
    records: list[dict[str, Any]] = []
    seconds, last_iter = 0.0, 0
    for line in scalars_lines:
        if not line.strip():
            continue
        row = json.loads(line)
        if "iter" not in row or "loss" not in row:
            continue          # e.g. validation rows; this workflow trains without validation
        it = int(row["iter"])
        s_per_iter = float(row.get("time", 0.0))
        seconds += s_per_iter * max(0, it - last_iter)
        last_iter = it
        records.append({"iter": it, "lr": float(row.get("lr", 0.0)),
                        "losses": {k: float(v) for k, v in row.items() if k.startswith("loss")},
                        "seconds": round(seconds, 3), "s_per_iter": round(s_per_iter, 4)})
    return records


__all__ = ["DEFAULTS", "DEMO_CONFIG", "OUTPUTS", "PRESETS", "TORCHVISION_FILES",
           "build_mmdet_config", "resolve_config", "torchvision_weights_path", "train_log_records"]
