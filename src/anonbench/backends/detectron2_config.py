"""Model config of the detectron2 backend: defaults, model-zoo table and checks (no torch import).

The study trained its COCO and Cityscapes models with detectron2 (commit 58e472e076) from the
model-zoo configs ``COCO-Keypoints/keypoint_rcnn_R_50_FPN_*.yaml`` and
``Cityscapes/mask_rcnn_R_50_FPN.yaml``.  A model config names one of those (``zoo_config``) and
overrides a few keys; :func:`resolve_config` checks it at parse time and :func:`to_overrides`
translates it into detectron2 config keys (dotted ``KEY.SUB`` names -> values) that the backend
sets on top of the zoo config.  Keys left unset keep the zoo config's value, so the default run is
exactly the model-zoo recipe.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .categories import check_class_keys
from .presets import CHECKPOINT_DEFAULTS, check_checkpoint_keys, with_preset

# The model-zoo configs this backend knows, with the facts of each that a parse-time check needs
# (read from detectron2's configs/ at the study's commit; the tests compare them with the real
# files where detectron2 is installed).  iterations/steps/batch_size/lr: the zoo schedule;
# weights: the zoo config's MODEL.WEIGHTS (ImageNet for the keypoint configs; the Cityscapes
# config starts from the COCO Mask R-CNN, "for better, more stable performance").
_IMAGENET = {50: "detectron2://ImageNetPretrained/MSRA/R-50.pkl",
             101: "detectron2://ImageNetPretrained/MSRA/R-101.pkl"}
ZOO: dict[str, dict[str, Any]] = {
    "COCO-Keypoints/keypoint_rcnn_R_50_FPN_1x.yaml": {
        "arch": "keypoint_rcnn", "depth": 50, "iterations": 90000, "steps": [60000, 80000],
        "batch_size": 16, "lr": 0.02, "weights": _IMAGENET[50]},
    "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml": {
        "arch": "keypoint_rcnn", "depth": 50, "iterations": 270000, "steps": [210000, 250000],
        "batch_size": 16, "lr": 0.02, "weights": _IMAGENET[50]},
    "COCO-Keypoints/keypoint_rcnn_R_101_FPN_3x.yaml": {
        "arch": "keypoint_rcnn", "depth": 101, "iterations": 270000, "steps": [210000, 250000],
        "batch_size": 16, "lr": 0.02, "weights": _IMAGENET[101]},
    "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml": {
        "arch": "mask_rcnn", "depth": 50, "iterations": 90000, "steps": [60000, 80000],
        "batch_size": 16, "lr": 0.02, "weights": _IMAGENET[50]},
    "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml": {
        "arch": "mask_rcnn", "depth": 50, "iterations": 270000, "steps": [210000, 250000],
        "batch_size": 16, "lr": 0.02, "weights": _IMAGENET[50]},
    "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x.yaml": {
        "arch": "mask_rcnn", "depth": 101, "iterations": 270000, "steps": [210000, 250000],
        "batch_size": 16, "lr": 0.02, "weights": _IMAGENET[101]},
    "Cityscapes/mask_rcnn_R_50_FPN.yaml": {
        "arch": "mask_rcnn", "depth": 50, "iterations": 24000, "steps": [18000],
        "batch_size": 8, "lr": 0.01,
        "weights": "detectron2://COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/137849600/"
                   "model_final_f10217.pkl"},
}
DEFAULT_ZOO = {"keypoint_rcnn": "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml",
               "mask_rcnn": "Cityscapes/mask_rcnn_R_50_FPN.yaml"}
# detectron2's ImageNet-pretrained backbones (MSRA caffe2 ResNets); R-152 has none there
IMAGENET_WEIGHTS = _IMAGENET
DETECTRON2_URL_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"
DETECTRON2_COMMIT = "58e472e076"  # the study's

# None: keep the zoo config's value.
DEFAULTS: dict[str, Any] = {
    "arch": None,             # mask_rcnn | keypoint_rcnn; must match zoo_config (required by the schema)
    "zoo_config": None,       # a key of ZOO; None: DEFAULT_ZOO[arch]
    "depth": None,            # ResNet 18/34/50/101/152 (MODEL.RESNETS.DEPTH); None: the zoo's
    "pretrained": True,       # start from the zoo config's MODEL.WEIGHTS (or `weights`)
    "weights": None,          # a local .pkl/.pth or detectron2:// URL instead of the zoo's
    "iterations": None,       # SOLVER.MAX_ITER
    "batch_size": None,       # SOLVER.IMS_PER_BATCH
    "lr": None,               # SOLVER.BASE_LR
    "steps": None,            # SOLVER.STEPS; <1: fraction of iterations; None: the zoo's steps,
                              # scaled by iterations / zoo iterations when iterations is set
    "warmup_iters": None,     # SOLVER.WARMUP_ITERS
    "min_size": None,         # INPUT.MIN_SIZE_TRAIN (a size or a list, "choice" sampling)
    "max_size": None,         # INPUT.MAX_SIZE_TRAIN
    "min_size_test": None,    # INPUT.MIN_SIZE_TEST
    "max_size_test": None,    # INPUT.MAX_SIZE_TEST
    "classes": None,          # category names to train; None: all (keypoint_rcnn: persons)
    "exclude_classes": None,  # category names to leave out (e.g. Cityscapes without person)
    "workers": 4,             # DATALOADER.NUM_WORKERS
    "device": "auto",         # auto (cuda if available) | cpu | cuda | cuda:N
    "log_every": 20,
    "opts": None,             # {"MODEL.RPN.POST_NMS_TOPK_TRAIN": 500, ...}: raw detectron2 keys
    **CHECKPOINT_DEFAULTS,     # resume checkpoints (anonbench.backends.presets)
}

# Demo scale: a small model for the demo world (CPU, minutes).
DEMO_CONFIG: dict[str, Any] = {
    **DEFAULTS,
    "depth": 18,
    "pretrained": False,
    "iterations": 300,
    "batch_size": 2,
    "lr": 0.005,
    "warmup_iters": 20,
    "min_size": 160,
    "max_size": 256,
    "min_size_test": 160,
    "max_size_test": 256,
    "workers": 0,
    "opts": {
        "MODEL.RESNETS.RES2_OUT_CHANNELS": 64,   # R18/R34 need 64
        "MODEL.FPN.OUT_CHANNELS": 64,
        "MODEL.ANCHOR_GENERATOR.SIZES": [[16], [32], [64], [128], [256]],
        "MODEL.RPN.PRE_NMS_TOPK_TRAIN": 300,
        "MODEL.RPN.PRE_NMS_TOPK_TEST": 200,
        "MODEL.RPN.POST_NMS_TOPK_TRAIN": 150,
        "MODEL.RPN.POST_NMS_TOPK_TEST": 100,
        "MODEL.RPN.BATCH_SIZE_PER_IMAGE": 128,
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": 64,
        "MODEL.ROI_BOX_HEAD.FC_DIM": 256,
        "MODEL.ROI_MASK_HEAD.CONV_DIM": 64,
        "MODEL.ROI_MASK_HEAD.NUM_CONV": 2,
        "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS": [64, 64, 64],
        "SOLVER.CHECKPOINT_PERIOD": 1000000,
    },
}
PRESETS = {"paper": DEFAULTS, "demo": DEMO_CONFIG}
_META_KEYS = {"backend", "preset", "description", "threads"}
_ARCHS = ("mask_rcnn", "keypoint_rcnn")
DEPTHS = (18, 34, 50, 101, 152)
OUTPUTS: dict[str, tuple[str, ...]] = {"mask_rcnn": ("bbox", "segm"),
                                       "keypoint_rcnn": ("bbox", "keypoints")}
# keys the backend sets itself from the data, the seed and the run directory
RESERVED_OPTS = ("MODEL.ROI_HEADS.NUM_CLASSES", "MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS",
                 "DATASETS.TRAIN", "DATASETS.TEST", "SEED", "OUTPUT_DIR", "MODEL.WEIGHTS",
                 "MODEL.DEVICE", "MODEL.MASK_ON", "MODEL.KEYPOINT_ON", "INPUT.MASK_FORMAT")


def resolve_config(model_cfg: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults (of ``preset``, default ``paper``) + ``model_cfg``, checked; JSON-ready."""
    cfg, model_cfg, preset = with_preset(model_cfg, PRESETS, DEFAULTS, _META_KEYS, "detectron2")
    if preset != "paper" and "opts" in model_cfg:   # a preset's opts are extended, not replaced
        cfg["opts"] = {**(PRESETS[preset]["opts"] or {}), **(model_cfg["opts"] or {})}
    cfg["backend"] = "detectron2"

    def err(msg: str) -> ValueError:
        return ValueError(f"model config: {msg}")

    arch = cfg["arch"]
    zoo = cfg["zoo_config"]
    if arch is not None and arch not in _ARCHS:
        raise err(f"arch must be one of {', '.join(_ARCHS)} for the detectron2 backend, "
                  f"got {arch!r}")
    if zoo is None:
        if arch is None:
            raise err("give arch (mask_rcnn | keypoint_rcnn) or zoo_config")
        zoo = cfg["zoo_config"] = DEFAULT_ZOO[arch]
    if zoo not in ZOO:
        raise err(f"zoo_config {zoo!r} is not a model-zoo config this backend knows; known: "
                  f"{', '.join(ZOO)}")
    info = ZOO[zoo]
    if arch is None:
        arch = cfg["arch"] = info["arch"]
    if arch != info["arch"]:
        raise err(f"arch {arch} does not match zoo_config {zoo} (a {info['arch']} config)")
    if cfg["depth"] is not None:
        if int(cfg["depth"]) not in DEPTHS:
            raise err(f"depth must be one of {list(DEPTHS)}, got {cfg['depth']!r}")
        cfg["depth"] = int(cfg["depth"])
    depth = cfg["depth"] or info["depth"]
    if cfg["pretrained"] and cfg["weights"] is None and depth != info["depth"]:
        if depth not in IMAGENET_WEIGHTS:
            raise err(f"depth {depth}: detectron2's model zoo has no ImageNet R-{depth}; set "
                      f"pretrained: false or weights: <file>")
        if info["weights"] != IMAGENET_WEIGHTS[info["depth"]]:
            raise err(f"depth {depth} with zoo_config {zoo}: its weights are a whole "
                      f"R-{info['depth']} model; set weights: <file>, or pretrained: false")
    for key in ("iterations", "batch_size", "warmup_iters", "max_size", "min_size_test",
                "max_size_test"):
        if cfg[key] is not None and (int(cfg[key]) < (0 if key == "warmup_iters" else 1)):
            raise err(f"{key} must be >= {0 if key == 'warmup_iters' else 1}, got {cfg[key]!r}")
    if cfg["lr"] is not None and not float(cfg["lr"]) > 0:
        raise err(f"lr must be > 0, got {cfg['lr']!r}")
    if cfg["min_size"] is not None:
        sizes = cfg["min_size"] if isinstance(cfg["min_size"], (list, tuple)) else [cfg["min_size"]]
        if not sizes or any(int(v) < 1 for v in sizes):
            raise err(f"min_size must be a size or a list of sizes, got {cfg['min_size']!r}")
        cfg["min_size"] = [int(v) for v in sizes]
    if cfg["steps"] is not None:
        if isinstance(cfg["steps"], (str, bytes)) or not all(
                isinstance(s, (int, float)) and s > 0 for s in cfg["steps"]):
            raise err(f"steps must be a list of positive numbers, got {cfg['steps']!r}")
        cfg["steps"] = list(cfg["steps"])
    check_class_keys(cfg, arch, err)
    if int(cfg["workers"]) < 0:
        raise err(f"workers must be >= 0, got {cfg['workers']!r}")
    if not (cfg["device"] in ("auto", "cpu", "cuda") or str(cfg["device"]).startswith("cuda:")):
        raise err(f"device must be auto, cpu, cuda or cuda:N, got {cfg['device']!r}")
    opts = cfg["opts"]
    if opts is not None:
        if not isinstance(opts, dict) or not all(isinstance(k, str) for k in opts):
            raise err("opts must be a mapping of detectron2 config keys (MODEL.X.Y) to values")
        bad = [k for k in opts if k in RESERVED_OPTS or k != k.upper()]
        if bad:
            raise err(f"opts: {', '.join(bad)} cannot be set here (the backend sets "
                      f"{', '.join(RESERVED_OPTS)} itself; keys are upper-case detectron2 keys)")
    check_checkpoint_keys(cfg, err)
    return json.loads(json.dumps(cfg))


