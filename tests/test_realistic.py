"""Realistic anonymization (anonbench.realistic) with the demo generator: crop geometry,
truncation, HM, HM-LO, the privacy invariant, determinism, and a demo-world shard end to end."""

import copy
import json
import math

import numpy as np
import pytest
import torch
from skimage import color, data

from anonbench import anonymize, audit, regions
from anonbench.datasets.demo import render_image
from anonbench.manifest import annotation_mask, encode_mask
from anonbench.realistic import crops, postprocess, truncation
from anonbench.realistic.base import CropBatch
from anonbench.realistic.demo import DemoGenerator
from anonbench.realistic.pipeline import get_generator, initial_latents, prepare_crop

from conftest import load_config

REALISTIC = {k: v for k, v in load_config()["variants"].items() if v["method"] == "realistic"}


def fast(variant):
    """The variant with HM-LO shortened (the invariants do not depend on the step count)."""
    v = copy.deepcopy(variant)
    if v.get("lo"):
        v["lo_steps"] = 4
    return v


@pytest.fixture(scope="module")
def scene():
    """A demo-world street scene with several people (exact masks, keypoints, face boxes)."""
    def big_face(o):
        box = regions.face_box_from_keypoints(o["keypoints"].ravel().tolist(), (256, 160))
        return box is not None and box[2] - box[0] >= 10

    for k in range(100):
        img, objs = render_image(np.random.default_rng([0, 1, k]), 256, 160)
        people = [o for o in objs if o["kind"] == "person"]
        if len(people) >= 3 and any(o["mask"].sum() > 1500 and big_face(o) for o in people):
            break
    anns, faces = [], []
    for i, o in enumerate(objs):
        if o["kind"] != "person":
            continue
        kp = o["keypoints"].ravel().tolist()
        anns.append({"id": 100 + i, "segmentation": encode_mask(o["mask"]), "anonymize": True,
                     "keypoints": kp})
        box = regions.face_box_from_keypoints(kp, (256, 160))
        if box is not None:
            faces.append({"annotation_id": 100 + i, "box": list(box)})
    assert faces
    return img, anns, faces


def run(image, anns, faces, variant):
    region = anonymize.region_mask(image.shape[0], image.shape[1], anns, faces, variant)
    return region, anonymize.anonymize_image(image, region, variant)


# ---------------------------------------------------------------------------------------------
# crop geometry


def test_expand_axis_grows_around_the_centre_and_shifts_inside():
    assert crops.expand_axis(10, 20, 20, 100) == (5, 25)
    assert crops.expand_axis(0, 10, 20, 100) == (0, 20)        # shifted back inside
    assert crops.expand_axis(95, 100, 11, 100) == (89, 100)
    assert crops.expand_axis(0, 10, 50, 30) == (-20, 30)       # too long: leaves the image


@pytest.mark.parametrize("seed", range(5))
def test_body_crop_box_has_the_generators_aspect_and_contains_the_person(seed):
    rng = np.random.default_rng(seed)
    img_h, img_w = 480, 640
    w, h = int(rng.integers(5, 200)), int(rng.integers(5, 400))
    x0, y0 = int(rng.integers(0, img_w - w)), int(rng.integers(0, img_h - h))
    dense = int(w * h * rng.uniform(0.3, 1.0))
    box = crops.body_crop_box((x0, y0, x0 + w, y0 + h), dense, (img_h, img_w))
    bw, bh = box[2] - box[0], box[3] - box[1]
    assert box[0] <= x0 and box[1] <= y0 and box[2] >= x0 + w and box[3] >= y0 + h
    assert abs(bh / bw - 288 / 160) < 0.05 + 2 / min(bw, bh)
    assert 1 - dense / (bw * bh) >= 0.3 - 0.02  # at least 30 % background
    grow = int(math.sqrt(w * h) * crops.BODY_AXIS_GROWTH)
    assert bw >= min(w + grow, img_w) and bh >= min(h + grow, img_h)


