import math

import pytest

from anonbench import tables


def test_stderr_by_hand():
    mean, se = tables.mean_stderr([36.4, 36.6, 37.1])
    assert mean == pytest.approx(36.7)
    # sample variance: (0.09 + 0.01 + 0.16) / 2 = 0.13; se = sqrt(0.13 / 3)
    assert se == pytest.approx(math.sqrt(0.13 / 3))
    assert tables.mean_stderr([5.0]) == (5.0, None)


def _records():
    vals = {"original": [40.0, 42.0], "body-maskout": [20.0, 21.0]}
    return [{"variant": v, "seed": s, "metrics": {"segm/AP": x, "segm/AP_person": x / 2}}
            for v, xs in vals.items() for s, x in enumerate(xs)]


def test_rows_and_markdown_format():
    table = {"dataset": "demo", "model": "m", "variants": ["original", "body-maskout"],
             "metrics": {"AP": "segm/AP", "AP_person": "segm/AP_person"}, "title": "T"}
    rows = tables.build_rows(_records(), table)
    md = tables.render_markdown("table1", table, rows, "Demo world: synthetic")
    assert "| original | 41.0 ± 1.0 | 20.5 ± 0.5 |" in md
    # the seed interval excludes 0 (dagger); no per-image results given: no double dagger
    assert "| body-maskout | 20.5 ± 0.5 (-20.5†) | 10.2 ± 0.2 (-10.2†) |" in md
    assert "> Demo world: synthetic" in md
    assert "1000 resamples, seed 0" in md and "seed test only" in md
    csv = tables.render_csv(rows).splitlines()
    assert csv[0] == ("variant,metric,mean,stderr,delta,n,seeds,ci95_low,ci95_high,p,"
                      "img_ci95_low,img_ci95_high,img_p")
    # Welch by hand: d = -20.5, se^2 = 2/2 + 0.5/2 = 1.25, dof = 1.25^2 / (1 + 0.0625)
    from scipy import stats

    half = stats.t.ppf(0.975, 1.5625 / 1.0625) * math.sqrt(1.25)
    p = 2 * stats.t.sf(20.5 / math.sqrt(1.25), 1.5625 / 1.0625)
    assert csv[3] == (f"body-maskout,AP,20.5000,0.5000,-20.5000,2,0 1,{-20.5 - half:.4f},"
                      f"{-20.5 + half:.4f},{p:.4g},,,")
    assert csv[1] == "original,AP,41.0000,1.0000,,2,0 1,,,,,,"


def test_missing_variant_or_metric_is_named():
    table = {"dataset": "demo", "model": "m", "variants": ["original", "face-blur"],
             "metrics": {"AP": "segm/AP"}}
    with pytest.raises(ValueError, match="face-blur"):
        tables.build_rows(_records(), table)
    table = {"dataset": "demo", "model": "m", "variants": ["original"],
             "metrics": {"AP": "bbox/AP"}}
    with pytest.raises(ValueError, match="bbox/AP"):
        tables.build_rows(_records(), table)


# --------------------------------------------------------------------------------------------
# significance with per-image results


