"""The torchvision training backend on a tiny synthetic manifest (CPU, a few iterations)."""

from __future__ import annotations

import json
import urllib.error

import cv2
import numpy as np
import pytest
import torch

from anonbench.backends import available_backends, get_backend
from anonbench.backends import torchvision_backend as tb
from anonbench.evaluation.coco import evaluate_coco
from anonbench.manifest import encode_mask

PERSON_ID, CAR_ID = 1, 7  # non-contiguous on purpose: predictions must use the original ids

TINY = {
    "backend": "torchvision",
    "preset": "demo",
    "width": 0.125,
    "fpn_channels": 16,
    "min_size": 64,
    "max_size": 64,
    "anchor_sizes": [8, 16, 32, 64, 128],
    "rpn_pre_nms_top_n_train": 50,
    "rpn_pre_nms_top_n_test": 50,
    "rpn_post_nms_top_n_train": 20,
    "rpn_post_nms_top_n_test": 20,
    "box_batch_size_per_image": 16,
    "box_score_thresh": 0.0,
    "box_detections_per_img": 10,
    "representation_size": 32,
    "mask_head_layers": 1,
    "mask_head_channels": 16,
    "keypoint_head_layers": 1,
    "keypoint_head_channels": 16,
    "iterations": 3,
    "batch_size": 2,
    "lr": 0.01,
    "warmup_iters": 2,
    "log_every": 2,
}


