"""The torchvision backend's speed options on the CPU: ``amp`` (bf16 autocast, fp16 with a
GradScaler), ``channels_last``, ``cudnn_benchmark``, and the data-wait share in the log."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from anonbench.backends import precision, runtime
from anonbench.backends import torchvision_backend as tb
from anonbench.backends.torchvision_config import resolve_config
from anonbench.config import schema_error
from conftest import load_config
from test_backend_torchvision import TINY, tiny  # noqa: F401  (the fixture)
from test_resume import _same_model, _stop_by_sigusr1

CFG = {**TINY, "iterations": 6, "log_every": 2}


def _run(manifest, out, **over):
    summary = tb.train(manifest, {**CFG, **over}, 0, str(out), threads=1, log=lambda line: None)
    return summary, torch.load(out / "model.pt", map_location="cpu", weights_only=True)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_on_cpu(tiny, tmp_path, amp):  # noqa: F811
    s32, c32 = _run(tiny, tmp_path / "fp32")
    s, c = _run(tiny, tmp_path / amp, amp=amp)
    assert s["amp"] == amp and c["model_cfg"]["amp"] == amp
    assert all(torch.isfinite(torch.tensor(v)) for v in s["final_losses"].values())
    # autocast really ran: the same seed and data give other losses than fp32
    assert s["final_losses"]["loss"] != s32["final_losses"]["loss"]
    assert all(t.dtype == c32["state_dict"][k].dtype for k, t in c["state_dict"].items())
    res = tb.predict(str(tmp_path / amp / "model.pt"), tiny, threads=1)
    assert res and all(0.0 <= r["score"] <= 1.0 for r in res)


def test_channels_last_and_data_wait_in_log(tiny, tmp_path):  # noqa: F811
    s, c = _run(tiny, tmp_path / "cl", channels_last=True, cudnn_benchmark=True)
    assert c["model_cfg"]["channels_last"] is True
    recs = [json.loads(x) for x in (tmp_path / "cl" / "train_log.jsonl").read_text().splitlines()]
    assert recs and all(0.0 <= r["data_wait"] <= 1.0 for r in recs)
    assert 0.0 <= s["data_wait_fraction"] < 1.0
    model, _ = tb.load_checkpoint(str(tmp_path / "cl" / "model.pt"))
    conv = model.backbone.body.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()


def test_fp16_resume_restores_the_grad_scaler(tiny, tmp_path):  # noqa: F811
    cfg = {**TINY, "iterations": 16, "warmup_iters": 4, "log_every": 2, "amp": "fp16",
           "checkpoint_every_iters": 4, "checkpoint_every_minutes": None}
    ref = tmp_path / "ref"
    tb.train(tiny, cfg, 0, str(ref), threads=1, log=lambda line: None)
    out = tmp_path / "run"
    _stop_by_sigusr1(tiny, out, at_iter=8, cfg=cfg)
    ckpt = torch.load(out / runtime.RESUME_FILE, map_location="cpu", weights_only=True)
    # fp16 skips the first steps while the scale falls from 2^16: a scaler state that was not
    # restored would start again from 2^16 and diverge from the uninterrupted run
    assert ckpt["scaler"] is not None and ckpt["scaler"]["scale"] < 2.0 ** 16
    tb.train(tiny, cfg, 0, str(out), threads=1, log=lambda line: None)
    _same_model(out, ref)


@pytest.mark.parametrize("over, match", [
    ({"amp": "fp8"}, "amp must be one of off, fp16, bf16, got 'fp8'"),
    ({"amp": True}, "amp must be one of"),
    ({"channels_last": "yes"}, "channels_last must be true or false"),
    ({"cudnn_benchmark": 1}, "cudnn_benchmark must be true or false"),
    ({"prefetch_factor": 0}, "prefetch_factor must be >= 1"),
])
def test_speed_option_errors(over, match):
    with pytest.raises(ValueError, match=match):
        resolve_config({"preset": "demo", **over})


def test_yaml_off_is_amp_off():
    # YAML 1.1 reads `amp: off` as false
    assert resolve_config({"preset": "demo", "amp": False})["amp"] == "off"
    assert resolve_config({"preset": "demo"})["amp"] == "off"


@pytest.mark.parametrize("value, ok", [("off", True), (False, True), ("bf16", True),
                                       ("fp16", True), ("fp8", False), ("BF16", False)])
def test_schema_amp_values(value, ok):
    config = load_config()
    model = next(iter(config["models"]))
    config["models"][model]["amp"] = value
    err = schema_error(config)
    assert (err is None) == ok, err
    if not ok:
        assert "amp" in err


# A 160x256 batch of 2 through a width-0.125 ResNet-18 (8-channel stem): its first downsample
# shortcut is a strided 1x1 convolution on 8 channels, whose NHWC backward_weights corrupts the
# heap in oneDNN 3.12 (AVX-512 and AVX2 kernels). A subprocess, so that a crash fails the test.
_ONEDNN_1X1 = """
import torch
from anonbench.backends import torchvision_backend as tb
from anonbench.backends.precision import prepare_model
from anonbench.backends.torchvision_config import resolve_config
torch.set_num_threads(1)
torch.manual_seed(0)
cfg = resolve_config({"preset": "demo_onestage", "width": 0.125, "fpn_channels": 16})
assert cfg["channels_last"]
model = prepare_model(tb.build_model(cfg, 3), torch.device("cpu"), cfg).train()
box = {"boxes": torch.tensor([[10.0, 20, 50, 90]]), "labels": torch.tensor([1])}
for _ in range(3):
    losses = model([torch.rand(3, 160, 256) for _ in range(2)], [box, box])
    sum(losses.values()).backward()
