"""The dp2 generator plugin: checkpoint resolution (md5, cache, config paths), a clear error when
DeepPrivacy2 is missing, and -- where DeepPrivacy2 is importable -- its generators built from its
configs (random weights when no checkpoint is there) anonymizing an image.

DeepPrivacy2 is not on PyPI and does not install in the project's venv (see
envs/deep_privacy2.yaml); the tests that need it skip cleanly there."""

import hashlib
import importlib.util

import numpy as np
import pytest
import torch
from skimage import data

from anonbench import anonymize
from anonbench.realistic import GeneratorUnavailable, build_generator
from anonbench.realistic import dp2 as dp2_plugin

HAVE_DP2 = importlib.util.find_spec("dp2") is not None and importlib.util.find_spec("tops") is not None


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "G.ckpt"
    torch.save({"EMA_generator": {"w": torch.arange(6.0)}}, path)
    return path, hashlib.md5(path.read_bytes()).hexdigest()


def test_checkpoint_from_the_variant_is_md5_checked(weights):
    path, md5 = weights
    opts = {"checkpoints": {"body": str(path)}}
    assert dp2_plugin.resolve_checkpoint("body", opts, None, md5) == path
    with pytest.raises(dp2_plugin.CheckpointError, match=f"md5 {md5}, expected 0+"):
        dp2_plugin.resolve_checkpoint("body", opts, None, "0" * 32)
    with pytest.raises(dp2_plugin.CheckpointError, match="checkpoints.face"):
        dp2_plugin.resolve_checkpoint("face", {"checkpoints": {"face": str(path) + ".x"}}, None,
                                      md5)
    ckpt = dp2_plugin.load_checkpoint(path, md5)
    assert torch.equal(ckpt["EMA_generator"]["w"], torch.arange(6.0))


def test_checkpoint_from_dp2s_cache_and_no_download_unless_asked(weights, tmp_path, monkeypatch):
    path, md5 = weights
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = "https://example.org/contents/links/abc123"
    cached = dp2_plugin.cache_path(url)
    assert cached == tmp_path / "torch" / "hub" / "checkpoints" / "abc123"
    with pytest.raises(dp2_plugin.CheckpointError) as e:
        dp2_plugin.resolve_checkpoint("body", {}, url, md5)
    assert str(cached) in str(e.value) and url in str(e.value) and "download: true" in str(e.value)

    fetched = []

    def download(u):  # stands in for DP2's tops.download_file (an external download)
        fetched.append(u)
        cached.parent.mkdir(parents=True)
        cached.write_bytes(path.read_bytes())
        return cached

    with pytest.raises(dp2_plugin.CheckpointError):
        dp2_plugin.resolve_checkpoint("body", {"download": False}, url, md5, download)
    assert fetched == []
    assert dp2_plugin.resolve_checkpoint("body", {"download": True}, url, md5, download) == cached
    assert fetched == [url]
    assert dp2_plugin.resolve_checkpoint("body", {}, url, md5) == cached  # now in the cache


@pytest.mark.skipif(HAVE_DP2, reason="DeepPrivacy2 is installed here")
def test_missing_deepprivacy2_is_a_clear_error():
    with pytest.raises(GeneratorUnavailable, match="DeepPrivacy2.*envs/deep_privacy2.yaml"):
        build_generator("dp2", "body", {})


@pytest.mark.skipif(not HAVE_DP2, reason="DeepPrivacy2 (dp2, tops) is not importable here")
@pytest.mark.parametrize("region, kind", [("body", "body"), ("face", "face")])
def test_dp2_generator_anonymizes_an_image(region, kind):
    opts = {"method": "realistic", "region": region, "generator": "dp2", "random_weights": True,
            "device": "cpu", "truncation": "multimodal" if region == "body" else "none",
            "truncation_clusters": 8}
    G = build_generator("dp2", kind, opts)
    assert G.imsize == ((288, 160) if kind == "body" else (128, 128))
    photo = data.astronaut()[:256, :256]
    mask = np.zeros((256, 256), bool)
    mask[60:220, 90:170] = True
    kp = np.zeros((17, 3))
    kp[[5, 6, 11, 12]] = [[150, 100, 2], [110, 100, 2], [145, 160, 2], [115, 160, 2]]
    from anonbench.manifest import encode_mask

    anns = [{"id": 1, "segmentation": encode_mask(mask), "anonymize": True,
             "keypoints": kp.ravel().tolist()}]
    faces = [{"annotation_id": 1, "box": [100.0, 60.0, 150.0, 115.0]}]
    region_ = anonymize.region_mask(256, 256, anns, faces, opts)
    out = anonymize.anonymize_image(photo, region_, opts)
    np.testing.assert_array_equal(out[~region_.mask], photo[~region_.mask])
    other = np.where(region_.mask[..., None], 255 - photo, photo)
    np.testing.assert_array_equal(anonymize.anonymize_image(other, region_, opts), out)
