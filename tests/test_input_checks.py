"""Bad input stops at the earliest step that can see it, with the file or annotation named:
the full decode of every training image (rule check_images), annotation checks in prepare, disk
full, and output modes that follow the umask."""

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from anonbench import anonymize, steps
from anonbench.datasets import demo, load_split
from anonbench.images import ImageReadError, verify_image
from anonbench.manifest import ManifestError, load_manifest, write_json


def photo(h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(a).resize((w, h), Image.BICUBIC))


def truncated_with_end_marker(path):
    """The half of a file, with the format's end marker appended (passes the header check)."""
    data = path.read_bytes()
    end = b"\xff\xd9" if data[:2] == b"\xff\xd8" else b"\x00\x00\x00\x00IEND\xaeB`\x82"
    path.write_bytes(data[: len(data) // 2] + end)


# --- the full decode --------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_verify_image_decodes_in_full(tmp_path, suffix):
    p = tmp_path / f"a{suffix}"
    Image.fromarray(photo()).save(p)
    assert verify_image(p) == (128, 96)
    truncated_with_end_marker(p)
    with Image.open(p) as im:  # what prepare's header check sees: a fine-looking image
        assert im.size == (128, 96)
    with pytest.raises(ImageReadError, match=rf"a\{suffix}: (corrupt JPEG|cannot decode)"):
        verify_image(p)


def test_verify_image_names_an_empty_file_and_applies_the_orientation(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.jpg: image file is empty \(0 bytes\)"):
        verify_image(tmp_path / "empty.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: the annotations see it upright, 96 x 128
    Image.fromarray(photo()).save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert verify_image(tmp_path / "r.jpg") == (96, 128)


@pytest.mark.parametrize("fmt", ["coco", "cityscapes", "bdd100k"])
def test_a_corrupt_training_image_stops_the_shard_check(tmp_path, fmt):
    if fmt == "cityscapes":
        pytest.importorskip("cityscapesscripts")
    root = tmp_path / fmt
    demo.generate_world_in_layout(root, fmt, seed=1, n_train=4, n_val=2)
    prepared = tmp_path / "train.json"
    steps.prepare(fmt, str(root), "train", "d", str(prepared))
    steps.make_shards(str(prepared), 2, str(tmp_path / "shards"))
    m = load_manifest(tmp_path / "shards" / "001.json")
    steps.check_images(str(tmp_path / "shards" / "000.json"), str(tmp_path / "000.json"),
                       progress=False)
    assert json.loads((tmp_path / "000.json").read_text())["images"] == 2
    img = m["images"][0]
    victim = root / m["info"]["image_root"] / img["file_name"]
    truncated_with_end_marker(victim)
    with pytest.raises(ImageReadError, match=str(victim)):
        steps.check_images(str(tmp_path / "shards" / "001.json"), str(tmp_path / "001.json"),
                           progress=False)
    assert not (tmp_path / "001.json").exists()


def test_the_shard_check_names_a_size_that_differs_from_the_annotation(tmp_path):
    Image.fromarray(photo()).save(tmp_path / "a.jpg")
    m = {"info": {"image_root": str(tmp_path), "shard": "000"}, "annotations": [],
         "images": [{"id": 7, "file_name": "a.jpg", "width": 100, "height": 96}],
         "categories": []}
    write_json(tmp_path / "s.json", m)
    with pytest.raises(ImageReadError, match=r"a\.jpg: image 7 is 128x96 but its annotation "
                                             r"says 100x96"):
        steps.check_images(str(tmp_path / "s.json"), str(tmp_path / "out.json"), progress=False)



@pytest.mark.parametrize("link", ["same_names", "hard_link", "symlink"])
def test_the_val_check_refuses_val_images_that_are_train_images(tmp_path, link):
    """A val split pointing at training images (one folder for both, or links to the training
    files) scores what the model learnt; the val check names the first shared image."""
    root = tmp_path / "coco"
    demo.generate_world_in_layout(root, "coco", seed=1, n_train=4, n_val=2)
    train, val = tmp_path / "train.json", tmp_path / "val.json"
    steps.prepare("coco", str(root), "train", "d", str(train))
    steps.prepare("coco", str(root), "val", "d", str(val))
    steps.check_images(str(val), str(tmp_path / "ok.json"), train_json=str(train), progress=False)
    assert json.loads((tmp_path / "ok.json").read_text())["images"] == 2
    t, v = load_manifest(train), load_manifest(val)
    if link == "same_names":  # the val split's folder is the train folder (the demo world
        # numbers each split's files from 1, so both val names are train names)
        v["info"]["image_root"] = t["info"]["image_root"]
        write_json(val, v)
        t_img, v_img, shared = t["images"][0], v["images"][0], 2
    else:
        t_img, v_img, shared = t["images"][2], v["images"][1], 1
        v_path = Path(v["info"]["image_root"]) / v_img["file_name"]
        t_path = Path(t["info"]["image_root"]) / t_img["file_name"]
        v_path.unlink()
        os.link(t_path, v_path) if link == "hard_link" else v_path.symlink_to(t_path)
    with pytest.raises(ManifestError, match=rf"val image {v_img['id']} .* is the train split's "
                                            rf"image {t_img['id']} .*{shared} of the 2 val "):
        steps.check_images(str(val), str(tmp_path / "bad.json"), train_json=str(train),
                           progress=False)
    assert not (tmp_path / "bad.json").exists()

def test_the_val_check_warns_of_val_images_that_are_copies_of_train_images(tmp_path, capsys):
    """A byte-identical copy is a warning and a list in the check's output, not a refusal:
    generated data draws many images alike (a blank frame in each split), which is no leak."""
    root = tmp_path / "coco"
    demo.generate_world_in_layout(root, "coco", seed=1, n_train=4, n_val=2)
    train, val = tmp_path / "train.json", tmp_path / "val.json"
    steps.prepare("coco", str(root), "train", "d", str(train))
    steps.prepare("coco", str(root), "val", "d", str(val))
    t, v = load_manifest(train), load_manifest(val)
    shutil.copyfile(Path(t["info"]["image_root"]) / t["images"][2]["file_name"],
                    Path(v["info"]["image_root"]) / v["images"][1]["file_name"])
    steps.check_images(str(val), str(tmp_path / "out.json"), train_json=str(train),
                       progress=False)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["images"] == 2
    assert out["copies_of_train_images"] == [[t["images"][2]["id"], v["images"][1]["id"]]]
    assert (f"warning: val image {v['images'][1]['id']} ({v['images'][1]['file_name']!r}) is a "
            f"byte-identical copy of the train split's image {t['images'][2]['id']}"
            in capsys.readouterr().err)


def test_the_copy_test_reads_only_files_of_equal_size_and_compares_their_bytes(tmp_path):
    """A val file of a train file's size but other bytes is its own image; the copy is not."""
    from anonbench.datasets.checks import disjoint_splits

    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    data = bytes(range(256)) * 40
    (tmp_path / "train" / "a.jpg").write_bytes(data)
    (tmp_path / "train" / "b.jpg").write_bytes(data[::-1])
    (tmp_path / "val" / "same_size.jpg").write_bytes(data[:-1] + b"\0")
    (tmp_path / "val" / "longer.jpg").write_bytes(data + b"\0")
    train = {"info": {"image_root": str(tmp_path / "train")},
             "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}]}
    val = {"info": {"image_root": str(tmp_path / "val")},
           "images": [{"id": 7, "file_name": "same_size.jpg"},
                      {"id": 8, "file_name": "longer.jpg"}]}
    assert disjoint_splits(train, val) == []
    (tmp_path / "val" / "copy.jpg").write_bytes(data[::-1])
    val["images"].append({"id": 9, "file_name": "copy.jpg"})
    assert [(t["id"], v["id"]) for t, v in disjoint_splits(train, val)] == [(2, 9)]


# --- COCO annotations ---------------------------------------------------------------------------

@pytest.fixture
def coco(tmp_path):
    root = tmp_path / "coco"
    demo.generate_world(root, seed=4, n_train=3, n_val=2)
    path = root / "annotations" / "instances_train2017.json"
    return root, path, json.loads(path.read_text())


def _load(root, path, data):
    path.write_text(json.dumps(data))
    return load_split("coco", str(root), "train", "d")


def test_duplicate_image_ids_and_file_names(coco):
    root, path, data = coco
    dup = json.loads(json.dumps(data))
    dup["images"][1]["id"] = dup["images"][0]["id"]
    with pytest.raises(ManifestError, match=rf"{path}: image id {data['images'][0]['id']} "
                                            "appears twice"):
        _load(root, path, dup)
    dup = json.loads(json.dumps(data))
    dup["images"][1]["file_name"] = dup["images"][0]["file_name"]
    with pytest.raises(ManifestError, match=rf"file_name '{data['images'][0]['file_name']}' "
                                            "appears twice"):
        _load(root, path, dup)


@pytest.mark.parametrize("alias", ["dot", "symlink", "hardlink"])
def test_one_file_listed_under_two_names_stops_prepare(coco, alias):
    """Two entries of one file would be anonymized apart: each copy keeps the other's persons."""
    root, path, data = coco
    first = data["images"][0]
    name = first["file_name"]
    if alias == "dot":
        other = f"./{name}"
        match = rf"file_name '\./{name}' appears twice \(images {first['id']} and 999\)"
    else:
        other = f"alias-{name}"
        link = root / "train2017" / other
        (os.symlink if alias == "symlink" else os.link)(root / "train2017" / name, link)
        match = (rf"images {first['id']} \('{name}'\) and 999 \('{other}'\) are the same "
                 "file")
    data["images"].append({**first, "id": 999, "file_name": other})
    with pytest.raises(ManifestError, match=match):
        _load(root, path, data)


@pytest.mark.parametrize("name, reason", [
    ("sub/../{}", "has a '..' part"),
    ("{}.jfif", "'.jfif' is not one"),
    ("{}_noext", "'no extension' is not one"),
])
def test_a_file_name_the_writers_cannot_keep_stops_prepare(coco, name, reason):
    root, path, data = coco
    img = data["images"][0]
    src = root / "train2017" / img["file_name"]
    (root / "train2017" / "sub").mkdir()
    img["file_name"] = name.format(Path(img["file_name"]).stem)
    if ".." not in name:
        src.rename(root / "train2017" / img["file_name"])
    with pytest.raises(ManifestError, match=rf"image {img['id']} file_name .*{reason}"):
        _load(root, path, data)



def _replace_first_image(root, data, kind):
    """The first training image re-encoded as ``kind``; returns its path and the expected
    message (each found by a hostile-input sweep: a leak, a late failure or a traceback)."""
    import io
    import struct
    import zlib

    img = data["images"][0]
    path = root / "train2017" / img["file_name"]
    rgb = Image.open(path).convert("RGB")
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
           b'22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
           b'tiff:Orientation="3"/></rdf:RDF></x:xmpmeta>')
    if kind == "png_xmp_orientation":  # Pillow turns it; OpenCV and labelling tools do not
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode())
        path = path.with_suffix(".png")
        rgb.save(path, pnginfo=info)
        img["file_name"] = path.name
        return path, "orientation 3 from PNG metadata, which readers disagree about applying"
    if kind == "jpeg_xmp_orientation":
        f = io.BytesIO()
        rgb.save(f, "JPEG")
        jpeg = f.getvalue()
        app1 = b"http://ns.adobe.com/xap/1.0/\x00" + xmp
        path.write_bytes(jpeg[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1
                         + jpeg[2:])
        return path, "orientation 3 from XMP, which readers disagree about applying"
    if kind == "png_named_jpg":
        rgb.save(path, "PNG")
        return path, r"a PNG file named \.jpg: its anonymized copy would be a JPEG"
    if kind == "arithmetic_jpeg":  # its frame marker: SOF9 (the scan is the baseline one's)
        jpeg = bytearray(path.read_bytes())
        i = jpeg.index(b"\xff\xc0")
        jpeg[i + 1] = 0xC9
        path.write_bytes(bytes(jpeg))
        return path, r"arithmetic-coded JPEG \(SOF9\), which the anonymizers' decoders cannot"
    if kind == "decompression_bomb":  # 20000 x 20000 declared, a few bytes of data
        def chunk(t, body):
            return struct.pack(">I", len(body)) + t + body + struct.pack(
                ">I", zlib.crc32(t + body))
        path = path.with_suffix(".png")
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(
            ">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 9))
            + chunk(b"IEND", b""))
        img["file_name"] = path.name
        return path, r"too large to decode safely \(Image size \(400000000 pixels\)"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["png_xmp_orientation", "jpeg_xmp_orientation", "png_named_jpg",
                                  "arithmetic_jpeg", "decompression_bomb"])
def test_images_the_readers_disagree_on_or_cannot_read_stop_prepare(coco, kind):
    root, path, data = coco
    image, message = _replace_first_image(root, data, kind)
    with pytest.raises(ManifestError, match=rf"^{image}: {message}"):
        _load(root, path, data)


def test_transparent_pixels_stop_the_image_check_and_the_anonymizers(tmp_path):
    """What alpha 0 hid (here a face) showed in the opaque anonymized copy."""
    from anonbench.images import read_image

    rgba = np.dstack([photo(), np.full((96, 128), 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "opaque.png")
    assert verify_image(tmp_path / "opaque.png") == (128, 96)
    assert read_image(tmp_path / "opaque.png").shape == (96, 128, 3)
    rgba[10:20, 30:50, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "hidden.png")
    pal = Image.fromarray(photo()).convert("P")
    pal.save(tmp_path / "trns.png", transparency=int(np.asarray(pal)[0, 0]))
    for name, n in (("hidden.png", "200 of its 12,288"), ("trns.png", "")):
        for read in (verify_image, read_image):
            with pytest.raises(ImageReadError, match=rf"{name}: {n}.*pixels are transparent "
                                                     r"\(alpha < 255\): what they hide would "
                                                     "show in the anonymized copy"):
                read(tmp_path / name)

@pytest.mark.parametrize("kind, index, key", [
    ("images", 1, "id"), ("images", 1, "file_name"), ("images", 2, "height"),
    ("annotations", 3, "id"), ("annotations", 3, "segmentation"),
    ("annotations", 4, "image_id"), ("annotations", 4, "category_id")])
def test_a_key_missing_from_a_later_entry_is_named(coco, kind, index, key):
    root, path, data = coco
    entry = data[kind][index]
    del entry[key]
    ident = "" if key == "id" else rf" \(id {entry['id']}\)"
    with pytest.raises(ManifestError, match=rf"{path}: {kind}\[{index}\]{ident} lacks {key}"):
        _load(root, path, data)


@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), "a", 10 ** 400, True])
@pytest.mark.parametrize("field", ["segmentation", "keypoints", "bbox"])
def test_a_coordinate_that_is_not_a_finite_number_is_named(coco, field, value):
    """pycocotools rasterizes a NaN or null polygon point as a polygon of unbounded size (the
    process grew to 24 GB before it was killed): prepare names it instead."""
    root, path, data = coco
    if field == "keypoints":
        path = root / "annotations" / "person_keypoints_train2017.json"
        data = json.loads(path.read_text())
    a = next(a for a in data["annotations"] if a.get("num_keypoints", 1) > 0)
    a["segmentation"] = [[1, 1, 9, 1, 9, 9, 1, 9]]
    target = a["segmentation"][0] if field == "segmentation" else a[field]
    target[2] = value
    with pytest.raises(ManifestError, match=rf"{path}: annotation {a['id']}: "
                                            rf"(polygon 0 holds|keypoints hold|bbox )"):
        _load(root, path, data)


def test_a_crowd_flag_that_is_not_0_or_1_is_named(coco):
    root, path, data = coco
    a = data["annotations"][0]
    a["iscrowd"] = "0"  # truthy: the person would be skipped as a crowd, left as it is
    with pytest.raises(ManifestError, match=rf"annotation {a['id']}: iscrowd '0' is not 0 or 1"):
        _load(root, path, data)
    a["iscrowd"] = None  # as 0: anonymized
    m = _load(root, path, data)
    assert next(b for b in m["annotations"] if b["id"] == a["id"])["iscrowd"] == 0


def test_person_categories_that_match_no_category_stop_prepare(coco):
    """A category name that matches nothing would leave every person as they are."""
    root, path, data = coco
    person = next(c for c in data["categories"] if c["name"] == "person")
    person["name"] = "Person"
    with pytest.raises(ManifestError, match=rf"{path}: no category named person or pedestrian "
                                            r"\(its categories: 'Person', "):
        _load(root, path, data)
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"person_categories 'persons' match no category"):
        load_split("coco", str(root), "train", "d", person_categories=["Person", "persons"])
    m = load_split("coco", str(root), "train", "d", person_categories=["Person"])
    assert m["info"]["summary"]["persons_kept"] > 0


@pytest.mark.parametrize("fmt", ["cityscapes", "bdd100k"])
def test_an_exif_orientation_where_the_labels_lie_on_the_stored_pixels_stops_prepare(tmp_path,
                                                                                      fmt):
    """Cityscapes' and BDD100K's masks lie on the stored pixels; the decoders would turn the
    image upright first and blur beside the persons."""
    if fmt == "cityscapes":
        pytest.importorskip("cityscapesscripts")
    root = tmp_path / fmt
    demo.generate_world_in_layout(root, fmt, seed=1, n_train=2, n_val=1)
    m = load_split(fmt, str(root), "train", "d")
    img = Path(m["info"]["image_root"]) / m["images"][0]["file_name"]
    exif = Image.Exif()
    exif[0x0112] = 3
    Image.open(img).save(img, exif=exif.tobytes())
    with pytest.raises(ManifestError, match=f"^{img}: EXIF orientation 3, but its labels lie on "
                                            "the stored pixels"):
        load_split(fmt, str(root), "train", "d")


def test_a_polygon_of_two_points_is_named(coco):
    root, path, data = coco
    a = data["annotations"][0]
    a["segmentation"] = [[1, 2, 3, 4]]
    with pytest.raises(ManifestError, match=rf"annotation {a['id']}: polygon 0 has 4 "
                                            "coordinates"):
        _load(root, path, data)


@pytest.mark.parametrize("counts, reason", [
    ([5, 3], r"RLE counts cover 8 pixels, not the image's \d+ x \d+"),  # pycocotools: garbage
    ("bad\u00e9", r"RLE counts are not a COCO RLE"),
    ([10, -4, 1], r"RLE counts hold a negative run length"),
    ({"0": 1}, r"RLE counts must be a string or a list of integers, got dict"),
])
def test_rle_counts_that_do_not_cover_the_image_are_named(coco, counts, reason):
    root, path, data = coco
    img = data["images"][0]
    a = next(a for a in data["annotations"] if a["image_id"] == img["id"])
    a["segmentation"] = {"size": [img["height"], img["width"]], "counts": counts}
    with pytest.raises(ManifestError, match=rf"{path}: annotation {a['id']}: {reason}"):
        _load(root, path, data)


def test_a_keypoint_array_of_the_wrong_length_is_named(coco):
    root, path, _ = coco
    kp_path = root / "annotations" / "person_keypoints_train2017.json"
    kps = json.loads(kp_path.read_text())
    a = next(a for a in kps["annotations"] if a.get("num_keypoints", 0) > 0)
    a["keypoints"] = a["keypoints"][:-3]
    kp_path.write_text(json.dumps(kps))
    with pytest.raises(ManifestError, match=rf"{kp_path}: annotation {a['id']}: 48 keypoint "
                                            "numbers, expected 3 x 17 = 51"):
        load_split("coco", str(root), "train", "d")


def test_a_json_size_that_differs_from_the_file_stops_prepare(coco):
    root, path, data = coco
    data["images"][0]["width"] += 10
    with pytest.raises(ManifestError, match=rf"image {data['images'][0]['id']} is "
                                            rf"{data['images'][0]['width']}x"):
        _load(root, path, data)


def test_a_zero_byte_image_stops_prepare(coco):
    root, path, data = coco
    (root / "train2017" / data["images"][0]["file_name"]).write_bytes(b"")
    with pytest.raises(ManifestError, match=r"\.jpg: image file is empty \(0 bytes\)$"):
        load_split("coco", str(root), "train", "d")


def test_a_bbox_outside_the_image_is_clipped_and_counted(coco):
    root, path, data = coco
    a = data["annotations"][0]
    img = next(i for i in data["images"] if i["id"] == a["image_id"])
    a["bbox"] = [-5.0, -5.0, img["width"] + 20.0, 10.0]
    m = _load(root, path, data)
    got = next(b for b in m["annotations"] if b["id"] == a["id"])["bbox"]
    assert got == [0.0, 0.0, float(img["width"]), 5.0]
    assert m["info"]["summary"]["bboxes_clipped"] == 1


# --- disk full, modes ---------------------------------------------------------------------------

@pytest.fixture
def tiny_disk(tmp_path):
    d = tmp_path / "tiny"
    d.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot mount a tmpfs here ({e})")
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=True)


