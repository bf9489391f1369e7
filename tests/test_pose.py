"""Pose estimators: COCO-17 output, top-down boxes, visibility threshold, ViTPose's error path,
and estimated keypoints feeding the `keypoints` face detector."""

import json

import numpy as np
import pytest

from anonbench import annotate, images, steps
from anonbench.annotators import AnnotatorUnavailable
from anonbench.annotators import pose as pose_models
from anonbench.manifest import encode_mask


def test_coco_keypoints_visibility_threshold():
    xy = np.arange(34, dtype=float).reshape(17, 2) + 0.123
    conf = np.full(17, 0.9)
    conf[[0, 5]] = [0.3, 0.2999]
    kp = pose_models.coco_keypoints(xy, conf, 0.3)
    assert len(kp) == 51
    assert kp[0:3] == [round(xy[0, 0], 2), round(xy[0, 1], 2), 2]  # exactly at the threshold
    assert kp[15:18] == [0, 0, 0]                                    # just below: not labelled
    assert sum(1 for v in kp[2::3] if v == 2) == 16
    assert pose_models.coco_keypoints(xy, conf, 0.95)[2::3] == [0] * 17


def _shard(tmp_path, keypoints=None):
    """One 80 x 60 image with one person whose mask is an L shape (its box is not its bbox)."""
    h, w = 60, 80
    images.write_image(tmp_path / "img" / "a.png", np.full((h, w, 3), 90, np.uint8))
    mask = np.zeros((h, w), bool)
    mask[10:50, 20:30] = True
    mask[40:50, 30:45] = True
    ann = {"id": 3, "image_id": 1, "category_id": 1, "anonymize": True, "iscrowd": 0,
           "bbox": [0.0, 0.0, 80.0, 60.0],  # deliberately loose: top-down uses the mask's box
           "segmentation": encode_mask(mask)}
    if keypoints is not None:
        ann["keypoints"] = keypoints
        ann["num_keypoints"] = sum(1 for v in keypoints[2::3] if v > 0)
    m = {"info": {"image_root": str(tmp_path / "img"), "shard": "000"},
         "images": [{"id": 1, "file_name": "a.png", "width": w, "height": h}],
         "annotations": [ann, {"id": 4, "image_id": 1, "category_id": 2, "bbox": [0, 0, 5, 5],
                               "segmentation": [[0, 0, 5, 0, 5, 5]]}],
         "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}]}
    p = tmp_path / "shard.json"
    p.write_text(json.dumps(m))
    return p


class BoxCornerPose(pose_models.PoseEstimator):
    """A stand-in for an external pose model: keypoint k at the box's top-left corner plus
    (k, k), confidence k / 16. It shows what box the step gives the model."""

    name = "boxcorner"

    def estimate(self, image, boxes):
        assert image.dtype == np.uint8 and image.ndim == 3
        k = np.arange(17, dtype=float)
        xy = np.stack([np.stack([b[0] + k, b[1] + k], axis=1) for b in boxes])
        return xy, np.tile(k / 16, (len(boxes), 1))


def test_top_down_on_the_tightest_mask_box(tmp_path, monkeypatch):
    monkeypatch.setitem(pose_models.POSE_ESTIMATORS, "boxcorner", BoxCornerPose)
    out = tmp_path / "kp.json"
    steps.keypoints(str(_shard(tmp_path)), {"estimator": "boxcorner", "threshold": 0.5}, str(out))
    r = json.loads(out.read_text())
    assert r["persons"] == 1 and r["persons_with_keypoints"] == 1
    (k,) = r["keypoints"]
    assert k["annotation_id"] == 3 and k["box"] == [20.0, 10.0, 45.0, 50.0]
    vis = k["keypoints"][2::3]
    assert vis == [2 if i / 16 >= 0.5 else 0 for i in range(17)]
    assert k["keypoints"][8 * 3:8 * 3 + 2] == [28.0, 18.0] and k["num_keypoints"] == 9


def test_groundtruth_copies_the_dataset_keypoints(tmp_path):
    kp = [0] * 51
    kp[0:3] = [25, 15, 2]
    kp[3:6] = [27, 14, 1]
    m = json.loads(_shard(tmp_path, keypoints=kp).read_text())
    r = annotate.estimate_keypoints(m, {"estimator": "groundtruth"})
    assert r["keypoints"][0]["keypoints"] == kp and r["keypoints"][0]["num_keypoints"] == 2
    assert r["fraction_with_keypoints"] == 1.0


def test_estimated_keypoints_drive_the_keypoints_face_detector(tmp_path):
    m = json.loads(_shard(tmp_path, keypoints=[0] * 51).read_text())
    assert annotate.detect_faces(m, {"detector": "keypoints"})["faces"] == []
    est = [0] * 51
    est[0:3] = [25, 16, 2]                   # nose
    est[3:9] = [23, 14, 2, 27, 14, 2]        # eyes
    keypoints = {"keypoints": [{"annotation_id": 3, "keypoints": est, "num_keypoints": 3}]}
    r = annotate.detect_faces(m, {"detector": "keypoints"}, keypoints=keypoints)
    (face,) = r["faces"]
    x0, y0, x1, y1 = face["box"]
    assert face["annotation_id"] == 3 and x0 < 23 < 27 < x1 and y0 < 14 < 16 < y1
    # the manifest itself is not changed
    assert m["annotations"][0]["keypoints"] == [0] * 51


def test_unknown_estimator_names_the_known_ones():
    with pytest.raises(ValueError, match="groundtruth.*vitpose"):
        pose_models.get_pose_estimator("openpose")


def test_vitpose_unavailable_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AnnotatorUnavailable) as e:
        pose_models.VitPose({"download": False})
    msg = str(e.value)
    assert "pip install" in msg or ("HF_HOME" in msg and pose_models.VITPOSE_MODEL in msg)


def test_vitpose_runs_a_local_model_top_down(tmp_path):
    """The real transformers code path with a tiny randomly initialised ViTPose saved to disk
    (no weights are downloaded); only where transformers is installed (the cluster's env)."""
    tf = pytest.importorskip("transformers", reason="transformers (extra 'pose') not installed")
    backbone = tf.VitPoseBackboneConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                        intermediate_size=64, out_indices=[1])
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = tf.VitPoseForPoseEstimation(tf.VitPoseConfig(backbone_config=backbone,
                                                             num_labels=17))
    model.save_pretrained(tmp_path / "vitpose")
    tf.VitPoseImageProcessor().save_pretrained(tmp_path / "vitpose")
    out = tmp_path / "kp.json"
    cfg = {"estimator": "vitpose", "model": str(tmp_path / "vitpose"), "download": False,
           "device": "cpu", "threshold": 0.0}
    steps.keypoints(str(_shard(tmp_path)), cfg, str(out))
    (k,) = json.loads(out.read_text())["keypoints"]
    assert k["box"] == [20.0, 10.0, 45.0, 50.0] and len(k["scores"]) == 17
    xy = np.asarray(k["keypoints"]).reshape(17, 3)
    scores = np.asarray(k["scores"])
    assert ((xy[:, 2] == 2) == (scores >= 0.0)).all()  # random weights: some scores < 0
    vis = xy[xy[:, 2] == 2]
    assert len(vis) > 0
    # the model sees the box grown by 25 % (ViTPose's padding): keypoints fall inside it
    assert (vis[:, 0] >= 20 - 8).all() and (vis[:, 0] <= 45 + 8).all()
    assert (vis[:, 1] >= 10 - 8).all() and (vis[:, 1] <= 50 + 8).all()
