"""Realistic anonymization of one image: regions -> crops -> generator -> post-processing -> paste.

:func:`realistic_region` lists what a variant replaces in one image (one :class:`Instance` per
face or person, with its crop box, the pixels it replaces and, for bodies, the instance mask and
keypoints); :func:`anonymize_realistic` synthesizes and pastes them.

The privacy invariant: the generator never sees a pixel that is replaced. Every pixel of the
image's region (the union of all instances' replaced pixels) is blanked before any crop is cut,
and the generate mask of each crop covers every crop pixel that touches the region. So the output
is a function of the pixels outside the region, the masks, the keypoints and the seed only.
DeepPrivacy2 instead cuts each crop from the image as edited so far, so a crop can see the
original pixels of a person anonymized after it; here all crops of an image are cut from the same
blanked image, which also lets them form one batch.

Replaced pixels: a face's box (as blur and mask-out); a person's instance mask dilated at image
resolution (:func:`anonbench.regions.dilate_body_mask_into`, the same pixels as blur and
mask-out), limited to its crop box. At crop resolution the generate mask is the union of that
(covered) and the instance mask dilated by disk(4), DP2's rule. Results are pasted smallest first.

Each instance's latent comes from ``numpy.random.default_rng([seed, key])`` with ``key`` the
annotation id: the same seed gives the same bytes, whatever the shard or batch.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from .. import regions
from ..regions import Region
from . import crops, postprocess, truncation
from .base import KINDS, ConditionalGenerator, CropBatch, build_generator
from .crops import IntBox

#: Value written into the region before crops are cut (DP2's condition is 0 = grey there too).
BLANK = 127
DEFAULT_BATCH = 8


@dataclass
class Instance:
    """One face or person to synthesize."""

    kind: str                      # the generator: body, face or face_hr
    key: int                       # seeds the latent (annotation id, else a hash of the box)
    box: IntBox                    # crop box in image pixels (may leave the image)
    paste: np.ndarray              # bool, box-sized: the pixels this instance replaces
    person: np.ndarray | None = None     # bool, box-sized: the undilated instance mask (bodies)
    keypoints: np.ndarray | None = None  # (17, 3) COCO keypoints in image pixels (bodies)


def _key(ident: Any, box: Iterable[float]) -> int:
    if isinstance(ident, (int, np.integer)) and ident >= 0:
        return int(ident)
    return zlib.crc32(json.dumps([round(float(v), 3) for v in box]).encode())


def _place(region: Region, inst: Instance, annotation_id: Any) -> None:
    h, w = region.mask.shape
    region.covered.add(annotation_id)
    ix0, iy0, ix1, iy1 = crops.inside(inst.box, (h, w))
    x0, y0 = inst.box[:2]
    region.mask[iy0:iy1, ix0:ix1] |= inst.paste[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
    region.boxes.append((ix0, iy0, ix1, iy1))
    region.instances.append(inst)


def realistic_region(height: int, width: int, anns: list[dict[str, Any]],
                     faces: list[dict[str, Any]], variant: dict[str, Any]) -> Region:
    """The :class:`anonbench.regions.Region` of a realistic variant, with its instances.

    Faces: every face box. Bodies: every person marked ``anonymize`` (bodies whose tight box is
    smaller than ``min_body_size``^2 skipped). Crops smaller than 8 x 8 are skipped (the study).
    """
    region = Region(np.zeros((height, width), dtype=bool))
    shape = (height, width)
    if variant["region"] == "face":
        for f in faces:
            x0, y0, x1, y1 = (float(v) for v in f["box"])
            ib = (max(0, math.floor(x0)), max(0, math.floor(y0)),
                  min(width, math.ceil(x1)), min(height, math.ceil(y1)))
            if ib[2] <= ib[0] or ib[3] <= ib[1]:
                continue
            box = crops.face_crop_box(ib, shape)
            hr = bool(variant.get("hr", False)) and crops.box_area(box) >= crops.HR_MIN_AREA
            if hr:
                box = crops.face_crop_box(ib, shape, hr=True)
            if crops.box_area(box) < crops.MIN_CROP_AREA:
                continue
            paste = np.zeros((box[3] - box[1], box[2] - box[0]), bool)
            paste[ib[1] - box[1]:ib[3] - box[1], ib[0] - box[0]:ib[2] - box[0]] = True
            _place(region, Instance("face_hr" if hr else "face",
                                    _key(f.get("annotation_id"), f["box"]), box, paste),
                   f.get("annotation_id"))
    elif variant["region"] == "body":
        fraction = float(variant.get("dilation", regions.BODY_DILATION_FRACTION))
        scratch = np.zeros(shape, dtype=bool)
        for ann, crop, tb in regions.bodies_to_anonymize(anns, height, width,
                                                         variant.get("min_body_size")):
            tight = tuple(float(v) for v in tb)
            box = crops.body_crop_box(tb, int(crop.sum()), shape)
            if crops.box_area(box) < crops.MIN_CROP_AREA:
                continue
            inst = regions.place(crop, tb, height, width)
            touched = regions.dilate_body_crop_into(scratch, crop, tb, fraction)
            paste = crops.cut(scratch, box, False)
            scratch[touched[1]:touched[3], touched[0]:touched[2]] = False
            kp = ann.get("keypoints")
            _place(region, Instance("body", _key(ann.get("id"), tight), box, paste,
                                    person=crops.cut(inst, box, False),
                                    keypoints=None if kp is None else
                                    np.asarray(kp, np.float64).reshape(17, 3)), ann.get("id"))
    else:
        raise ValueError(f"unknown region {variant['region']!r} (face, body)")
    return region


# ---------------------------------------------------------------------------------------------

_BUILT: dict[tuple[Any, ...], ConditionalGenerator] = {}
_BUILD_KEYS = ("generator", "generator_seed", "dp2_root", "checkpoints", "download",
               "random_weights", "device")


def _device(opts: dict[str, Any]) -> torch.device:
    dev = opts.get("device", "auto")
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(dev)


def get_generator(opts: dict[str, Any], kind: str) -> ConditionalGenerator:
    """The variant's generator of ``kind``, built once per process."""
    from . import demo, dp2  # noqa: F401  (register the plugins)

    key = (kind, json.dumps({k: opts.get(k) for k in _BUILD_KEYS}, sort_keys=True, default=str))
    if key not in _BUILT:
        g = build_generator(opts.get("generator", "demo"), kind, opts)
        for p in g.parameters():  # HM-LO differentiates with respect to w only
            p.requires_grad_(False)
        _BUILT[key] = g.to(_device(opts)).eval()
    return _BUILT[key]


