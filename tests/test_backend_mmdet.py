"""The mmdet backend: the BDD100K recipe as an MMDetection 3.x config dict and parse-time checks
(always), the overlay's BDD100K dry run (always), and a few iterations on the demo world (only
where mmdet and mmcv with its ops are installed; CI does not have them)."""

from __future__ import annotations

import copy
import json
import math
import os

import pytest

from anonbench.backends import check_model_config
from anonbench.backends import mmdet_config as mc
from conftest import check_predictions, job_counts, load_config, write_config
from test_backend_detectron2 import OVERLAY, merged_paper_and_overlay, overlay_models, run_snakemake
from test_workflow_dag import expected_counts, fake_paper_roots

BDD_CLASSES = ["pedestrian", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]


def study_config(**kw):
    cfg = mc.resolve_config(overlay_models()["maskrcnn-r50-bdd100k-mmdet"])
    return mc.build_mmdet_config(cfg, classes=BDD_CLASSES, train_ann="/r/train.json",
                                 image_root="/img/", work_dir="/w", seed=kw.get("seed", 1))


def test_study_model_is_the_bdd100k_recipe():
    c = study_config(seed=2)
    assert c["train_cfg"] == {"type": "EpochBasedTrainLoop", "max_epochs": 36, "val_interval": 37}
    warm, steps = c["param_scheduler"]
    assert warm == {"type": "LinearLR", "start_factor": 0.001, "by_epoch": False, "begin": 0,
                    "end": 500}
    assert steps["milestones"] == [24, 33] and steps["by_epoch"] and steps["gamma"] == 0.1
    assert c["optim_wrapper"]["optimizer"] == {"type": "SGD", "lr": 0.02, "momentum": 0.9,
                                               "weight_decay": 0.0001}
    dl = c["train_dataloader"]
    assert dl["batch_size"] == 2
    assert dl["dataset"]["metainfo"] == {"classes": tuple(BDD_CLASSES)}
    assert dl["dataset"]["ann_file"] == "/r/train.json"
    assert dl["dataset"]["data_prefix"] == {"img": "/img/"}
    resize = dl["dataset"]["pipeline"][2]
    assert resize == {"type": "RandomResize", "scale": [(1280, 600), (1280, 720)],
                      "keep_ratio": True}
    assert {"type": "Resize", "scale": (1280, 720), "keep_ratio": True} in c["test_pipeline"]
    m = c["model"]
    assert m["type"] == "MaskRCNN" and m["backbone"]["depth"] == 50
    assert m["backbone"]["init_cfg"] == {"type": "Pretrained", "checkpoint": "torchvision://resnet50"}
    assert m["roi_head"]["bbox_head"]["num_classes"] == 8
    assert m["roi_head"]["mask_head"]["num_classes"] == 8
    assert c["randomness"]["seed"] == 2 and c["auto_scale_lr"]["enable"] is False
    assert c["val_dataloader"] is None and c["load_from"] is None


def test_iteration_schedule_and_scratch_backbone():
    cfg = mc.resolve_config({"backend": "mmdet", "preset": "demo", "iterations": 40,
                             "depth": 18})
    c = mc.build_mmdet_config(cfg, classes=["person"], train_ann="a", image_root="/", work_dir="w",
                              seed=0)
    assert c["train_cfg"]["type"] == "IterBasedTrainLoop" and c["train_cfg"]["max_iters"] == 40
    assert c["param_scheduler"][-1]["milestones"] == [30, 36]
    assert c["param_scheduler"][-1]["by_epoch"] is False
    assert "init_cfg" not in c["model"]["backbone"]
    assert c["model"]["backbone"]["frozen_stages"] == -1
    assert c["model"]["neck"]["in_channels"] == [64, 128, 256, 512]



def test_train_log_from_mmengine_scalars():
    rows = [{"lr": 0.01, "data_time": 0.01, "loss": 2.5, "loss_cls": 0.8, "loss_mask": 1.0,
             "acc": 90.0, "time": 0.5, "iter": 20, "step": 20},
            {"coco/bbox_mAP": 0.1, "step": 30},                     # a validation row
            {"lr": 0.005, "loss": 1.5, "loss_cls": 0.4, "loss_mask": 0.7, "time": 0.25,
             "iter": 40, "step": 40}]
    lines = [json.dumps(r) for r in rows] + [""]
    recs = mc.train_log_records(lines)
    assert [r["iter"] for r in recs] == [20, 40]
    assert recs[0]["losses"] == {"loss": 2.5, "loss_cls": 0.8, "loss_mask": 1.0}
    assert recs[1]["lr"] == 0.005 and recs[1]["s_per_iter"] == 0.25
    assert recs[0]["seconds"] == 10.0 and recs[1]["seconds"] == 15.0   # 20 x 0.5 + 20 x 0.25

@pytest.mark.parametrize("cfg, message", [
    ({"arch": "keypoint_rcnn"}, "mask_rcnn only"),
    ({"epoch": 12}, "unknown key"),
    ({"depth": 18}, "pretrained: true needs depth"),
    ({"steps": [24.5]}, "whole numbers"),
    ({"scales": [1280, 720]}, "pairs"),
    ({"test_scale": [[1280, 720]]}, "width, height"),
    ({"classes": "pedestrian"}, "list of category names"),
    ({"flip": 2}, "probability"),
])
def test_bad_configs_are_rejected_at_parse_time(cfg, message):
    with pytest.raises(ValueError, match=message):
        check_model_config({"backend": "mmdet", "arch": "mask_rcnn", **cfg})


