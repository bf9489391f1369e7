"""How the demo's Mask R-CNN trains and ranks its masks: ``mask_dice_weight`` (a Dice loss beside
the mask head's cross-entropy), ``mask_head_lr_mult`` (the mask head's own learning rate) and
``mask_score: maskness`` (masks ranked by the detection score times their maskness)."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection import roi_heads as tv_roi_heads

from anonbench.backends import torchvision_backend as tb
from anonbench.evaluation.coco import evaluate_coco
from anonbench.manifest import encode_mask

H, W = 96, 128
M = 28


def _roi_batch(seed: int = 0):
    """Random mask logits of 3 classes for the positive RoIs of two images, with their boxes,
    ground-truth masks, labels and matches, as torchvision's RoI heads hand them to the loss."""
    g = torch.Generator().manual_seed(seed)
    gt_masks, proposals, labels, matched = [], [], [], []
    for _ in range(2):
        masks = torch.zeros(2, H, W)
        masks[0, 10:60, 20:40] = 1
        masks[1, 30:90, 70:120] = 1
        gt_masks.append(masks)
        labels.append(torch.tensor([1, 2]))
        proposals.append(torch.tensor([[18.0, 8.0, 44.0, 63.0], [22.0, 12.0, 38.0, 58.0],
                                       [68.0, 28.0, 121.0, 91.0]]))
        matched.append(torch.tensor([0, 0, 1]))
    logits = torch.randn(6, 3, M, M, generator=g, requires_grad=True)
    return logits, proposals, gt_masks, labels, matched


def test_without_dice_it_is_torchvisions_loss():
    batch = _roi_batch()
    ours = tb.mask_loss(*batch, aligned=False, dice_weight=0.0)
    torch.testing.assert_close(ours, tv_roi_heads.maskrcnn_loss(*batch), rtol=0, atol=0)


def test_dice_is_zero_for_a_right_mask_and_one_for_a_wrong_one():
    t = torch.zeros(1, 1, M, M)
    t[0, 0, 5:20, 10:18] = 1

    def loss(logits: torch.Tensor, dice_weight: float) -> float:
        # a RoI that is its own box: its target is the mask itself
        box = torch.tensor([[0.0, 0.0, float(M), float(M)]])
        return float(tb.mask_loss(logits, [box], [t[0]], [torch.tensor([0])],
                                  [torch.tensor([0])], aligned=True, dice_weight=dice_weight))

    right = torch.where(t > 0, 20.0, -20.0)
    wrong = -right
    assert loss(right, 2.0) - loss(right, 0.0) < 0.01
    assert loss(wrong, 2.0) - loss(wrong, 0.0) == pytest.approx(2.0, abs=0.01)


def test_dice_counts_a_missed_small_mask_that_the_cross_entropy_hardly_sees():
    t = torch.zeros(1, M, M)
    t[0, 13:15, 13:15] = 1                       # 4 of 784 pixels
    box = torch.tensor([[0.0, 0.0, float(M), float(M)]])
    missed = torch.full((1, 1, M, M), -5.0)      # the head says "background" everywhere
    args = (missed, [box], [t], [torch.tensor([0])], [torch.tensor([0])])
    bce = float(tb.mask_loss(*args, aligned=True))
    dice = float(tb.mask_loss(*args, aligned=True, dice_weight=1.0)) - bce
    assert bce < 0.05                            # the mean over pixels barely notices
    assert dice > 0.5 and dice > 10 * bce        # 1 - 1/5: most of the overlap is missing


def _demo_losses(**over) -> dict[str, float]:
    cfg = {"preset": "demo", "arch": "mask_rcnn", "box_batch_size_per_image": 16, **over}
    torch.manual_seed(0)
    model = tb.build_model(cfg, num_classes=3).train()
    _, proposals, gt_masks, labels, _ = _roi_batch()
    images = [torch.rand(3, H, W) for _ in range(2)]
    boxes = torch.tensor([[20.0, 10.0, 40.0, 60.0], [70.0, 30.0, 120.0, 90.0]])
    targets = [{"boxes": boxes, "labels": lab, "masks": m.to(torch.uint8)}
               for lab, m in zip(labels, gt_masks)]
    torch.manual_seed(1)
    return {k: float(v.detach()) for k, v in model(images, targets).items()}


