"""``mask_loss_weight``: the mask loss's weight in Mask R-CNN's summed training loss (default 1,
as torchvision and detectron2; MMDetection's ``loss_mask.loss_weight``)."""

from __future__ import annotations

import pytest
import torch

from anonbench.backends import torchvision_backend as tb

H, W = 96, 128


def _batch() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(2, H, W, dtype=torch.uint8)
    masks[0, 20:60, 30:45] = 1
    masks[1, 40:90, 70:100] = 1
    target = {"boxes": torch.tensor([[30.0, 20.0, 45.0, 60.0], [70.0, 40.0, 100.0, 90.0]]),
              "labels": torch.tensor([1, 2]), "masks": masks}
    return [torch.rand(3, H, W, generator=g)], [target]


def _step(cfg: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor]]:
    """One training step of a (resolved) config from the same weights and random state: the
    losses, the total and the gradients (unclipped; the step itself has lr 0)."""
    cfg = {**cfg, "channels_last": False, "clip_grad_norm": None}
    torch.manual_seed(0)
    model = tb.build_model(cfg, num_classes=3).train()
    params = [p for p in model.parameters() if p.requires_grad]
    images, targets = _batch()
    torch.manual_seed(1)
    losses, loss = tb.train_step(model, torch.optim.SGD(params, lr=0.0), None, images, targets,
                                 cfg, params, torch.device("cpu"))
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return losses, loss, grads


def _demo(weight: float) -> dict:
    return tb.resolve_config({"preset": "demo", "arch": "mask_rcnn", "mask_loss_weight": weight})


def test_the_mask_loss_is_weighted_in_the_total_and_its_gradients_only():
    losses1, loss1, g1 = _step(_demo(1.0))
    losses3, loss3, g3 = _step(_demo(3.0))
    # the logged losses are unweighted and equal; the total counts the mask loss three times
    for k in losses1:
        torch.testing.assert_close(losses3[k], losses1[k])
    torch.testing.assert_close(loss1, sum(losses1.values()))
    torch.testing.assert_close(loss3, loss1 + 2 * losses1["loss_mask"])
    # the mask head's own parameters get 3x the gradient, the box predictor's the same
    mask = [n for n in g1 if n.startswith("roi_heads.mask_predictor")]
    box = [n for n in g1 if n.startswith("roi_heads.box_predictor")]
    assert mask and box
    for n in mask:
        torch.testing.assert_close(g3[n], 3 * g1[n])
    for n in box:
        torch.testing.assert_close(g3[n], g1[n])


def test_the_default_weight_and_a_config_from_before_the_key():
    assert tb.resolve_config({"preset": "demo"})["mask_loss_weight"] == 1.0
    old = _demo(1.0)
    del old["mask_loss_weight"]       # an older checkpoint's resolved config: weight 1
    old_loss = _step(old)[1]
    torch.testing.assert_close(old_loss, _step(_demo(1.0))[1])
    assert not torch.allclose(old_loss, _step(_demo(2.0))[1])


def test_config_errors():
    assert tb.resolve_config({})["mask_loss_weight"] == 1.0          # Mask R-CNN's
    assert "mask_loss_weight" not in tb.resolve_config({"preset": "demo",
                                                         "arch": "keypoint_rcnn"})
    for arch in ("keypoint_rcnn", "retinanet"):
        with pytest.raises(ValueError, match=f"mask_loss_weight has no meaning for arch {arch}"):
            tb.resolve_config({"arch": arch, "mask_loss_weight": 2})
    for bad in (0, -1, "2", True, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="model config: mask_loss_weight must be"):
            tb.resolve_config({"mask_loss_weight": bad})