def test_a_full_disk_while_writing_a_checkpoint_says_so(tiny_disk):
    torch = pytest.importorskip("torch")
    from anonbench.backends.runtime import save_checkpoint

    target = tiny_disk / "run" / "model.pt"
    with pytest.raises(OSError, match=rf"{target}: no space left on device") as e:
        save_checkpoint({"w": torch.zeros(1 << 20)}, target)  # 4 MiB into 1 MiB
    assert "inline_container" not in str(e.value)
    assert list(target.parent.iterdir()) == []  # no temporary file left behind


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {})
        assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644
        Image.fromarray(photo()).save(tmp_path / "a.jpg")
        m = {"info": {"image_root": str(tmp_path), "shard": "000"}, "annotations": [],
             "images": [{"id": 1, "file_name": "a.jpg", "width": 128, "height": 96}],
             "categories": [{"id": 1, "name": "person"}]}
        write_json(tmp_path / "s.json", m)
        out = tmp_path / "anon" / "000"
        anonymize.anonymize_shard(str(tmp_path / "s.json"), None,
                                  {"region": "body", "method": "maskout"}, str(out),
                                  progress=False)
        assert stat.S_IMODE(out.stat().st_mode) == 0o755
        assert stat.S_IMODE((out / "a.jpg").stat().st_mode) == 0o644
        assert stat.S_IMODE((out / "summary.json").stat().st_mode) == 0o644
        torch = pytest.importorskip("torch")
        from anonbench.backends.runtime import save_checkpoint

        save_checkpoint({"w": torch.zeros(3)}, tmp_path / "model.pt")
        assert stat.S_IMODE((tmp_path / "model.pt").stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_an_image_format_that_cannot_be_written_without_metadata_stops_prepare(coco):
    root, path, data = coco
    name = data["images"][0]["file_name"]
    with Image.open(root / "train2017" / name) as im:
        im.convert("RGB").save(root / "train2017" / name, format="WEBP")
    with pytest.raises(ManifestError, match=rf"{name}: WEBP images are not supported"):
        load_split("coco", str(root), "train", "d")


def test_face_boxes_from_keypoints_on_a_dataset_without_keypoints_are_refused(coco):
    """Every eligible person without keypoints: the face variant would anonymize nobody, and
    fail only after anonymization with "no face found"."""
    from anonbench import annotate

    root, path, data = coco
    (root / "annotations" / "person_keypoints_train2017.json").unlink()
    m = _load(root, path, data)
    assert any(a.get("anonymize") for a in m["annotations"])
    with pytest.raises(ValueError, match=r"datasets.d.faces.detector: keypoints draws face boxes "
                                         r"from keypoints, and none of the \d+ persons"):
        annotate.detect_faces(m, {"detector": "keypoints"})


def test_a_phone_photo_with_a_second_image_is_read_as_its_first(coco, tmp_path):
    """A JPEG with an MPF second image (a phone's depth or gain map) was refused as an MPO; it
    is the JPEG its name says, and no copy keeps the second image."""
    from anonbench.metadata import copy_without_metadata, has_metadata

    root, path, data = coco
    img = data["images"][0]
    jpg = root / "train2017" / img["file_name"]
    first = Image.open(jpg).convert("RGB")
    first.save(jpg, "MPO", save_all=True, append_images=[Image.fromarray(photo(first.height,
                                                                               first.width))])
    with Image.open(jpg) as im:
        assert im.format == "MPO" and im.n_frames == 2
    _load(root, path, data)
    copy_without_metadata(jpg, tmp_path / "copy.jpg")
    out = (tmp_path / "copy.jpg").read_bytes()
    assert out.count(b"\xff\xd8") == 1 and has_metadata(out) == []
    with Image.open(tmp_path / "copy.jpg") as im:
        assert im.format == "JPEG" and np.array_equal(np.asarray(im), np.asarray(
            Image.open(jpg).convert("RGB")))


def test_a_motion_photo_is_read_as_its_jpeg_and_no_copy_keeps_the_video(coco, tmp_path):
    """A phone's motion photo (a video after the JPEG's end marker) was refused as "truncated,
    or data after its end"; it is a whole JPEG, and neither the unchanged copy nor the
    anonymized image keeps the video. A JPEG cut short is still refused."""
    from anonbench.metadata import copy_without_metadata

    root, path, data = coco
    jpg = root / "train2017" / data["images"][0]["file_name"]
    video = b"\x00\x00\x00\x18ftypmp42" + b"Jane Doe at home" * 64
    whole = jpg.read_bytes()
    jpg.write_bytes(whole + video)
    m = _load(root, path, data)
    assert verify_image(jpg) == Image.open(jpg).size
    copy_without_metadata(jpg, tmp_path / "copy.jpg")
    assert (tmp_path / "copy.jpg").read_bytes() == whole  # the fixture's JPEG has no metadata
    img = next(i for i in m["images"] if i["file_name"] == jpg.name)
    shard = {**m, "images": [img], "annotations": [a for a in m["annotations"]
                                                   if a["image_id"] == img["id"]]}
    write_json(tmp_path / "s.json", shard)
    out = tmp_path / "anon"
    anonymize.anonymize_shard(str(tmp_path / "s.json"), None,
                              {"region": "body", "method": "maskout"}, str(out), progress=False)
    assert b"Jane Doe" not in (out / jpg.name).read_bytes()
    jpg.write_bytes(whole[:-300])
    with pytest.raises(ManifestError, match=rf"{jpg.name}: truncated JPEG \(scan data"):
        load_split("coco", str(root), "train", "d")


# --- categories, ids and keypoints (a hostile-input sweep: each of these left persons as they
# were, or counted a face as anonymized where the blur missed it) ------------------------------

def _kp_file(root):
    path = root / "annotations" / "person_keypoints_train2017.json"
    return path, json.loads(path.read_text())


def _persons_with_face(kps):
    return [a for a in kps["annotations"]
            if not a.get("iscrowd") and any(a["keypoints"][3 * i + 2] > 0 for i in range(5))]


@pytest.mark.parametrize("edit, message", [
    # "1" against the annotations' 1: no annotation was a person, nothing was anonymized
    (lambda d: d["categories"][0].update(id="1"),
     r"annotation \d+ has category_id 1, which is no category of the file \(its ids: '1', 2, "
     r"3\)"),
    (lambda d: d["annotations"][0].update(category_id=99), r"annotation \d+ has category_id 99, "
                                                           "which is no category of the file"),
    (lambda d: d["categories"].append({"id": 1, "name": "car2"}),
     r"category id 1 appears twice \('person' and 'car2'\)"),
    (lambda d: d["categories"].append("x"), r"categories\[3\] is a str, not an object"),
    (lambda d: d["categories"][0].pop("id"), r"categories\[0\] has id None, not an integer"),
    (lambda d: d["categories"][1].pop("name"), r"categories\[1\] \(id 2\) has name None"),
    (lambda d: d["images"][0].update(id=[1]), r"images\[0\] has id \[1\], not an integer or a "
                                              "string"),
    (lambda d: d["annotations"][1].update(image_id=True), r"annotations\[1\] has image_id True"),
])
def test_categories_and_ids_that_match_nothing_are_named(coco, edit, message):
    root, path, data = coco
    edit(data)
    with pytest.raises(ManifestError, match=rf"{path}: {message}"):
        _load(root, path, data)


def test_an_rle_size_that_is_not_a_list_is_named(coco):
    root, path, data = coco
    img = data["images"][0]
    a = next(a for a in data["annotations"] if a["image_id"] == img["id"])
    a["segmentation"] = {"size": img["height"], "counts": "PPYo1"}
    with pytest.raises(ManifestError, match=rf"{path}: annotation {a['id']}: RLE size "
                                            rf"{img['height']} is not the image's"):
        _load(root, path, data)


@pytest.mark.parametrize("frame", ["normalized", "scaled"])
def test_keypoints_in_another_frame_stop_prepare(coco, frame):
    """Normalized (or rescaled) keypoints put every face box in a corner of background: the
    person was counted as anonymized while its face stayed as it was."""
    root, _, _ = coco
    kp_path, kps = _kp_file(root)
    sizes = {img["id"]: (img["width"], img["height"]) for img in kps["images"]}
    for a in kps["annotations"]:
        w, h = sizes[a["image_id"]]
        sx, sy = (1 / w, 1 / h) if frame == "normalized" else (0.1, 0.1)
        a["keypoints"] = [v * (sx if i % 3 == 0 else sy if i % 3 == 1 else 1)
                          for i, v in enumerate(a["keypoints"])]
    kp_path.write_text(json.dumps(kps))
    n = len(_persons_with_face(kps))
    with pytest.raises(ManifestError, match=rf"{kp_path}: the face keypoints of \d+ of the {n} "
                                            r"annotations with any lie far outside their boxes "
                                            r"\(first: annotation \d+: keypoint \d"):
        load_split("coco", str(root), "train", "d")


def test_a_face_hidden_beside_a_small_visible_box_is_accepted(coco):
    """One person whose labelled face lies off its small visible box (an occluded head) is
    what real datasets have: prepare keeps it (the demo worlds have 1-2 % of them)."""
    root, _, _ = coco
    kp_path, kps = _kp_file(root)
    persons = _persons_with_face(kps)
    assert len(persons) >= 3
    a = persons[0]
    a["bbox"] = [a["keypoints"][0] + 40, a["keypoints"][1] + 40, 4, 4]
    kp_path.write_text(json.dumps(kps))
    _, path, data = coco
    data["annotations"] = [dict(b, bbox=a["bbox"]) if b["id"] == a["id"] else b
                           for b in data["annotations"]]
    assert _load(root, path, data)["info"]["summary"]["persons_kept"] > 0


@pytest.mark.parametrize("edit, message", [
    (lambda a: a["keypoints"].__setitem__(2, 7), r"keypoint 0 has visibility 7; COCO's are 0"),
    (lambda a: a["keypoints"].__setitem__(0, 5000.0), r"keypoint 0 at \(5000, [\d.]+\) lies "
                                                      r"outside the \d+x\d+ image"),
    (lambda a: a.update(id=a["id"] + 1000), r"annotation \d+ is not in \S+instances_train2017"),
    (lambda a: a.update(image_id=-1), r"annotation \d+ has image_id -1, but \S+ has \d+"),
])
def test_keypoint_annotations_that_do_not_fit_the_instances_are_named(coco, edit, message):
    root, _, _ = coco
    kp_path, kps = _kp_file(root)
    a = _persons_with_face(kps)[0]
    a["keypoints"][2] = 2
    edit(a)
    kp_path.write_text(json.dumps(kps))
    with pytest.raises(ManifestError, match=rf"{kp_path}: (annotation \d+: )?{message}"):
        load_split("coco", str(root), "train", "d")


@pytest.mark.parametrize("num_keypoints", [0, "14", None])
def test_the_persons_rule_counts_the_labelled_points_not_num_keypoints(coco, num_keypoints):
    """A stale or missing num_keypoints (users' own files) skipped a labelled person as
    'no_keypoints' (it stayed as it was), or failed with a TypeError."""
    root, _, _ = coco
    kp_path, kps = _kp_file(root)
    a = _persons_with_face(kps)[0]
    if num_keypoints is None:
        a.pop("num_keypoints", None)
    else:
        a["num_keypoints"] = num_keypoints
    kp_path.write_text(json.dumps(kps))
    m = load_split("coco", str(root), "train", "d")
    got = next(b for b in m["annotations"] if b["id"] == a["id"])
    assert got["anonymize"] is True
    assert got["num_keypoints"] == sum(v > 0 for v in a["keypoints"][2::3])


def test_an_instance_field_error_names_the_instances_file(coco):
    """With a keypoints file beside it, a bad bbox of the instances file was reported in the
    keypoints file."""
    root, path, data = coco
    kp_path, kps = _kp_file(root)
    a = next(b for b in data["annotations"] if b["id"] == _persons_with_face(kps)[0]["id"])
    a["bbox"][2] = float("nan")
    with pytest.raises(ManifestError, match=rf"^{path}: annotation {a['id']}: bbox"):
        _load(root, path, data)


def test_a_jpeg_that_neither_decoder_reads_is_named(tmp_path):
    """A marker libjpeg-turbo does not support (DHP, 0xFFDE) sent the check to Pillow, whose
    OSError named no file."""
    p = tmp_path / "dhp.jpg"
    Image.fromarray(photo()).save(p, quality=90)
    data = p.read_bytes()
    payload = b"John Smith"
    p.write_bytes(data[:-2] + b"\xff\xde" + (len(payload) + 2).to_bytes(2, "big") + payload
                  + data[-2:])
    with pytest.raises(ImageReadError, match=rf"^{p}: corrupt JPEG \(.*Pillow: "):
        verify_image(p)


def test_a_labelled_face_on_an_empty_mask_is_anonymized_by_the_face_variants(coco, tmp_path):
    """A person with labelled face keypoints but no mask pixels (keypoints-only data) was
    skipped as 'no visible pixels' in every variant: its face stayed as it was."""
    root, path, data = coco
    kp_path, kps = _kp_file(root)
    victim = _persons_with_face(kps)[0]
    for d in (data, kps):
        for a in d["annotations"]:
            if a["id"] == victim["id"]:
                a["segmentation"] = []
    kp_path.write_text(json.dumps(kps))
    path.write_text(json.dumps(data))
    res = tmp_path / "res"
    steps.prepare("coco", str(root), "train", "d", str(res / "train.json"))
    steps.make_shards(str(res / "train.json"), 1, str(res / "shards"))
    shard = str(res / "shards" / "000.json")
    steps.faces(shard, {"detector": "keypoints"}, str(res / "faces.json"))
    faces = json.loads((res / "faces.json").read_text())["faces"]
    box = next(f["box"] for f in faces if f["annotation_id"] == victim["id"])
    img = next(i for i in load_manifest(shard)["images"] if i["id"] == victim["image_id"])
    out = {}
    for name, variant in (("face", {"region": "face", "method": "maskout", "value": 127}),
                          ("body", {"region": "body", "method": "maskout", "value": 127})):
        stats = anonymize.anonymize_shard(shard, str(res / "faces.json"), variant,
                                          str(res / name), progress=False)
        out[name] = stats["coverage"]["ids"]
    x0, y0, x1, y1 = (int(v) for v in box)
    from anonbench.images import read_image

    got = read_image(res / "face" / img["file_name"])
    assert (got[y0 + 1:y1, x0 + 1:x1] == 127).all()
    assert victim["id"] in out["face"]["anonymized"], out["face"]
    assert out["body"]["no_pixels"] == [victim["id"]], out["body"]  # named, per variant
