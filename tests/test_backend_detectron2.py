"""The detectron2 backend: config translation and parse-time checks (always), the study overlay's
dry run (always), and a few training iterations on the demo world (only where detectron2 is
installed; it is not on PyPI and CI does not have it)."""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
import urllib.error

import pytest
import yaml

from anonbench.backends import check_model_config
from anonbench.backends import detectron2_config as dc
from anonbench.backends.categories import flip_map, select_categories
from conftest import REPO, check_predictions, job_counts, load_config, write_config
from test_workflow_dag import expected_counts, fake_paper_roots

OVERLAY = REPO / "config" / "study-backends.yaml"


def overlay_models():
    with open(OVERLAY) as f:
        return yaml.safe_load(f)["models"]


# --------------------------------------------------------------------------------------------
# config (no detectron2 needed)


def test_study_models_resolve_to_the_zoo_recipes():
    m = overlay_models()
    kp = dc.resolve_config(m["keypointrcnn-r50-detectron2"])
    assert kp["zoo_config"] == "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml"
    assert dc.schedule(kp) == (270000, [210000, 250000])
    assert dc.weights_url(kp) == "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
    cs = dc.resolve_config(m["maskrcnn-r50-cityscapes-detectron2"])
    assert dc.schedule(cs) == (24000, [18000])
    o = dc.to_overrides(cs, num_classes=8, train_dataset="ds", seed=2, out_dir="/o", device="cpu")
    assert o["SOLVER.MAX_ITER"] == 24000 and o["SOLVER.STEPS"] == (18000,)
    assert o["SOLVER.IMS_PER_BATCH"] == 8 and o["SOLVER.BASE_LR"] == 0.01
    assert o["MODEL.ROI_HEADS.NUM_CLASSES"] == 8 and o["MODEL.MASK_ON"] is True
    assert o["INPUT.MASK_FORMAT"] == "bitmask" and o["SEED"] == 2
    assert o["DATASETS.TRAIN"] == ("ds",) and o["OUTPUT_DIR"] == "/o"
    assert o["MODEL.WEIGHTS"].endswith("mask_rcnn_R_50_FPN_3x/137849600/model_final_f10217.pkl")
    # the zoo's input sizes are kept: nothing about them is overridden
    assert not any(k.startswith("INPUT.MIN_SIZE") or k.startswith("INPUT.MAX_SIZE") for k in o)
    ko = dc.to_overrides(kp, num_classes=1, num_keypoints=17, train_dataset="k", seed=0,
                         out_dir="/k", device="cuda")
    assert ko["MODEL.KEYPOINT_ON"] is True and ko["MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS"] == 17
    assert "MODEL.MASK_ON" not in ko and ko["MODEL.DEVICE"] == "cuda"


def test_schedule_scales_with_iterations_and_takes_fractions():
    cfg = dc.resolve_config({"backend": "detectron2", "arch": "mask_rcnn", "iterations": 2400})
    assert dc.schedule(cfg) == (2400, [1800])
    cfg = dc.resolve_config({"backend": "detectron2", "arch": "mask_rcnn", "iterations": 100,
                             "steps": [0.5, 90]})
    assert dc.schedule(cfg) == (100, [50, 90])
    # steps at or past the end are dropped (detectron2 rejects them)
    cfg = dc.resolve_config({"backend": "detectron2", "arch": "keypoint_rcnn", "iterations": 4})
    assert dc.schedule(cfg) == (4, [3])


def test_scratch_training_unfreezes_the_backbone():
    cfg = dc.resolve_config({"backend": "detectron2", "arch": "keypoint_rcnn",
                             "pretrained": False, "depth": 101})
    o = dc.to_overrides(cfg, num_classes=1, train_dataset="d", seed=0, out_dir="o", device="cpu")
    assert o["MODEL.WEIGHTS"] == "" and o["MODEL.BACKBONE.FREEZE_AT"] == 0
    assert o["MODEL.RESNETS.NORM"] == "BN" and o["MODEL.RESNETS.DEPTH"] == 101


@pytest.mark.parametrize("cfg, message", [
    ({"arch": "keypoint_rcnn", "zoo_config": "Cityscapes/mask_rcnn_R_50_FPN.yaml"},
     "does not match"),
    ({"arch": "mask_rcnn", "zoo_config": "Cityscapes/nope.yaml"}, "not a model-zoo config"),
    ({"arch": "mask_rcnn", "itertions": 5}, "unknown key"),
    ({"arch": "retinanet"}, "arch must be one of"),
    ({"arch": "mask_rcnn", "depth": 152}, "no ImageNet R-152"),
    ({"arch": "mask_rcnn", "depth": 101}, "whole R-50 model"),  # Cityscapes zoo: COCO weights
    ({"arch": "mask_rcnn", "opts": {"SEED": 3}}, "cannot be set here"),
    ({"arch": "mask_rcnn", "opts": {"model.rpn.x": 3}}, "cannot be set here"),
    ({"arch": "mask_rcnn", "classes": ["car"], "exclude_classes": ["person"]}, "not both"),
    ({"arch": "keypoint_rcnn", "exclude_classes": ["car"]}, "person categories only"),
    ({"arch": "mask_rcnn", "device": "gpu"}, "device must be"),
    ({"arch": "mask_rcnn", "steps": "18000"}, "steps must be"),
])
def test_bad_configs_are_rejected_at_parse_time(cfg, message):
    with pytest.raises(ValueError, match=message):
        check_model_config({"backend": "detectron2", **cfg})