def schedule(cfg: dict[str, Any]) -> tuple[int, list[int]]:
    """(max_iter, steps as iteration numbers) of a resolved config."""
    info = ZOO[cfg["zoo_config"]]
    iters = int(cfg["iterations"] or info["iterations"])
    if cfg["steps"] is not None:
        steps = [int(round(s * iters)) if s < 1 else int(s) for s in cfg["steps"]]
    else:
        steps = [int(round(s * iters / info["iterations"])) for s in info["steps"]]
    # detectron2 (fvcore) rejects milestones at or past MAX_ITER; such steps never happen anyway
    return iters, sorted({s for s in steps if 0 < s < iters})


def weights_url(cfg: dict[str, Any]) -> str | None:
    """What MODEL.WEIGHTS is set to: None when not pretrained."""
    if not cfg["pretrained"]:
        return None
    if cfg["weights"] is not None:
        return str(cfg["weights"])
    info = ZOO[cfg["zoo_config"]]
    depth = cfg["depth"] or info["depth"]
    return info["weights"] if depth == info["depth"] else IMAGENET_WEIGHTS[depth]


def download_url(weights: str) -> str:
    """The https URL of a ``detectron2://`` weights name (other names unchanged)."""
    if weights.startswith("detectron2://"):
        return DETECTRON2_URL_PREFIX + weights[len("detectron2://"):]
    return weights


