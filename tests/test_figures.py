"""Figures: the maths by hand, the config checks, and the PNGs a real run draws."""

import numpy as np
import pytest

from anonbench import figures
from anonbench.config import ConfigError, check_config
from conftest import load_config


def _manifest():
    imgs = [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 200, "height": 50}]
    anns = [{"image_id": 1, "anonymize": True, "bbox": [0, 0, 10, 10]},      # 0.1
            {"image_id": 1, "anonymize": True, "bbox": [0, 0, 50, 50]},      # 0.5
            {"image_id": 2, "anonymize": True, "bbox": [0, 0, 100, 25]},     # 0.5
            {"image_id": 2, "anonymize": False, "bbox": [0, 0, 200, 50]},    # not a person kept
            {"image_id": 1, "anonymize": True, "bbox": [0, 0, 100, 100]}]    # 1.0
    return {"images": imgs, "annotations": anns}


def test_relative_sizes_and_cumulative_fraction():
    sizes = figures.relative_person_sizes(_manifest())
    np.testing.assert_allclose(np.sort(sizes), [0.1, 0.5, 0.5, 1.0])
    frac = figures.cumulative_fraction(sizes, np.array([0.0, 0.1, 0.3, 0.5, 0.99, 1.0]))
    np.testing.assert_allclose(frac, [0.0, 0.25, 0.25, 0.75, 0.75, 1.0])
    assert figures.cumulative_fraction(np.array([])).sum() == 0


def test_relative_drop_and_depth_points():
    assert figures.relative_drop(40.0, 30.0) == pytest.approx(25.0)
    with pytest.raises(ValueError):
        figures.relative_drop(0.0, 1.0)
    recs = [{"model": m, "variant": v, "seed": s, "metrics": {"segm/AP": ap}}
            for m, v, s, ap in [("r50", "original", 0, 40.0), ("r50", "original", 1, 42.0),
                                ("r50", "body", 0, 30.0), ("r50", "body", 1, 31.0),
                                ("r101", "original", 0, 50.0), ("r101", "body", 0, 45.0)]]
    pts = figures.depth_points(recs, {"r101": 101, "r50": 50}, ["body"], "segm/AP")
    assert [p[0] for p in pts["body"]] == [50, 101]
    np.testing.assert_allclose([p[1] for p in pts["body"]], [100 * (41 - 30.5) / 41, 10.0])
    with pytest.raises(KeyError, match="segm/AP50"):
        figures.depth_points(recs, {"r50": 50}, ["body"], "segm/AP50")
    rows = figures.depth_csv(pts, "segm/AP").splitlines()
    assert rows == ["variant,depth,metric,relative_drop_percent",
                    f"body,50,segm/AP,{100 * 10.5 / 41:.4f}", "body,101,segm/AP,10.0000"]


def test_figure_data_as_csv():
    sizes = figures.relative_person_sizes(_manifest())
    text = figures.curves_csv({"a": figures.cumulative_fraction(sizes)}, {"a": sizes.size})
    rows = text.splitlines()
    assert rows[0] == "dataset,persons,relative_size,cumulative_fraction"
    assert len(rows) == 1 + len(figures.SIZE_GRID)
    assert "a,4,0.10,0.2500" in rows and "a,4,0.50,0.7500" in rows and rows[-1] == "a,4,1.00,1.0000"
    grid = figures.grid_csv({"original": ["x/1.png", "x/2.png"],
                             "face-blur": ["y,1.png", "y/2.png"]})
    assert grid.splitlines() == ["row,variant,image", "0,original,x/1.png", "1,original,x/2.png",
                                 '0,face-blur,"y,1.png"', "1,face-blur,y/2.png"]


def test_crop_around_the_largest_person():
    img = np.zeros((300, 400, 3), np.uint8)
    anns = [{"anonymize": True, "bbox": [100, 100, 100, 100]},
            {"anonymize": True, "bbox": [0, 0, 10, 10]}]
    crop = figures.crop_around_person(img, anns)
    assert crop.shape[:2] == (160, 160)  # 1.6 x the 100 px box, centred on it
    assert figures.crop_around_person(img, []).shape == img.shape


