import numpy as np
import pytest
from scipy import ndimage
from skimage import data

from anonbench import anonymize, images
from anonbench.manifest import encode_mask, write_json


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()  # a real photograph, 512x512 RGB uint8


def scipy_blur(image, sigma):
    # kernel 3 * sigma = 21 taps -> radius 10; OpenCV's BORDER_REFLECT_101 is scipy's 'mirror'
    radius = anonymize.blur_kernel_size(sigma) // 2
    out = np.stack([ndimage.gaussian_filter(image[..., c].astype(np.float64), sigma,
                                            mode="mirror", truncate=radius / sigma)
                    for c in range(3)], axis=-1)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def test_kernel_size_follows_the_study():
    assert anonymize.blur_kernel_size(7) == 21
    assert anonymize.blur_kernel_size(4) == 13  # 12 made odd
    assert anonymize.blur_kernel_size(0.5) == 3   # round(1.5) = 2 made odd
    for sigma in (0.49, 0.01, float("nan")):      # a 1-pixel kernel: an identity
        with pytest.raises(ValueError, match="below 0.5 the kernel is 1 pixel"):
            anonymize.blur_kernel_size(sigma)


def test_gaussian_blur_matches_scipy(astronaut):
    ours = anonymize.gaussian_blur(astronaut, 7).astype(int)
    ref = scipy_blur(astronaut, 7).astype(int)
    assert np.abs(ours - ref).max() <= 1  # rounding of the fixed-point kernel only
    assert np.abs(ours - astronaut.astype(int)).mean() > 3  # it did blur


def test_blur_region_is_the_studys_formula(astronaut):
    mask = np.zeros(astronaut.shape[:2], bool)
    mask[40:200, 150:300] = True
    mask[480:, :30] = True  # touches the image corner: border handling must agree
    out = anonymize.blur_region(astronaut, mask, 7, boxes=[(150, 40, 300, 200), (0, 480, 30, 512)])
    full = anonymize.gaussian_blur(astronaut, 7)
    expected = np.where(mask[..., None], full, astronaut)  # I (1 - M) + blur(I) M
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out[~mask], astronaut[~mask])
    # without boxes: one box around the whole mask, same result
    np.testing.assert_array_equal(anonymize.blur_region(astronaut, mask, 7), expected)


def test_blur_region_of_neighbouring_boxes_equals_the_whole_image_blur(astronaut):
    # two persons side by side: each box's blur margin reaches into the other's mask, where the
    # cut's own border shows; only the box itself may be written, in any order of the boxes
    mask = np.zeros(astronaut.shape[:2], bool)
    mask[100:300, 100:160] = True
    mask[120:320, 165:230] = True
    boxes = [(100, 100, 160, 300), (165, 120, 230, 320)]
    expected = np.where(mask[..., None], anonymize.gaussian_blur(astronaut, 7), astronaut)
    for order in (boxes, boxes[::-1]):
        np.testing.assert_array_equal(anonymize.blur_region(astronaut, mask, 7, order), expected)


def test_maskout_in_boxes_equals_the_whole_image_formula(astronaut):
    rng = np.random.default_rng(0)
    mask = rng.random(astronaut.shape[:2]) < 0.3
    mask[:, 200:] = False
    out = anonymize.maskout_region(astronaut, mask, 127, boxes=[(0, 0, 120, 512), (100, 0, 200, 512)])
    np.testing.assert_array_equal(out, np.where(mask[..., None], np.uint8(127), astronaut))
    assert not np.shares_memory(out, astronaut)


def test_maskout_pixel_values(astronaut):
    mask = np.zeros(astronaut.shape[:2], bool)
    mask[10:20, 30:60] = True
    out = anonymize.maskout_region(astronaut, mask, 127)
    assert (out[mask] == 127).all()
    np.testing.assert_array_equal(out[~mask], astronaut[~mask])
    assert out.dtype == np.uint8


def test_region_mask_body_is_dilated_instance_and_skips_unmarked():
    h, w = 60, 80
    person = np.zeros((h, w), bool)
    person[10:50, 20:40] = True
    other = np.zeros((h, w), bool)
    other[5:15, 60:75] = True
    anns = [{"segmentation": encode_mask(person), "anonymize": True},
            {"segmentation": encode_mask(other), "anonymize": False}]
    region = anonymize.region_mask(h, w, anns, [], {"region": "body", "method": "maskout"})
    m = region.mask
    assert len(region.boxes) == 1
    assert m[person].all() and not m[other].any()
    assert m.sum() > person.sum()  # dilated
    assert not m[0, 0]
    small = anonymize.region_mask(h, w, anns, [], {"region": "body", "method": "maskout",
                                                   "min_body_size": 32})
    assert not small.any() and not small.mask.any()  # 20x40 box < 32^2


