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
    assert "| body-maskout | 20.5 ± 0.5 (-20.5) | 10.2 ± 0.2 (-10.2) |" in md
    assert "> Demo world: synthetic" in md
    csv = tables.render_csv(rows).splitlines()
    assert csv[0] == "variant,metric,mean,stderr,delta,n,seeds"
    assert csv[3] == "body-maskout,AP,20.5000,0.5000,-20.5000,2,0 1"


def test_missing_variant_or_metric_is_named():
    table = {"dataset": "demo", "model": "m", "variants": ["original", "face-blur"],
             "metrics": {"AP": "segm/AP"}}
    with pytest.raises(ValueError, match="face-blur"):
        tables.build_rows(_records(), table)
    table = {"dataset": "demo", "model": "m", "variants": ["original"],
             "metrics": {"AP": "bbox/AP"}}
    with pytest.raises(ValueError, match="bbox/AP"):
        tables.build_rows(_records(), table)
