"""The study's own runs beside a table (anonbench.reference): the reference files, their checks,
and the comparison the table shows."""

import copy

import numpy as np
import pytest
import yaml
from scipy import stats

from anonbench import reference, tables
from anonbench.config import ConfigError, check_config
from conftest import REPO

SHIPPED = REPO / "config" / "study" / "bdd100k_ins_seg.yaml"


def _ref(**changes):
    ref = {"name": "the study's runs", "source": "somewhere, commit abc",
           "metrics": {"AP_person": "mask AP of pedestrians", "AP": "mask AP"},
           "runs": {"original": {"run": "orig", "AP_person": [32.0, 32.0, 31.9],
                                 "AP": [20.6, 20.0, 19.9]},
                    "face-maskout": {"run": "fm", "AP_person": [31.3, 31.5, 31.3],
                                     "AP": [19.9, 20.3, 20.6]}}}
    ref.update(changes)
    return ref


def _write(tmp_path, ref):
    path = tmp_path / "ref.yaml"
    path.write_text(ref if isinstance(ref, str) else yaml.safe_dump(ref, sort_keys=False))
    return path


def test_shipped_reference_loads_and_every_run_has_three_seeds():
    ref = reference.load(SHIPPED)
    assert ref["baseline"] == "original"
    for variant, run in ref["runs"].items():
        for col in ref["metrics"]:
            assert len(run[col]) == 3, (variant, col)
    # relative paths are relative to the repository, wherever the process runs
    assert reference.load("config/study/bdd100k_ins_seg.yaml") == ref


def test_demo_and_paper_tables_name_it(demo_config, paper_config):
    assert demo_config["tables"]["table1"]["reference"] == "config/study/bdd100k_ins_seg.yaml"
    assert paper_config["tables"]["table2"]["reference"] == "config/study/bdd100k_ins_seg.yaml"
    check_config(demo_config, check_roots=False)
    check_config(paper_config, check_roots=False)


