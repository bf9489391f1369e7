"""Training and inference with detectron2 from its model-zoo configs (the study's COCO/Cityscapes setup).

The study (Hukkelås & Lindseth 2023) trained Keypoint R-CNN R-50 FPN on COCO and Mask R-CNN
R-50 FPN on Cityscapes with detectron2 (commit 58e472e076; ``envs/detectron2.yaml``).  This
backend starts from the same model-zoo config (``zoo_config``), sets the keys of the model config
over it (:func:`anonbench.backends.detectron2_config.to_overrides`), registers our manifest as a
detectron2 dataset (``DatasetCatalog`` / ``MetadataCatalog``, keypoint names and flip map for
keypoint models) and trains with detectron2's own optimizer, LR scheduler and train loader (the
steps of its ``SimpleTrainer``).  ``cfg.SEED`` is the seed of the run.

Output: ``out_dir/model.pt`` (what the workflow's train rule names): the model's state dict, the
full detectron2 config as YAML, the categories and the resolved model config; loaded with
``torch.load(weights_only=True)``.  ``predict`` returns COCO results (xywh boxes, compressed RLE
masks, keypoints) with the manifest's own category ids.

Pretrained weights (``pretrained: true``): the zoo config's ``MODEL.WEIGHTS`` (ImageNet R-50 for the
keypoint configs, the COCO Mask R-CNN for the Cityscapes config), from detectron2's cache
(``$FVCORE_CACHE``, default ``~/.torch/iopath_cache``; or ``$ANONBENCH_WEIGHTS``, see
:mod:`anonbench.weights`), downloaded when missing and possible;
offline, training stops before reading any data and names the file and where to put it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch

import detectron2  # noqa: F401  (ImportError here: the backend is not available)
from detectron2.config import CfgNode, get_cfg

from ..manifest import Manifest, encode_mask, image_path, iter_images, load_manifest
from .categories import flip_map, keypoint_names, select_categories
from .detectron2_config import (  # noqa: F401  (re-exported)
    DEFAULTS,
    DEMO_CONFIG,
    ZOO,
    download_url,
    resolve_config,
    to_overrides,
    weights_cache_path,
    weights_url,
)
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

CHECKPOINT_FORMAT = "anonbench-detectron2-v1"


def zoo_config_file(name: str) -> str:
    """Path of a model-zoo config inside the installed detectron2 (without ``pkg_resources``)."""
    base = Path(detectron2.__file__).parent
    for cand in (base / "model_zoo" / "configs" / name, base.parent / "configs" / name):
        if cand.is_file():
            return str(cand)
    raise FileNotFoundError(f"detectron2 model-zoo config {name} not found under {base} "
                            f"(detectron2 installed without its configs?)")


def set_key(cfg: CfgNode, key: str, value: Any) -> None:
    """``cfg.A.B.C = value`` for ``key`` ``"A.B.C"``; the key must exist (typos are errors)."""
    node = cfg
    parts = key.split(".")
    for p in parts[:-1]:
        if p not in node:
            raise ValueError(f"detectron2 config has no key {key}")
        node = node[p]
    if parts[-1] not in node:
        raise ValueError(f"detectron2 config has no key {key}")
    old = node[parts[-1]]
    if isinstance(old, tuple) and isinstance(value, list):
        value = tuple(value)
    node[parts[-1]] = value


def build_cfg(resolved: dict[str, Any], overrides: dict[str, Any]) -> CfgNode:
    """The zoo config with ``overrides`` set over it."""
    cfg = get_cfg()
    cfg.merge_from_file(zoo_config_file(resolved["zoo_config"]))
    for k, v in overrides.items():
        set_key(cfg, k, v)
    return cfg


def _read_rgb(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def local_weights(weights: str) -> str:
    """A local file for ``weights`` (cached, or downloaded now); a clear error offline.

    Files of the weights registry (:mod:`anonbench.weights`) are looked for where it says:
    ``$ANONBENCH_WEIGHTS/<name>`` when set (then nothing is downloaded here), else detectron2's
    cache ``$FVCORE_CACHE/<path of the URL>``."""
    from .. import weights as registry

    entry = registry.detectron2_file(weights)
    env_dir = registry.weights_dir()
    path = str(registry.location(entry)) if entry is not None else weights_cache_path(weights)
    if os.path.isfile(path):
        return path
    url = download_url(weights)
    if not url.startswith(("http://", "https://")):
        raise FileNotFoundError(f"model config weights: {path} not found")
    hint = f" {registry.missing_message(entry, path)}." if entry is not None else ""
    if entry is not None and env_dir is not None:
        raise RuntimeError(f"pretrained weights {weights} are not in ${registry.ENV}: download "
                           f"{url} and put it at {path}.{hint}")
    try:
        from detectron2.utils.file_io import PathManager

        return PathManager.get_local_path(url)
    except Exception as e:  # URLError, HTTPError, OSError ...
        raise RuntimeError(
            f"pretrained weights {weights} are not in detectron2's cache and could not be "
            f"downloaded ({type(e).__name__}: {e}). Download {url} and put it at {path} "
            f"(or set FVCORE_CACHE), set `weights: <local file>`, or set `pretrained: false` "
            f"to train from scratch.{hint}") from e


# --------------------------------------------------------------------------------------------
# data


def dataset_dicts(manifest: Manifest, label_of: dict[int, int], arch: str,
                  num_keypoints: int) -> list[dict[str, Any]]:
    """detectron2's dataset records ("standard dataset dicts") of a manifest."""
    from detectron2.structures import BoxMode
    from pycocotools import mask as mask_utils

    records = []
    for img, anns in iter_images(manifest):
        h, w = int(img["height"]), int(img["width"])
        objs = []
        for a in anns:
            if a["category_id"] not in label_of:
                continue
            x, y, bw, bh = (float(v) for v in a["bbox"])
            crowd = int(a.get("iscrowd", 0))
            if not crowd and (bw <= 0 or bh <= 0):
                continue
            o: dict[str, Any] = {"bbox": [x, y, bw, bh], "bbox_mode": BoxMode.XYWH_ABS,
                                 "category_id": label_of[a["category_id"]], "iscrowd": crowd}
            if arch == "mask_rcnn":
                seg = a.get("segmentation")
                if not seg or (isinstance(seg, dict) and not seg.get("counts")):
                    if not crowd:
                        continue   # no mask to learn from
                    seg = [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]
                if isinstance(seg, dict) and isinstance(seg["counts"], list):  # uncompressed RLE
                    seg = mask_utils.frPyObjects(seg, h, w)
                o["segmentation"] = seg
            else:
                kps = a.get("keypoints") or [0.0] * (3 * num_keypoints)
                # COCO keypoints are pixel indices; detectron2 works in continuous coordinates
                # (its own COCO loader adds 0.5 the same way)
                o["keypoints"] = [float(v) + 0.5 if i % 3 != 2 else float(v)
                                  for i, v in enumerate(kps)]
            objs.append(o)
        records.append({"file_name": image_path(manifest, img), "height": h, "width": w,
                        "image_id": img["id"], "annotations": objs})
    return records


