"""Cityscapes instance-level evaluation through cityscapesscripts' own evaluator."""

import io
import math
import shutil

import numpy as np
import pytest

pytest.importorskip("cityscapesscripts")

from anonbench.datasets import demo, load_split  # noqa: E402
from anonbench.evaluation.cityscapes import evaluate_cityscapes, write_predictions  # noqa: E402
from anonbench.evaluation import evaluate_manifest  # noqa: E402
from anonbench.manifest import annotation_mask  # noqa: E402

PERSON = 24
MIN_REGION = 100  # the evaluator's minimum ground-truth size (pixels)


@pytest.fixture(scope="module")
def val(tmp_path_factory):
    root = tmp_path_factory.mktemp("cs") / "cs"
    demo.generate_world_in_layout(root, "cityscapes", seed=4, n_train=1, n_val=8)
    return root, load_split("cityscapes", str(root), "val", "cs")


def perfect(manifest, keep=lambda i, a: True):
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "segmentation": a["segmentation"], "score": 0.9}
            for i, a in enumerate(manifest["annotations"]) if not a["iscrowd"] and keep(i, a)]


def test_perfect_and_empty_predictions(val):
    _, m = val
    log = io.StringIO()
    met = evaluate_cityscapes(m, perfect(m), log=log)
    present = {a["category_id"] for a in m["annotations"] if not a["iscrowd"]}
    assert met["segm/AP"] == met["segm/AP50"] == met["segm/AP_person"] == 100.0
    for c in m["categories"]:
        v = met[f"segm/AP_{c['name']}"]
        assert v == 100.0 if c["id"] in present else math.isnan(v)
    assert "average" in log.getvalue() and "person" in log.getvalue()  # the toolkit's table
    empty = evaluate_cityscapes(m, [])
    assert empty["segm/AP"] == empty["segm/AP_person"] == 0.0


def test_missing_persons_lower_person_ap_by_the_recall(val):
    _, m = val
    dropped = lambda i, a: not (a["category_id"] == PERSON and i % 2)  # noqa: E731
    met = evaluate_cityscapes(m, perfect(m, dropped))
    eligible = [(i, a) for i, a in enumerate(m["annotations"])
                if a["category_id"] == PERSON and not a["iscrowd"] and a["area"] >= MIN_REGION]
    recall = sum(dropped(i, a) for i, a in eligible) / len(eligible)
    assert 0 < recall < 1
    # equal scores: one operating point, precision 1 -> AP = recall (at every IoU threshold)
    assert met["segm/AP_person"] == pytest.approx(100 * recall)
    assert met["segm/AP_car"] == 100.0


def test_false_positives_on_the_background_count(val):
    _, m = val
    img = m["images"][0]
    fp = np.zeros((img["height"], img["width"]), bool)
    fp[-12:, :12] = True  # a corner of road, no object there
    ann = next(a for a in m["annotations"] if a["image_id"] == img["id"] and not a["iscrowd"]
               and a["area"] >= MIN_REGION)
    assert not (fp & annotation_mask(ann, img["height"], img["width"])).any()
    from anonbench.manifest import encode_mask

    res = perfect(m) + [{"image_id": img["id"], "category_id": ann["category_id"],
                         "segmentation": encode_mask(fp), "score": 0.99}]
    met = evaluate_cityscapes(m, res)
    name = next(c["name"] for c in m["categories"] if c["id"] == ann["category_id"])
    assert met[f"segm/AP_{name}"] < 100.0


def test_prediction_files_in_the_toolkits_format(val, tmp_path):
    _, m = val
    res = perfect(m)
    txts = write_predictions(m, res, tmp_path)
    assert len(txts) == len(m["images"])
    lines = [l.split() for t in txts for l in open(t).read().splitlines()]
    assert len(lines) == len(res)
    for rel, label, score in lines:
        assert rel.startswith("masks/") and (tmp_path / rel).is_file()
        assert int(label) in {c["id"] for c in m["categories"]} and float(score) == 0.9


def test_polygon_only_ground_truth(val, tmp_path):
    root, m = val
    copy = tmp_path / "cs"
    shutil.copytree(root, copy)
    for p in (copy / "gtFine" / "val").glob("*/*_instanceIds.png"):
        p.unlink()
    m2 = load_split("cityscapes", str(copy), "val", "cs")
    met = evaluate_cityscapes(m2, perfect(m2))
    assert met["segm/AP_person"] > 90.0


def test_leaves_no_files_behind_and_numpy_untouched(val, tmp_path, monkeypatch):
    import cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling as ev

    _, m = val
    monkeypatch.chdir(tmp_path)
    had_in1d = hasattr(np, "in1d")
    evaluate_cityscapes(m, perfect(m))
    assert list(tmp_path.iterdir()) == []  # no matches.json in the working directory
    assert hasattr(np, "in1d") == had_in1d and ev.np is np
    assert not (tmp_path / "gtInstances.json").exists()


def test_dispatcher_picks_the_cityscapes_evaluation(val):
    _, m = val
    ev = evaluate_manifest(m, perfect(m), "mask_rcnn")
    assert ev["evaluator"].startswith("cityscapesscripts")
    assert ev["metrics"]["segm/AP_person"] == 100.0 and "cityscapesscripts" in ev["versions"]
    with pytest.raises(ValueError, match="keypoint_rcnn"):
        evaluate_manifest(m, [], "keypoint_rcnn")


def test_refuses_a_manifest_of_another_format(val):
    _, m = val
    other = {**m, "info": {**m["info"], "format": "coco"}}
    with pytest.raises(ValueError, match="needs a Cityscapes manifest"):
        evaluate_cityscapes(other, [])


def test_averages_over_the_trained_classes_without_person(val):
    """Cityscapes without the person class (App. A.3): the model never predicts persons; AP and
    AP50 average the evaluated classes it was trained on, the per-class keys stay."""
    from anonbench.evaluation import trained_category_ids

    _, m = val
    res = perfect(m, lambda i, a: a["category_id"] != PERSON)
    everything = evaluate_cityscapes(m, res)
    assert everything["segm/AP_person"] == 0.0 and everything["segm/AP"] < 100.0
    cats = trained_category_ids(m, {"arch": "mask_rcnn", "exclude_classes": ["person"]}, res)
    assert PERSON not in cats
    ev = evaluate_manifest(m, res, "mask_rcnn", cats)
    assert ev["metrics"]["segm/AP"] == ev["metrics"]["segm/AP50"] == 100.0
    assert ev["metrics"]["segm/AP_person"] == 0.0
    assert ev["per_image"] is None and "Cityscapes" in ev["per_image_reason"]
