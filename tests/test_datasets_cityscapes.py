"""Cityscapes ingest: the demo world in the Cityscapes layout, hand-made instance images, bad input."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("cityscapesscripts")

import cv2  # noqa: E402

from anonbench.datasets import cityscapes, demo, load_split  # noqa: E402
from anonbench.manifest import ManifestError, annotation_mask  # noqa: E402

PERSON, RIDER, CAR = 24, 25, 26


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    base = tmp_path_factory.mktemp("cs")
    demo.generate_world(base / "coco", seed=5, n_train=10, n_val=4)
    demo.generate_world_in_layout(base / "cityscapes", "cityscapes", seed=5, n_train=10, n_val=4)
    return base / "coco", base / "cityscapes"


def world_masks(coco_root, split):
    """{image id: sorted list of (kind, mask bytes)} of the COCO-layout world."""
    data = json.loads((coco_root / "annotations" / f"instances_{split}2017.json").read_text())
    imgs = {i["id"]: i for i in data["images"]}
    out = {i: [] for i in imgs}
    for a in data["annotations"]:
        img = imgs[a["image_id"]]
        kind = "crowd" if a["iscrowd"] else {1: "person", 2: "bicycle", 3: "car"}[a["category_id"]]
        out[a["image_id"]].append((kind, annotation_mask(a, img["height"], img["width"]).tobytes()))
    return {k: sorted(v) for k, v in out.items()}


def test_categories_are_the_eight_evaluated_instance_classes():
    cats = cityscapes.categories()
    assert [c["name"] for c in cats] == ["person", "rider", "car", "truck", "bus", "train",
                                         "motorcycle", "bicycle"]
    assert [c["id"] for c in cats] == [24, 25, 26, 27, 28, 31, 32, 33]


@pytest.mark.parametrize("split", ["train", "val"])
def test_ingest_gives_the_world_exactly(worlds, split):
    coco_root, cs_root = worlds
    m = load_split("cityscapes", str(cs_root), split, "cs")
    expected = world_masks(coco_root, split)
    names = {c["id"]: c["name"] for c in m["categories"]}
    assert len(m["images"]) == len(expected)
    by_image = {img["id"]: [] for img in m["images"]}
    for a in m["annotations"]:
        by_image[a["image_id"]].append(a)
    for img in m["images"]:
        world_id = int(img["file_name"].split("_")[1])
        assert img["file_name"] == f"{demo.cityscapes_stem(world_id)[0]}/" \
                                   f"{demo.cityscapes_stem(world_id)[1]}_leftImg8bit.png"
        got = sorted(("crowd" if a["iscrowd"] else names[a["category_id"]],
                      annotation_mask(a, img["height"], img["width"]).tobytes())
                     for a in by_image[img["id"]])
        assert got == expected[world_id]
    s = m["info"]["summary"]
    n_persons = sum(k == "person" for v in expected.values() for k, _ in v)
    assert s["persons_kept"] == n_persons == s["instances"]["person"]
    assert s["persons_skipped"]["crowd"] == sum(k == "crowd" for v in expected.values() for k, _ in v)
    assert sum(a["anonymize"] for a in m["annotations"]) == n_persons
    assert all(a["anonymize"] == (a["category_id"] == PERSON and not a["iscrowd"])
               for a in m["annotations"])


def test_images_and_gt_files_resolve(worlds):
    _, cs_root = worlds
    m = load_split("cityscapes", str(cs_root), "val", "cs")
    for img in m["images"]:
        with Image.open(f"{m['info']['image_root']}/{img['file_name']}") as im:
            assert im.size == (img["width"], img["height"])
        assert img["gt_file"].endswith("_gtFine_instanceIds.png")
        assert (cs_root / "gtFine" / "val" / img["gt_file"]).is_file()


def write_case(root, ids, split="train", city="ulm", stem="ulm_000001_000019"):
    """A one-image Cityscapes dataset from an instance-id image."""
    h, w = ids.shape
    (root / "leftImg8bit" / split / city).mkdir(parents=True, exist_ok=True)
    (root / "gtFine" / split / city).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(
        root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
    cv2.imwrite(str(root / "gtFine" / split / city / f"{stem}_gtFine_instanceIds.png"),
                ids.astype(np.uint16))
    return root


def test_rider_is_a_class_persongroup_is_crowd_others_dropped(tmp_path):
    ids = np.full((40, 60), 7, np.uint16)          # road
    ids[2:20, 2:10] = PERSON * 1000                # a person
    ids[2:20, 12:20] = PERSON * 1000 + 1           # another person
    ids[2:20, 22:30] = RIDER * 1000                # a rider
    ids[22:38, 2:30] = PERSON                      # persongroup
    ids[22:38, 32:58] = CAR * 1000 + 3             # a car
    ids[2:20, 40:58] = 29 * 1000                   # caravan: an instance class not evaluated
    m = load_split("cityscapes", str(write_case(tmp_path, ids)), "train", "cs")
    got = sorted((a["category_id"], a["iscrowd"], a["anonymize"], a["area"])
                 for a in m["annotations"])
    assert got == [(PERSON, 0, True, 144), (PERSON, 0, True, 144), (PERSON, 1, False, 448),
                   (RIDER, 0, False, 144), (CAR, 0, False, 416)]
    s = m["info"]["summary"]
    assert s["persons_kept"] == 2 and s["persons_skipped"] == {"crowd": 1}
    assert s["instances"]["rider"] == 1 and s["instances"]["car"] == 1
    person = next(a for a in m["annotations"] if a["instance_id"] == PERSON * 1000)
    assert person["bbox"] == [2.0, 2.0, 8.0, 18.0]


def test_polygons_written_with_the_toolkit_rasterise_like_the_instance_images(worlds):
    _, cs_root = worlds
    ious = []
    for png in sorted((cs_root / "gtFine" / "train").glob("*/*_gtFine_instanceIds.png")):
        ours = cityscapes.read_instance_ids(png)
        toolkit = cityscapes.render_polygons(str(png).replace("_instanceIds.png", "_polygons.json"))
        assert set(np.unique(ours)) == set(np.unique(toolkit))
        labels = np.asarray(Image.open(str(png).replace("_instanceIds", "_labelIds")))
        assert (labels == np.where(ours >= 1000, ours // 1000, ours)).all()
        for v in np.unique(ours):
            if v // 1000 == PERSON:
                a, b = ours == v, toolkit == v
                ious.append((a & b).sum() / (a | b).sum())
    assert len(ious) > 20 and np.median(ious) > 0.95


def test_polygon_only_ground_truth_is_read_through_the_toolkit(worlds, tmp_path):
    _, cs_root = worlds
    root = tmp_path / "cs"
    shutil.copytree(cs_root, root)
    for p in (root / "gtFine" / "val").glob("*/*_instanceIds.png"):
        p.unlink()
    from_png = load_split("cityscapes", str(cs_root), "val", "cs")
    from_json = load_split("cityscapes", str(root), "val", "cs")
    assert all(img["gt_file"].endswith("_polygons.json") for img in from_json["images"])
    key = lambda m: sorted((a["image_id"], a["category_id"], a["iscrowd"])  # noqa: E731
                           for a in m["annotations"])
    assert key(from_json) == key(from_png)


# ------------------------------------------------------------------------------------------
# bad input: one error naming the file

def small_case(tmp_path):
    ids = np.full((20, 30), 7, np.uint16)
    ids[2:10, 2:8] = PERSON * 1000
    return write_case(tmp_path / "cs", ids)


def test_missing_root_and_split(tmp_path):
    with pytest.raises(ManifestError, match="nowhere: Cityscapes root directory not found"):
        load_split("cityscapes", str(tmp_path / "nowhere"), "train", "cs")
    root = small_case(tmp_path)
    with pytest.raises(ManifestError, match=r"leftImg8bit/val: image directory of split 'val'"):
        load_split("cityscapes", str(root), "val", "cs")
    (root / "leftImg8bit" / "val").mkdir()
    with pytest.raises(ManifestError, match=r"gtFine/val: gtFine directory of split 'val'"):
        load_split("cityscapes", str(root), "val", "cs")
    (root / "gtFine" / "val").mkdir()
    with pytest.raises(ManifestError, match=r"leftImg8bit/val: split 'val' has no images"):
        load_split("cityscapes", str(root), "val", "cs")


def test_truncated_image_is_named(tmp_path):
    root = small_case(tmp_path)
    img = next((root / "leftImg8bit").rglob("*.png"))
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 2])
    with pytest.raises(ManifestError, match=f"{img}: (truncated PNG|not a readable image)"):
        load_split("cityscapes", str(root), "train", "cs")


def test_image_without_ground_truth_is_named(tmp_path):
    root = small_case(tmp_path)
    next((root / "gtFine").rglob("*_instanceIds.png")).unlink()
    img = next((root / "leftImg8bit").rglob("*.png"))
    with pytest.raises(ManifestError, match=f"{img}: no ground truth"):
        load_split("cityscapes", str(root), "train", "cs")


def test_polygon_file_not_of_the_schema(tmp_path):
    root = small_case(tmp_path)
    png = next((root / "gtFine").rglob("*_instanceIds.png"))
    png.unlink()
    poly = png.with_name(png.name.replace("_instanceIds.png", "_polygons.json"))
    poly.write_text(json.dumps({"imgWidth": 30, "objects": []}))
    with pytest.raises(ManifestError, match=f"{poly}: not a Cityscapes polygon file"):
        load_split("cityscapes", str(root), "train", "cs")
    poly.write_text(json.dumps({"imgWidth": 30, "imgHeight": 20,
                                "objects": [{"label": "no such label", "polygon": [[0, 0]] * 3}]}))
    with pytest.raises(ManifestError, match=f"{poly}: the Cityscapes toolkit cannot rasterise"):
        load_split("cityscapes", str(root), "train", "cs")


def test_image_and_ground_truth_of_different_size(tmp_path):
    root = small_case(tmp_path)
    img = next((root / "leftImg8bit").rglob("*.png"))
    Image.fromarray(np.zeros((21, 30, 3), np.uint8)).save(img)
    with pytest.raises(ManifestError, match=f"{img}: image is 30x21 but its ground truth"):
        load_split("cityscapes", str(root), "train", "cs")


def test_eight_bit_instance_image_is_refused(tmp_path):
    root = small_case(tmp_path)
    png = next((root / "gtFine").rglob("*_instanceIds.png"))
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(png)
    with pytest.raises(ManifestError, match=f"{png}: expected a single-channel"):
        load_split("cityscapes", str(root), "train", "cs")


@pytest.mark.parametrize("how", ["pillow-L", "cv2-gray8"])
def test_an_instance_image_converted_to_8_bit_is_refused(tmp_path, how):
    """In 8 bits the ids (label id x 1000 + index) of the persons merge or vanish."""
    root = small_case(tmp_path)
    png = next((root / "gtFine").rglob("*_instanceIds.png"))
    if how == "pillow-L":
        Image.open(png).convert("L").save(png)
    else:
        cv2.imwrite(str(png), cv2.imread(str(png), cv2.IMREAD_GRAYSCALE))
    with pytest.raises(ManifestError, match=f"{png}: an 8-bit instance image cannot hold"):
        load_split("cityscapes", str(root), "train", "cs")


@pytest.mark.parametrize("polygon, message", [
    ([[10, 10]], r"has 1 points; a polygon needs at least 3"),
    ([], r"has 0 points"),
    ([["a", "b"], [1, 2], [3, 4]], r"point 0 is \['a', 'b'\], not \[x, y\]"),
    ([10, 10, 50, 10, 50, 50], r"point 0 is 10, not \[x, y\]"),
    ([[10, 10], [float("nan"), 10], [50, 50]], r"point 1 is \[nan, 10\]"),  # drawn at 0
    ([[10, 10], [10 ** 400, 10], [50, 50]], r"point 1 is \[1000"),  # no float holds it
])
def test_a_polygon_the_toolkit_cannot_draw_is_named(tmp_path, polygon, message):
    root = small_case(tmp_path)
    png = next((root / "gtFine").rglob("*_instanceIds.png"))
    png.unlink()
    poly = png.with_name(png.name.replace("_instanceIds.png", "_polygons.json"))
    poly.write_text(json.dumps({"imgWidth": 30, "imgHeight": 20, "objects": [
        {"label": "car", "polygon": [[0, 0], [5, 0], [5, 5]]},
        {"label": "person", "polygon": polygon}]}))
    with pytest.raises(ManifestError, match=rf"{poly}: object 1 \('person'\): polygon {message}"):
        load_split("cityscapes", str(root), "train", "cs")