def test_torchvision_weights_path_uses_torch_home(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert mc.torchvision_weights_path(101) == str(
        tmp_path / "hub" / "checkpoints" / "resnet101-63fe2227.pth")


def test_overlay_dry_run_trains_bdd100k_with_mmdet(tmp_path):
    paper = fake_paper_roots(copy.deepcopy(load_config("config/paper.yaml")), tmp_path)
    cfg = write_config(tmp_path / "paper.yaml", paper)
    p = run_snakemake(tmp_path, "results/tables/table2.md", "-n", "--replace-workflow-config",
                      "--configfile", str(cfg), str(OVERLAY))
    merged = merged_paper_and_overlay(paper)
    assert job_counts(p.stdout) == expected_counts(merged, "table2")
    assert "results/bdd100k/runs/face-blur/maskrcnn-r50-bdd100k-mmdet/seed1/model.pt" in p.stdout
    assert "/maskrcnn-r50-bdd100k/" not in p.stdout


# --------------------------------------------------------------------------------------------
# with mmdet (skipped where it is not installed)


def _demo_manifests(tmp_path, n_train=4, n_val=2):
    from anonbench.datasets import demo, load_split
    from anonbench.manifest import write_json

    demo.generate_world(tmp_path / "world", seed=0, n_train=n_train, n_val=n_val)
    paths = {}
    for split in ("train", "val"):
        paths[split] = str(tmp_path / f"{split}.json")
        write_json(paths[split], load_split("coco", str(tmp_path / "world"), split, "demo"))
    return paths


def test_train_predict_evaluate_on_the_demo_world(tmp_path):
    pytest.importorskip("mmdet")
    pytest.importorskip("mmcv.ops")
    import torch

    from anonbench.backends import get_backend
    from anonbench.evaluation.coco import evaluate_coco
    from anonbench.manifest import load_manifest

    paths = _demo_manifests(tmp_path, n_train=8, n_val=4)
    b = get_backend("mmdet")
    out = tmp_path / "run"
    lines = []
    summary = b.train(paths["train"], {"backend": "mmdet", "preset": "demo", "iterations": 4,
                                       "score_thr": 0.0, "log_every": 2}, 3, str(out), threads=2,
                      log=lines.append)
    assert summary["iterations"] == 4 and summary["seed"] == 3
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in log] == [2, 4] and summary["final_losses"] == log[-1]["losses"]
    assert any("trained 4 iterations" in line for line in lines)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []   # no temporaries
    assert not list((out / "mmdet").glob("*.pth"))   # mmengine's copy is not kept beside model.pt
    ckpt = torch.load(out / "model.pt", weights_only=True)
    assert ckpt["format"] == "anonbench-mmdet-v1" and ckpt["seed"] == 3
    assert "seed=3" in ckpt["mmdet_config"].replace(" ", "")
    val = load_manifest(paths["val"])
    res = b.predict(str(out / "model.pt"), paths["val"], threads=2)
    check_predictions(res, val, "mask_rcnn")
    metrics = evaluate_coco(paths["val"], res, ["bbox", "segm"])
    assert math.isfinite(metrics["bbox/AP"]) and math.isfinite(metrics["segm/AP"])


def test_pretrained_offline_names_the_file(tmp_path, monkeypatch):
    pytest.importorskip("mmdet")
    pytest.importorskip("mmcv.ops")
    import urllib.error

    import torch

    from anonbench.backends import mmdet_backend as mb

    def offline(*a, **k):
        raise urllib.error.URLError("offline")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    paths = _demo_manifests(tmp_path)
    with pytest.raises(RuntimeError, match=r"resnet50-0676ba61\.pth is missing.*"
                                           r"pretrained: false"):
        mb.train(paths["train"], {"backend": "mmdet", "preset": "demo", "depth": 50,
                                  "pretrained": True, "iterations": 2}, 0, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()   # stopped before anything was written


def test_pretrained_backbone_is_read_from_the_torch_cache(tmp_path, monkeypatch):
    """A backbone file placed where the message says is what mmdet starts from (offline)."""
    pytest.importorskip("mmdet")
    pytest.importorskip("mmcv.ops")
    import torch
    import torchvision

    from anonbench.backends import mmdet_backend as mb

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    torch.manual_seed(7)
    backbone = torchvision.models.resnet50(weights=None).state_dict()
    path = mb.torchvision_weights_path(50)
    os.makedirs(os.path.dirname(path))
    torch.save(backbone, path)
    paths = _demo_manifests(tmp_path)
    mb.train(paths["train"], {"backend": "mmdet", "preset": "demo", "depth": 50,
                              "pretrained": True, "iterations": 2}, 0, str(tmp_path / "run"),
             threads=2)
    trained = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    # the stem is frozen (frozen_stages=1 with a pretrained backbone): still the file's weights
    assert torch.equal(trained["backbone.conv1.weight"], backbone["conv1.weight"])
    assert torch.equal(trained["backbone.layer1.0.conv1.weight"], backbone["layer1.0.conv1.weight"])