def test_depth_101_with_an_imagenet_zoo_config_uses_imagenet_r101():
    cfg = dc.resolve_config({"backend": "detectron2", "arch": "keypoint_rcnn", "depth": 101})
    assert dc.weights_url(cfg) == "detectron2://ImageNetPretrained/MSRA/R-101.pkl"


def test_weights_cache_path_follows_iopath(tmp_path):
    p = dc.weights_cache_path("detectron2://ImageNetPretrained/MSRA/R-50.pkl", str(tmp_path))
    assert p == str(tmp_path / "detectron2" / "ImageNetPretrained" / "MSRA" / "R-50.pkl")
    assert dc.weights_cache_path("/abs/file.pkl") == "/abs/file.pkl"


def test_category_selection_and_flip_map():
    m = {"categories": [{"id": 24, "name": "person", "keypoints": ["nose", "left_eye",
                                                                   "right_eye"]},
                        {"id": 26, "name": "car"}, {"id": 25, "name": "rider"}]}
    assert [c["id"] for c in select_categories(m, None, None, "mask_rcnn")] == [24, 25, 26]
    assert [c["name"] for c in select_categories(m, None, ["person"], "mask_rcnn")] == \
        ["rider", "car"]
    assert select_categories(m, None, None, "keypoint_rcnn") == [{"id": 24, "name": "person"}]
    with pytest.raises(ValueError, match="not categories"):
        select_categories(m, ["bus"], None, "mask_rcnn")
    assert flip_map(["nose", "left_eye", "right_eye"]) == [("left_eye", "right_eye")]


# --------------------------------------------------------------------------------------------
# the study overlay, layered over the paper config (dry run)


def run_snakemake(workdir, *args):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--cores", "2", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]
    return p


def merged_paper_and_overlay(paper):
    from snakemake.utils import update_config   # what snakemake does with --configfile A B

    merged = copy.deepcopy(paper)
    with open(OVERLAY) as f:
        update_config(merged, yaml.safe_load(f))
    return merged


def test_overlay_dry_run_points_tables_at_the_study_backends(tmp_path):
    paper = fake_paper_roots(copy.deepcopy(load_config("config/paper.yaml")), tmp_path)
    cfg = write_config(tmp_path / "paper.yaml", paper)
    # targets first: --configfile takes every argument up to the next option
    p = run_snakemake(tmp_path, "results/tables/table1.md", "results/tables/table3.md", "-n",
                      "--replace-workflow-config", "--configfile", str(cfg), str(OVERLAY))
    merged = merged_paper_and_overlay(paper)
    assert merged["tables"]["table3"]["model"] == "keypointrcnn-r50-detectron2"
    assert merged["tables"]["table3"]["metrics"] == paper["tables"]["table3"]["metrics"]
    assert job_counts(p.stdout) == expected_counts(merged, "table1", "table3")
    out = p.stdout
    assert "results/coco/runs/original/keypointrcnn-r50-detectron2/seed2/model.pt" in out
    assert "results/cityscapes/runs/body-blur/maskrcnn-r50-cityscapes-detectron2/seed0/" in out
    assert "/keypointrcnn-r50/" not in out and "/maskrcnn-r50-cityscapes/" not in out
    assert "results/bdd100k/" not in out and "results/demo" not in out


# --------------------------------------------------------------------------------------------
# with detectron2 (skipped where it is not installed)


def test_backend_import_error_is_clear_without_detectron2():
    try:
        import detectron2  # noqa: F401
    except ImportError:
        from anonbench.backends import get_backend

        with pytest.raises(ImportError, match="training backend 'detectron2'"):
            get_backend("detectron2")
    else:
        pytest.skip("detectron2 is installed here")


@pytest.fixture(scope="module")
def demo_world(tmp_path_factory):
    pytest.importorskip("detectron2")
    from anonbench.datasets import demo, load_split
    from anonbench.manifest import write_json

    root = tmp_path_factory.mktemp("d2world")
    demo.generate_world(root / "world", seed=0, n_train=8, n_val=4)
    paths = {}
    for split in ("train", "val"):
        paths[split] = str(root / f"{split}.json")
        write_json(paths[split], load_split("coco", str(root / "world"), split, "demo"))
    return root, paths


