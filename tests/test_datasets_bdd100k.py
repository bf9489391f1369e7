"""BDD100K ingest: the toolkit's own bitmasks, the demo world in the BDD100K layout, bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from anonbench.datasets import bdd100k, demo, load_split
from anonbench.manifest import ManifestError, annotation_mask, encode_mask

TOOLKIT = Path(__file__).parent / "data" / "bdd100k_toolkit"


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    base = tmp_path_factory.mktemp("bdd")
    demo.generate_world(base / "coco", seed=6, n_train=10, n_val=4)
    demo.generate_world_in_layout(base / "bdd", "bdd100k", seed=6, n_train=10, n_val=4)
    return base / "coco", base / "bdd"


def without(root, tmp_path, what):
    """A copy of the dataset without its bitmasks or its RLE files."""
    out = tmp_path / f"no_{what}"
    shutil.copytree(root, out)
    shutil.rmtree(out / "labels" / "ins_seg" / what)
    return out


def keyed(m):
    imgs = {i["id"]: i for i in m["images"]}
    return sorted((imgs[a["image_id"]]["file_name"], a["category_id"], a["iscrowd"], a["anonymize"],
                   annotation_mask(a, imgs[a["image_id"]]["height"],
                                   imgs[a["image_id"]]["width"]).tobytes())
                  for a in m["annotations"])


def test_ingest_of_the_toolkits_bitmasks_matches_the_toolkits_coco_conversion():
    """Bitmasks written by bdd100k.label.to_mask, read by us, against bdd100k.label.to_coco."""
    m = load_split("bdd100k", str(TOOLKIT), "train", "bdd")
    assert m["info"]["labels"] == "bitmasks"
    coco = json.loads((TOOLKIT / "toolkit_to_coco_train.json").read_text())
    assert [(c["id"], c["name"]) for c in coco["categories"]] == \
        [(c["id"], c["name"]) for c in m["categories"]]
    names = {i["id"]: i["file_name"] for i in coco["images"]}
    ours = {}
    for a in m["annotations"]:
        img = next(i for i in m["images"] if i["id"] == a["image_id"])
        ours[(img["file_name"], annotation_mask(a, 48, 64).tobytes())] = a
    assert len(ours) == len(coco["annotations"]) == 7
    for t in coco["annotations"]:
        mask = annotation_mask(t, 48, 64)
        a = ours[(names[t["image_id"]], mask.tobytes())]
        assert a["category_id"] == t["category_id"]
        assert a["crowd"] == int(t["iscrowd"])
        assert a["area"] == t["area"] and a["bbox"] == t["bbox"]
        assert a["instance_id"] == t["instance_id"]
    # other person -> pedestrian + ignored; person -> pedestrian; bike -> bicycle
    got = sorted((a["category_id"], a["crowd"], a["ignored"], a["anonymize"])
                 for a in m["annotations"])
    assert got == [(1, 0, 0, True), (1, 0, 0, True), (1, 0, 1, False), (1, 1, 0, False),
                   (2, 0, 0, False), (3, 0, 0, False), (8, 0, 0, False)]
    s = m["info"]["summary"]
    assert s["persons_kept"] == 2 and s["persons_skipped"] == {"crowd": 1, "ignored": 1}


@pytest.mark.parametrize("split", ["train", "val"])
def test_bitmasks_and_rles_give_the_world(worlds, tmp_path, split):
    coco_root, root = worlds
    from_bitmasks = load_split("bdd100k", str(without(root, tmp_path, "rles")), split, "b")
    from_rles = load_split("bdd100k", str(without(root, tmp_path, "bitmasks")), split, "b")
    assert from_bitmasks["info"]["labels"] == "bitmasks" and from_rles["info"]["labels"] == "rles"
    assert keyed(from_bitmasks) == keyed(from_rles)
    world = json.loads((coco_root / "annotations" / f"instances_{split}2017.json").read_text())
    to_bdd = {1: 1, 2: 8, 3: 3}
    imgs = {i["id"]: i for i in world["images"]}
    expected = sorted((demo.bdd100k_name(split, a["image_id"]), to_bdd[a["category_id"]],
                       a["iscrowd"], a["category_id"] == 1 and not a["iscrowd"],
                       annotation_mask(a, imgs[a["image_id"]]["height"],
                                       imgs[a["image_id"]]["width"]).tobytes())
                      for a in world["annotations"])
    assert keyed(from_rles) == expected
    # same image bytes as the world
    img = world["images"][0]
    assert (root / "images" / "10k" / split / demo.bdd100k_name(split, img["id"])).read_bytes() == \
        (coco_root / f"{split}2017" / img["file_name"]).read_bytes()


def test_decode_bitmask_bits():
    bm = np.zeros((4, 6, 4), np.uint8)
    bm[0, :2] = (1, 0b1000, 1, 2)      # pedestrian, truncated, instance 258
    bm[1, :2] = (1, 0b0010, 0, 3)      # pedestrian crowd, instance 3
    bm[2, :3] = (3, 0b0101, 0, 4)      # car, occluded + ignored, instance 4
    bm[3, 5] = (8, 0, 0, 3)            # bicycle with the crowd's instance id: its own instance
    got = [(r["category_id"], r["instance_id"], r["crowd"], r["ignored"], r["occluded"],
            r["truncated"], int(r["mask"].sum())) for r in bdd100k.decode_bitmask(bm)]
    assert got == [(1, 3, True, False, False, False, 2), (8, 3, False, False, False, False, 1),
                   (3, 4, False, True, True, False, 3), (1, 258, False, False, False, True, 2)]


def rle_dataset(root, frames, size=(20, 30)):
    h, w = size
    (root / "images" / "10k" / "train").mkdir(parents=True)
    for fr in frames:
        Image.fromarray(np.full((h, w, 3), 80, np.uint8)).save(
            root / "images" / "10k" / "train" / fr["name"])
    (root / "labels" / "ins_seg" / "rles").mkdir(parents=True)
    (root / "labels" / "ins_seg" / "rles" / "ins_seg_train.json").write_text(json.dumps(frames))
    return root


def box_label(category, y0, attributes=None, size=(20, 30)):
    m = np.zeros(size, bool)
    m[y0:y0 + 3, 2:8] = True
    return {"id": "1", "category": category, "attributes": attributes, "rle": encode_mask(m)}


def test_rle_labels_use_the_toolkits_name_and_ignored_mappings(tmp_path):
    frames = [{"name": "a.jpg", "labels": [
        box_label("person", 0), box_label("other person", 4), box_label("bike", 8),
        box_label("pedestrian", 12, {"crowd": True})]},
        {"name": "b.jpg", "labels": None}]
    m = load_split("bdd100k", str(rle_dataset(tmp_path / "b", frames)), "train", "b")
    got = sorted((a["category_id"], a["iscrowd"], a["anonymize"]) for a in m["annotations"])
    assert got == [(1, 0, True), (1, 1, False), (1, 1, False), (8, 0, False)]
    s = m["info"]["summary"]
    assert s["images"] == 2 and s["persons_kept"] == 1
    assert s["persons_skipped"] == {"crowd": 1, "ignored": 1}
    a = next(a for a in m["annotations"] if a["anonymize"])
    assert a["bbox"] == [2.0, 0.0, 6.0, 3.0] and a["area"] == 18
    assert [i["width"] for i in m["images"]] == [30, 30]


# ------------------------------------------------------------------------------------------
# bad input: one error naming the file

def test_missing_root_split_and_labels(tmp_path):
    with pytest.raises(ManifestError, match="nowhere: BDD100K root directory not found"):
        load_split("bdd100k", str(tmp_path / "nowhere"), "train", "b")
    root = rle_dataset(tmp_path / "b", [{"name": "a.jpg", "labels": [box_label("car", 0)]}])
    with pytest.raises(ManifestError, match=r"images/10k/val: image directory of split 'val'"):
        load_split("bdd100k", str(root), "val", "b")
    (root / "images" / "10k" / "val").mkdir()
    with pytest.raises(ManifestError, match="no instance-segmentation labels for split 'val'"):
        load_split("bdd100k", str(root), "val", "b")


def test_empty_split(tmp_path):
    root = rle_dataset(tmp_path / "b", [])
    with pytest.raises(ManifestError, match=r"ins_seg_train.json: split 'train' has no images"):
        load_split("bdd100k", str(root), "train", "b")


@pytest.mark.parametrize("content, message", [
    ({"images": []}, "not a Scalabel label file"),
    ([{"labels": []}], "frame 0 has no 'name'"),
    ([{"name": "a.jpg", "labels": [{"category": "car"}]}], "every label needs 'category' and 'rle'"),
    ("not json", "not valid JSON"),
])
def test_label_file_not_of_the_schema(tmp_path, content, message):
    root = rle_dataset(tmp_path / "b", [{"name": "a.jpg", "labels": []}])
    f = root / "labels" / "ins_seg" / "rles" / "ins_seg_train.json"
    f.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ManifestError, match=f"{f}: .*{message}"):
        load_split("bdd100k", str(root), "train", "b")


def test_label_pointing_at_a_missing_image(tmp_path):
    root = rle_dataset(tmp_path / "b", [{"name": "a.jpg", "labels": [box_label("car", 0)]}])
    (root / "images" / "10k" / "train" / "a.jpg").unlink()
    with pytest.raises(ManifestError, match=r"ins_seg_train.json: labels of 'a.jpg' point at "
                                            r".*a.jpg, which does not exist"):
        load_split("bdd100k", str(root), "train", "b")


def test_truncated_jpeg_is_named(tmp_path):
    root = rle_dataset(tmp_path / "b", [{"name": "a.jpg", "labels": [box_label("car", 0)]}])
    img = root / "images" / "10k" / "train" / "a.jpg"
    noise = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(noise).save(img, quality=95)  # most of the file is scan data
    data = img.read_bytes()
    img.write_bytes(data[: len(data) - 200])
    with pytest.raises(ManifestError, match=f"{img}: truncated JPEG"):
        load_split("bdd100k", str(root), "train", "b")


def test_rle_of_another_size(tmp_path):
    root = rle_dataset(tmp_path / "b", [{"name": "a.jpg",
                                         "labels": [box_label("car", 0, size=(21, 30))]}])
    with pytest.raises(ManifestError, match=r"frame 'a.jpg': RLE size \[21, 30\] is not the "
                                            r"image's \[20, 30\]"):
        load_split("bdd100k", str(root), "train", "b")


def test_rle_counts_of_another_size(tmp_path):
    label = box_label("car", 0)
    label["rle"]["counts"] = label["rle"]["counts"] + "0"  # a run more: past the image's end
    root = rle_dataset(tmp_path / "b", [{"name": "a.jpg", "labels": [label]}])
    with pytest.raises(ManifestError, match=r"frame 'a.jpg': label '1': RLE counts cover \d+ "
                                            r"pixels, not the image's 20 x 30 = 600"):
        load_split("bdd100k", str(root), "train", "b")


def test_bitmask_not_rgba(tmp_path):
    root = tmp_path / "b"
    shutil.copytree(TOOLKIT, root)
    bm = root / "labels" / "ins_seg" / "bitmasks" / "train" / "00000000-00000001.png"
    Image.open(bm).convert("RGB").save(bm)
    with pytest.raises(ManifestError, match=f"{bm}: expected an 8-bit RGBA bitmask"):
        load_split("bdd100k", str(root), "train", "b")


def test_bitmask_of_16_bits_is_refused(tmp_path):
    """Pillow reads a 16-bit RGBA PNG as 8-bit RGBA of the high bytes: category 1 became 0."""
    cv2 = pytest.importorskip("cv2")
    root = tmp_path / "b"
    shutil.copytree(TOOLKIT, root)
    bm = root / "labels" / "ins_seg" / "bitmasks" / "train" / "00000000-00000001.png"
    rgba = np.asarray(Image.open(bm)).astype(np.uint16)
    cv2.imwrite(str(bm), np.ascontiguousarray(rgba[..., [2, 1, 0, 3]]))  # BGRA, 16-bit
    with pytest.raises(ManifestError, match=f"{bm}: expected an 8-bit RGBA bitmask .*got "
                                            "16-bit RGBA"):
        load_split("bdd100k", str(root), "train", "b")


def test_bitmask_category_outside_the_ins_seg_ids_is_refused(tmp_path):
    root = tmp_path / "b"
    shutil.copytree(TOOLKIT, root)
    bm = root / "labels" / "ins_seg" / "bitmasks" / "train" / "00000000-00000001.png"
    rgba = np.array(Image.open(bm))
    rgba[rgba[..., 0] == 1, 0] = 9  # the pedestrians' category
    Image.fromarray(rgba, "RGBA").save(bm)
    with pytest.raises(ManifestError, match=rf"{bm}: instance \d+ has category id 9 in R, "
                                            "outside the toolkit's ins_seg ids 1-8"):
        load_split("bdd100k", str(root), "train", "b")


@pytest.mark.parametrize("category", ["Pedestrian", "traffic sign"])
def test_rle_category_outside_the_toolkits_names_is_refused(tmp_path, category):
    """Skipped, such a label would leave its person (if it is one) as it is."""
    root = rle_dataset(tmp_path / "b", [{"name": "a.jpg", "labels": [box_label(category, 0)]}])
    with pytest.raises(ManifestError, match=rf"frame 'a.jpg': label '1': category '{category}' "
                                            "is not one of the toolkit's ins_seg categories"):
        load_split("bdd100k", str(root), "train", "b")


@pytest.mark.parametrize("flag", ["crowd", "ignored"])
def test_rle_crowd_or_ignored_that_is_not_a_boolean_is_refused(tmp_path, flag):
    """bool("false") is True: the pedestrian would be left as a crowd or ignored region."""
    root = rle_dataset(tmp_path / "b", [{"name": "a.jpg", "labels": [
        box_label("pedestrian", 0, {flag: "false"})]}])
    with pytest.raises(ManifestError, match=rf"label '1': attribute {flag} is 'false', not a "
                                            "boolean"):
        load_split("bdd100k", str(root), "train", "b")
    root = rle_dataset(tmp_path / "c", [{"name": "a.jpg", "labels": [
        box_label("pedestrian", 0, {flag: 0}), box_label("pedestrian", 4, {flag: 1})]}])
    m = load_split("bdd100k", str(root), "train", "b")
    assert sorted(a["anonymize"] for a in m["annotations"]) == [False, True]



def test_rle_counts_roundtrip_with_pycocotools(tmp_path):
    root = rle_dataset(tmp_path / "b", [{"name": "a.jpg", "labels": [box_label("car", 5)]}])
    m = load_split("bdd100k", str(root), "train", "b")
    seg = m["annotations"][0]["segmentation"]
    rle = {"size": seg["size"], "counts": seg["counts"].encode()}
    assert mask_utils.area(rle) == 18


def test_images_without_labels_are_left_out_and_counted(tmp_path):
    root = rle_dataset(tmp_path / "b", [{"name": "a.jpg", "labels": [box_label("car", 0)]}])
    m = load_split("bdd100k", str(root), "train", "b")
    assert "images_without_labels_left_out" not in m["info"]["summary"]
    Image.new("RGB", (30, 20)).save(root / "images" / "10k" / "train" / "extra.jpg")
    m = load_split("bdd100k", str(root), "train", "b")
    assert [i["file_name"] for i in m["images"]] == ["a.jpg"]
    assert m["info"]["summary"]["images_without_labels_left_out"] == 1


def test_rle_size_that_is_not_a_list(tmp_path):
    label = box_label("car", 0)
    label["rle"]["size"] = 20
    root = rle_dataset(tmp_path / "b", [{"name": "a.jpg", "labels": [label]}])
    with pytest.raises(ManifestError, match=r"frame 'a.jpg': RLE size 20 is not the image's "
                                            r"\[20, 30\]"):
        load_split("bdd100k", str(root), "train", "b")
