"""One-stage detectors (RetinaNet, FCOS) in the torchvision backend: build, train a few
iterations on a tiny demo world, predict boxes, evaluate box metrics; config checks; pretrained
weights offline."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import urllib.error

import pytest
import torch

from anonbench.backends import torchvision_backend as tb
from anonbench.backends import torchvision_config as tc
from anonbench.config import ConfigError, check_config
from anonbench.datasets import demo, load_split
from anonbench.evaluation.coco import evaluate_coco
from anonbench.evaluation import evaluate_manifest

ARCHS = ("retinanet", "fcos")
TINY = {
    "backend": "torchvision",
    "preset": "demo_onestage",
    "width": 0.125,
    "fpn_channels": 16,
    "box_score_thresh": 0.0,      # untrained: keep every detection
    "box_detections_per_img": 20,
    "iterations": 3,
    "batch_size": 2,
    "warmup_iters": 2,
    "log_every": 2,
}
LOSSES = {"retinanet": {"classification", "bbox_regression"},
          "fcos": {"classification", "bbox_regression", "bbox_ctrness"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The demo world (256x160, people, cars, bicycles): 4 training and 2 validation images."""
    root = tmp_path_factory.mktemp("onestage")
    demo.generate_world(root / "w", seed=2, n_train=4, n_val=2)
    paths = {}
    for split in ("train", "val"):
        paths[split] = str(root / f"{split}.json")
        with open(paths[split], "w") as f:
            json.dump(load_split("coco", str(root / "w"), split, "demo"), f)
    return paths


def _train(world, tmp_path, name, seed=0, **over):
    out = tmp_path / name
    summary = tb.train(world["train"], {**TINY, **over}, seed, str(out), threads=1,
                       log=lambda line: None)
    return out, summary


@pytest.mark.parametrize("arch", ARCHS)
def test_train_predict_evaluate_boxes_only(world, tmp_path, arch):
    out, summary = _train(world, tmp_path, arch, arch=arch)
    lines = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [x["iter"] for x in lines] == [2, 3]
    assert set(lines[-1]["losses"]) == LOSSES[arch] | {"loss"}
    assert summary["num_instances"] > 0 and summary["arch"] == arch
    ckpt = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert ckpt["model_cfg"]["arch"] == arch
    assert not tc.UNUSED_KEYS[arch] & set(ckpt["model_cfg"])  # two-stage keys left out

    res = tb.predict(str(out / "model.pt"), world["val"], threads=1, batch_size=2)
    assert res, "score threshold 0 must give detections"
    cat_ids = {c["id"] for c in summary["categories"]}
    for r in res:
        assert set(r) == {"image_id", "category_id", "bbox", "score"}
        assert r["category_id"] in cat_ids and r["bbox"][2] >= 0 and r["bbox"][3] >= 0
    ev = evaluate_manifest(world["val"], res, arch)
    assert ev["iou_types"] == ["bbox"]
    m = ev["metrics"]
    for key in ("bbox/AP", "bbox/AP50", "bbox/AP_person"):
        assert 0.0 <= m[key] <= 100.0, key
    assert not [k for k in m if not k.startswith("bbox/")]
    # asking for masks of a box detector fails with a message, not a KeyError deep inside
    with pytest.raises(ValueError, match="segmentation"):
        evaluate_coco(world["val"], res, ["segm"])
    cityscapes = copy.deepcopy(json.loads(open(world["val"]).read()))
    cityscapes["info"]["format"] = "cityscapes"
    with pytest.raises(ValueError, match="instance masks"):
        evaluate_manifest(cityscapes, res, arch)