def test_the_dice_weight_changes_the_mask_loss_only():
    before = tv_roi_heads.maskrcnn_loss
    with_dice, without = _demo_losses(mask_dice_weight=2.0), _demo_losses(mask_dice_weight=0.0)
    assert tv_roi_heads.maskrcnn_loss is before
    assert with_dice["loss_mask"] > without["loss_mask"] + 0.1
    for k in with_dice.keys() - {"loss_mask"}:
        assert with_dice[k] == without[k], k


def test_torchvisions_loss_is_put_back_when_the_forward_fails():
    before = tv_roi_heads.maskrcnn_loss
    model = tb.build_model({"preset": "demo", "arch": "mask_rcnn"}, num_classes=3).train()
    targets = [{"boxes": torch.tensor([[20.0, 10.0, 40.0, 60.0]]), "labels": torch.tensor([1])}]
    with pytest.raises(Exception):               # no "masks" in the target
        model([torch.rand(3, H, W)], targets)
    assert tv_roi_heads.maskrcnn_loss is before


def test_param_groups_put_the_mask_head_apart_only_when_its_lr_differs():
    model = tb.build_model({"preset": "demo", "arch": "mask_rcnn"}, num_classes=3)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    one = tb.param_groups(model, {"lr": 0.001, "mask_head_lr_mult": 1.0})
    assert len(one) == 1 and {id(p) for p in one[0]["params"]} == trainable
    rest, mask = tb.param_groups(model, {"lr": 0.001, "mask_head_lr_mult": 6.0})
    assert {id(p) for p in rest["params"]} | {id(p) for p in mask["params"]} == trainable
    assert not {id(p) for p in rest["params"]} & {id(p) for p in mask["params"]}
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)].split(".")[1] for p in mask["params"]} == {"mask_head",
                                                                      "mask_predictor"}
    assert mask["lr_mult"] == 6.0 and mask["lr"] == pytest.approx(0.006)


def test_maskness_is_the_mean_probability_inside_the_binarized_mask():
    probs = torch.tensor([[[0.9, 0.7], [0.2, 0.1]], [[0.3, 0.2], [0.1, 0.4]]])
    value = tb.maskness(probs, probs > 0.5)
    torch.testing.assert_close(value, torch.tensor([0.8, 0.0]))


def _square(x: int, y: int, s: int = 20):
    m = torch.zeros(H, W, dtype=torch.uint8)
    m[y:y + s, x:x + s] = 1
    return encode_mask(m.numpy()), [float(x), float(y), float(s), float(s)]


def test_masks_rank_by_their_segm_score_and_boxes_by_their_score():
    gt_seg, gt_box = _square(10, 10)
    manifest = {
        "info": {"dataset": "t", "split": "val", "image_root": "."},
        "images": [{"id": 1, "file_name": "a.jpg", "width": W, "height": H}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": gt_seg,
                         "bbox": gt_box, "area": 400.0, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "person"}],
    }
    wrong_seg, wrong_box = _square(80, 60)
    # the right detection scores lower than a wrong one, but its mask is surer
    results = [{"image_id": 1, "category_id": 1, "bbox": gt_box, "segmentation": gt_seg,
                "score": 0.5},
               {"image_id": 1, "category_id": 1, "bbox": wrong_box, "segmentation": wrong_seg,
                "score": 0.9}]
    by_box = evaluate_coco(manifest, results, ["segm", "bbox"])
    results[0]["segm_score"], results[1]["segm_score"] = 0.45, 0.5
    still_box = evaluate_coco(manifest, results, ["segm", "bbox"])
    results[0]["segm_score"], results[1]["segm_score"] = 0.45, 0.3
    by_maskness = evaluate_coco(manifest, results, ["segm", "bbox"])
    assert by_box["segm/AP"] == pytest.approx(50.0, abs=1) == still_box["segm/AP"]
    assert by_maskness["segm/AP"] == pytest.approx(100.0)
    assert by_box["bbox/AP"] == by_maskness["bbox/AP"] == pytest.approx(50.0, abs=1)


@pytest.mark.parametrize("over, message", [
    ({"mask_score": "mean"}, "mask_score must be one of box, maskness, got 'mean'"),
    ({"mask_dice_weight": -1}, "mask_dice_weight must be >= 0"),
    ({"mask_head_lr_mult": 0}, "mask_head_lr_mult must be > 0"),
    ({"arch": "keypoint_rcnn", "mask_score": "maskness"},
     "mask_score has no meaning for arch keypoint_rcnn"),
])
def test_bad_settings_are_refused_naming_the_key(over, message):
    with pytest.raises(ValueError, match=message):
        tb.resolve_config({"preset": "demo", **over})
