"""Training and inference with MMDetection 3.x: the study's BDD100K Mask R-CNN R-50 FPN recipe.

The config is built in code (:func:`anonbench.backends.mmdet_config.build_mmdet_config`); the
training manifest is written as COCO json (selected categories only) next to the run for mmdet's
``CocoDataset``; training runs through ``mmengine.runner.Runner``.  ``out_dir/model.pt`` holds
the model's state dict, the config as text and the categories, and is loaded with
``torch.load(weights_only=True)``; mmengine's logs and config stay in ``out_dir/mmdet/``
(its own checkpoints, written every ``checkpoint_every_iters`` iterations or every epoch, are
the resume checkpoints of a failed job's retry, ``resume=True``; they are removed once
``model.pt`` is written).
``predict`` runs ``mmdet.apis.inference_detector`` and converts its ``DetDataSample``s to COCO
results with the manifest's category ids.

Requires ``mmengine``, ``mmcv`` (with its compiled ops) and ``mmdet`` 3.x: ``envs/mmdet.yaml``.
The training device is mmengine's choice (CUDA when available); ``device`` applies to ``predict``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch

import mmdet  # noqa: F401  (ImportError here: the backend is not available)

from ..manifest import (Manifest, atomic_write_text, encode_mask, image_path, iter_images,
                        load_manifest, write_json)
from .categories import select_categories
from .mmdet_config import (  # noqa: F401  (re-exported)
    DEFAULTS,
    DEMO_CONFIG,
    TORCHVISION_FILES,
    build_mmdet_config,
    resolve_config,
    torchvision_weights_path,
    train_log_records,
)
from .runtime import (read_model_checkpoint, resolve_device, resume_key, save_checkpoint,
                      torch_threads)

CHECKPOINT_FORMAT = "anonbench-mmdet-v1"


def coco_for_mmdet(manifest: Manifest, categories: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest as a COCO instances dict that mmdet's ``CocoDataset`` reads."""
    ids = {c["id"] for c in categories}
    images, anns = [], []
    for img, img_anns in iter_images(manifest):
        images.append({"id": img["id"], "file_name": img["file_name"],
                       "width": int(img["width"]), "height": int(img["height"])})
        for a in img_anns:
            if a["category_id"] not in ids:
                continue
            seg = a.get("segmentation")
            crowd = int(a.get("iscrowd", 0))
            x, y, w, h = (float(v) for v in a["bbox"])
            if not seg or (isinstance(seg, dict) and not seg.get("counts")):
                if not crowd:
                    continue       # no mask to learn from
                seg = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            anns.append({"id": a["id"], "image_id": a["image_id"], "category_id": a["category_id"],
                         "bbox": [x, y, w, h], "area": float(a.get("area") or w * h),
                         "iscrowd": crowd, "segmentation": seg})
    return {"images": images, "annotations": anns,
            "categories": [{"id": c["id"], "name": c["name"]} for c in categories]}


def _check_pretrained(cfg: dict[str, Any]) -> None:
    """Fail before training when the ImageNet backbone is neither cached nor downloadable."""
    if not cfg["pretrained"]:
        return
    from .. import weights

    entry = weights.torchvision_file(cfg["depth"])
    path = torchvision_weights_path(cfg["depth"])
    if os.path.isfile(path):
        return
    url = entry.urls()[0]
    try:
        weights.download_for_loader(
            entry, Path(path),
            lambda u, dst: torch.hub.download_url_to_file(u, dst, progress=False))
    except Exception as e:
        raise RuntimeError(
            f"pretrained: the ImageNet ResNet-{cfg['depth']} backbone {path} is missing and could "
            f"not be downloaded ({type(e).__name__}). Download {url} and put it there (or "
            f"set TORCH_HOME), or set `pretrained: false` to train from scratch. "
            f"{weights.missing_message(entry, path)}") from e


def versions() -> dict[str, str]:
    import mmcv
    import mmengine

    return {"torch": str(torch.__version__), "mmdet": str(mmdet.__version__),
            "mmcv": str(mmcv.__version__), "mmengine": str(mmengine.__version__)}