@pytest.mark.parametrize("arch", ARCHS)
def test_fpn_levels_p3_to_p7(arch):
    model = tb.build_model({**TINY, "arch": arch}, num_classes=4).eval()
    with torch.no_grad():
        feats = model.backbone(torch.zeros(1, 3, 160, 256))
    assert list(feats) == ["0", "1", "2", "p6", "p7"]
    assert [tuple(f.shape[-2:]) for f in feats.values()] == [(20, 32), (10, 16), (5, 8), (3, 4),
                                                             (2, 2)]  # strides 8 .. 128
    per_location = model.anchor_generator.num_anchors_per_location()
    assert per_location == ([9] * 5 if arch == "retinanet" else [1] * 5)
    if arch == "retinanet":  # demo_onestage anchors, 3 scales per octave
        assert model.anchor_generator.sizes[0] == (16, 20, 25)
        assert isinstance(model.head.classification_head.conv[0][1], torch.nn.GroupNorm)


def test_paper_scale_is_torchvisions_construction():
    """At R-50, width 1, 256 FPN channels: the parameters of torchvision's retinanet_resnet50_fpn
    and fcos_resnet50_fpn, name for name and shape for shape."""
    from torchvision.models.detection import fcos_resnet50_fpn, retinanet_resnet50_fpn

    for arch, ref_fn in (("retinanet", retinanet_resnet50_fpn), ("fcos", fcos_resnet50_fpn)):
        ours = tb.build_model({"arch": arch, "depth": 50}, num_classes=91)
        ref = ref_fn(weights=None, weights_backbone=None, num_classes=91)
        shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
        ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
        assert shapes == ref_shapes, arch
        assert ours.transform.min_size == (800,) and ours.transform.max_size == 1333


def test_same_seed_same_weights(world, tmp_path):
    sd = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        out, _ = _train(world, tmp_path, name, seed=seed, arch="retinanet", iterations=2)
        sd[name] = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(sd["a"][k], sd["b"][k]) for k in sd["a"])
    assert any(not torch.equal(sd["a"][k], sd["c"][k]) for k in sd["a"]
               if sd["a"][k].is_floating_point())


def test_exclude_classes(world, tmp_path):
    out, summary = _train(world, tmp_path, "x", arch="fcos", iterations=1,
                          exclude_classes=["person"])
    names = [c["name"] for c in summary["categories"]]
    assert names and "person" not in names
    person = [c["id"] for c in json.loads(open(world["val"]).read())["categories"]
              if c["name"] == "person"]
    res = tb.predict(str(out / "model.pt"), world["val"])
    assert res and not [r for r in res if r["category_id"] in person]
    with pytest.raises(ValueError, match="pedestrian"):
        _train(world, tmp_path, "x2", arch="fcos", iterations=1, exclude_classes=["pedestrian"])


@pytest.mark.parametrize("cfg, match", [
    ({"arch": "retinanet", "rpn_batch_size_per_image": 64}, "no meaning for arch retinanet"),
    ({"arch": "fcos", "anchor_sizes": [8, 16, 32, 64, 128]}, "no meaning for arch fcos"),
    ({"arch": "fcos", "octave_scales": 2, "mask_head_layers": 1}, "have no meaning"),
    ({"arch": "mask_rcnn", "center_sampling_radius": 2.0}, "no meaning for arch mask_rcnn"),
    ({"arch": "retinanet", "head_norm": "bn"}, "head_norm"),
    ({"arch": "fcos", "head_norm": "bn"}, "head_norm"),
    ({"arch": "keypoint_rcnn", "head_norm": "gn"}, "head_norm has no meaning for arch"),
    ({"arch": "retinanet", "anchor_sizes": [8, 16, 32]}, "P3..P7"),
    ({"arch": "retinanet", "fg_iou_thresh": 0.3, "bg_iou_thresh": 0.4}, "bg_iou_thresh"),
    ({"arch": "retinanet", "octave_scales": 0}, "octave_scales"),
    ({"arch": "ssd"}, "arch must be one of"),
    ({"exclude_classes": "person"}, "exclude_classes must be"),
    ({"exclude_classes": ["person"], "classes": ["car"]}, "not both"),
    ({"arch": "keypoint_rcnn", "exclude_classes": ["person"]}, "keypoint_rcnn"),
])
def test_config_errors(cfg, match):
    with pytest.raises(ValueError, match=match) as e:
        tc.resolve_config(cfg)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("arch", ARCHS)
