"""``backbone_weights``: a torchvision model starts from the ResNet body of another model's
checkpoint (the demo's stand-in for the study's ImageNet backbones), its FPN and heads anew."""

from __future__ import annotations

import pytest
import torch

from anonbench.backends import torchvision_backend as tb
from anonbench.backends.torchvision_config import resolve_config
from test_backend_torchvision import TINY, _train, tiny  # noqa: F401  (the module's fixture)


def _body(state):
    return {k[len("backbone.body."):]: v for k, v in state.items()
            if k.startswith("backbone.body.")}


@pytest.fixture(scope="module")
def source(tiny, tmp_path_factory):  # noqa: F811
    """A tiny Mask R-CNN trained from scratch: the model whose backbone the others start from."""
    out, _ = _train(tiny, tmp_path_factory.mktemp("src"), "src", seed=5)
    return out / "model.pt"


def test_the_body_starts_from_the_checkpoint_and_its_first_stages_stay_frozen(
        tiny, source, tmp_path):  # noqa: F811
    """Stem and layer1 keep the source's weights through training (trainable_layers defaults
    to 3, as with ImageNet weights); the later stages start from them and train; the FPN and
    heads start anew (not the source's)."""
    src = torch.load(source, map_location="cpu", weights_only=True)["state_dict"]
    cfg = resolve_config({**TINY, "backbone_weights": str(source)})
    assert cfg["trainable_layers"] == 3
    built = tb.build_model(cfg, num_classes=3, num_keypoints=17).state_dict()
    for k, v in _body(src).items():
        assert torch.equal(_body(built)[k], v), k
    fresh = [k for k in src if k.startswith("roi_heads.") and not torch.equal(built[k], src[k])]
    assert fresh, "the heads were copied from the source"

    out, _ = _train(tiny, tmp_path, "ft", backbone_weights=str(source), lr=0.05)
    tuned = _body(torch.load(out / "model.pt", map_location="cpu",
                             weights_only=True)["state_dict"])
    body = _body(src)
    frozen = [k for k in body if k.startswith(("conv1.", "bn1.weight", "bn1.bias", "layer1."))
              and not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert frozen and all(torch.equal(tuned[k], body[k]) for k in frozen)
    assert not torch.equal(tuned["layer4.0.conv1.weight"], body["layer4.0.conv1.weight"])


def test_a_checkpoint_of_another_backbone_is_named(tiny, source, tmp_path):  # noqa: F811
    with pytest.raises(RuntimeError, match=rf"backbone_weights: {source} holds a depth-18 "
                                           r"width-0.125 ResNet \(bn norm\), which does not fit"):
        _train(tiny, tmp_path, "wide", backbone_weights=str(source), width=0.25)
    with pytest.raises(RuntimeError, match=r"\(bn norm\), which does not fit this model's "
                                           r"backbone \(Unexpected key\(s\) in state_dict: "
                                           r"\"bn1.running_mean\".{0,120}\.\.\.\)$"):
        _train(tiny, tmp_path, "gn", backbone_weights=str(source), norm="gn")


@pytest.mark.parametrize("kind", ["missing", "other"])
def test_a_file_that_is_no_checkpoint_stops_the_training_before_any_data(tiny, tmp_path, kind):  # noqa: F811
    path = tmp_path / "weights.pt"
    if kind == "other":
        torch.save({"conv1.weight": torch.zeros(1)}, path)  # a bare state dict
    why = "no such file" if kind == "missing" else "not a checkpoint of the torchvision"
    with pytest.raises(ValueError, match=rf"^backbone_weights: {path}: {why}"):
        _train(tiny, tmp_path, "x", backbone_weights=str(path))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("over, match", [
    ({"pretrained": True, "width": 1.0}, "give pretrained: true .* or backbone_weights"),
    ({"backbone_weights": ""}, "backbone_weights must be a checkpoint file"),
    ({"backbone_weights": {"dataset": "d"}}, "backbone_weights must be a checkpoint file"),
])
def test_backbone_weights_config_errors(over, match):
    with pytest.raises(ValueError, match=match):
        resolve_config({"preset": "demo", "backbone_weights": "m.pt", **over})


def test_predicting_needs_no_backbone_file(tiny, source, tmp_path):  # noqa: F811
    """The trained model holds its whole backbone: deleting the source changes nothing."""
    out, _ = _train(tiny, tmp_path, "ft", backbone_weights=str(source))
    before = tb.predict(str(out / "model.pt"), tiny, threads=1)
    moved = tmp_path / "moved.pt"
    source.rename(moved)
    try:
        assert tb.predict(str(out / "model.pt"), tiny, threads=1) == before
    finally:
        moved.rename(source)


@pytest.mark.parametrize("source_norm, norm", [("bn", "frozen_bn"), ("frozen_bn", "bn")])
def test_a_backbone_loads_across_batchnorm_kinds(tiny, tmp_path, source_norm, norm):  # noqa: F811
    """`norm: auto` is frozen BatchNorm with backbone_weights (as with ImageNet weights), while
    the source model trained its own (bn), or the other way round: the same weights and
    statistics; only BatchNorm's step counter (num_batches_tracked) is on one side."""
    src, _ = _train(tiny, tmp_path, "src", norm=source_norm, iterations=1)
    state = torch.load(src / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
    cfg = resolve_config({**TINY, "backbone_weights": str(src / "model.pt"), "norm": norm})
    built = _body(tb.build_model(cfg, num_classes=3, num_keypoints=17).state_dict())
    for k, v in _body(state).items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(built[k], v), k
