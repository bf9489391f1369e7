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