def register_manifest(manifest: Manifest, categories: list[dict[str, Any]], arch: str,
                      kp_names: list[str], tag: str) -> str:
    """Register the manifest as a detectron2 dataset; returns its name."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    label_of = {c["id"]: i for i, c in enumerate(categories)}
    name = f"anonbench_{tag}"
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    records = dataset_dicts(manifest, label_of, arch, len(kp_names))
    DatasetCatalog.register(name, lambda: records)
    meta = MetadataCatalog.get(name)
    meta.set(thing_classes=[c["name"] for c in categories],
             thing_dataset_id_to_contiguous_id=dict(label_of))
    if arch == "keypoint_rcnn":
        meta.set(keypoint_names=list(kp_names), keypoint_flip_map=flip_map(kp_names))
    return name


# --------------------------------------------------------------------------------------------
# training


def versions() -> dict[str, str]:
    return {"torch": str(torch.__version__), "detectron2": str(detectron2.__version__),
            "numpy": str(np.__version__)}


def train(train_manifest: str, model_cfg: dict[str, Any], seed: int, out_dir: str, *,
          threads: int = 1, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train on ``train_manifest``; write ``out_dir/model.pt`` and ``out_dir/train_log.jsonl``."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.data import build_detection_train_loader
    from detectron2.modeling import build_model
    from detectron2.solver import build_lr_scheduler, build_optimizer
    from detectron2.utils.env import seed_all_rng
    from detectron2.utils.events import EventStorage

    cfg_r = resolve_config(model_cfg)
    emit = log or (lambda line: print(line, file=sys.stderr, flush=True))
    device = resolve_device(cfg_r["device"])
    weights = weights_url(cfg_r)
    weights_file = local_weights(weights) if weights else None   # fail before reading data
    manifest = load_manifest(train_manifest)
    arch = cfg_r["arch"]
    categories = select_categories(manifest, cfg_r["classes"], cfg_r["exclude_classes"], arch)
    kp_names = keypoint_names(manifest, categories)
    tag = hashlib.sha1(f"{os.path.abspath(train_manifest)}:{seed}".encode()).hexdigest()[:12]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = register_manifest(manifest, categories, arch, kp_names, tag)
    overrides = to_overrides(cfg_r, num_classes=len(categories), num_keypoints=len(kp_names),
                             train_dataset=name, seed=seed, out_dir=str(out), device=device)
    if weights_file:
        overrides["MODEL.WEIGHTS"] = weights_file
    cfg = build_cfg(cfg_r, overrides)
    max_iter = int(cfg.SOLVER.MAX_ITER)
    emit(f"[detectron2] {cfg_r['zoo_config']} ({arch}, R-{cfg.MODEL.RESNETS.DEPTH}) seed={seed}: "
         f"{len(manifest['images'])} images, {len(categories)} classes, {max_iter} iterations x "
         f"{cfg.SOLVER.IMS_PER_BATCH}, lr {cfg.SOLVER.BASE_LR}, steps {tuple(cfg.SOLVER.STEPS)}, "
         f"weights {weights_file or 'none (from scratch)'}, threads={threads}, device={device}")

    old_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    py_state, np_state = random.getstate(), np.random.get_state()
    log_path, tmp_log = out / "train_log.jsonl", out / ".train_log.jsonl.tmp"
    last: dict[str, float] = {}
    key = resume_key(cfg_r, train_manifest, seed)
    resume = load_resume(out, key, warn=lambda m: emit(f"[detectron2] {m}"))
    start = int(resume["iteration"]) if resume is not None else 0
    attempt = int(resume.get("attempt", 1)) + 1 if resume is not None else 1
    plan = Checkpointing(cfg_r["checkpoint_every_iters"], cfg_r["checkpoint_every_minutes"],
                         cfg_r["stop_before_walltime_minutes"], walltime_deadline())
    interrupted: TrainingInterrupted | None = None
    try:
        devs = [torch.device(device).index or 0] if device.startswith("cuda") else []
        kept = "".join(line + "\n" for line in log_lines_until(tmp_log, start)) \
            if resume is not None else ""
        with torch.random.fork_rng(devices=devs), open(tmp_log, "w") as flog, \
                EventStorage(start) as storage, plan.signals():
            flog.write(kept)
            seed_all_rng(int(seed))      # what detectron2's default_setup does with cfg.SEED
            model = build_model(cfg)
            if weights_file and resume is None:
                DetectionCheckpointer(model).load(weights_file)
            model.train()
            optimizer = build_optimizer(cfg, model)
            scheduler = build_lr_scheduler(cfg, optimizer)
            # detectron2's own checkpointer: model, optimizer, LR scheduler (+ our extras);
            # written atomically by runtime.save_resume, read back by Checkpointer.load
            checkpointer = DetectionCheckpointer(model, str(out), optimizer=optimizer,
                                                 scheduler=scheduler)
            if resume is not None:
                checkpointer.load(str(resume_path(out)))   # model, optimizer, scheduler
                set_rng_state(resume["rng"])
                flog.write(json.dumps({"event": "resume", "iter": start, "attempt": attempt,
                                       "reason": resume.get("reason")}) + "\n")
                emit(f"[detectron2] resumed from {resume_path(out)} at iteration "
                     f"{start}/{max_iter} (attempt {attempt}; the data order is a new stream "
                     f"from the restored RNG state, not the interrupted one's)")
            # the sampler's seed is drawn from the (restored) numpy RNG here
            loader = build_detection_train_loader(cfg)
            sums: dict[str, float] = {}
            n_sum = 0
            t0 = t_last = time.perf_counter()
            for it, data in zip(range(start, max_iter), loader):
                storage.iter = it
                loss_dict = model(data)
                losses = sum(loss_dict.values())
                if not torch.isfinite(losses):
                    raise FloatingPointError(
                        f"training diverged at iteration {it} (loss {float(losses)}; "
                        f"{ {k: float(v) for k, v in loss_dict.items()} }); lower lr")
                optimizer.zero_grad()
                losses.backward()
                optimizer.step()
                lr = optimizer.param_groups[0]["lr"]
                scheduler.step()
                for k, v in loss_dict.items():
                    sums[k] = sums.get(k, 0.0) + v.detach().item()
                sums["loss"] = sums.get("loss", 0.0) + losses.detach().item()
                n_sum += 1
                if (it + 1) % int(cfg_r["log_every"]) == 0 or it + 1 == max_iter:
                    now = time.perf_counter()
                    rec = {"iter": it + 1, "lr": lr, "attempt": attempt,
                           "losses": {k: v / n_sum for k, v in sums.items()},
                           "seconds": round(now - t0, 3),
                           "s_per_iter": round((now - t_last) / n_sum, 4)}
                    flog.write(json.dumps(rec) + "\n")
                    flog.flush()
                    emit(f"[detectron2] iter {it + 1}/{max_iter} loss {rec['losses']['loss']:.3f} "
                         f"lr {lr:.4g} {rec['s_per_iter']:.3f} s/iter")
                    last = rec["losses"]
                    sums, n_sum, t_last = {}, 0, now
                reason = plan.due(it + 1) if it + 1 < max_iter else None
                if reason is not None:
                    state = {name: obj.state_dict()
                             for name, obj in checkpointer.checkpointables.items()}
                    state.update(model=checkpointer.model.state_dict(), iteration=it + 1,
                                 attempt=attempt, reason=reason, rng=rng_state(device),
                                 model_cfg=cfg_r, seed=int(seed))
                    save_resume(state, key, out)
                    plan.saved()
                    if reason.startswith("signal") or reason == "walltime":
                        interrupted = TrainingInterrupted(
                            f"training stopped at iteration {it + 1}/{max_iter} ({reason}); "
                            f"resume checkpoint {resume_path(out)}: the retry resumes from it")
                        break
            seconds = time.perf_counter() - t0
            if interrupted is not None:
                emit(f"[detectron2] {interrupted}")
                raise interrupted
            ckpt = {
                "format": CHECKPOINT_FORMAT,
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "d2_config": cfg.dump(),
                "model_cfg": cfg_r,
                "categories": categories,
                "keypoint_names": kp_names if arch == "keypoint_rcnn" else None,
                "seed": int(seed),
                "iterations": max_iter,
                "threads": int(threads),
                "device": device,
                "versions": versions(),
            }
        save_checkpoint(ckpt, out / "model.pt")
        os.replace(tmp_log, log_path)
        remove_resume(out)
    finally:
        torch.set_num_threads(old_threads)
        random.setstate(py_state)
        np.random.set_state(np_state)
        if tmp_log.exists() and not resume_path(out).exists():
            tmp_log.unlink()
    return {
        "checkpoint": str(out / "model.pt"), "train_log": str(log_path), "arch": arch,
        "zoo_config": cfg_r["zoo_config"], "seed": int(seed), "iterations": max_iter,
        "num_images": len(manifest["images"]), "categories": categories,
        "seconds": round(seconds, 3), "s_per_iter": round(seconds / max(1, max_iter - start), 4),
        "resumed_from": start, "attempt": attempt,
        "final_losses": last, "threads": int(threads), "device": device,
    }


# --------------------------------------------------------------------------------------------
# inference


def load_checkpoint(checkpoint: str, device: str = "cpu") -> tuple[Any, CfgNode, dict[str, Any]]:
    """(model in eval mode, detectron2 config, checkpoint dict); nothing is downloaded."""
    from detectron2.modeling import build_model

    ckpt = read_model_checkpoint(checkpoint, CHECKPOINT_FORMAT, "detectron2")
    cfg = get_cfg()
    cfg.merge_from_other_cfg(CfgNode.load_cfg(ckpt["d2_config"]))
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.DEVICE = device
    model = build_model(cfg)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, cfg, ckpt


def predict(checkpoint: str, manifest: str | Manifest, *, threads: int = 1,
            batch_size: int = 4, device: str = "auto") -> list[dict[str, Any]]:
    """COCO results (bbox, score, category_id, segmentation | keypoints) for the manifest's images."""
    import detectron2.data.transforms as T

    m = manifest if isinstance(manifest, dict) else load_manifest(manifest)
    with torch_threads(threads):
        model, cfg, ckpt = load_checkpoint(checkpoint, resolve_device(device))
        cat_ids = [c["id"] for c in ckpt["categories"]]
        aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
        bgr = cfg.INPUT.FORMAT == "BGR"
        results: list[dict[str, Any]] = []
        images = m["images"]
        with torch.inference_mode():
            for i in range(0, len(images), max(1, int(batch_size))):
                batch = images[i:i + max(1, int(batch_size))]
                inputs = []
                for img in batch:
                    rgb = _read_rgb(image_path(m, img))
                    im = rgb[:, :, ::-1] if bgr else rgb
                    h, w = im.shape[:2]
                    im = aug.get_transform(im).apply_image(im)
                    inputs.append({"image": torch.as_tensor(
                        np.ascontiguousarray(im.transpose(2, 0, 1)).astype("float32")),
                        "height": h, "width": w})
                for img, out in zip(batch, model(inputs)):
                    results.extend(instances_to_coco(img["id"], out["instances"].to("cpu"),
                                                     cat_ids))
    return results