def _batches(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), max(1, n)):
        yield items[i:i + n]


@dataclass
class _Prepared:
    crop: np.ndarray     # uint8 (H, W, 3) from the blanked image
    keep: np.ndarray     # bool (H, W)
    valid: np.ndarray    # bool (H, W): not padding
    person: np.ndarray   # bool (H, W): the person (bodies) or the generate mask (faces)
    keypoints: np.ndarray | None
    joint_map: np.ndarray | None
    scale: float         # crop pixels per image pixel


def prepare_crop(blanked: np.ndarray, region_mask: np.ndarray, inst: Instance,
                 size: tuple[int, int]) -> _Prepared:
    """The generator's view of one instance at ``size``: crop, keep mask, masks, keypoints."""
    face = inst.kind != "body"
    image_hw = blanked.shape[:2]
    crop = crops.resize_crop(crops.cut(blanked, inst.box, 0), size, face)
    generate = crops.cover_mask(crops.cut(region_mask, inst.box, False), size)
    valid = crops.in_image_mask(inst.box, image_hw, size)
    kp = jm = None
    if face:
        person = generate.copy()
    else:
        person = crops.resize_mask(inst.person, size)
        generate |= crops.dilate(person, crops.body_dilation_radius(size)) & valid
        kp = crops.normalise_keypoints(inst.keypoints, inst.box)
        jm = crops.joint_map(kp, size)
    return _Prepared(crop, ~generate, valid, person, kp, jm, size[0] / (inst.box[3] - inst.box[1]))


def _crop_batch(prep: list[_Prepared], device: torch.device) -> CropBatch:
    img = torch.from_numpy(np.stack([p.crop for p in prep])).permute(0, 3, 1, 2).float()
    keep = torch.from_numpy(np.stack([p.keep for p in prep]))[:, None].float()
    cond = (img / 127.5 - 1) * keep
    scale = torch.tensor([p.scale for p in prep], dtype=torch.float32)
    batch = CropBatch(cond.to(device), keep.to(device), scale=scale.to(device))
    if prep[0].keypoints is not None:
        batch.person = torch.from_numpy(np.stack([p.person for p in prep]))[:, None].float().to(
            device)
        batch.keypoints = torch.from_numpy(np.stack([p.keypoints for p in prep])).to(device)
        batch.joint_map = torch.from_numpy(np.stack([p.joint_map for p in prep]))[:, None].long(
            ).to(device)
    return batch