def test_face_crop_boxes():
    square = crops.face_crop_box((100, 50, 120, 80), (200, 300))
    assert square[2] - square[0] == square[3] - square[1] == 30 + 2 * int(30 * 0.35)
    assert square[0] <= 100 and square[1] <= 50 and square[2] >= 120 and square[3] >= 80
    corner = crops.face_crop_box((0, 0, 20, 20), (200, 300))
    assert corner[:2] == (0, 0) and corner[2] - corner[0] == 20 + 2 * 7  # kept inside
    big = crops.face_crop_box((10, 10, 150, 190), (200, 300))  # grows as far as the image allows
    assert big[3] - big[1] == big[2] - big[0] == 200 and big[1] == 0
    huge = crops.face_crop_box((0, 0, 250, 250), (200, 300))  # larger than the image
    assert huge[2] - huge[0] == 2 * int(250 * 1.7 / 2)
    hr = crops.face_crop_box((100, 50, 120, 80), (200, 300), hr=True)
    assert hr[2] - hr[0] == 2 * int(30 * 1.4 / 2) and (hr[0] + hr[2]) / 2 == 110


def test_cut_pads_outside_and_paste_writes_only_the_mask():
    img = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    c = crops.cut(img, (-2, 3, 3, 7))
    assert c.shape == (4, 5, 3)
    np.testing.assert_array_equal(c[:2, 2:], img[3:5, 0:3])
    assert not c[2:].any() and not c[:, :2].any()
    out = img.copy()
    m = np.zeros((4, 5), bool)
    m[0, 2] = m[1, 4] = m[3, 0] = True  # the last one lies outside the image
    crops.paste(out, np.full((4, 5, 3), 255, np.uint8), (-2, 3, 3, 7), m)
    assert (out != img).any(-1).sum() == 2 and (out[3, 0] == 255).all() and (out[4, 2] == 255).all()


def test_cover_mask_covers_every_replaced_pixel():
    rng = np.random.default_rng(0)
    for size in ((37, 23), (300, 170)):
        m = rng.random(size) < 0.02
        cov = crops.cover_mask(m, (288, 160))
        back = crops.resize_mask(cov, size)  # nearest back: every marked pixel lands in cover
        ys, xs = np.nonzero(m)
        cy = ((ys + 0.5) * 288 / size[0]).astype(int)
        cx = ((xs + 0.5) * 160 / size[1]).astype(int)
        assert cov[cy, cx].all()
        assert back[m].all()


def test_keypoints_are_normalised_to_the_box_and_outside_ones_hidden():
    kp = np.zeros((17, 3))
    kp[5] = (20, 40, 2)
    kp[6] = (5, 40, 1)   # left of the box
    kp[7] = (30, 60, 0)  # not labelled
    out = crops.normalise_keypoints(kp, (10, 20, 50, 100))
    np.testing.assert_allclose(out[5], [0.25, 0.25, 1])
    assert out[6, 2] == 0 and out[7, 2] == 0


def test_joint_map_draws_visible_limbs_only():
    kp = np.zeros((17, 3), np.float32)
    kp[5] = (0.6, 0.3, 1)   # left shoulder
    kp[7] = (0.7, 0.5, 1)   # left elbow: a left-arm line (label 2)
    kp[12] = (0.4, 0.5, 1)  # right hip alone: no line
    jm = crops.joint_map(kp, (288, 160))
    assert set(np.unique(jm)) == {0, 2}
    ys, xs = np.nonzero(jm == 2)
    assert ys.min() == round(0.3 * 288) and ys.max() == round(0.5 * 288)
    kp[6], kp[11] = (0.4, 0.3, 1), (0.6, 0.5, 1)  # now shoulders and hips: torso lines (4)
    assert {2, 4} <= set(np.unique(crops.joint_map(kp, (288, 160))))


# ---------------------------------------------------------------------------------------------
# truncation


def test_truncation_modes():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 4, generator=g)
    avg, centres = torch.randn(4, generator=g), torch.randn(3, 4, generator=g)
    idx = torch.tensor([0, 1, 2, 2, 1, 0])
    assert torch.equal(truncation.truncate(w, "none", 0.0), w)
    assert torch.allclose(truncation.truncate(w, "unimodal", 0.0, w_avg=avg), avg.expand(6, 4))
    assert torch.allclose(truncation.truncate(w, "unimodal", 1.0, w_avg=avg), w)
    half = truncation.truncate(w, "unimodal", 0.5, w_avg=avg)
    assert torch.allclose(half, (w + avg) / 2)
    assert torch.allclose(truncation.truncate(w, "multimodal", 0.0, centres=centres, index=idx),
                          centres[idx])
    with pytest.raises(ValueError, match="unknown truncation"):
        truncation.truncate(w, "bimodal", 0.0)


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(1)
    true = rng.normal(0, 10, (5, 3))
    x = np.concatenate([c + rng.normal(0, 0.1, (200, 3)) for c in true])
    found = truncation.kmeans(x, 5, seed=0)
    d = np.linalg.norm(found[:, None] - true[None], axis=-1)
    assert (d.min(0) < 0.1).all()  # every true centre has a found one next to it


