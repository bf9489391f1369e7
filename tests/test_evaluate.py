"""COCO evaluation of results against an in-memory manifest (no images needed)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from anonbench.evaluation.coco import evaluate_coco, metrics_record
from anonbench.manifest import encode_mask

H, W = 48, 64
PERSON, CAR = 1, 3


def _ann(aid, image_id, cat, x, y, w, h, *, crowd=0, keypoints=False):
    m = np.zeros((H, W), bool)
    m[y:y + h, x:x + w] = True
    a = {"id": aid, "image_id": image_id, "category_id": cat, "bbox": [x, y, w, h],
         "segmentation": encode_mask(m), "area": float(w * h), "iscrowd": crowd}
    if keypoints:
        kps = []
        for j in range(17):
            kps += [x + (j % 3) * w / 3 + 1, y + j * h / 17 + 1, 2]
        a["keypoints"] = kps
        a["num_keypoints"] = 17
    return a


@pytest.fixture()
def gt():
    anns = [
        _ann(1, 1, PERSON, 5, 5, 12, 30, keypoints=True),
        _ann(2, 1, CAR, 30, 20, 30, 20),
        _ann(3, 2, PERSON, 40, 4, 10, 26, keypoints=True),
        _ann(4, 2, PERSON, 2, 2, 20, 12, crowd=1),  # an ignore region
        _ann(5, 3, CAR, 10, 10, 40, 30),
    ]
    return {
        "info": {"dataset": "t", "split": "val", "image_root": "/nonexistent"},
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": W, "height": H} for i in (1, 2, 3)],
        "annotations": anns,
        "categories": [{"id": PERSON, "name": "person"}, {"id": 2, "name": "traffic light"},
                       {"id": CAR, "name": "car"}],
    }


def _results_from(anns, fields=("bbox", "segmentation"), score=1.0):
    out = []
    for a in anns:
        r = {"image_id": a["image_id"], "category_id": a["category_id"], "score": score}
        for f in fields:
            if f in a:
                r[f] = a[f]
        out.append(r)
    return out


def _non_crowd(gt):
    return [a for a in gt["annotations"] if not a["iscrowd"]]


def test_perfect_predictions(gt):
    m = evaluate_coco(gt, _results_from(_non_crowd(gt)), ["segm", "bbox"])
    for iou in ("segm", "bbox"):
        assert m[f"{iou}/AP"] == pytest.approx(100.0)
        assert m[f"{iou}/AP50"] == pytest.approx(100.0)
        assert m[f"{iou}/AP75"] == pytest.approx(100.0)
        assert m[f"{iou}/AP_person"] == pytest.approx(100.0)
        assert m[f"{iou}/AP_car"] == pytest.approx(100.0)
        assert math.isnan(m[f"{iou}/AP_traffic_light"])  # no ground truth -> NaN, not 0
        assert math.isnan(m[f"{iou}/APl"])  # nothing large in 64x48 images


def test_crowd_is_an_ignore_region(gt):
    crowd = [a for a in gt["annotations"] if a["iscrowd"]]
    res = _results_from(_non_crowd(gt)) + _results_from(crowd, score=0.9)
    m = evaluate_coco(gt, res, ["segm", "bbox"])
    assert m["segm/AP_person"] == pytest.approx(100.0)
    assert m["bbox/AP"] == pytest.approx(100.0)


def test_empty_results_give_zero(gt):
    m = evaluate_coco(gt, [], ["segm", "bbox", "keypoints"])
    for k in ("segm/AP", "segm/AP50", "segm/AP_person", "segm/AP_car", "bbox/AP", "bbox/AR100",
              "keypoints/AP", "keypoints/AP_person"):
        assert m[k] == 0.0, k


def test_one_of_two_categories_found(gt):
    persons = [a for a in _non_crowd(gt) if a["category_id"] == PERSON]
    m = evaluate_coco(gt, _results_from(persons), ["segm", "bbox"])
    assert m["segm/AP_person"] == pytest.approx(100.0)
    assert m["segm/AP_car"] == 0.0
    assert m["segm/AP"] == pytest.approx(50.0)  # mean over the categories that have ground truth
    assert m["bbox/AP"] == pytest.approx(50.0)


def test_half_the_persons_found(gt):
    first = [a for a in _non_crowd(gt) if a["id"] == 1]
    m = evaluate_coco(gt, _results_from(first), ["bbox"])
    # recall 0.5 at precision 1: 51 of the 101 recall thresholds (0, .01, ..., .5) reach it
    assert m["bbox/AP_person"] == pytest.approx(100.0 * 51 / 101)
    assert m["bbox/AR100"] == pytest.approx((50.0 + 0.0) / 2)  # person 0.5, car 0


def test_keypoints_from_gt(gt):
    persons = [a for a in _non_crowd(gt) if a["category_id"] == PERSON]
    res = _results_from(persons, fields=("bbox", "keypoints"))
    cars = _results_from([a for a in gt["annotations"] if a["category_id"] == CAR])
    for r in cars:  # a car with keypoints must not count: keypoints are person-only
        r["keypoints"] = [0.0] * 51
    m = evaluate_coco(gt, res + cars, ["keypoints"])
    assert m["keypoints/AP"] == pytest.approx(100.0)
    assert m["keypoints/AP_person"] == pytest.approx(100.0)
    assert "keypoints/AP_car" not in m


def test_manifest_from_file_and_errors(gt, tmp_path):
    p = tmp_path / "gt.json"
    p.write_text(json.dumps(gt))
    m = evaluate_coco(str(p), _results_from(_non_crowd(gt)), ["bbox"])
    assert m["bbox/AP"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="image id"):
        evaluate_coco(gt, [{"image_id": 77, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}],
                      ["bbox"])
    with pytest.raises(ValueError, match="segmentation"):
        evaluate_coco(gt, _results_from(_non_crowd(gt), fields=("bbox",)), ["segm"])
    with pytest.raises(ValueError, match="iou type"):
        evaluate_coco(gt, [], ["mask"])


def test_metrics_record(gt):
    m = evaluate_coco(gt, _results_from(_non_crowd(gt)), ["segm"])
    rec = metrics_record(m, dataset="demo", variant="original", model="maskrcnn-demo", seed=1,
                         backend="torchvision")
    assert rec["evaluator"] == "pycocotools.COCOeval"
    assert {"pycocotools", "torch", "torchvision"} <= set(rec["versions"])
    assert rec["metrics"]["segm/AP"] == pytest.approx(100.0)
    assert math.isnan(rec["metrics"]["segm/AP_traffic_light"])  # no ground truth
    back = json.loads(json.dumps(rec))
    assert back["metrics"]["segm/AP"] == pytest.approx(100.0)
    assert math.isnan(back["metrics"]["segm/AP_traffic_light"])


def test_averages_run_over_the_trained_categories_only(gt):
    """A person-only model (e.g. Keypoint R-CNN) on a dataset with cars: without the restriction
    bbox/AP is the mean of AP_person and the car's 0 (the model never predicts cars)."""
    persons = [a for a in _non_crowd(gt) if a["category_id"] == PERSON]
    res = _results_from(persons)
    everything = evaluate_coco(gt, res, ["bbox", "segm"])
    assert everything["bbox/AP"] == pytest.approx(everything["bbox/AP_person"] / 2)
    m = evaluate_coco(gt, res, ["bbox", "segm"], categories=[PERSON])
    for iou in ("bbox", "segm"):
        assert m[f"{iou}/AP"] == pytest.approx(m[f"{iou}/AP_person"]) == pytest.approx(100.0)
        assert f"{iou}/AP_car" not in m
    with pytest.raises(ValueError, match="none of the trained categories"):
        evaluate_coco(gt, res, ["bbox"], categories=[99])


