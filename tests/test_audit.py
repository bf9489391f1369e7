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