# ---------------------------------------------------------------------------------------------
# HM and HM-LO


def test_sv_and_soft_histograms():
    rgb = torch.rand(2, 3, 8, 9, generator=torch.Generator().manual_seed(0))
    s, v = postprocess.rgb_to_sv(rgb)
    hsv = color.rgb2hsv(rgb[0].permute(1, 2, 0).numpy())
    np.testing.assert_allclose(s[0].numpy(), hsv[..., 1], atol=1e-5)
    np.testing.assert_allclose(v[0].numpy(), hsv[..., 2], atol=1e-6)
    # point masses on bin centres a and b: W1 = |a - b|
    a, b = torch.full((1, 50), 10 / 255), torch.full((1, 50), 200 / 255)
    ones = torch.ones(1, 50)
    ha, hb = postprocess.soft_histogram(a, ones), postprocess.soft_histogram(b, ones)
    assert ha.sum().item() == pytest.approx(1.0)
    assert postprocess.wasserstein1(ha, hb).item() == pytest.approx(190 / 255, rel=1e-4)


def test_histogram_matching_per_channel_and_joint():
    photo = data.astronaut()[100:228, 100:228]
    synth = np.clip(photo * 0.5 + 100, 0, 255)
    ref = data.coffee()[:64, :64].reshape(-1, 3)
    per = postprocess.histogram_match(synth.astype(np.uint8), ref)
    joint = postprocess.histogram_match(synth.astype(np.uint8), ref, joint=True)
    for c in range(3):  # each channel now has the reference channel's distribution
        assert abs(per[..., c].mean() - ref[:, c].mean()) < 3
    assert not np.allclose(per, joint)
    w = postprocess.blend_weights(np.pad(np.ones((20, 20), bool), 20))
    assert w.max() == pytest.approx(1.0) and w[0, 0] == 0 and 0 < w[20, 20] < 1


@pytest.fixture(scope="module")
def body_batch(scene):
    img, anns, faces = scene
    variant = REALISTIC["body-realistic"]
    region = anonymize.region_mask(img.shape[0], img.shape[1], anns, faces, variant)
    G = get_generator(variant, "body")
    blanked = img.copy()
    blanked[region.mask] = 127
    prep = [prepare_crop(blanked, region.mask, inst, G.imsize) for inst in region.instances]
    from anonbench.realistic.pipeline import _crop_batch

    return G, _crop_batch(prep, G.device), prep, region


def test_gradients_flow_from_the_histogram_loss_to_w(body_batch):
    G, batch, prep, region = body_batch
    w = initial_latents(G, [i.key for i in region.instances], {}, "body").requires_grad_(True)
    x = G.synthesize(batch, w)
    real = postprocess.sv_histograms((batch.condition + 1) / 2, batch.mask)
    loss = postprocess.hmlo_loss((x + 1) / 2, torch.ones_like(batch.mask), real).sum()
    loss.backward()
    assert w.grad is not None and torch.isfinite(w.grad).all()
    assert (w.grad.abs().sum(1) > 0).all()  # every crop's latent gets a gradient


def test_hmlo_loss_falls_on_the_demo_generator(body_batch):
    G, batch, prep, region = body_batch
    w0 = initial_latents(G, [i.key for i in region.instances], {}, "body")

    def render(w):
        return batch.mask * batch.condition + (1 - batch.mask) * G.synthesize(batch, w)

    valid = torch.from_numpy(np.stack([p.valid for p in prep]))[:, None].float().to(w0.device)
    res = postprocess.optimise_latent(render, w0, (batch.condition + 1) / 2,
                                      batch.mask * valid, valid, steps=30, lr=0.05)
    for losses, steps in zip(res.losses, res.steps):
        assert losses[-1] < losses[0] or losses[0] < postprocess.LO_THRESHOLD
        assert len(losses) == steps + 1
    assert not torch.equal(res.w, w0)
    # the returned synthesis is the one of the returned latents
    torch.testing.assert_close(render(res.w).detach(), res.synthesis)


