"""Mask R-CNN's mask-head targets (``mask_targets_aligned``): cut on the grid on which a predicted
mask is pasted back, so that small, thin persons (the street world's) keep their masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torchvision.models.detection import roi_heads as tv_roi_heads
from torchvision.models.detection.roi_heads import paste_masks_in_image

from anonbench.backends import torchvision_backend as tb

H, W, M = 160, 256, 28


def _stick_figures(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` small figures (a head, a torso and limbs 1-3 px thick, 12-40 px tall) in an image
    each, and their boxes in pixel-edge coordinates (``x1 = last column + 1``), as the backend's
    targets have them."""
    rng = np.random.default_rng(seed)
    masks, boxes = [], []
    for _ in range(n):
        m = np.zeros((H, W), np.uint8)
        h = rng.uniform(12, 40)
        x, y = rng.uniform(20, W - 20), rng.uniform(h + 5, H - 5)
        t = int(rng.integers(1, 4))
        hip, neck = (x, y - 0.5 * h), (x, y - 0.8 * h)
        for a, b in ((hip, neck), (hip, (x - 0.15 * h, y)), (hip, (x + 0.15 * h, y)),
                     (neck, (x - 0.2 * h, y - 0.5 * h)), (neck, (x + 0.2 * h, y - 0.5 * h))):
            cv2.line(m, (round(a[0]), round(a[1])), (round(b[0]), round(b[1])), 1, t)
        cv2.circle(m, (round(x), round(y - 0.9 * h)), max(1, round(0.08 * h)), 1, -1)
        ys, xs = np.nonzero(m)
        masks.append(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return torch.from_numpy(np.stack(masks)), torch.tensor(boxes, dtype=torch.float32)


def _round_trip_iou(cut) -> float:
    """Mean IoU of each mask with itself cut by ``cut`` into an M x M target and pasted back
    into the image by torchvision (a mask head that predicts its targets exactly)."""
    masks, boxes = _stick_figures(40)
    idx = torch.arange(len(masks))
    targets = cut(masks, boxes, idx, M)
    pasted = paste_masks_in_image(targets[:, None], boxes, (H, W))[:, 0] > 0.5
    gt = masks.bool()
    inter = (pasted & gt).flatten(1).sum(1).float()
    union = (pasted | gt).flatten(1).sum(1).float()
    return float((inter / union).mean())


def test_aligned_targets_are_where_torchvision_pastes_masks_back():
    aligned = _round_trip_iou(tb.aligned_mask_targets)
    half_pixel_off = _round_trip_iou(tv_roi_heads.project_masks_on_boxes)
    assert aligned > 0.85          # 0.89: 1-px limbs do not survive a 28 x 28 grid exactly
    # torchvision's own targets lose a large part of such masks before any training
    assert half_pixel_off < aligned - 0.15   # 0.65


def _mask_losses(aligned: bool) -> dict[str, float]:
    cfg = {"preset": "demo", "arch": "mask_rcnn", "mask_targets_aligned": aligned,
           "box_batch_size_per_image": 16}
    torch.manual_seed(0)
    model = tb.build_model(cfg, num_classes=2).train()
    masks, boxes = _stick_figures(4, seed=1)
    images = [torch.rand(3, H, W) for _ in range(2)]
    targets = [{"boxes": boxes[2 * i:2 * i + 2], "labels": torch.ones(2, dtype=torch.int64),
                "masks": masks[2 * i:2 * i + 2]} for i in range(2)]
    torch.manual_seed(1)
    return {k: float(v.detach()) for k, v in model(images, targets).items()}


def test_the_key_changes_the_mask_loss_only_and_leaves_torchvision_as_it_was():
    before = tv_roi_heads.project_masks_on_boxes, tv_roi_heads.maskrcnn_loss
    on, off = _mask_losses(True), _mask_losses(False)
    assert (tv_roi_heads.project_masks_on_boxes, tv_roi_heads.maskrcnn_loss) == before
    assert on["loss_mask"] != pytest.approx(off["loss_mask"], rel=1e-4)
    for k in on.keys() - {"loss_mask"}:
        assert on[k] == off[k], k


def test_the_key_is_a_mask_rcnn_switch():
    assert tb.resolve_config({"preset": "demo"})["mask_targets_aligned"] is True
    assert tb.resolve_config({})["mask_targets_aligned"] is False     # torchvision's convention
    assert "mask_targets_aligned" not in tb.resolve_config({"preset": "demo",
                                                            "arch": "keypoint_rcnn"})
    with pytest.raises(ValueError, match="mask_targets_aligned has no meaning for arch keypoint"):
        tb.resolve_config({"arch": "keypoint_rcnn", "mask_targets_aligned": True})
    with pytest.raises(ValueError, match="mask_targets_aligned must be true or false"):
        tb.resolve_config({"mask_targets_aligned": "yes"})