def test_resolved_config_resolves_to_itself(arch):
    cfg = tc.resolve_config({"preset": "demo_onestage", "arch": arch})
    assert tc.resolve_config(cfg) == cfg
    assert "rpn_batch_size_per_image" not in cfg and cfg["anchor_sizes" if arch == "retinanet"
                                                          else "center_sampling_radius"]
    # two-stage resolved configs do not carry the one-stage keys (and still resolve to themselves)
    two = tc.resolve_config({"preset": "demo"})
    assert tc.resolve_config(two) == two and "topk_candidates" not in two


def test_config_check_imports_no_torch():
    code = ("import sys; from anonbench.backends import torchvision_config as c; "
            "c.resolve_config({'arch': 'fcos', 'preset': 'demo_onestage'}); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def _paper_like(model, dataset="coco", fmt="coco", metrics=None):
    return {
        "datasets": {dataset: {"format": fmt, "generate": {"seed": 0}}},
        "variants": {"original": {"method": "none"}},
        "models": {"m": model},
        "seeds": [0],
        "tables": {"t": {"dataset": dataset, "model": "m", "variants": ["original"],
                         "metrics": metrics or {"AP": "bbox/AP_person"}}},
    }


def test_tables_ask_only_what_the_model_predicts():
    model = {"backend": "torchvision", "arch": "retinanet", "preset": "demo_onestage"}
    check_config(_paper_like(model), check_roots=False)
    with pytest.raises(ConfigError, match=r"tables\.t\.metrics\.AP: segm/AP needs segm"):
        check_config(_paper_like(model, metrics={"AP": "segm/AP"}), check_roots=False)
    with pytest.raises(ConfigError, match="instance masks"):
        check_config(_paper_like(model, "cs", "cityscapes", {"AP": "segm/AP"}),
                     check_roots=False)
    with pytest.raises(ConfigError, match=r"models\.m: .*no meaning"):
        check_config(_paper_like({**model, "representation_size": 64}), check_roots=False)


def test_pretrained_file_names_are_torchvisions():
    import torchvision

    for depth, fname in tc.PRETRAINED_FILES.items():
        url = getattr(torchvision.models, f"ResNet{depth}_Weights").IMAGENET1K_V1.url
        assert url == tc.PRETRAINED_URL + fname


def test_pretrained_missing_fails_before_reading_data(monkeypatch, tmp_path):
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    out = tmp_path / "run"
    # the manifest does not exist: the weights must be checked first
    with pytest.raises(RuntimeError) as e:
        tb.train(str(tmp_path / "no-such-manifest.json"),
                 {"arch": "retinanet", "depth": 101, "pretrained": True}, 0, str(out))
    msg = str(e.value)
    assert "resnet101-63fe2227.pth" in msg and "$TORCH_HOME/hub/checkpoints" in msg
    assert str(home / "hub" / "checkpoints") in msg and "pretrained: false" in msg
    assert "network unreachable" in msg and "\n" not in msg
    assert not out.exists()


def test_pretrained_from_cache_no_download(monkeypatch, tmp_path):
    import torchvision

    ckdir = tmp_path / "hub" / "checkpoints"
    ckdir.mkdir(parents=True)
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(ref, ckdir / "resnet18-f37072fd.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_download(*args, **kwargs):
        raise AssertionError("must not download what is in the cache")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    model = tb.build_model({"arch": "fcos", "depth": 18, "pretrained": True}, num_classes=3)
    body = model.backbone.body
    assert torch.equal(body.layer4[1].conv2.weight, ref["layer4.1.conv2.weight"])
    assert isinstance(body.bn1, torchvision.ops.FrozenBatchNorm2d)
    # a truncated file: our message, naming the file
    (ckdir / "resnet18-f37072fd.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="resnet18-f37072fd.pth.*pretrained: false"):
        tb.build_model({"arch": "retinanet", "depth": 18, "pretrained": True}, num_classes=3)