def test_trained_categories_follow_the_model_config(gt):
    from anonbench.evaluation import evaluate_manifest, trained_category_ids

    gt = {**gt, "categories": [{**gt["categories"][0], "keypoints": ["nose"]},
                               *gt["categories"][1:]]}
    assert trained_category_ids(gt, {"arch": "keypoint_rcnn"}) == [PERSON]
    assert trained_category_ids(gt, {"arch": "mask_rcnn"}) == [PERSON, 2, CAR]
    assert trained_category_ids(gt, {"arch": "mask_rcnn", "exclude_classes": ["person"]}) == [2, CAR]
    assert trained_category_ids(gt, {"arch": "mask_rcnn", "classes": ["car"]}) == [CAR]
    # a category the predictions name is never dropped from the evaluation
    assert trained_category_ids(gt, {"arch": "keypoint_rcnn"},
                                [{"category_id": CAR}]) == [PERSON, CAR]
    persons = [a for a in _non_crowd(gt) if a["category_id"] == PERSON]
    ev = evaluate_manifest({**gt, "info": {**gt["info"], "format": "coco"}},
                           _results_from(persons, fields=("bbox", "keypoints")), "keypoint_rcnn",
                           trained_category_ids(gt, {"arch": "keypoint_rcnn"}))
    assert ev["metrics"]["bbox/AP"] == pytest.approx(ev["metrics"]["bbox/AP_person"])
    assert set(ev["per_image"]) == {"bbox", "keypoints"}