def instances_to_coco(image_id: int, inst: Any, cat_ids: list[int]) -> list[dict[str, Any]]:
    """detectron2 ``Instances`` -> COCO results (as detectron2's own COCO evaluator writes them)."""
    boxes = inst.pred_boxes.tensor.numpy().tolist()
    scores = inst.scores.tolist()
    classes = inst.pred_classes.tolist()
    masks = inst.pred_masks.numpy() if inst.has("pred_masks") else None
    kps = inst.pred_keypoints.numpy().copy() if inst.has("pred_keypoints") else None
    res = []
    for k, (b, s, c) in enumerate(zip(boxes, scores, classes)):
        r: dict[str, Any] = {
            "image_id": image_id, "category_id": cat_ids[c],
            "bbox": [round(b[0], 2), round(b[1], 2), round(b[2] - b[0], 2), round(b[3] - b[1], 2)],
            "score": round(float(s), 5)}
        if masks is not None:
            r["segmentation"] = encode_mask(masks[k].astype(bool))
        if kps is not None:
            kp = kps[k]
            kp[:, :2] -= 0.5      # back to COCO pixel indices
            r["keypoints"] = [round(float(v), 3) for v in kp.reshape(-1)]
        res.append(r)
    return res


__all__ = ["CHECKPOINT_FORMAT", "build_cfg", "dataset_dicts", "instances_to_coco",
           "load_checkpoint", "predict", "register_manifest", "resolve_config", "set_key",
           "train", "zoo_config_file"]