def test_region_mask_face_boxes():
    faces = [{"box": [10.2, 5.0, 20.0, 15.5]}]
    m = anonymize.region_mask(30, 30, [], faces, {"region": "face", "method": "blur"}).mask
    ys, xs = np.nonzero(m)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (10, 19, 5, 15)


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="unknown anonymization method 'pixelate'"):
        anonymize.anonymize_image(np.zeros((4, 4, 3), np.uint8),
                                  anonymize.Region(np.ones((4, 4), bool), [(0, 0, 4, 4)]),
                                  {"method": "pixelate"})


def _shard(tmp_path, astronaut, with_person=True):
    root = tmp_path / "imgs"
    images.write_image(root / "a.jpg", astronaut[:64, :96])
    images.write_image(root / "b.jpg", astronaut[100:164, 100:196])
    mask = np.zeros((64, 96), bool)
    mask[10:40, 20:50] = True
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [20, 10, 30, 30],
             "segmentation": encode_mask(mask), "iscrowd": 0, "anonymize": with_person}]
    m = {"info": {"image_root": str(root), "shard": "000"},
         "images": [{"id": 1, "file_name": "a.jpg", "width": 96, "height": 64},
                    {"id": 2, "file_name": "b.jpg", "width": 96, "height": 64}],
         "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    write_json(tmp_path / "shard.json", m)
    return root, mask


def test_anonymize_shard_writes_images_and_copies_untouched(tmp_path, astronaut):
    root, mask = _shard(tmp_path, astronaut)
    out = tmp_path / "out" / "000"
    stats = anonymize.anonymize_shard(str(tmp_path / "shard.json"), None,
                                      {"region": "body", "method": "maskout", "value": 127},
                                      str(out), progress=False)
    assert stats["anonymized_images"] == 1 and stats["copied_images"] == 1
    a = images.read_image(out / "a.jpg")
    assert np.abs(a[mask].astype(int) - 127).max() <= 2  # JPEG q100 4:4:4
    # the image without a person is the original file, byte for byte
    assert (out / "b.jpg").read_bytes() == (root / "b.jpg").read_bytes()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp dir left


def test_anonymize_shard_leaves_nothing_on_failure(tmp_path, astronaut):
    root, _ = _shard(tmp_path, astronaut)
    (root / "b.jpg").write_bytes((root / "b.jpg").read_bytes()[:200])  # truncated JPEG
    out = tmp_path / "out" / "000"
    with pytest.raises(images.ImageReadError, match="b.jpg"):
        anonymize.anonymize_shard(str(tmp_path / "shard.json"), None,
                                  {"region": "body", "method": "blur"}, str(out), progress=False)
    assert not out.exists()
    assert list(out.parent.iterdir()) == []


def test_same_input_same_bytes(tmp_path, astronaut):
    _shard(tmp_path, astronaut)
    variant = {"region": "body", "method": "blur", "sigma": 7}
    for name in ("x", "y"):
        anonymize.anonymize_shard(str(tmp_path / "shard.json"), None, variant,
                                  str(tmp_path / name), progress=False)
    assert (tmp_path / "x" / "a.jpg").read_bytes() == (tmp_path / "y" / "a.jpg").read_bytes()


def test_sigkilled_shard_leaves_no_output_and_reruns_cleanly(tmp_path, astronaut):
    """A job killed mid-shard (no cleanup runs) leaves only a hidden temporary directory, never
    a partial shard; the rerun removes the leftover and writes the complete shard."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    root = tmp_path / "imgs"
    for i in range(40):
        images.write_image(root / f"{i:03d}.jpg", np.roll(astronaut, 7 * i, axis=1))
    mask = np.zeros((512, 512), bool)
    mask[100:400, 150:350] = True
    m = {"info": {"image_root": str(root), "shard": "000"},
         "images": [{"id": i + 1, "file_name": f"{i:03d}.jpg", "width": 512, "height": 512}
                    for i in range(40)],
         "annotations": [{"id": i + 1, "image_id": i + 1, "category_id": 1,
                          "bbox": [150, 100, 200, 300], "segmentation": encode_mask(mask),
                          "iscrowd": 0, "anonymize": True} for i in range(40)],
         "categories": [{"id": 1, "name": "person"}]}
    write_json(tmp_path / "shard.json", m)
    variant = {"region": "body", "method": "blur", "sigma": 7}
    out = tmp_path / "anon" / "000"
    code = ("import json, sys; from anonbench import anonymize; "
            "anonymize.anonymize_shard(sys.argv[1], None, json.loads(sys.argv[2]), sys.argv[3], "
            "progress=False)")
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "shard.json"),
                          json.dumps(variant), str(out)])
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        if len(list((tmp_path / "anon").glob(".000.*/*.jpg"))) >= 3:
            break
        time.sleep(0.01)
    assert p.poll() is None, "the job ended before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not out.exists()
    assert list((tmp_path / "anon").glob(".000.*"))  # the killed job's leftover
    anonymize.anonymize_shard(str(tmp_path / "shard.json"), None, variant, str(out),
                              progress=False)
    assert len(list(out.glob("*.jpg"))) == 40
    assert [p.name for p in (tmp_path / "anon").iterdir()] == ["000"]
