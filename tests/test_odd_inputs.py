"""Odd images and degenerate shards through the anonymize and audit steps (issue: reliability).

Policy, as tested here: every image is decoded to 8-bit RGB (EXIF orientation applied;
grayscale and CMYK converted; 16-bit to its high byte, as OpenCV reads it), anonymized, and written in its
own format; shards without persons are copied; persons with an empty mask are skipped.
"""

import numpy as np
import pytest
from PIL import Image

from anonbench import anonymize, audit, images
from anonbench.manifest import encode_mask, load_manifest, write_json

BLUR = {"region": "body", "method": "blur", "sigma": 7}
MASKOUT = {"region": "body", "method": "maskout", "value": 127}


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_odd(path, kind):
    """An image of the given kind; returns its expected decoded RGB (for lossless kinds)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "gray-png":
        a = np.random.default_rng(1).integers(0, 256, (40, 30), dtype=np.uint8)
        Image.fromarray(a, "L").save(path)
        return np.repeat(a[..., None], 3, axis=2)
    if kind == "16bit-png":
        a = np.random.default_rng(2).integers(0, 65536, (40, 30), dtype=np.uint16)
        Image.fromarray(a).save(path)  # mode I;16
        return np.repeat((a >> 8).astype(np.uint8)[..., None], 3, axis=2)
    if kind == "cmyk-jpg":
        Image.fromarray(_rgb(40, 30, 3)).convert("CMYK").save(path, quality=95)
        return None
    if kind == "1px-wide":
        a = _rgb(40, 1, 4)
        Image.fromarray(a).save(path)
        return a
    if kind == "1px-high":
        a = _rgb(1, 40, 5)
        Image.fromarray(a).save(path)
        return a
    raise ValueError(kind)


@pytest.mark.parametrize("kind, name", [("gray-png", "g.png"), ("16bit-png", "s.png"),
                                        ("cmyk-jpg", "c.jpg"), ("1px-wide", "w.png"),
                                        ("1px-high", "h.png")])
def test_odd_images_decode_to_rgb(tmp_path, kind, name):
    expected = write_odd(tmp_path / name, kind)
    got = images.read_image(tmp_path / name)
    assert got.dtype == np.uint8 and got.ndim == 3 and got.shape[2] == 3
    with Image.open(tmp_path / name) as im:
        assert got.shape[:2] == (im.height, im.width)
    if expected is not None:
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("kind, name", [("gray-png", "g.png"), ("16bit-png", "s.png"),
                                        ("1px-wide", "w.png")])
def test_odd_images_decode_as_opencv_decodes_them(tmp_path, kind, name):
    """The anonymizers see the pixels that training (OpenCV) sees: a 16-bit greyscale PNG was
    scaled from its full range by our reader (rounded) and cut to its high byte by OpenCV."""
    cv2 = pytest.importorskip("cv2")
    write_odd(tmp_path / name, kind)
    bgr = cv2.imread(str(tmp_path / name), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(images.read_image(tmp_path / name), bgr[..., ::-1])


def test_a_16_bit_image_of_8_bit_values_is_refused(tmp_path):
    """8-bit values stored in 16 bits: OpenCV reads the image black, our reader read it bright
    (it scaled from the image's own maximum); every reader of it now refuses it."""
    a = np.random.default_rng(3).integers(0, 256, (40, 30), dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "dark.png")
    for read in (images.read_image, images.verify_image):
        with pytest.raises(images.ImageReadError, match=r"dark.png: a 16-bit greyscale image "
                                                        r"whose values all lie below 256"):
            read(tmp_path / "dark.png")


def _shard(tmp_path, files, anns):
    root = tmp_path / "originals"
    imgs = []
    for i, (name, kind) in enumerate(files, start=1):
        write_odd(root / name, kind)
        with Image.open(root / name) as im:
            imgs.append({"id": i, "file_name": name, "width": im.width, "height": im.height})
    m = {"info": {"image_root": str(root), "shard": "000"}, "images": imgs, "annotations": anns,
         "categories": [{"id": 1, "name": "person"}]}
    write_json(tmp_path / "shard.json", m)
    return str(tmp_path / "shard.json")


def _person(ann_id, image_id, mask):
    ys, xs = np.nonzero(mask) if mask.any() else ([0], [0])
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "anonymize": True,
            "bbox": [int(min(xs)), int(min(ys)), 1, 1], "segmentation": encode_mask(mask)}


