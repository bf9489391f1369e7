"""steps.evaluate's dispatch: the validation manifest's format picks the evaluation."""

import numpy as np
import pytest

from anonbench.datasets import demo, load_split
from anonbench.evaluation.coco import EVALUATOR, evaluate_coco
from anonbench.evaluation import EVALUATORS, evaluate_manifest


@pytest.fixture(scope="module")
def coco_val(tmp_path_factory):
    root = tmp_path_factory.mktemp("w") / "w"
    demo.generate_world(root, seed=1, n_train=1, n_val=5)
    return load_split("coco", str(root), "val", "demo")


def results(m):
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "segmentation": a["segmentation"], "keypoints": a.get("keypoints"), "score": 0.8}
            for a in m["annotations"] if not a["iscrowd"]]


def same(a, b):
    return a.keys() == b.keys() and all(a[k] == b[k] or (np.isnan(a[k]) and np.isnan(b[k]))
                                        for k in a)


@pytest.mark.parametrize("arch, iou_types", [("mask_rcnn", ["bbox", "segm"]),
                                             ("keypoint_rcnn", ["bbox", "keypoints"])])
def test_coco_path_is_the_unchanged_coco_evaluation(coco_val, arch, iou_types):
    res = [r for r in results(coco_val) if arch == "mask_rcnn" or r["keypoints"]]
    ev = evaluate_manifest(coco_val, res, arch)
    assert ev["evaluator"] == EVALUATOR and ev["iou_types"] == iou_types
    assert same(ev["metrics"], evaluate_coco(coco_val, res, iou_types))


def test_unknown_format_is_refused(coco_val):
    m = {**coco_val, "info": {**coco_val["info"], "format": "kitti"}}
    with pytest.raises(ValueError, match="no evaluation for dataset format 'kitti'"):
        evaluate_manifest(m, [], "mask_rcnn")
    assert set(EVALUATORS) == {"coco", "cityscapes", "bdd100k"}