def test_figure_config_is_checked():
    config = load_config()
    config["figures"]["qualitative_demo"]["variants"].append("face-pixelate")
    with pytest.raises(ConfigError, match="figures.qualitative_demo.variants: unknown variant"):
        check_config(config, check_roots=False)
    paper = load_config("config/paper.yaml")
    check_config(paper, check_roots=False)
    paper["figures"]["depth"]["tables"] = ["ablation-depth-r50", "table1"]
    with pytest.raises(ConfigError, match="must differ in depth"):
        check_config(paper, check_roots=False)


def test_depth_figure_from_metrics_files(tmp_path):
    """The paper's depth figure drawn by the step from hand-made metrics files of its tables."""
    import json

    from PIL import Image

    from anonbench import config as anonbench_config
    from anonbench import steps

    paper = load_config("config/paper.yaml")
    fig = paper["figures"]["depth"]
    context = anonbench_config.figure_context(paper, "depth")
    files = anonbench_config.figure_inputs(paper, "depth")["metrics"]
    ap = {"original": 40.0, "face-realistic": 39.0, "body-realistic": 36.0}
    inputs = []
    for path in files:  # results/{dataset}/metrics/{variant}/{model}/seed{seed}.json
        *_, variant, model, seed = path[:-len(".json")].split("/")
        depth = context["depths"][model]
        rec = {"variant": variant, "model": model, "seed": int(seed[4:]),
               "metrics": {fig["metric"]: ap.get(variant, 30.0) * depth / 50}}
        p = tmp_path / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(rec))
        inputs.append(str(p))
    png, csv = tmp_path / "depth.png", tmp_path / "depth.csv"
    steps.figure("depth", fig, context, inputs, str(png), str(csv))
    rows = csv.read_text().splitlines()[1:]
    assert sorted(context["depths"].values()) == [50, 101, 152]
    # the drop is relative, so scaling every AP of a depth by the same factor keeps it
    assert [r.split(",")[:2] for r in rows] == [[v, str(d)] for v in fig["variants"]
                                                for d in (50, 101, 152)]
    expect = {"face-realistic": "2.5000", "body-realistic": "10.0000"}
    assert all(r.split(",")[3] == expect[r.split(",")[0]] for r in rows), rows
    with Image.open(png) as im:
        a = np.asarray(im.convert("L"), dtype=np.float64)
    assert min(a.shape) > 200 and a.std() > 10


def test_a_long_qualitative_title_stays_inside_the_figure(tmp_path):
    """The suptitle of a 4-variant grid of small tiles used to be cut off at the left edge."""
    import matplotlib.pyplot as plt

    from anonbench import figures

    tiles = [[np.full((60, 40, 3), 40 * c, np.uint8) for c in range(4)] for _ in range(2)]
    title = "Training images per variant (results/demo/prepared/shards/000.json)"
    seen = {}
    real_savefig = plt.Figure.savefig

    def savefig(fig, *args, **kwargs):
        real_savefig(fig, *args, **kwargs)
        box = fig._suptitle.get_window_extent(fig.canvas.get_renderer())
        seen["box"], seen["width"] = box, fig.bbox.width

    plt.Figure.savefig = savefig
    try:
        figures.plot_grid(tiles, ["original", "face-blur", "body-blur", "body-maskout"],
                          str(tmp_path / "g.png"), title)
    finally:
        plt.Figure.savefig = real_savefig
    assert seen["box"].x0 >= 0 and seen["box"].x1 <= seen["width"]