@pytest.mark.parametrize("variant", [BLUR, MASKOUT], ids=["blur", "maskout"])
def test_odd_images_are_anonymized_and_pass_the_audit(tmp_path, variant):
    files = [("g.png", "gray-png"), ("s.png", "16bit-png"), ("c.jpg", "cmyk-jpg"),
             ("w.png", "1px-wide"), ("h.png", "1px-high")]
    shapes = {1: (40, 30), 2: (40, 30), 3: (40, 30), 4: (40, 1), 5: (1, 40)}
    anns = []
    for image_id, (h, w) in shapes.items():
        mask = np.zeros((h, w), bool)
        mask[h // 4: max(h // 4 + 1, 3 * h // 4), w // 4: max(w // 4 + 1, 3 * w // 4)] = True
        anns.append(_person(10 + image_id, image_id, mask))
    shard = _shard(tmp_path, files, anns)
    out = tmp_path / "anon" / "000"
    stats = anonymize.anonymize_shard(shard, None, variant, str(out), progress=False)
    assert stats["anonymized_images"] == 5
    for name, _ in files:
        with Image.open(out / name) as im:
            assert im.mode == "RGB"
            assert im.format == ("JPEG" if name.endswith(".jpg") else "PNG")
    result = audit.audit_shard(shard, None, variant, str(out))
    # a blur of a 1-pixel-wide strip can leave it as it was: then it is counted as flat
    assert result["regions"] + result["flat_regions"] == 5
    if variant is MASKOUT:
        assert result["unchanged_max"] < 0.05


def test_shard_without_persons_is_copied_byte_for_byte(tmp_path):
    shard = _shard(tmp_path, [("a.png", "gray-png"), ("b.jpg", "cmyk-jpg")], [])
    out = tmp_path / "anon" / "000"
    stats = anonymize.anonymize_shard(shard, None, BLUR, str(out), progress=False)
    assert stats == {"images": 2, "anonymized_images": 0, "copied_images": 2, "regions": 0,
                     "region_pixels": 0,
                     "coverage": {"present": 0, "anonymized": 0, "skipped": {}, "ids": {}}}
    for name in ("a.png", "b.jpg"):  # copies: pixels as they were (metadata stripped)
        with Image.open(out / name) as a, Image.open(tmp_path / "originals" / name) as b:
            assert a.mode == b.mode and np.array_equal(np.asarray(a), np.asarray(b))
    result = audit.audit_shard(shard, None, BLUR, str(out))
    assert result["regions"] == 0 and result["unchanged_mean"] is None


def test_person_with_an_empty_mask_is_skipped(tmp_path):
    empty = np.zeros((40, 30), bool)
    full = np.zeros((40, 30), bool)
    full[5:20, 5:20] = True
    shard = _shard(tmp_path, [("a.png", "gray-png")], [_person(1, 1, empty), _person(2, 1, full)])
    out = tmp_path / "anon" / "000"
    anonymize.anonymize_shard(shard, None, MASKOUT, str(out), progress=False)
    got = images.read_image(out / "a.png")
    assert (got[5:20, 5:20] == 127).all()
    result = audit.audit_shard(shard, None, MASKOUT, str(out))
    assert result["regions"] == 1  # only the person with pixels
    assert len(load_manifest(shard)["annotations"]) == 2


def test_truncated_image_names_the_file(tmp_path):
    shard = _shard(tmp_path, [("a.png", "gray-png")], [])
    p = tmp_path / "originals" / "a.png"
    p.write_bytes(p.read_bytes()[:60])
    with pytest.raises(images.ImageReadError, match="a.png"):
        anonymize.anonymize_shard(shard, None, BLUR, str(tmp_path / "anon" / "000"),
                                  progress=False)
    assert not (tmp_path / "anon" / "000").exists()
    assert not list((tmp_path / "anon").glob(".000.*"))  # nothing half-written


def test_cuda_device_without_cuda_is_a_clear_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from anonbench.backends.torchvision_backend import _device

    assert _device("auto").type == "cpu"  # the policy: auto falls back to the CPU
    with pytest.raises(RuntimeError, match="CUDA is not available here .*set device: cpu or auto"):
        _device("cuda")