def train(train_manifest: str, model_cfg: dict[str, Any], seed: int, out_dir: str, *,
          threads: int = 1, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train on ``train_manifest``; write ``out_dir/model.pt`` and ``out_dir/train_log.jsonl``
    (the other backends' format, from mmengine's scalars; its own logs stay in out_dir/mmdet)."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    from mmdet.utils import register_all_modules

    cfg_r = resolve_config(model_cfg)
    emit = log or (lambda line: print(line, file=sys.stderr, flush=True))
    _check_pretrained(cfg_r)
    if cfg_r["load_from"] and "://" not in cfg_r["load_from"] and not os.path.isfile(
            cfg_r["load_from"]):
        raise FileNotFoundError(f"model config load_from: {cfg_r['load_from']} not found")
    manifest = load_manifest(train_manifest)
    categories = select_categories(manifest, cfg_r["classes"], cfg_r["exclude_classes"],
                                   "mask_rcnn")
    out = Path(out_dir)
    work = out / "mmdet"
    work.mkdir(parents=True, exist_ok=True)
    ann_file = work / "train_coco.json"
    write_json(ann_file, coco_for_mmdet(manifest, categories))
    config = build_mmdet_config(cfg_r, classes=[c["name"] for c in categories],
                                train_ann=str(ann_file),
                                image_root=manifest["info"]["image_root"].rstrip("/") + "/",
                                work_dir=str(work), seed=seed)
    resume_from = _resume_runner(work, resume_key(cfg_r, train_manifest, seed), emit)
    if resume_from is not None:   # mmengine resumes from load_from when it is set
        config.update(resume=True, load_from=resume_from)
    emit(f"[mmdet] Mask R-CNN R-{cfg_r['depth']} FPN seed={seed}: {len(manifest['images'])} images, "
         f"{len(categories)} classes, " + (f"{cfg_r['epochs']} epochs" if cfg_r["iterations"] is None
                                           else f"{cfg_r['iterations']} iterations")
         + f" x {cfg_r['batch_size']}, lr {cfg_r['lr']}, threads={threads}")
    register_all_modules(init_default_scope=True)
    with torch_threads(threads), torch.random.fork_rng(devices=[]):
        t0 = time.perf_counter()
        runner = Runner.from_cfg(Config(config))
        runner.train()
        seconds = time.perf_counter() - t0
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        ckpt = {
            "format": CHECKPOINT_FORMAT,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "mmdet_config": Config(config).pretty_text,
            "model_cfg": cfg_r,
            "categories": categories,
            "seed": int(seed),
            "versions": versions(),
        }
        iters = int(runner.iter)
        scalars = Path(runner.log_dir) / "vis_data" / "scalars.json"
    path = out / "model.pt"
    save_checkpoint(ckpt, path)
    _drop_runner_checkpoints(work)
    records = train_log_records(scalars.read_text().splitlines()) if scalars.is_file() else []
    log_path = out / "train_log.jsonl"
    atomic_write_text(log_path, "".join(json.dumps(r) + "\n" for r in records))
    emit(f"[mmdet] trained {iters} iterations in {seconds:.1f} s "
         f"({seconds / max(1, iters):.3f} s/iter)")
    return {"checkpoint": str(path), "train_log": str(log_path), "arch": "mask_rcnn",
            "seed": int(seed), "iterations": iters, "num_images": len(manifest["images"]),
            "categories": categories, "seconds": round(seconds, 3),
            "s_per_iter": round(seconds / max(1, iters), 4),
            "final_losses": records[-1]["losses"] if records else None,
            "threads": int(threads)}


def _resume_runner(work: Path, key: dict[str, str], emit: Callable[[str], None]) -> str | None:
    """The checkpoint mmengine's runner resumes from, or None: whether it resumes (``resume=True``: model, optimizer, param schedulers,
    iteration/epoch and its seed from the latest ``iter_*.pth``/``epoch_*.pth`` of ``work``,
    which the CheckpointHook writes every ``checkpoint_every_iters``): only when that file is
    complete and was written for the same model config, training manifest and seed (our
    ``resume_key.json`` beside it); otherwise its checkpoints are dropped with a warning."""
    key_file = work / "resume_key.json"
    last = work / "last_checkpoint"
    ckpt = Path(last.read_text().strip()) if last.is_file() else None
    if ckpt is None or not ckpt.is_file():
        write_json(key_file, key)
        return None
    why = None
    try:
        old = json.loads(key_file.read_text())
    except (OSError, ValueError):
        old = None
    if old != key:
        why = "it was written for another model config, training manifest or seed"
    else:
        try:
            with zipfile.ZipFile(ckpt) as z:   # torch.save's format; a truncated file fails
                bad = z.testzip()
            if bad is not None:
                why = f"{bad} in it is corrupt"
        except (OSError, zipfile.BadZipFile) as e:
            why = f"it cannot be read ({type(e).__name__}: {e})"
    if why is not None:
        emit(f"[mmdet] WARNING: ignoring the resume checkpoint {ckpt}: {why}; training starts "
             f"from iteration 0")
        _drop_runner_checkpoints(work)
        write_json(key_file, key)
        return None
    emit(f"[mmdet] resuming from {ckpt} (mmengine runner, resume=True)")
    return str(ckpt)


def _drop_runner_checkpoints(work: Path) -> None:
    """Remove mmengine's own checkpoints (weights + optimizer state, twice the size of model.pt)
    once model.pt is written: the workflow never resumes from them. Its logs stay."""
    for p in [*work.glob("iter_*.pth"), *work.glob("epoch_*.pth"), work / "last_checkpoint",
              work / "resume_key.json"]:
        if p.is_file():
            p.unlink()


def load_checkpoint(checkpoint: str, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """(mmdet model in eval mode with its test config, checkpoint dict); nothing is downloaded."""
    from mmengine.config import Config
    from mmdet.apis import init_detector
    from mmdet.utils import register_all_modules

    ckpt = read_model_checkpoint(checkpoint, CHECKPOINT_FORMAT, "mmdet")
    register_all_modules(init_default_scope=True)
    cfg = Config.fromstring(ckpt["mmdet_config"], ".py")
    cfg.test_dataloader = {"dataset": {"type": "CocoDataset", "pipeline": cfg.test_pipeline}}
    # init_detector warns "checkpoint is None, use COCO classes" (the classes are set just below)
    # and sets a process-wide simplefilter('once'); catch_warnings undoes that filter change
    with warnings.catch_warnings():
        model = init_detector(cfg, None, device=device)   # backbone init_cfg dropped: no download
    model.load_state_dict(ckpt["state_dict"])
    model.dataset_meta = {"classes": tuple(c["name"] for c in ckpt["categories"])}
    model.eval()
    return model, ckpt


def predict(checkpoint: str, manifest: str | Manifest, *, threads: int = 1,
            batch_size: int = 4, device: str = "auto") -> list[dict[str, Any]]:
    """COCO results (bbox, score, category_id, segmentation) for the manifest's images."""
    from mmdet.apis import inference_detector

    m = manifest if isinstance(manifest, dict) else load_manifest(manifest)
    with torch_threads(threads):
        model, ckpt = load_checkpoint(checkpoint, resolve_device(device))
        cat_ids = [c["id"] for c in ckpt["categories"]]
        results: list[dict[str, Any]] = []
        images = m["images"]
        n = max(1, int(batch_size))
        for i in range(0, len(images), n):
            batch = images[i:i + n]
            outs = inference_detector(model, [image_path(m, img) for img in batch])
            for img, sample in zip(batch, outs):
                results.extend(sample_to_coco(img["id"], sample.pred_instances, cat_ids))
    return results


def sample_to_coco(image_id: int, pred: Any, cat_ids: list[int]) -> list[dict[str, Any]]:
    """mmdet ``pred_instances`` (xyxy boxes at image scale, masks) -> COCO results."""
    boxes = pred.bboxes.cpu().numpy().tolist()
    scores = pred.scores.cpu().numpy().tolist()
    labels = pred.labels.cpu().numpy().tolist()
    masks = pred.masks.cpu().numpy().astype(bool) if "masks" in pred else None
    res = []
    for k, (b, s, lab) in enumerate(zip(boxes, scores, labels)):
        r: dict[str, Any] = {
            "image_id": image_id, "category_id": cat_ids[lab],
            "bbox": [round(b[0], 2), round(b[1], 2), round(b[2] - b[0], 2), round(b[3] - b[1], 2)],
            "score": round(float(s), 5)}
        if masks is not None:
            r["segmentation"] = encode_mask(masks[k])
        res.append(r)
    return res


__all__ = ["CHECKPOINT_FORMAT", "build_mmdet_config", "coco_for_mmdet", "load_checkpoint",
           "predict", "resolve_config", "sample_to_coco", "train"]
