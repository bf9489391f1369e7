"""The demo world: a real COCO 2017 keypoints dataset, deterministic and exact."""

import hashlib

import numpy as np
import pytest
from pycocotools.coco import COCO
from PIL import Image

from anonbench.datasets import demo
from anonbench.regions import face_box_from_keypoints


def digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("w") / "world"
    summary = demo.generate_world(root, seed=3, n_train=60, n_val=10)
    return root, summary


def test_coco_layout_loads_with_pycocotools(world):
    root, summary = world
    for split in ("train", "val"):
        inst = COCO(str(root / f"annotations/instances_{split}2017.json"))
        kps = COCO(str(root / f"annotations/person_keypoints_{split}2017.json"))
        assert {c["name"] for c in inst.loadCats(inst.getCatIds())} == {"person", "bicycle", "car"}
        assert kps.getCatIds() == [1]
        assert len(inst.getImgIds()) == summary[split]["images"]
        for img in inst.loadImgs(inst.getImgIds()[:5]):
            with Image.open(root / f"{split}2017" / img["file_name"]) as im:
                assert im.size == (img["width"], img["height"])
        person_ids = set(inst.getAnnIds(catIds=[1]))
        assert person_ids == set(kps.getAnnIds())


def test_world_has_what_the_study_needs(world):
    _, s = world
    t = s["train"]
    assert t["persons"] > 100 and t["small_persons"] > 30
    assert t["persons"] - t["small_persons"] > 30  # large ones too
    assert t["cars"] > 10 and t["bicycles"] > 10 and t["crowd"] > 0
    assert t["faces_labelled"] > 50


def test_deterministic_and_seeded(tmp_path):
    a = demo.generate_world(tmp_path / "a", seed=1, n_train=6, n_val=2)
    b = demo.generate_world(tmp_path / "b", seed=1, n_train=6, n_val=2)
    demo.generate_world(tmp_path / "c", seed=2, n_train=6, n_val=2)
    assert a == b
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_image_k_does_not_depend_on_split_size(tmp_path):
    demo.generate_world(tmp_path / "small", seed=0, n_train=3, n_val=1)
    demo.generate_world(tmp_path / "big", seed=0, n_train=7, n_val=1)
    name = "train2017/000000000003.jpg"
    assert (tmp_path / "small" / name).read_bytes() == (tmp_path / "big" / name).read_bytes()


