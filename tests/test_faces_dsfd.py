"""DSFD (the study's detector): offline its weights are missing, and the error says where to put
them. No test downloads anything."""

import json

import pytest

from anonbench import steps
from anonbench.annotators import AnnotatorUnavailable
from anonbench.annotators import faces as face_models

pytest.importorskip("face_detection", reason="face-detection package (extra 'faces') not installed")


def _one_person_shard(tmp_path):
    m = {"info": {"image_root": str(tmp_path), "shard": "000"},
         "images": [{"id": 1, "file_name": "x.jpg", "width": 64, "height": 64}],
         "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "anonymize": True,
                          "bbox": [0, 0, 10, 10], "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]]}],
         "categories": [{"id": 1, "name": "person"}]}
    p = tmp_path / "shard.json"
    p.write_text(json.dumps(m))
    return p


def test_missing_weights_name_the_file_and_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "WIDERFace_DSFD_RES152.pth"
    assert face_models.dsfd_weights_path() == str(expected)
    with pytest.raises(AnnotatorUnavailable) as e:
        face_models.DSFD({"download": False, "threshold": 0.2})
    msg = str(e.value)
    assert str(expected) in msg and face_models.DSFD_URL in msg and "TORCH_HOME" in msg
    assert not expected.exists()


def test_faces_step_fails_before_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    out = tmp_path / "faces" / "000.json"
    with pytest.raises(AnnotatorUnavailable, match="DSFD weights not found"):
        steps.faces(str(_one_person_shard(tmp_path)), {"detector": "dsfd", "download": False},
                    str(out))
    assert not out.exists()


def test_dsfd_asks_for_a_gpu_centerface_does_not():
    from anonbench.annotate import uses_gpu

    assert uses_gpu("faces", "dsfd") and not uses_gpu("faces", "centerface")
    assert not uses_gpu("faces", "keypoints") and uses_gpu("keypoints", "vitpose")
    assert not uses_gpu("keypoints", "groundtruth")