shortcut = model.backbone.body.layer2[0].downsample[0]
print(shortcut.in_channels, tuple(shortcut.weight.stride()),
      model.backbone.body.layer2[0].conv1.weight.is_contiguous(memory_format=torch.channels_last))
"""


def test_channels_last_survives_onednn_strided_1x1_bug():
    r = subprocess.run([sys.executable, "-c", _ONEDNN_1X1], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    # the shortcut stays NCHW (8 input channels), the 3x3 convolutions beside it NHWC
    assert r.stdout.split() == ["8", "(8,", "1,", "1,", "1)", "True"]


def test_channels_last_gives_the_losses_and_gradients_of_nchw():
    """The demo Mask R-CNN prepared in NHWC on the CPU (its strided 1x1 shortcuts and the mask
    head's GroupNorms fed NCHW copies) computes what the same weights compute in NCHW."""
    cfg = resolve_config({"preset": "demo", "width": 0.125, "fpn_channels": 16})
    assert cfg["channels_last"] and cfg["head_norm"] == "gn"
    torch.manual_seed(0)
    built = tb.build_model(cfg, 3)
    state = {k: v.clone() for k, v in built.state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    images = [torch.rand(3, 160, 256, generator=gen) for _ in range(2)]
    masks = torch.zeros(2, 160, 256, dtype=torch.uint8)
    masks[0, 20:90, 10:50] = 1
    masks[1, 60:150, 120:160] = 1
    target = {"boxes": torch.tensor([[10.0, 20, 50, 90], [120, 60, 160, 150]]),
              "labels": torch.tensor([1, 2]), "masks": masks}
    results = []
    for channels_last in (False, True):
        c = {**cfg, "channels_last": channels_last}
        model = tb.build_model(c, 3)
        model.load_state_dict(state)
        model = precision.prepare_model(model, torch.device("cpu"), c).train()
        torch.manual_seed(2)                    # the same RPN and RoI samples
        losses = model(images, [target, target])
        sum(losses.values()).backward()
        head = model.roi_heads.mask_head
        results.append(({k: v.item() for k, v in losses.items()},
                         [p.grad.clone() for p in head.parameters()]))
    (nchw, nchw_grads), (nhwc, nhwc_grads) = results
    assert nhwc.keys() == nchw.keys()
    for k in nchw:
        assert nhwc[k] == pytest.approx(nchw[k], rel=1e-4, abs=1e-6), k
    for a, b in zip(nchw_grads, nhwc_grads):
        torch.testing.assert_close(b.contiguous(), a.contiguous(), rtol=1e-3, atol=1e-5)