def test_existing_root_is_refused(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        demo.generate_world(tmp_path / "w", n_train=1, n_val=1)


def test_masks_are_exact_and_disjoint(world):
    root, _ = world
    coco = COCO(str(root / "annotations/instances_train2017.json"))
    for img_id in coco.getImgIds()[:30]:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
        masks = [coco.annToMask(a).astype(bool) for a in anns]
        if masks:
            assert (np.sum(masks, axis=0) <= 1).all()  # visible pixels: no overlap
        for a, m in zip(anns, masks):
            assert a["area"] == m.sum() >= demo.MIN_PIXELS
            ys, xs = np.nonzero(m)
            assert a["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                 ys.max() - ys.min() + 1]


def test_keypoints_lie_on_their_person(world):
    root, _ = world
    coco = COCO(str(root / "annotations/person_keypoints_train2017.json"))
    on, total = 0, 0
    for a in coco.loadAnns(coco.getAnnIds(iscrowd=False)):
        kp = np.array(a["keypoints"]).reshape(17, 3)
        assert a["num_keypoints"] == int((kp[:, 2] > 0).sum())
        assert (kp[kp[:, 2] == 0, :2] == 0).all()
        m = coco.annToMask(a).astype(bool)
        for x, y, v in kp[kp[:, 2] == 2]:
            total += 1
            xi, yi = int(round(x)), int(round(y))
            on += m[max(0, yi - 2):yi + 3, max(0, xi - 2):xi + 3].any()
    assert total > 500 and on / total > 0.99


def test_face_box_from_keypoints_covers_the_drawn_face(world):
    """The face pixels (eyes) are inside the box derived from the keypoints."""
    root, _ = world
    coco = COCO(str(root / "annotations/person_keypoints_train2017.json"))
    checked = 0
    for a in coco.loadAnns(coco.getAnnIds(iscrowd=False)):
        kp = np.array(a["keypoints"]).reshape(17, 3)
        if kp[3, 2] == 0 or kp[4, 2] == 0 or kp[1, 2] == 0 or kp[2, 2] == 0:
            continue
        img = coco.loadImgs(a["image_id"])[0]
        box = face_box_from_keypoints(a["keypoints"], (img["width"], img["height"]))
        r = abs(kp[3, 0] - kp[4, 0]) / 2  # head radius
        cx, cy = (kp[3, 0] + kp[4, 0]) / 2, kp[3, 1]
        # the head disc's face part: from the eyes' row up half a radius to the chin
        assert box[0] <= max(0, cx - r) + 0.05 and box[2] >= min(img["width"], cx + r) - 0.05
        assert box[1] <= max(0, cy - 0.5 * r) + 0.05 and box[3] >= min(img["height"], cy + r) - 1
        checked += 1
    assert checked > 50


def test_crowd_regions_are_uncompressed_rle_without_keypoints(world):
    root, _ = world
    coco = COCO(str(root / "annotations/person_keypoints_train2017.json"))
    crowd = coco.loadAnns(coco.getAnnIds(iscrowd=True))
    assert crowd
    for a in crowd:
        assert isinstance(a["segmentation"]["counts"], list)
        assert a["num_keypoints"] == 0
        assert coco.annToMask(a).sum() == a["area"]


def _relative_sizes(style, n=120, w=256, h=160):
    """sqrt(box area / image area) of every person of n rendered scenes (the box-size figure)."""
    out = []
    for k in range(n):
        _, objs = demo.render_image(np.random.default_rng([0, 1, k]), w, h, style)
        for o in objs:
            ys, xs = np.nonzero(o["mask"])
            if o["kind"] == "person" and len(ys):
                out.append(np.sqrt((np.ptp(ys) + 1) * (np.ptp(xs) + 1) / (w * h)))
    return np.array(out)


def test_street_persons_are_mostly_small_and_closeup_persons_large():
    street, closeup = _relative_sizes("street"), _relative_sizes("closeup", w=224)
    # Cityscapes-like: most person boxes under 1 % of the image (0.1 on the figure's axis)
    assert (street < 0.1).mean() > 0.5 and np.median(street) < 0.1
    # COCO-like: far larger persons, a few small ones behind them
    assert np.median(closeup) > 3 * np.median(street) and (closeup > 0.3).mean() > 0.5
    assert len(street) > 1.5 * len(closeup)  # streets hold more people per image


def test_unknown_style_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="unknown demo world style 'beach'.*street, closeup"):
        demo.generate_world(tmp_path / "w", style="beach")
    assert not (tmp_path / "w").exists()


def test_the_face_box_leaves_the_crown_and_covers_the_face():
    """Heads as real heads: the WIDER-Face box from the face keypoints covers the face (eyes,
    mouth) and leaves the top of the head above it, hair or hat, as on a real person; not the
    whole head as a disc-shaped head under the same rule would."""
    seen = 0
    for k in range(40):
        img, objs = demo.render_image(np.random.default_rng([0, 1, k]), 224, 160, "closeup")
        for o in objs:
            kp = o.get("keypoints")
            if o["kind"] != "person" or kp is None or not (kp[1, 2] == 2 and kp[2, 2] == 2):
                continue
            box = face_box_from_keypoints(kp.ravel().tolist(), (224, 160))
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            if x1 - x0 < 12 or y0 < 2:
                continue
            seen += 1
            mask = o["mask"]
            above = mask[:y0, x0:x1].any(axis=1)
            crown = int(above[::-1].argmin()) if not above.all() else y0
            assert crown >= 0.1 * (x1 - x0), (k, box)  # head pixels above the box
            eyes = kp[1:3, :2].round().astype(int)
            assert all(x0 <= x < x1 and y0 <= y < y1 for x, y in eyes)
    assert seen >= 20