def _gt():
    from anonbench.manifest import encode_mask
    import numpy as np

    anns, aid = [], 1
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 48} for i in range(1, 7)]
    for img in images:
        for j, cat in enumerate((1, 3)):
            m = np.zeros((48, 64), bool)
            x = 4 + 25 * j + img["id"]
            m[6:30, x:x + 14] = True
            anns.append({"id": aid, "image_id": img["id"], "category_id": cat,
                         "bbox": [x, 6, 14, 24], "segmentation": encode_mask(m), "area": 336.0,
                         "iscrowd": 0})
            aid += 1
    return {"info": {"dataset": "t", "split": "val"}, "images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]}


def _run(gt, variant, seed, shift):
    """A run whose boxes are off by ``shift`` px on some images (lower AP), as its metrics
    record with its per-image results."""
    from anonbench.evaluation.coco import evaluate_coco

    res = []
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        dx = shift if a["image_id"] % 2 == 0 else 0
        res.append({"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9,
                    "bbox": [x + dx, y, w, h]})
    per = {}
    m = evaluate_coco(gt, res, ["bbox"], per_image=per)
    m["other/x"] = float(seed)  # a metric that no per-image result gives
    return {"variant": variant, "seed": seed, "metrics": m, "_per_image": (per, "")}


def _significance_table(variants):
    return {"dataset": "demo", "model": "m", "variants": variants,
            "metrics": {"AP": "bbox/AP", "AP_person": "bbox/AP_person", "other": "other/x"}}


def test_a_row_identical_to_the_baseline_gets_p_1_and_an_interval_with_0():
    gt = _gt()
    recs = [_run(gt, "original", s, d) for s, d in ((0, 0), (1, 2))]
    recs += [{**r, "variant": "same"} for r in recs]
    rows = tables.build_rows(recs, _significance_table(["original", "same"]),
                             significance={"resamples": 200, "seed": 3})
    for col in ("AP", "AP_person"):
        c = rows[1]["columns"][col]
        assert c["delta"] == 0
        for test in (c["seeds_test"], c["images_test"]):
            assert test["p"] == pytest.approx(1.0)
            assert test["low"] <= 0 <= test["high"]
        assert tables.markers(c) == ""
    # a metric the per-image results cannot give: seed test only, and the footnote says so
    assert rows[1]["columns"]["other"]["images_test"] is None
    assert rows[1]["columns"]["other"]["seeds_test"]["p"] == pytest.approx(1.0)
    md = tables.render_markdown("t", _significance_table(["original", "same"]), rows, "p",
                                significance={"resamples": 200, "seed": 3})
    assert "200 resamples, seed 3" in md
    assert "Image bootstrap not done for other (seed test only): other/x" in md


def test_image_bootstrap_marks_a_difference_the_images_show():
    gt = _gt()
    recs = [_run(gt, "original", s, 0) for s in (0, 1)]
    recs += [_run(gt, "shifted", 0, 9), _run(gt, "shifted", 1, 10)]
    table = _significance_table(["original", "shifted"])
    rows = tables.build_rows(recs, table, significance={"resamples": 300, "seed": 0})
    c = rows[1]["columns"]["AP"]
    assert c["delta"] < 0
    boot = c["images_test"]
    assert boot["high"] < 0 and boot["p"] < 0.05  # every resample with an even image drops
    assert "‡" in tables.format_cell(c)
    again = tables.build_rows(recs, table, significance={"resamples": 300, "seed": 0})
    assert again[1]["columns"]["AP"]["images_test"] == boot  # seeded: the same table twice
    csv = tables.render_csv(rows).splitlines()
    row = next(l for l in csv if l.startswith("shifted,AP,"))
    assert row.split(",")[-3:] == [f"{boot['low']:.4f}", f"{boot['high']:.4f}",
                                   f"{boot['p']:.4g}"]


def test_the_image_bootstrap_in_worker_processes_gives_the_same_table():
    """``workers`` only spreads the resamples over processes: every interval and p-value is
    the one-process number, the baseline shared by the rows included."""
    gt = _gt()
    recs = [_run(gt, "original", s, 0) for s in (0, 1)]
    recs += [_run(gt, "shifted", 0, 9), _run(gt, "shifted", 1, 10)]
    recs += [_run(gt, "nudged", 0, 2), _run(gt, "nudged", 1, 3)]
    table = _significance_table(["original", "shifted", "nudged"])
    one = tables.build_rows(recs, table, significance={"resamples": 120, "seed": 1})
    two = tables.build_rows(recs, table, significance={"resamples": 120, "seed": 1}, workers=2)
    for r1, r2 in zip(one[1:], two[1:]):
        for col in ("AP", "AP_person"):
            assert r1["columns"][col]["images_test"] is not None
            assert r2["columns"][col]["images_test"] == r1["columns"][col]["images_test"]
    assert tables.render_csv(two) == tables.render_csv(one)
