"""``mask_head_pixels``: Mask R-CNN's mask head also pools the input image (stride 1) beside the
FPN features, so that the demo street world's 7x20-px persons are more than 2x5 cells of P2."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import roi_align

from anonbench.backends import torchvision_backend as tb

H, W = 160, 256


def _model(pixels: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    return tb.build_model({"preset": "demo", "arch": "mask_rcnn", "mask_head_pixels": pixels,
                           "box_score_thresh": 0.0}, num_classes=3)


def _mask_head_input(model: torch.nn.Module, images: list[torch.Tensor]
                     ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """The mask head's input, the boxes it was pooled in and the batch the backbone saw."""
    seen: dict[str, torch.Tensor] = {}
    h1 = model.roi_heads.mask_head.register_forward_pre_hook(
        lambda m, a: seen.__setitem__("head", a[0]))
    h2 = model.backbone.register_forward_pre_hook(lambda m, a: seen.__setitem__("batch", a[0]))
    try:
        with torch.inference_mode():
            out = model.eval()(images)
    finally:
        h1.remove()
        h2.remove()
    return seen["head"], [o["boxes"] for o in out], seen["batch"]


def test_the_mask_head_sees_the_normalized_pixels_in_each_box():
    model = _model(True)
    images = [torch.rand(3, H, W), torch.rand(3, H, W)]
    head_in, boxes, batch = _mask_head_input(model, images)
    c = model.backbone.out_channels
    assert head_in.shape[1] == c + 3 and all(len(b) for b in boxes)
    ratio = model.roi_heads.mask_roi_pool.sampling_ratio

    def pool(images: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        return roi_align(images.contiguous(), boxes, (14, 14), 1.0, ratio, aligned=True)

    torch.testing.assert_close(head_in[:, c:], pool(batch, boxes))
    # and each box's own pixels: the first image's boxes pooled from the second image differ
    assert not torch.allclose(head_in[: len(boxes[0]), c:], pool(batch[1:], boxes[:1]))
    # the normalized batch, not the 0..1 input: what the backbone sees
    assert float(batch.min()) < -1.0
    # the batch is let go once pooled
    assert model.roi_heads.mask_roi_pool._images is None


def test_without_the_key_the_head_is_torchvisions():
    model = _model(False)
    head_in, _, _ = _mask_head_input(model, [torch.rand(3, H, W)])
    assert head_in.shape[1] == model.backbone.out_channels
    assert type(model.roi_heads.mask_roi_pool).__name__ == "MultiScaleRoIAlign"
    # the same parameters otherwise: only the first mask conv's input channels differ
    on, off = _model(True).state_dict(), model.state_dict()
    assert on.keys() == off.keys()
    differ = [k for k in on if on[k].shape != off[k].shape]
    assert differ == ["roi_heads.mask_head.0.0.weight"]


def test_a_checkpoint_from_before_the_key_loads_with_torchvisions_head(tmp_path):
    # checkpoints keep the resolved config without its preset: a missing key takes DEFAULTS'
    # value, not the demo preset's
    cfg = tb.resolve_config({"preset": "demo", "arch": "mask_rcnn", "mask_head_pixels": False})
    model = tb.build_model(cfg, num_classes=3)
    old_cfg = {k: v for k, v in cfg.items() if k != "mask_head_pixels"}
    path = tmp_path / "model.pt"
    torch.save({"format": tb.CHECKPOINT_FORMAT, "state_dict": model.state_dict(),
                "model_cfg": old_cfg, "categories": [{"id": 1, "name": "person"},
                                                     {"id": 2, "name": "car"}],
                "keypoint_names": None}, path)
    loaded, _ = tb.load_checkpoint(str(path))
    assert loaded.roi_heads.mask_head[0][0].in_channels == cfg["fpn_channels"]


def test_the_key_is_a_mask_rcnn_switch():
    assert tb.resolve_config({"preset": "demo"})["mask_head_pixels"] is True
    assert tb.resolve_config({})["mask_head_pixels"] is False     # Mask R-CNN's head
    assert "mask_head_pixels" not in tb.resolve_config({"preset": "demo", "arch": "keypoint_rcnn"})
    with pytest.raises(ValueError, match="mask_head_pixels has no meaning for arch keypoint"):
        tb.resolve_config({"arch": "keypoint_rcnn", "mask_head_pixels": True})
    with pytest.raises(ValueError, match="mask_head_pixels has no meaning for arch retinanet"):
        tb.resolve_config({"arch": "retinanet", "mask_head_pixels": True})
    with pytest.raises(ValueError, match="mask_head_pixels must be true or false"):
        tb.resolve_config({"mask_head_pixels": 1})
