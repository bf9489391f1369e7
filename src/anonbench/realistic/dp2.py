"""The ``dp2`` generator: DeepPrivacy2's trained generators behind our interface.

Builds the study's generators from an installed DeepPrivacy2 (``dp2``, ``tops``) and its configs:

| kind | DP2 config | generator |
| --- | --- | --- |
| body | ``configs/fdh/triagan/L_im288.py`` | TriA-GAN, 288 x 160, joint map input |
| face | ``configs/fdf/stylegan_fdf128.py`` | StyleGAN U-Net, FDF 128 x 128 |
| face_hr | ``configs/fdf/stylegan.py`` | StyleGAN U-Net, FDF 256 x 256 |

Checkpoints: the variant's ``checkpoints: {body, face, face_hr}`` paths, else
``$ANONBENCH_WEIGHTS/<name>`` or DP2's own cache (``$TORCH_HOME/hub/checkpoints/<name>``, where
DP2's ``tops.download_file`` puts them); ``<name>`` is the file name of the config's model_url,
and :mod:`anonbench.weights` lists each file with its md5 and sources
(``anonbench weights fetch``). Nothing is downloaded unless the variant says
``download: true``. Every file is md5-checked against the published sum. Cluster environment:
``envs/deep_privacy2.yaml``. The configs are read from the DP2 checkout (``dp2_root`` option,
``$DP2_ROOT``, or the directory above the installed ``dp2`` package: an editable install).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from .base import ConditionalGenerator, CropBatch, GeneratorUnavailable, register

#: kind -> (config relative to the DP2 checkout, md5 of the published checkpoint; the weights
#: registry, anonbench.weights, holds the same md5s and the file names)
MODELS = {
    "body": ("configs/fdh/triagan/L_im288.py", "b649410e831b45f7800a89c738b411ce"),
    "face": ("configs/fdf/stylegan_fdf128.py", "bccd4403e7c9bca682566ff3319e8176"),
    "face_hr": ("configs/fdf/stylegan.py", "e8e32190528af2ed75f0cb792b7f2b07"),
}
INSTALL_HINT = ("install DeepPrivacy2 (the cluster environment envs/deep_privacy2.yaml does: "
                "pip install --no-build-isolation -e git+https://github.com/hukkelas/deep_privacy2)")


class CheckpointError(GeneratorUnavailable):
    """A DP2 checkpoint is missing or is not the published file."""


def md5sum(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def cache_path(url: str) -> Path:
    """Where the checkpoint of ``url`` is looked for (:mod:`anonbench.weights`' rule):
    ``$ANONBENCH_WEIGHTS/<name>`` when set, else where DP2 (``tops.download_file``) caches it,
    ``$TORCH_HOME/hub/checkpoints/<name>``; ``<name>`` is the last part of the URL's path."""
    from .. import weights

    return weights.torch_hub_file(os.path.basename(urlparse(url).path))


def _missing(kind: str, path: Path, md5: str, url: str) -> str:
    from .. import weights

    entry = weights.by_name(path.name) or weights.dp2_file(kind)
    return (f"dp2 {kind} checkpoint missing: {weights.missing_message(entry, path)}. Or give "
            f"its path as variant option checkpoints.{kind}, or set download: true (DP2's own "
            f"URL {url}, reported dead)")


def resolve_checkpoint(kind: str, opts: dict[str, Any], url: str | None, md5: str,
                       download: Any = None) -> Path:
    """The md5-checked checkpoint file of ``kind``: the variant's path, else DP2's cache
    (downloaded there with ``download(url)`` when the variant allows it)."""
    configured = (opts.get("checkpoints") or {}).get(kind)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise CheckpointError(f"dp2 {kind} checkpoint not found: {path} "
                                  f"(variant option checkpoints.{kind})")
    else:
        if not url:
            raise CheckpointError(f"dp2 {kind}: no checkpoint path (variant option "
                                  f"checkpoints.{kind}) and the DP2 config names no model_url")
        path = cache_path(url)
        if not path.is_file():
            if opts.get("download", False) and download is not None:
                path = Path(download(url))
            else:
                raise CheckpointError(_missing(kind, path, md5, url))
    got = md5sum(path)
    if got != md5:
        raise CheckpointError(f"dp2 {kind} checkpoint {path}: md5 {got}, expected {md5} "
                              "(a different or corrupt file; `anonbench weights fetch` replaces "
                              "it)")
    return path


def load_checkpoint(path: Path, md5: str) -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True``; a file whose md5 matched a published DP2
    checkpoint may fall back to a full load when it holds more than tensors."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if md5 not in {m for _, m in MODELS.values()}:
            raise
        return torch.load(path, map_location="cpu", weights_only=False)


def dp2_root(opts: dict[str, Any], dp2_module: Any) -> Path:
    root = opts.get("dp2_root") or os.environ.get("DP2_ROOT")
    if root:
        return Path(root).expanduser()
    return Path(dp2_module.__file__).resolve().parents[1]


class DP2Generator(ConditionalGenerator):
    """A DP2 generator (``G``) with our interface; ``synthesize`` returns its unmasked output."""

    def __init__(self, G: torch.nn.Module, kind: str, imsize: tuple[int, int]) -> None:
        super().__init__()
        self.G = G
        self.kind = kind
        self.imsize = tuple(imsize)
        self.z_dim = int(G.z_channels)
        self.w_dim = int(G.style_net.w_dim)

    def map(self, z: torch.Tensor) -> torch.Tensor:
        return self.G.style_net(z)

    def w_avg(self) -> torch.Tensor:
        return self.G.style_net.w_avg

    def stored_centres(self) -> torch.Tensor | None:
        return getattr(self.G.style_net, "w_centers", None)

    def synthesize(self, batch: CropBatch, w: torch.Tensor) -> torch.Tensor:
        if self.kind == "body":
            out = self.G(condition=batch.condition, mask=batch.mask,
                         maskrcnn_mask=1 - batch.person, img=batch.condition, w=w,
                         keypoints=batch.keypoints, joint_map=batch.joint_map)
        else:
            out = self.G(condition=batch.condition, mask=batch.mask, w=w)
        return out.get("unmasked", out["img"])


@register("dp2")
def build_dp2(kind: str, opts: dict[str, Any]) -> DP2Generator:
    """DP2's generator of ``kind`` with its published weights (md5-checked).

    ``opts['random_weights']`` (tests only, not a config option) builds it from the config with
    its initial weights when no checkpoint is there."""
    try:
        import dp2
        import tops  # noqa: F401
        from dp2.infer import load_generator_state
        from dp2.utils import load_config
        from tops.config import instantiate
    except ImportError as e:
        raise GeneratorUnavailable(f"generator dp2 needs DeepPrivacy2, which is not importable "
                                   f"here ({e}); {INSTALL_HINT}") from None
    config, md5 = MODELS[kind]
    cfg_path = dp2_root(opts, dp2) / config
    if not cfg_path.is_file():
        raise GeneratorUnavailable(f"DP2 config {cfg_path} not found: set the variant option "
                                   "dp2_root (or $DP2_ROOT) to the DeepPrivacy2 checkout")
    cwd = os.getcwd()
    try:  # DP2 resolves some paths relative to its checkout
        os.chdir(cfg_path.parents[len(Path(config).parts) - 1])
        cfg = load_config(cfg_path)
        G = instantiate(cfg.generator)
    finally:
        os.chdir(cwd)
    G.eval()
    url = cfg.common.get("model_url") if hasattr(cfg.common, "get") else getattr(
        cfg.common, "model_url", None)
    try:
        from tops.utils.file_util import download_file
    except ImportError:  # pragma: no cover
        download_file = None
    try:
        path = resolve_checkpoint(kind, opts, url, md5, download_file)
    except CheckpointError:
        if not opts.get("random_weights"):
            raise
        warnings.warn(f"dp2 {kind}: no checkpoint, using the config's initial weights")
    else:
        mapper = instantiate(cfg.ckpt_mapper) if hasattr(cfg, "ckpt_mapper") else None
        load_generator_state(load_checkpoint(path, md5), G, mapper)
    imsize = tuple(cfg.data.imsize)
    return DP2Generator(G, kind, imsize)
