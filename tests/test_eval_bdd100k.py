"""BDD100K evaluation: COCO-style AP on the BDD100K categories (the toolkit's where it runs)."""

import numpy as np
import pytest

from anonbench.datasets import bdd100k, demo, load_split
from anonbench.evaluation.coco import evaluate_coco, metrics_record
from anonbench.evaluation.bdd100k import (COCO_EVALUATOR, TOOLKIT_EVALUATOR, evaluate_bdd100k,
                                        paint_bitmask, toolkit)
from anonbench.evaluation import evaluate_manifest

PEDESTRIAN = 1


@pytest.fixture(scope="module")
def val(tmp_path_factory):
    root = tmp_path_factory.mktemp("bdd") / "bdd"
    demo.generate_world_in_layout(root, "bdd100k", seed=8, n_train=1, n_val=8)
    return load_split("bdd100k", str(root), "val", "b")


def as_results(anns, score=0.9):
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "segmentation": a["segmentation"], "score": score} for a in anns]


def test_perfect_partial_and_crowd_predictions(val):
    gt = [a for a in val["annotations"] if not a["iscrowd"]]
    met, evaluator = evaluate_bdd100k(val, as_results(gt), use_toolkit=False)
    assert evaluator.startswith(COCO_EVALUATOR)
    assert met["segm/AP"] == met["segm/AP_person"] == met["segm/AP_pedestrian"] == 100.0
    assert met["bbox/AP_person"] == 100.0
    peds = [a for a in gt if a["category_id"] == PEDESTRIAN]
    half = [a for a in gt if a["category_id"] != PEDESTRIAN] + peds[::2]
    met_half, _ = evaluate_bdd100k(val, as_results(half), use_toolkit=False)
    assert 0 < met_half["segm/AP_person"] < 100.0 and met_half["segm/AP_car"] == 100.0
    # predictions on crowd regions are ignored, not false positives
    crowds = [a for a in val["annotations"] if a["iscrowd"]]
    assert crowds
    met_crowd, _ = evaluate_bdd100k(val, as_results(gt) + as_results(crowds, 0.99),
                                    use_toolkit=False)
    assert met_crowd["segm/AP_person"] == 100.0


def test_fallback_is_the_coco_evaluation_and_says_why(val):
    gt = [a for a in val["annotations"] if not a["iscrowd"]]
    res = as_results(gt[::3])
    tk, reason = toolkit()
    met, evaluator = evaluate_bdd100k(val, res)
    if tk is None:
        assert evaluator == f"{COCO_EVALUATOR}: {reason}"
        ref = evaluate_coco(val, res, ["bbox", "segm"], person_category="pedestrian")
        assert met.keys() == ref.keys()
        assert all(met[k] == ref[k] or (np.isnan(met[k]) and np.isnan(ref[k])) for k in ref)
    else:
        assert evaluator == TOOLKIT_EVALUATOR


def test_dispatcher_and_metrics_record(val):
    gt = [a for a in val["annotations"] if not a["iscrowd"]]
    ev = evaluate_manifest(val, as_results(gt), "mask_rcnn")
    rec = metrics_record(ev["metrics"], dataset="b", variant="original", model="m", seed=0,
                         backend="torchvision", iou_types=ev["iou_types"],
                         evaluator=ev["evaluator"], versions=ev["versions"])
    assert rec["evaluator"] == ev["evaluator"] and "bdd100k" in rec["versions"]
    assert "segm" in rec["iou_types"] and rec["metrics"]["segm/AP_car"] == 100.0
    if ev["evaluator"].startswith(COCO_EVALUATOR):
        assert rec["iou_types"] == ["bbox", "segm"] and rec["metrics"]["segm/AP_person"] == 100.0
    with pytest.raises(ValueError, match="not in the ground truth"):
        evaluate_bdd100k(val, [{**as_results(gt[:1])[0], "image_id": 10 ** 6}])


def test_paint_bitmask_roundtrips_through_the_decoder():
    h, w = 10, 12
    a = np.zeros((h, w), bool)
    a[1:5, 1:6] = True
    b = np.zeros((h, w), bool)
    b[3:8, 4:10] = True  # overlaps a: the first painted keeps the overlap
    bm = paint_bitmask(h, w, [{"category_id": 1, "mask": a, "index": 1},
                              {"category_id": 3, "mask": b, "index": 300, "crowd": 1,
                               "ignored": 1}])
    got = bdd100k.decode_bitmask(bm)
    assert [(r["category_id"], r["instance_id"], r["crowd"], r["ignored"]) for r in got] == \
        [(1, 1, False, False), (3, 300, True, True)]
    assert (got[0]["mask"] == a).all() and (got[1]["mask"] == (b & ~a)).all()


def test_toolkit_evaluation_where_it_runs(val):
    tk, reason = toolkit()
    if tk is None:
        pytest.skip(f"bdd100k toolkit unavailable here ({reason})")
    gt = [a for a in val["annotations"] if not a["iscrowd"]]
    met, evaluator = evaluate_bdd100k(val, as_results(gt))
    assert evaluator == TOOLKIT_EVALUATOR and met["segm/AP_car"] == 100.0