def test_hmlo_stops_below_the_threshold(body_batch):
    G, batch, prep, region = body_batch
    w0 = initial_latents(G, [i.key for i in region.instances], {}, "body")

    def render(w):
        return batch.mask * batch.condition + (1 - batch.mask) * G.synthesize(batch, w)

    ones = torch.ones_like(batch.mask)
    res = postprocess.optimise_latent(render, w0, (batch.condition + 1) / 2, ones, ones,
                                      steps=50, threshold=10.0)
    assert res.steps == [0] * len(w0)  # every loss is below 10 at once: no step taken


def test_demo_body_generator_draws_a_new_figure_from_the_keypoints(body_batch):
    G, batch, prep, region = body_batch
    w = initial_latents(G, [i.key for i in region.instances], {}, "body")
    x = G.synthesize(batch, w)
    # the person's own silhouette is not an input: any `person` mask, the same output
    for person in (torch.zeros_like(batch.mask), torch.ones_like(batch.mask)):
        other = CropBatch(batch.condition, batch.mask, person, batch.keypoints, batch.joint_map,
                          scale=batch.scale)
        torch.testing.assert_close(G.synthesize(other, w), x)
    # the figure covers its skeleton's visible joints (the ears lie on the head's edge) and
    # leaves the far generate region to the background fill
    _, alpha = G._body(G._figure_layout(batch), G.params(w))
    h, wd = G.imsize
    kp = batch.keypoints
    for i in range(len(batch)):
        vis = kp[i, :, 2] > 0
        vis[3:5] = False
        xs = (kp[i, vis, 0] * wd).long().clamp(0, wd - 1)
        ys = (kp[i, vis, 1] * h).long().clamp(0, h - 1)
        assert (alpha[i, 0, ys, xs] > 0.9).all()
        gen = batch.mask[i, 0] < 0.5
        assert alpha[i, 0][gen].mean() < 0.95  # not the whole dilated region
    # another pose, another figure
    moved = batch.keypoints.clone()
    moved[:, :, 0] = 1 - moved[:, :, 0]
    flipped = CropBatch(batch.condition, batch.mask, batch.person, moved, batch.joint_map)
    assert not torch.allclose(G.synthesize(flipped, w), x)


def test_demo_body_generator_without_keypoints_stands_a_figure_in_the_region():
    G = DemoGenerator("body", seed=0)
    h, w = G.imsize
    keep = torch.ones(1, 1, h, w)
    keep[:, :, 40:260, 50:110] = 0
    batch = CropBatch(torch.zeros(1, 3, h, w), keep, keypoints=torch.zeros(1, 17, 3))
    _, alpha = G._body(G._figure_layout(batch), G.params(G.map(torch.randn(1, G.z_dim))))
    inside = alpha[0, 0] > 0.5
    assert inside.sum() > 0.2 * 220 * 60  # a figure, not a dot
    assert (inside & (keep[0, 0] > 0.5)).sum() < 0.02 * inside.sum()  # within the region
    ys = torch.nonzero(inside)[:, 0]
    assert ys.max() - ys.min() > 0.5 * 220  # head to feet, a standing figure
    assert abs((ys.max() + ys.min()) / 2 - 150) < 10  # in the region's middle


def test_demo_appearance_parameters_are_uniform_and_independent():
    """Under the latent prior each appearance parameter is about uniform on (0, 1) and
    uncorrelated with the others (one random projection of w skewed and correlated them: every
    figure of the world came out in one mean colour)."""
    z = torch.randn(4096, 32, generator=torch.Generator().manual_seed(7))
    for kind in ("body", "face"):
        G = DemoGenerator(kind, seed=0)
        with torch.no_grad():
            p = G.params(G.map(z))
        assert ((p.mean(0) - 0.5).abs() < 0.03).all(), (kind, p.mean(0))
        assert ((p.std(0) - 12 ** -0.5).abs() < 0.03).all(), (kind, p.std(0))
        corr = torch.corrcoef(p.T) - torch.eye(p.shape[1])
        assert corr.abs().max() < 0.1, (kind, corr.abs().max())