PU_CSV = """variant,metric,mean,stderr,delta,n,seeds,ci95_low,ci95_high,p,img_ci95_low,img_ci95_high,img_p
original,AP_person,40.0000,1.0000,,2,0 1,,,,,,
face-blur,privacy/unchanged_fraction,0.6000,,,10,,,,,,,
face-blur,privacy/persons_anonymized_fraction,0.9000,,,20,,,,,,,
face-blur,privacy/faces_found_anonymized,0.2500,,,8,,,,,,,
face-blur,privacy/faces_found_original,0.7500,,,8,,,,,,,
face-blur,AP_person,39.5000,1.0000,-0.5000,2,0 1,-3.0000,2.0000,0.6,-1.0000,0.1000,0.09
body-maskout,privacy/unchanged_fraction,0.0100,,,10,,,,,,,
body-maskout,privacy/persons_anonymized_fraction,1.0000,,,20,,,,,,,
body-maskout,AP_person,30.0000,1.0000,-10.0000,2,0 1,-14.0000,-6.0000,0.01,-12.0000,-8.0000,0.001
"""


def test_privacy_utility_points_by_hand():
    from anonbench.figures import privacy_utility_points as pts

    px = pts(PU_CSV, "AP_person", "px_unchanged", "seeds", "original")
    assert [(p["variant"], p["x"], p["y"], p["low"], p["high"]) for p in px] == [
        ("original", 100.0, 0.0, None, None), ("face-blur", 60.0, -0.5, -3.0, 2.0),
        ("body-maskout", 1.0, -10.0, -14.0, -6.0)]
    persons = pts(PU_CSV, "AP_person", "persons_anonymized", "images", "original")
    assert [(p["x"], p["low"]) for p in persons] == [(0.0, None), (90.0, -1.0), (100.0, -12.0)]
    faces = pts(PU_CSV, "AP_person", "faces_found", "seeds", "original")
    # the baseline: faces found on the originals; body-maskout has no face measure
    assert [(p["variant"], p["x"]) for p in faces] == [("original", 75.0), ("face-blur", 25.0)]
    with pytest.raises(ValueError, match="no metric column 'AP'"):
        pts(PU_CSV, "AP", "px_unchanged", "seeds", "original")


def test_privacy_utility_figure_is_drawn_without_metadata(tmp_path):
    from PIL import Image

    from anonbench import steps
    from anonbench.metadata import has_metadata

    config = load_config()
    fig = config["figures"]["privacy_utility"]
    context = {"tables": {"table1": str(tmp_path / "table1.csv")},
               "metric": {"table1": "AP_person"}, "baseline": {"table1": "original"},
               "privacy": "px_unchanged", "interval": "seeds", "provenance": "demo"}
    (tmp_path / "table1.csv").write_text(PU_CSV)
    png, csv = tmp_path / "pu.png", tmp_path / "pu.csv"
    steps.figure("privacy_utility", fig, context, [str(tmp_path / "table1.csv")], str(png),
                 str(csv))
    rows = csv.read_text().splitlines()
    assert rows[0] == ("table,variant,privacy_measure,privacy_percent,metric,delta,ci95_low,"
                       "ci95_high,interval")
    assert rows[3] == ("table1,body-maskout,px unchanged %,1.0000,AP_person,-10.0000,-14.0000,"
                       "-6.0000,seeds")
    with Image.open(png) as im:
        a = np.asarray(im.convert("L"), dtype=np.float64)
    assert min(a.shape) > 200 and a.std() > 10
    assert has_metadata(png) == []


def test_privacy_utility_config_is_checked():
    config = load_config()
    check_config(config, check_roots=False)
    assert config["figures"]["privacy_utility"]["kind"] == "privacy_utility"
    paper = load_config("config/paper.yaml")
    assert paper["figures"]["privacy_utility"]["kind"] == "privacy_utility"
    config["figures"]["privacy_utility"]["metric"] = "AP_car"
    with pytest.raises(ConfigError, match="figures.privacy_utility.metric: 'AP_car'"):
        check_config(config, check_roots=False)
    config["figures"]["privacy_utility"]["metric"] = "segm/AP_person"  # a key also works
    check_config(config, check_roots=False)
    config["tables"]["table1"]["privacy"] = False
    with pytest.raises(ConfigError, match="privacy: false"):
        check_config(config, check_roots=False)
    config["figures"]["privacy_utility"]["tables"] = ["table9"]
    with pytest.raises(ConfigError, match="unknown table 'table9'"):
        check_config(config, check_roots=False)