def test_zoo_table_matches_the_installed_zoo_configs():
    pytest.importorskip("detectron2")
    from anonbench.backends import detectron2_backend as db

    for name, info in dc.ZOO.items():
        cfg = db.build_cfg({"zoo_config": name}, {})
        assert cfg.SOLVER.MAX_ITER == info["iterations"], name
        assert list(cfg.SOLVER.STEPS) == info["steps"], name
        assert cfg.SOLVER.IMS_PER_BATCH == info["batch_size"], name
        assert cfg.SOLVER.BASE_LR == info["lr"], name
        assert cfg.MODEL.WEIGHTS == info["weights"], name
        assert cfg.MODEL.RESNETS.DEPTH == info["depth"], name
        assert cfg.MODEL.KEYPOINT_ON == (info["arch"] == "keypoint_rcnn"), name
        assert cfg.MODEL.MASK_ON == (info["arch"] == "mask_rcnn"), name
    with pytest.raises(ValueError, match="no key"):
        db.set_key(db.build_cfg({"zoo_config": dc.DEFAULT_ZOO["mask_rcnn"]}, {}),
                   "MODEL.RPN.NO_SUCH_KEY", 1)


def test_dataset_dicts_shift_keypoints_and_keep_crowds(demo_world):
    from anonbench.backends import detectron2_backend as db
    from anonbench.manifest import load_manifest

    m = load_manifest(demo_world[1]["train"])
    recs = db.dataset_dicts(m, {1: 0}, "keypoint_rcnn", 17)
    ann = next(a for a in m["annotations"] if a["category_id"] == 1 and a.get("num_keypoints"))
    rec = next(r for r in recs if r["image_id"] == ann["image_id"])
    kps = [o["keypoints"] for o in rec["annotations"]]
    want = [v + 0.5 if i % 3 != 2 else v for i, v in enumerate(ann["keypoints"])]
    assert want in kps
    assert all(len(k) == 51 for k in kps)
    n_person = sum(1 for a in m["annotations"] if a["category_id"] == 1)
    assert sum(len(r["annotations"]) for r in recs) == n_person   # crowds kept (iscrowd flag)


def test_pretrained_offline_names_the_file(demo_world, tmp_path, monkeypatch):
    from detectron2.utils.file_io import PathManager

    from anonbench.backends import detectron2_backend as db

    def offline(*a, **k):
        raise urllib.error.URLError("offline")

    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(PathManager, "get_local_path", offline)
    with pytest.raises(RuntimeError, match=r"R-50\.pkl.*put it at .*cache/detectron2/"
                                           r"ImageNetPretrained/MSRA/R-50\.pkl"):
        db.train(demo_world[1]["train"], {"backend": "detectron2", "preset": "demo",
                                          "arch": "keypoint_rcnn", "depth": 50,
                                          "pretrained": True}, 0, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()   # stopped before anything was written


@pytest.mark.parametrize("arch", ["mask_rcnn", "keypoint_rcnn"])
def test_train_predict_evaluate_on_the_demo_world(demo_world, tmp_path, arch):
    import torch

    from anonbench.backends import get_backend
    from anonbench.evaluation.coco import evaluate_coco
    from anonbench.manifest import load_manifest

    root, paths = demo_world
    b = get_backend("detectron2")
    out = tmp_path / "run"
    lines = []
    summary = b.train(paths["train"], {"backend": "detectron2", "preset": "demo", "arch": arch,
                                       "iterations": 4, "log_every": 2,
                                       "opts": {"MODEL.ROI_HEADS.SCORE_THRESH_TEST": 0.0}},
                      1, str(out), threads=2, log=lines.append)
    assert summary["iterations"] == 4 and (out / "model.pt").is_file()
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 2
    ckpt = torch.load(out / "model.pt", weights_only=True)
    assert ckpt["format"] == "anonbench-detectron2-v1" and ckpt["seed"] == 1
    assert "SEED: 1" in ckpt["d2_config"]
    val = load_manifest(paths["val"])
    res = b.predict(str(out / "model.pt"), paths["val"], threads=2)
    check_predictions(res, val, arch)
    if arch == "keypoint_rcnn":
        assert {r["category_id"] for r in res} == {1}
    types = ["bbox", "segm"] if arch == "mask_rcnn" else ["bbox", "keypoints"]
    metrics = evaluate_coco(paths["val"], res, types)
    key = "segm/AP" if arch == "mask_rcnn" else "keypoints/AP"
    assert math.isfinite(metrics["bbox/AP"]) and math.isfinite(metrics[key])
    print(f"{arch}: {summary['s_per_iter']} s/iter, bbox/AP {metrics['bbox/AP']:.2f}, "
          f"{key} {metrics[key]:.2f}")