@pytest.mark.parametrize("ref, message", [
    ("runs: [1, 2", "not YAML"),
    ("- a list", "a mapping with name"),
    (_ref(name=""), "name: a non-empty string"),
    (_ref(metrics={}), "metrics: table column"),
    (_ref(baseline="none"), "no run of the baseline 'none'"),
    ({**_ref(), "runs": {**_ref()["runs"], "face-blur": {"AP_person": [1.0], "AP": [1.0],
                                                        "AP50": [2.0]}}},
     r"runs.face-blur.AP50: not one of metrics \(AP_person, AP\)"),
    ({**_ref(), "runs": {**_ref()["runs"], "face-blur": {"run": [1], "AP_person": [1.0],
                                                        "AP": [1.0]}}},
     "runs.face-blur.run: the run's name in the source"),
    ({**_ref(), "runs": {**_ref()["runs"], "face-blur": {"AP_person": [1.0]}}},
     "runs.face-blur.AP: a list of finite numbers"),
    ({**_ref(), "runs": {**_ref()["runs"], "face-blur": {"AP_person": [1.0, True], "AP": [1.0]}}},
     "runs.face-blur.AP_person: a list of finite numbers"),
    ({**_ref(), "runs": {**_ref()["runs"], "face-blur": {"AP_person": [float("nan")],
                                                        "AP": [1.0]}}},
     "runs.face-blur.AP_person: a list of finite numbers"),
    ({**_ref(), "runs": {**_ref()["runs"], "face-blur": {"AP_person": "31.0", "AP": [1.0]}}},
     "runs.face-blur.AP_person: a list of finite numbers"),
])
def test_bad_reference_files_are_refused_in_one_line(tmp_path, ref, message):
    path = _write(tmp_path, ref)
    with pytest.raises(reference.ReferenceError, match=message) as e:
        reference.load(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_reference_file_is_named(tmp_path):
    with pytest.raises(reference.ReferenceError, match="nothing.yaml: cannot be read"):
        reference.load(tmp_path / "nothing.yaml")


def _table():
    return {"dataset": "demo", "model": "m", "variants": ["original", "face-maskout", "body-blur"],
            "metrics": {"AP": "segm/AP", "AP_person": "segm/AP_person",
                        "AP_person (box)": "bbox/AP_person"}}


def _records():
    vals = {"original": [21.0, 22.0, 20.0], "face-maskout": [20.1, 20.3, 20.5],
            "body-blur": [0.4, 0.6, 0.2]}
    return [{"variant": v, "seed": s,
             "metrics": {"segm/AP": x - 3, "segm/AP_person": x, "bbox/AP_person": x + 8}}
            for v, xs in vals.items() for s, x in enumerate(xs)]


def test_comparison_is_each_sides_difference_and_welch_p(tmp_path):
    ref = reference.load(_write(tmp_path, _ref()))
    rows = tables.build_rows(_records(), _table())
    cmp = reference.compare(rows, ref)
    assert [v["variant"] for v in cmp] == ["face-maskout"]  # body-blur: no study run
    cell = cmp[0]["columns"]["AP_person"]
    study_fm, study_orig = [31.3, 31.5, 31.3], [32.0, 32.0, 31.9]
    d = np.mean(study_fm) - np.mean(study_orig)
    assert cell["study"]["delta"] == pytest.approx(d)
    assert cell["study"]["relative"] == pytest.approx(100 * d / np.mean(study_orig))
    assert cell["study"]["p"] == pytest.approx(
        stats.ttest_ind(study_fm, study_orig, equal_var=False).pvalue)
    here_fm, here_orig = [20.1, 20.3, 20.5], [21.0, 22.0, 20.0]
    assert cell["here"]["delta"] == pytest.approx(np.mean(here_fm) - np.mean(here_orig))
    assert cell["here"]["relative"] == pytest.approx(
        100 * (np.mean(here_fm) - np.mean(here_orig)) / np.mean(here_orig))
    assert cell["here"]["p"] == pytest.approx(
        stats.ttest_ind(here_fm, here_orig, equal_var=False).pvalue)
    assert cell["here"]["p_images"] is None  # no per-image results given
    # only the columns both have
    assert set(cmp[0]["columns"]) == {"AP", "AP_person"}


def test_table_markdown_shows_the_study_beside_it(tmp_path):
    ref = reference.load(_write(tmp_path, _ref(model="Mask R-CNN, 36 epochs")))
    rows = tables.build_rows(_records(), _table())
    md = tables.render_markdown("table1", _table(), rows, "Demo world", reference=ref)
    assert "Beside the study's runs (somewhere, commit abc; Mask R-CNN, 36 epochs)" in md
    assert "| variant | AP here | AP, study | AP_person here | AP_person, study |" in md
    line = next(ln for ln in md.splitlines() if ln.startswith("| face-maskout | -0.7 (-3.9 %)"))
    assert line.endswith("| -0.6 (-1.9 %), p 0.004 |")  # the study's: 31.37 - 31.97 of 31.97
    assert "No run of the study for: body-blur." in md
    assert tables.render_markdown("table1", _table(), rows, "Demo world").count("Beside") == 0


def _with_reference(config, table, ref_path):
    cfg = copy.deepcopy(config)
    cfg["tables"][table]["reference"] = str(ref_path)
    return cfg


def test_config_check_refuses_another_baseline(tmp_path, demo_config):
    cfg = _with_reference(demo_config, "table1", _write(tmp_path, _ref(baseline="face-maskout")))
    with pytest.raises(ConfigError, match="tables.table1.reference: its baseline is "
                                          "'face-maskout', the table's 'original'"):
        check_config(cfg, check_roots=False)


@pytest.mark.parametrize("change", [
    dict(metrics={"AP75": "x"}, runs={"original": {"AP75": [1.0]}, "face-blur": {"AP75": [1.0]}}),
    dict(runs={"original": {"AP_person": [1.0], "AP": [1.0]},
               "face-swap": {"AP_person": [1.0], "AP": [1.0]}}),
])
def test_a_table_that_shares_nothing_with_it_says_so(tmp_path, demo_config, change):
    """A table cut down from one that names a reference (other columns, only the baseline)
    keeps working; it says that there is nothing to compare."""
    path = _write(tmp_path, _ref(**change))
    check_config(_with_reference(demo_config, "table1", path), check_roots=False)
    rows = tables.build_rows(_records(), _table())
    md = tables.render_markdown("table1", _table(), rows, "Demo world",
                                reference=reference.load(path))
    assert "Beside the study's runs: nothing to compare" in md
    assert "| face-maskout | -0.7" not in md.partition("Beside")[2]


def test_config_check_refuses_a_missing_file(tmp_path, demo_config):
    cfg = _with_reference(demo_config, "table1", tmp_path / "gone.yaml")
    with pytest.raises(ConfigError, match=r"tables.table1.reference: .*gone.yaml: cannot be read"):
        check_config(cfg, check_roots=False)