def test_demo_body_parts_are_at_least_the_worlds_two_pixels_thick():
    """A far person's limbs are at least 1 image pixel in half width, however many crop pixels
    that is (the world draws no line thinner than 2 px); a near person's follow its height."""
    from anonbench.realistic.demo import FOREARM

    G = DemoGenerator("body", seed=0)
    h, w = G.imsize
    keep = torch.ones(1, 1, h, w)
    keep[:, :, 40:260, 30:130] = 0  # a standing figure about 0.85 * 220 crop px tall

    def forearm_half_width(scale):
        batch = CropBatch(torch.zeros(1, 3, h, w), keep, keypoints=torch.zeros(1, 17, 3),
                          scale=scale)
        layout = G._figure_layout(batch)
        return -float(layout["dist"][0, FOREARM].min()), float(layout["height"])

    near, height = forearm_half_width(None)
    assert abs(near - 0.04 * height) < 1.0  # the world's proportions: arms 0.08 H thick
    assert forearm_half_width(torch.tensor([1.0]))[0] == near
    far = forearm_half_width(torch.tensor([15.0]))[0]  # 15 crop px per image px
    assert 15.0 - 1.0 < far <= 15.0


# ---------------------------------------------------------------------------------------------
# the method on whole images


@pytest.mark.parametrize("name", sorted(REALISTIC))
def test_generator_never_sees_the_pixels_it_replaces(scene, name):
    img, anns, faces = scene
    variant = fast(REALISTIC[name])
    region, out = run(img, anns, faces, variant)
    assert region.any() and len(region.instances) > 0
    # outside the region nothing changes; inside, (nearly) everything does
    np.testing.assert_array_equal(out[~region.mask], img[~region.mask])
    changed = np.abs(out.astype(int) - img).max(-1) > 2
    assert changed[region.mask].mean() > 0.5
    # new pixels under the region: the output is the same, byte for byte
    noise = np.random.default_rng(7).integers(0, 256, img.shape, dtype=np.uint8)
    other = np.where(region.mask[..., None], noise, img)
    _, out2 = run(other, anns, faces, variant)
    np.testing.assert_array_equal(out2, out)
    # a pixel outside the region does change it (the test can fail)
    ys, xs = np.nonzero(crops.dilate(region.mask, 2) & ~region.mask)
    probe = img.copy()
    probe[ys, xs] = 255 - probe[ys, xs]
    _, out3 = run(probe, anns, faces, variant)
    assert not np.array_equal(out3[region.mask], out[region.mask])


def test_same_seed_same_bytes_other_seed_other_people(scene):
    img, anns, faces = scene
    v = REALISTIC["body-realistic-notrunc"]
    _, a = run(img, anns, faces, v)
    _, b = run(img, anns, faces, copy.deepcopy(v))
    np.testing.assert_array_equal(a, b)
    region, c = run(img, anns, faces, {**v, "seed": 1})
    assert not np.array_equal(a[region.mask], c[region.mask])
    # one batch or one crop per call: same result (latents come from seed and annotation id)
    _, d = run(img, anns, faces, {**v, "batch_size": 1})
    np.testing.assert_array_equal(a, d)


def test_truncation_variants_differ(scene):
    img, anns, faces = scene
    outs = {n: run(img, anns, faces, REALISTIC[n])[1]
            for n in ("body-realistic", "body-realistic-notrunc", "body-realistic-unitrunc")}
    assert not np.array_equal(outs["body-realistic"], outs["body-realistic-notrunc"])
    assert not np.array_equal(outs["body-realistic-unitrunc"], outs["body-realistic-notrunc"])
    # unimodal with t = 0: every person gets w_avg, i.e. the same appearance parameters
    G = get_generator(REALISTIC["body-realistic-unitrunc"], "body")
    w = initial_latents(G, [1, 2, 3], REALISTIC["body-realistic-unitrunc"], "body")
    assert torch.allclose(w, G.w_avg().expand_as(w))
    centres = G.w_centres(512)
    assert centres.shape == (512, G.w_dim)
    w = initial_latents(G, [1, 2, 3], REALISTIC["body-realistic"], "body")
    assert all(any(torch.equal(r, c) for c in centres) for r in w)  # t = 0: exact centres


def test_min_body_size_and_hr_faces(scene):
    img, anns, faces = scene
    h, w = img.shape[:2]
    all_bodies = anonymize.region_mask(h, w, anns, faces, REALISTIC["body-realistic"])
    big = anonymize.region_mask(h, w, anns, faces, REALISTIC["body-realistic-min32"])
    boxes = [regions.mask_box(annotation_mask(a, h, w)) for a in anns]
    n_big = sum((b[2] - b[0]) * (b[3] - b[1]) >= 32 ** 2 for b in boxes)
    assert len(big.instances) == n_big < len(all_bodies.instances)
    # an HR face: the 256 generator for a face whose crop is >= 128^2
    face = [{"annotation_id": 1, "box": [60.0, 20.0, 160.0, 130.0]}]
    photo = data.astronaut()[:256, :256]
    r = anonymize.region_mask(256, 256, [], face, REALISTIC["face-realistic-hr"])
    assert [i.kind for i in r.instances] == ["face_hr"]
    assert r.instances[0].box[2] - r.instances[0].box[0] == 2 * int(110 * 1.4 / 2)
    assert [i.kind for i in anonymize.region_mask(
        256, 256, [], face, REALISTIC["face-realistic"]).instances] == ["face"]
    out = anonymize.anonymize_image(photo, r, REALISTIC["face-realistic-hr"])
    assert (out != photo).any(-1)[r.mask].mean() > 0.5


