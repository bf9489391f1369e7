"""Significance of differences: Welch's test over seeds, the per-image re-accumulation of
COCOeval and the paired bootstrap over validation images, against hand-computed cases."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from anonbench import significance as sig
from anonbench.evaluation.coco import evaluate_coco


def test_welch_by_hand():
    a, b = [20.0, 21.0], [40.0, 42.0]
    r = sig.welch(a, b)
    # by hand: d = -20.5; s_a^2 = 0.5, s_b^2 = 2; se^2 = 0.25 + 1 = 1.25
    # Welch-Satterthwaite dof = 1.25^2 / (0.25^2 + 1^2) = 1.5625 / 1.0625
    se, dof = math.sqrt(1.25), 1.5625 / 1.0625
    from scipy import stats

    t = -20.5 / se
    assert r["p"] == pytest.approx(2 * stats.t.sf(abs(t), dof))
    half = stats.t.ppf(0.975, dof) * se
    assert r["low"] == pytest.approx(-20.5 - half) and r["high"] == pytest.approx(-20.5 + half)
    assert r["high"] < 0  # this difference is significant


def test_welch_identical_rows_and_single_seeds():
    r = sig.welch([36.4, 36.6, 37.1], [36.4, 36.6, 37.1])
    assert r["p"] == pytest.approx(1.0) and r["low"] < 0 < r["high"]
    assert sig.welch([5.0, 5.0], [5.0, 5.0]) == {"low": 0.0, "high": 0.0, "p": 1.0}
    assert sig.welch([5.0], [4.0, 6.0]) == {"low": None, "high": None, "p": None}


# --------------------------------------------------------------------------------------------
# per-image re-accumulation


@pytest.fixture(scope="module")
def val(tmp_path_factory):
    from anonbench.datasets import demo, load_split

    root = tmp_path_factory.mktemp("w") / "w"
    demo.generate_world(root, seed=3, n_train=1, n_val=8)
    return load_split("coco", str(root), "val", "demo")


def noisy_results(m, seed=0):
    """Detections near the ground truth with random scores, some missed, some extra."""
    rng = np.random.default_rng(seed)
    out = []
    for a in m["annotations"]:
        if a["iscrowd"] or rng.random() < 0.2:
            continue
        x, y, w, h = a["bbox"]
        jit = rng.normal(0, 0.15, 4) * [w, h, w, h]
        out.append({"image_id": a["image_id"], "category_id": a["category_id"],
                    "bbox": [x + jit[0], y + jit[1], max(1.0, w + jit[2]), max(1.0, h + jit[3])],
                    "segmentation": a["segmentation"], "score": float(rng.random())})
    for img in m["images"]:
        for _ in range(3):
            out.append({"image_id": img["id"], "category_id": int(rng.choice([1, 3])),
                        "bbox": [float(rng.uniform(0, 200)), float(rng.uniform(0, 120)), 20.0,
                                 30.0], "score": float(rng.random())})
    return out


def duplicated(m, res, counts):
    """The manifest and results with image j present counts[j] times (copies get new ids)."""
    images, anns, out = [], [], []
    next_img, next_ann = 10_000, 10_000
    for j, img in enumerate(m["images"]):
        for c in range(counts[j]):
            new = img["id"] if c == 0 else next_img
            next_img += c > 0
            images.append({**img, "id": new})
            for a in m["annotations"]:
                if a["image_id"] == img["id"]:
                    anns.append({**a, "image_id": new, "id": next_ann})
                    next_ann += 1
            out += [{**copy.deepcopy(r), "image_id": new} for r in res
                    if r["image_id"] == img["id"]]
    return {**m, "images": images, "annotations": anns}, out


@pytest.mark.parametrize("iou", ["bbox", "segm"])
def test_all_ones_reaccumulation_is_cocoeval(val, iou):
    res = noisy_results(val)
    per = {}
    m = evaluate_coco(val, res, [iou], per_image=per)
    acc = sig.Accumulator(per[iou])
    got = acc.metrics()
    assert set(got) <= set(m) and f"{iou}/AP" in got and f"{iou}/AP_person" in got
    for k, v in got.items():
        assert v == pytest.approx(m[k], abs=1e-9, nan_ok=True), k


def test_weights_are_cocoeval_on_the_resampled_image_list(val):
    res = noisy_results(val, seed=1)
    per = {}
    evaluate_coco(val, res, ["bbox"], per_image=per)
    acc = sig.Accumulator(per["bbox"])
    counts = [2, 0, 1, 3, 1, 0, 1, 2]
    m2, res2 = duplicated(val, res, counts)
    want = evaluate_coco(m2, [r for r in res2 if r["image_id"] in {i["id"] for i in m2["images"]}],
                         ["bbox"])
    got = acc.metrics(np.asarray(counts, float))
    assert got["bbox/AP"] != pytest.approx(acc.metrics()["bbox/AP"])  # the weights matter
    for k, v in got.items():
        assert v == pytest.approx(want[k], abs=1e-9, nan_ok=True), k


def test_a_few_keys_are_the_same_numbers_as_all_keys(val):
    """Asked for some keys only, the accumulator works on the categories they read: the numbers
    are those of the full accumulation, for any weights."""
    per = {}
    evaluate_coco(val, noisy_results(val, seed=2), ["bbox"], per_image=per)
    acc = sig.Accumulator(per["bbox"])
    w = np.asarray([2, 0, 1, 3, 1, 0, 1, 2], float)
    full = acc.metrics(w)
    for keys in (["bbox/AP_person"], ["bbox/AP_person", "bbox/AR10"], ["bbox/APs"],
                 [k for k in full if k.startswith("bbox/AP_")]):
        assert acc.metrics(w, keys) == {k: full[k] for k in keys}


def test_per_image_data_is_compact(val):
    per = {}
    evaluate_coco(val, noisy_results(val), ["bbox", "segm"], per_image=per)
    rows = len(per["bbox"]["det_score"])
    assert 0 < rows <= 4 * len(noisy_results(val))  # at most one row per detection and area
    assert per["bbox"]["det_tp"].dtype == np.uint16


def test_save_and_load_roundtrip(tmp_path, val):
    per = {}
    evaluate_coco(val, noisy_results(val), ["bbox"], per_image=per)
    p = tmp_path / "seed0.perimage.npz"
    sig.save(p, per, "pycocotools.COCOeval")
    data, reason = sig.load(p)
    assert reason == "" and set(data) == {"bbox"}
    assert sig.Accumulator(data["bbox"]).metrics() == pytest.approx(
        sig.Accumulator(per["bbox"]).metrics(), nan_ok=True)
    sig.save(p, None, "cityscapes", reason="the Cityscapes evaluator keeps no per-image results")
    assert sig.load(p) == (None, "the Cityscapes evaluator keeps no per-image results")
    assert sig.sidecar_path("a/seed0.json") == "a/seed0.perimage.npz"


# --------------------------------------------------------------------------------------------
# paired bootstrap


def test_bootstrap_identical_runs_give_p_one_and_zero_interval(val):
    per = {}
    evaluate_coco(val, noisy_results(val), ["bbox"], per_image=per)
    keys = ["bbox/AP", "bbox/AP_person"]
    run = sig.Memo({"bbox": sig.Accumulator(per["bbox"])}, keys)
    out = sig.bootstrap_difference([run], [run], len(val["images"]), n_resamples=50)
    for r in out:
        assert r["p"] == 1.0 and r["low"] <= 0 <= r["high"]


def test_bootstrap_of_a_mean_by_hand():
    """A 'metric' that is the weighted mean of per-image values: the bootstrap distribution is
    that of the resampled mean difference, reproducible from the same seed."""
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    y = np.zeros(5)

    def run(v):
        return lambda w: np.asarray([np.dot(w, v) / w.sum()])

    a = sig.bootstrap_difference([run(x)], [run(y)], 5, n_resamples=2000, seed=7)[0]
    b = sig.bootstrap_difference([run(x)], [run(y)], 5, n_resamples=2000, seed=7)[0]
    assert a == b  # seeded
    assert 1.0 <= a["low"] < x.mean() < a["high"] <= 10.0
    # every resample mean is >= 1 > 0: the difference is never <= 0
    assert a["p"] == 0.0
    c = sig.bootstrap_difference([run(x - 4.0)], [run(y)], 5, n_resamples=2000, seed=7)[0]
    assert c["low"] < 0 < c["high"] and 0.2 < c["p"] <= 1.0