def initial_latents(G: ConditionalGenerator, keys: list[int], opts: dict[str, Any], kind: str
                    ) -> torch.Tensor:
    """Seeded, truncated latents (N, w_dim), one per instance key."""
    seed = int(opts.get("seed", 0))
    mode = opts.get("truncation", "multimodal" if kind == "body" else "none")
    k = int(opts.get("truncation_clusters", 512))
    zs, idx = [], []
    for key in keys:
        rng = np.random.default_rng([seed, key])
        zs.append(rng.standard_normal(G.z_dim, dtype=np.float32))
        idx.append(int(rng.integers(1 << 30)))
    z = torch.from_numpy(np.stack(zs)).to(G.device)
    with torch.no_grad():
        w = G.map(z)
        value = float(opts.get("truncation_value", 0.0))
        if mode == "none":
            return w
        if mode == "unimodal":
            return truncation.truncate(w, mode, value, w_avg=G.w_avg())
        centres = G.w_centres(k)
        index = torch.tensor(idx) % len(centres)
        return truncation.truncate(w, mode, value, centres=centres, index=index)


def synthesize(G: ConditionalGenerator, blanked: np.ndarray, region_mask: np.ndarray,
               chunk: list[Instance], opts: dict[str, Any]) -> list[np.ndarray]:
    """Float (H, W, 3) crops in [0, 255], composed (kept pixels from the blanked crop) and
    post-processed, one per instance of ``chunk`` (all of one kind)."""
    prep = [prepare_crop(blanked, region_mask, inst, G.imsize) for inst in chunk]
    batch = _crop_batch(prep, G.device)
    w = initial_latents(G, [inst.key for inst in chunk], opts, chunk[0].kind)

    def render(wt: torch.Tensor) -> torch.Tensor:
        x = G.synthesize(batch, wt)
        return batch.mask * batch.condition + (1 - batch.mask) * x

    if opts.get("lo", False):
        valid = torch.from_numpy(np.stack([p.valid for p in prep]))[:, None].float().to(G.device)
        real = (batch.condition + 1) / 2
        res = postprocess.optimise_latent(
            render, w, real, batch.mask * valid, valid,
            steps=int(opts.get("lo_steps", postprocess.LO_STEPS)),
            threshold=float(opts.get("lo_threshold", postprocess.LO_THRESHOLD)),
            lr=float(opts.get("lo_lr", postprocess.LO_LR)))
        x = res.synthesis
    else:
        with torch.no_grad():
            x = render(w)
    out = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).permute(0, 2, 3, 1).cpu().numpy()
    result = []
    for p, synth in zip(prep, out):
        if opts.get("hm", False):
            reference = p.crop[p.keep & p.valid]
            synth = postprocess.apply_hm(synth, reference, p.person,
                                         joint=bool(opts.get("hm_joint", False)),
                                         sigma=float(opts.get("hm_sigma", postprocess.HM_SIGMA)))
        result.append(synth)
    return result


def anonymize_realistic(image: np.ndarray, region: Any, opts: dict[str, Any]) -> np.ndarray:
    """Replace every instance of ``region`` (from :func:`realistic_region`) with a synthesized
    one; uint8 RGB in, uint8 RGB out."""
    instances: list[Instance] = list(getattr(region, "instances", []))
    out = image.copy()
    if not instances:
        return out
    blanked = image.copy()
    blanked[region.mask] = BLANK
    done: list[tuple[Instance, np.ndarray]] = []
    for kind in KINDS:
        group = [inst for inst in instances if inst.kind == kind]
        if not group:
            continue
        G = get_generator(opts, kind)
        for chunk in _batches(group, int(opts.get("batch_size", DEFAULT_BATCH))):
            done += zip(chunk, synthesize(G, blanked, region.mask, chunk, opts))
    for inst, synth in sorted(done, key=lambda t: int(t[0].paste.sum())):
        box_hw = (inst.box[3] - inst.box[1], inst.box[2] - inst.box[0])
        crops.paste(out, crops.resize_back(synth, box_hw), inst.box, inst.paste)
    return out