def weights_cache_path(weights: str, cache_dir: str | None = None) -> str:
    """Where detectron2 (iopath) keeps a downloaded ``weights`` file; a local path unchanged.

    iopath caches ``https://host/a/b/f.pkl`` at ``$FVCORE_CACHE/a/b/f.pkl`` (default
    ``~/.torch/iopath_cache``).
    """
    url = download_url(weights)
    if not url.startswith(("http://", "https://")):
        return os.path.expanduser(url)
    if cache_dir is None:
        cache_dir = os.path.expanduser(os.environ.get("FVCORE_CACHE", "~/.torch/iopath_cache"))
    from urllib.parse import urlparse

    p = urlparse(url)
    return os.path.join(cache_dir, os.path.dirname(p.path.lstrip("/")), os.path.basename(p.path))


def to_overrides(cfg: dict[str, Any], *, num_classes: int, num_keypoints: int = 17,
                 train_dataset: str, seed: int, out_dir: str, device: str) -> dict[str, Any]:
    """detectron2 keys -> values to set over the zoo config (a flat, CfgNode-like dict)."""
    iters, steps = schedule(cfg)
    o: dict[str, Any] = {}
    if cfg["depth"] is not None:
        o["MODEL.RESNETS.DEPTH"] = cfg["depth"]
    o.update(cfg["opts"] or {})
    o["MODEL.WEIGHTS"] = weights_url(cfg) or ""
    o["MODEL.DEVICE"] = device
    o["MODEL.ROI_HEADS.NUM_CLASSES"] = int(num_classes)
    if cfg["arch"] == "keypoint_rcnn":
        o["MODEL.KEYPOINT_ON"] = True
        o["MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS"] = int(num_keypoints)
    else:
        o["MODEL.MASK_ON"] = True
        o["INPUT.MASK_FORMAT"] = "bitmask"   # manifests carry RLE and polygons alike
    if not cfg["pretrained"]:
        # the zoo's frozen stem/res2 and FrozenBN only make sense over pretrained weights
        o["MODEL.BACKBONE.FREEZE_AT"] = 0
        o["MODEL.RESNETS.NORM"] = "BN"
    o["SOLVER.MAX_ITER"] = iters
    o["SOLVER.STEPS"] = tuple(steps)
    if cfg["batch_size"] is not None:
        o["SOLVER.IMS_PER_BATCH"] = int(cfg["batch_size"])
    if cfg["lr"] is not None:
        o["SOLVER.BASE_LR"] = float(cfg["lr"])
    if cfg["warmup_iters"] is not None:
        o["SOLVER.WARMUP_ITERS"] = int(cfg["warmup_iters"])
    elif iters < 1000:
        o["SOLVER.WARMUP_ITERS"] = max(0, iters // 10)
    if cfg["min_size"] is not None:
        o["INPUT.MIN_SIZE_TRAIN"] = tuple(cfg["min_size"])
        o["INPUT.MIN_SIZE_TRAIN_SAMPLING"] = "choice"
    for key, d2 in (("max_size", "INPUT.MAX_SIZE_TRAIN"), ("min_size_test", "INPUT.MIN_SIZE_TEST"),
                    ("max_size_test", "INPUT.MAX_SIZE_TEST")):
        if cfg[key] is not None:
            o[d2] = int(cfg[key])
    o["DATALOADER.NUM_WORKERS"] = int(cfg["workers"])
    o["DATASETS.TRAIN"] = (train_dataset,)
    o["DATASETS.TEST"] = ()
    o["TEST.EVAL_PERIOD"] = 0
    o["SEED"] = int(seed)
    o["OUTPUT_DIR"] = str(out_dir)
    return o


__all__ = ["DEFAULTS", "DEFAULT_ZOO", "DEMO_CONFIG", "DEPTHS", "OUTPUTS", "PRESETS", "ZOO",
           "download_url", "resolve_config", "schedule", "to_overrides", "weights_cache_path",
           "weights_url"]