def test_demo_generator_interface():
    G = DemoGenerator("face", seed=3)
    assert G.imsize == (128, 128)
    n = 2
    keep = torch.ones(n, 1, 128, 128)
    keep[:, :, 40:90, 30:100] = 0
    cond = (torch.rand(n, 3, 128, 128) * 2 - 1) * keep
    w = G.map(torch.randn(n, G.z_dim))
    x = G.synthesize(CropBatch(cond, keep), w)
    assert x.shape == (n, 3, 128, 128) and x.min() >= -1 and x.max() <= 1
    # different latents, different faces
    assert not torch.allclose(x[0, :, 40:90, 30:100], x[1, :, 40:90, 30:100])


# ---------------------------------------------------------------------------------------------
# a demo-world shard, end to end


def test_demo_world_shard_body_realistic_end_to_end(tmp_path):
    from anonbench import steps
    from anonbench.datasets.demo import generate_world

    generate_world(tmp_path / "world", seed=0, n_train=4, n_val=1)
    steps.prepare("coco", str(tmp_path / "world"), "train", "demo", str(tmp_path / "train.json"))
    steps.make_shards(str(tmp_path / "train.json"), 1, str(tmp_path / "shards"))
    shard = str(tmp_path / "shards" / "000.json")
    variant = REALISTIC["body-realistic"]
    outs = []
    for k in range(2):
        out = tmp_path / f"anon{k}" / "000"
        stats = anonymize.anonymize_shard(shard, None, variant, str(out), progress=False)
        outs.append(out)
    assert stats["images"] == 4 and stats["anonymized_images"] > 0 and stats["regions"] > 0
    summary = json.loads((outs[0] / "summary.json").read_text())
    assert summary["variant"]["method"] == "realistic"
    for f in sorted(outs[0].glob("*.jpg")):  # same seed, same bytes
        assert f.read_bytes() == (outs[1] / f.name).read_bytes()
    result = audit.audit_shard(shard, None, variant, str(outs[0]))
    assert result["regions"] > 0 and result["unchanged_mean"] < 0.5


def test_an_estimators_keypoints_replace_the_persons_own(tmp_path):
    """The anonymize job takes the keypoints job's file (rule keypoints) for a dataset whose
    keypoints are estimated: the body generator draws the same figure from the same keypoints
    read from that file, and another figure without them."""
    from anonbench import anonymize as anonymize_step
    from anonbench.annotate import estimate_keypoints
    from anonbench.datasets import demo as demo_world
    from anonbench.manifest import load_manifest, write_json

    demo_world.generate_world(tmp_path / "w", seed=3, n_train=2, n_val=1)
    from anonbench import steps

    steps.prepare("coco", str(tmp_path / "w"), "train", "d", str(tmp_path / "train.json"))
    m = load_manifest(tmp_path / "train.json")
    write_json(tmp_path / "kp.json", estimate_keypoints(m, {"estimator": "groundtruth"}))
    bare = {**m, "annotations": [{k: v for k, v in a.items() if k not in (
        "keypoints", "num_keypoints")} for a in m["annotations"]]}
    write_json(tmp_path / "bare.json", bare)
    variant = fast(REALISTIC["body-realistic"])
    outs = {}
    for name, shard, kp in (("own", "train.json", None), ("bare", "bare.json", None),
                            ("estimated", "bare.json", str(tmp_path / "kp.json"))):
        anonymize_step.anonymize_shard(str(tmp_path / shard), None, variant,
                                       str(tmp_path / name), keypoints_json=kp, progress=False)
        outs[name] = {p.name: p.read_bytes() for p in sorted((tmp_path / name).rglob("*.jpg"))}
    assert outs["own"] and outs["estimated"] == outs["own"]
    assert outs["bare"] != outs["own"]