def _person_keypoints(x: int, y: int, w: int, h: int) -> list[float]:
    kps = []
    for j in range(17):
        kps += [float(x + (w * (1 + j % 2)) // 3), float(y + h * (j + 1) / 18.0), 2.0]
    return kps


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """4 images 64x64: a 'person' (ellipse) and a 'car' (rectangle) each, plus a crowd region
    and an empty-mask annotation that training must skip."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(4):
        img = np.full((64, 64, 3), 90, np.uint8)
        img += rng.integers(0, 20, img.shape, dtype=np.uint8)
        pm = np.zeros((64, 64), np.uint8)
        cx, cy = 14 + 8 * i, 28
        cv2.ellipse(pm, (cx, cy), (5, 14), 0, 0, 360, 1, -1)
        cm = np.zeros((64, 64), np.uint8)
        cv2.rectangle(cm, (40 - 4 * i, 44), (60 - 2 * i, 58), 1, -1)
        img[pm > 0] = (220, 40, 40)
        img[cm > 0] = (40, 40, 220)
        name = f"{i:04d}.png"
        cv2.imwrite(str(root / name), img)
        images.append({"id": 10 + i, "file_name": name, "width": 64, "height": 64})
        for cat, m in ((PERSON_ID, pm), (CAR_ID, cm)):
            ys, xs = np.nonzero(m)
            box = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                   float(ys.max() - ys.min() + 1)]
            a = {"id": len(anns) + 1, "image_id": 10 + i, "category_id": cat, "bbox": box,
                 "segmentation": encode_mask(m.astype(bool)), "area": float(m.sum()), "iscrowd": 0}
            if cat == PERSON_ID:
                a["keypoints"] = _person_keypoints(*[int(v) for v in box])
                a["num_keypoints"] = 17
            anns.append(a)
        crowd = np.zeros((64, 64), bool)
        crowd[2:10, 2:20] = True
        anns.append({"id": len(anns) + 1, "image_id": 10 + i, "category_id": PERSON_ID,
                     "bbox": [2.0, 2.0, 18.0, 8.0], "segmentation": encode_mask(crowd),
                     "area": float(crowd.sum()), "iscrowd": 1})
        anns.append({"id": len(anns) + 1, "image_id": 10 + i, "category_id": CAR_ID,
                     "bbox": [30.0, 5.0, 6.0, 6.0], "segmentation": encode_mask(np.zeros((64, 64), bool)),
                     "area": 0.0, "iscrowd": 0})
    images.append({"id": 99, "file_name": "empty.png", "width": 64, "height": 64})  # no targets
    cv2.imwrite(str(root / "empty.png"), np.full((64, 64, 3), 90, np.uint8))
    manifest = {
        "info": {"dataset": "tiny", "split": "train", "image_root": str(root)},
        "images": images,
        "annotations": anns,
        "categories": [{"id": PERSON_ID, "name": "person", "supercategory": "person",
                        "keypoints": tb._COCO_KEYPOINTS, "skeleton": []},
                       {"id": CAR_ID, "name": "car", "supercategory": "vehicle"}],
    }
    path = root / "manifest.json"
    path.write_text(json.dumps(manifest))
    return str(path)


def _train(tiny, tmp_path, name, seed=0, **over):
    out = tmp_path / name
    summary = tb.train(tiny, {**TINY, **over}, seed, str(out), threads=1, log=lambda line: None)
    return out, summary


def test_mask_rcnn_train_predict(tiny, tmp_path):
    out, summary = _train(tiny, tmp_path, "m")
    assert (out / "model.pt").is_file()
    assert not list(out.glob(".*tmp"))
    lines = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [x["iter"] for x in lines] == [2, 3]
    assert {"loss", "loss_mask", "loss_classifier"} <= set(lines[-1]["losses"])
    assert summary["num_instances"] == 8  # crowd and empty-mask annotations skipped
    assert summary["iterations"] == 3

    ckpt = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert ckpt["categories"] == [{"id": PERSON_ID, "name": "person"}, {"id": CAR_ID, "name": "car"}]
    assert ckpt["seed"] == 0 and ckpt["iterations"] == 3
    assert ckpt["model_cfg"]["arch"] == "mask_rcnn"

    res = tb.predict(str(out / "model.pt"), tiny, threads=1, batch_size=3)
    assert res, "score threshold 0 must give detections"
    image_ids = {10, 11, 12, 13, 99}
    for r in res:
        assert r["image_id"] in image_ids
        assert r["category_id"] in (PERSON_ID, CAR_ID)
        assert len(r["bbox"]) == 4 and 0.0 <= r["score"] <= 1.0
        assert isinstance(r["segmentation"]["counts"], str)
        assert r["segmentation"]["size"] == [64, 64]
        assert "keypoints" not in r
        assert 0.0 <= r["segm_score"] <= r["score"]   # the demo preset: mask_score maskness
    json.dumps(res)
    m = evaluate_coco(tiny, res, ["segm", "bbox"])
    assert 0.0 <= m["segm/AP"] <= 100.0 and "bbox/AP_car" in m


def test_mask_score_box_gives_no_segm_score(tiny, tmp_path):
    out, _ = _train(tiny, tmp_path, "b", iterations=1, mask_score="box")
    res = tb.predict(str(out / "model.pt"), tiny)
    assert res and not any("segm_score" in r for r in res)


def test_mask_head_lr_mult_scales_the_mask_heads_steps_only(tiny, tmp_path):
    """One AdamW step moves each weight by about lr (its first update is g / |g|), so the mask
    head's weights move ``mask_head_lr_mult`` times as far and all others exactly as far."""
    over = {"iterations": 1, "warmup_iters": 0, "weight_decay": 0.0, "clip_grad_norm": None}
    torch.manual_seed(0)                        # as train() builds its model for seed 0
    init = tb.build_model({**TINY, **over}, num_classes=3).state_dict()
    moved = {}
    for mult in (1.0, 4.0):
        out, _ = _train(tiny, tmp_path, f"lr{mult}", **over, mask_head_lr_mult=mult)
        ckpt = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
        trained = ckpt["state_dict"]
        moved[mult] = {k: trained[k] - init[k] for k in init if init[k].is_floating_point()}
    params = {n for n, _ in tb.build_model({**TINY, **over}, num_classes=3).named_parameters()}
    mask = [n for n in params
            if n.startswith(("roi_heads.mask_head.", "roi_heads.mask_predictor."))]
    assert mask
    for n in mask:
        torch.testing.assert_close(moved[4.0][n], 4 * moved[1.0][n], rtol=1e-3, atol=1e-6)
    assert max(float(moved[1.0][n].abs().max()) for n in mask) > 0.005   # lr 0.01: they moved
    for n in params - set(mask):
        torch.testing.assert_close(moved[4.0][n], moved[1.0][n], rtol=0, atol=0)


def test_keypoint_rcnn_train_predict(tiny, tmp_path):
    out, summary = _train(tiny, tmp_path, "k", arch="keypoint_rcnn")
    assert [c["id"] for c in summary["categories"]] == [PERSON_ID]  # classes: null -> persons
    assert "loss_keypoint" in summary["final_losses"]
    res = tb.predict(str(out / "model.pt"), tiny, threads=1)
    assert res
    for r in res:
        assert r["category_id"] == PERSON_ID
        assert len(r["keypoints"]) == 51
        assert all(v > 0 for v in r["keypoints"][2::3])
        assert "segmentation" not in r
    m = evaluate_coco(tiny, res, ["keypoints", "bbox"])
    assert "keypoints/AP" in m


def test_classes_subset(tiny, tmp_path):
    out, summary = _train(tiny, tmp_path, "c", classes=["car"], iterations=1)
    assert summary["categories"] == [{"id": CAR_ID, "name": "car"}]
    assert {r["category_id"] for r in tb.predict(str(out / "model.pt"), tiny)} <= {CAR_ID}
    with pytest.raises(ValueError, match="bus"):
        _train(tiny, tmp_path, "c2", classes=["bus"], iterations=1)


def test_same_seed_same_predictions(tiny, tmp_path):
    a, _ = _train(tiny, tmp_path, "a", seed=3)
    b, _ = _train(tiny, tmp_path, "b", seed=3)
    c, _ = _train(tiny, tmp_path, "c", seed=4)
    ra = tb.predict(str(a / "model.pt"), tiny)
    rb = tb.predict(str(b / "model.pt"), tiny)
    assert ra and ra == rb
    sa = torch.load(a / "model.pt", weights_only=True)["state_dict"]
    sc = torch.load(c / "model.pt", weights_only=True)["state_dict"]
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


def test_dataloader_workers_same_result(tiny, tmp_path):
    a, sa = _train(tiny, tmp_path, "w0", seed=1, workers=0)
    b, sb = _train(tiny, tmp_path, "w1", seed=1, workers=1)  # no in-memory cache, worker process
    assert sa["num_instances"] == 8 and sb["num_instances"] is None
    assert sa["num_annotations"] == sb["num_annotations"] == 12  # empty masks show when decoded
    assert tb.predict(str(a / "model.pt"), tiny) == tb.predict(str(b / "model.pt"), tiny)


def test_training_leaves_global_rng_alone(tiny, tmp_path):
    np_state = np.random.get_state()[1].copy()
    torch_state = torch.get_rng_state().clone()
    threads = torch.get_num_threads()
    _train(tiny, tmp_path, "g", iterations=1)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert torch.get_num_threads() == threads


def test_paper_scale_builds():
    model = tb.build_model({"depth": 50, "width": 1.0, "fpn_channels": 256}, num_classes=81)
    n = sum(p.numel() for p in model.parameters())
    # torchvision's maskrcnn_resnet50_fpn has 44.4M parameters (91 classes); ours has 81.
    assert 43e6 < n < 45e6
    body = model.backbone.body
    assert [getattr(body, f"layer{i}")[-1].conv3.out_channels for i in range(1, 5)] == \
        [256, 512, 1024, 2048]
    assert model.transform.min_size == (800,) and model.transform.max_size == 1333


def test_config_accepts_workflow_keys():
    cfg = tb.resolve_config({"backend": "torchvision", "arch": "keypoint_rcnn", "threads": 8,
                             "preset": "demo", "min_size": [144, 160]})
    assert cfg["min_size"] == [144, 160] and cfg["depth"] == tb.DEMO_CONFIG["depth"]
    assert "threads" not in cfg
    assert tb.resolve_config({"arch": "keypoint_rcnn"})["min_size"] == [640, 672, 704, 736, 768, 800]
    assert tb.resolve_config(cfg) == cfg


def test_config_errors():
    with pytest.raises(ValueError, match="unknown key"):
        tb.resolve_config({"iteration": 10})
    with pytest.raises(ValueError, match="depth"):
        tb.resolve_config({"depth": 20})
    with pytest.raises(ValueError, match="width: 1.0"):
        tb.resolve_config({"pretrained": True, "width": 0.5})


def test_pretrained_offline_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RuntimeError) as e:
        tb.build_model({"depth": 18, "pretrained": True}, num_classes=2)
    msg = str(e.value)
    assert "pretrained: false" in msg and "resnet18-f37072fd.pth" in msg
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints") in msg


def test_pretrained_from_torch_home(monkeypatch, tmp_path):
    import torchvision

    ckdir = tmp_path / "hub" / "checkpoints"
    ckdir.mkdir(parents=True)
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(ref, ckdir / "resnet18-f37072fd.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = tb.build_model({"depth": 18, "pretrained": True}, num_classes=2)
    body = model.backbone.body
    assert torch.equal(body.layer3[1].conv2.weight, ref["layer3.1.conv2.weight"])
    assert isinstance(body.bn1, torchvision.ops.FrozenBatchNorm2d)  # norm: auto
    assert not body.layer1[0].conv1.weight.requires_grad  # trainable_layers 3
    assert body.layer2[0].conv1.weight.requires_grad


def test_backend_registry():
    assert get_backend("torchvision") is tb
    assert "torchvision" in available_backends()
    with pytest.raises(ValueError, match="torchvision"):
        get_backend("no-such-backend")


@pytest.mark.parametrize("size", [(160, 256), (120, 200)])
def test_the_transform_is_torchvisions_for_images_at_and_off_their_size(size):
    """The demo model's transform skips the resize of an image already at its target size (a
    copy at scale 1.0 in torchvision): images, boxes and masks are torchvision's to the bit, an
    image of another size is resized as torchvision does, and training draws from torch's random
    stream as torchvision does (the same seed trains the same model)."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    ours = tb.build_model({"preset": "demo"}, num_classes=3).transform
    assert ours.min_size == (160,) and ours.max_size == 256
    stock = GeneralizedRCNNTransform(ours.min_size, ours.max_size, ours.image_mean,
                                     ours.image_std, size_divisible=ours.size_divisible)
    g = torch.Generator().manual_seed(0)
    h, w = size
    masks = (torch.rand((2, h, w), generator=g) > 0.5).to(torch.uint8)
    batch = ([torch.rand((3, h, w), generator=g)],
             [{"boxes": torch.tensor([[3.2, 5.1, 40.7, 90.3], [10.0, 2.5, 99.9, 70.0]]),
               "labels": torch.tensor([1, 2]), "masks": masks}])
    out = []
    for t in (stock, ours):
        t.train()
        torch.manual_seed(7)
        images, targets = t([i.clone() for i in batch[0]], [dict(x) for x in batch[1]])
        out.append((images.tensors, images.image_sizes, targets[0], torch.rand(3)))
    assert torch.equal(out[0][0], out[1][0]) and out[0][1] == out[1][1]
    for k in ("boxes", "labels", "masks"):
        assert torch.equal(out[0][2][k], out[1][2][k]), k
    assert torch.equal(out[0][3], out[1][3])  # the random stream after the transform


def test_checkpoint_with_a_key_its_arch_no_longer_resolves_loads(tmp_path):
    """Earlier versions resolved ``head_norm`` (no effect) into Keypoint R-CNN configs; this one
    rejects it for keypoint_rcnn. Such a checkpoint still loads, with its weights."""
    cfg = tb.resolve_config({**TINY, "arch": "keypoint_rcnn"})
    assert "head_norm" not in cfg
    torch.manual_seed(0)
    model = tb.build_model(cfg, num_classes=2)
    path = tmp_path / "model.pt"
    torch.save({"format": tb.CHECKPOINT_FORMAT, "state_dict": model.state_dict(),
                "model_cfg": {**cfg, "head_norm": None},
                "categories": [{"id": PERSON_ID, "name": "person"}], "keypoint_names": None},
               path)
    loaded, ckpt = tb.load_checkpoint(str(path))
    assert ckpt["model_cfg"]["head_norm"] is None
    state = loaded.state_dict()
    assert state.keys() == model.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
