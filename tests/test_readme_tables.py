"""scripts/readme_tables.py on a temporary README and results/ (README.md itself is not touched)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LOG = """Assuming unrestricted shared filesystem usage.

SNAKEMAKE
=========
  Date: 2026-12-02 17:53:27
  Snakemake version: 9.27.1

Building DAG of jobs...
Using shell: /usr/bin/bash
Provided cores: 2
Rules claiming more threads will be scaled down.
Job stats:
job           count
----------  -------
all               1
demo_world        1
train            15
total            17

Select jobs to execute...
[Wed Dec  2 17:53:28 2026]
localrule demo_world:
[Wed Dec  2 17:54:00 2026]
Finished jobid: 2 (Rule: demo_world)
16 of 17 steps (94%) done
[Wed Dec  2 18:02:53 2026]
Finished jobid: 0 (Rule: all)
17 of 17 steps (100%) done
Complete log(s): /x/.snakemake/log/2026-12-02T175327.461224.snakemake.log
"""

TABLE = """# table1: Demo

> Demo world: synthetic. Environment: `requirements/lock.txt` sha256 `0123456789ab`.

Dataset `demo`, model `m`; mean ± standard error over 3 seeds.

| variant | AP |
| --- | --- |
| original | 10.4 ± 0.5 |
"""

README = """# anonbench

intro stays

<!-- demo-run:start -->
typed by hand: 83 jobs in 9 min
<!-- demo-run:end -->

<!-- demo-table:start -->
| variant | AP |
| --- | --- |
| original | 99.9 |
<!-- demo-table:end -->

tail stays
"""


@pytest.fixture(scope="module")
def rt():
    spec = importlib.util.spec_from_file_location("readme_tables", REPO / "scripts" / "readme_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_parse_log(rt):
    run = rt.parse_log(LOG)
    assert run["jobs_done"] == 17 and run["complete"]
    assert run["wall_s"] == 9 * 60 + 26
    assert run["cores"] == 2
    assert run["jobs_per_rule"] == {"all": 1, "demo_world": 1, "train": 15}
    assert rt.parse_log("Building DAG of jobs...\nNothing to be done (all requested files are "
                        "present and up to date).\n") is None


def test_record_then_render(rt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".snakemake" / "log").mkdir(parents=True)
    (tmp_path / ".snakemake" / "log" / "2026-12-02T175327.snakemake.log").write_text(LOG)
    results = tmp_path / "results"
    (results / "tables").mkdir(parents=True)
    (results / "tables" / "table1.md").write_text(TABLE)
    run = rt.record(results, None)
    assert json.loads((results / "demo_run.json").read_text()) == run
    assert run["lock_sha256"] == rt.lock_sha256()

    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert rt.main(["render", "--results", str(results), "--readme", str(readme), "--check"]) == 1
    assert rt.main(["render", "--results", str(results), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# anonbench\n\nintro stays\n") and text.endswith("\ntail stays\n")
    assert "99.9" not in text and "typed by hand" not in text
    assert "| original | 10.4 ± 0.5 |" in text
    assert "sha256 `0123456789ab`" in text and "# table1" not in text
    assert "Measured on 2 cores, `make demo`, 2026-12-02" in text
    assert "17 jobs in **9 min 26 s**" in text
    assert "Jobs per rule: all 1, demo_world 1, train 15." in text
    # idempotent, and --check agrees now
    assert rt.main(["render", "--results", str(results), "--readme", str(readme)]) == 0
    assert readme.read_text() == text
    assert rt.main(["render", "--results", str(results), "--readme", str(readme), "--check"]) == 0


def test_named_table_and_missing_inputs(rt, tmp_path):
    results = tmp_path / "results"
    (results / "tables").mkdir(parents=True)
    (results / "tables" / "table2.md").write_text(TABLE.replace("10.4", "7.7"))
    readme = tmp_path / "R.md"
    readme.write_text("<!-- demo-table:start table2 -->\nold\n<!-- demo-table:end -->\n")
    assert rt.main(["render", "--results", str(results), "--readme", str(readme)]) == 0
    assert "7.7 ± 0.5" in readme.read_text() and "old" not in readme.read_text()
    readme.write_text("<!-- demo-run:start -->\n<!-- demo-run:end -->\n")
    assert rt.main(["render", "--results", str(results), "--readme", str(readme)]) == 1  # no record
    readme.write_text("no markers\n")
    assert rt.main(["render", "--results", str(results), "--readme", str(readme)]) == 1
    assert readme.read_text() == "no markers\n"


def test_figure_block_copies_the_figure_beside_the_readme(rt, tmp_path):
    results = tmp_path / "results"
    (results / "figures").mkdir(parents=True)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    (results / "figures" / "box_sizes.png").write_bytes(png)
    readme = tmp_path / "R.md"
    readme.write_text("a\n<!-- demo-figure:start box_sizes -->\nold\n<!-- demo-figure:end -->\nb\n")
    args = ["render", "--results", str(results), "--readme", str(readme)]
    assert rt.main(args + ["--check"]) == 1
    assert rt.main(args) == 0
    assert readme.read_text() == ("a\n<!-- demo-figure:start box_sizes -->\n"
                                  "![box_sizes](docs/figures/box_sizes.png)\n"
                                  "<!-- demo-figure:end -->\nb\n")
    assert (tmp_path / "docs" / "figures" / "box_sizes.png").read_bytes() == png
    assert rt.main(args + ["--check"]) == 0
    # a new figure from a new run: the README text is the same, the copy is stale
    (results / "figures" / "box_sizes.png").write_bytes(png + b"new")
    assert rt.main(args + ["--check"]) == 1
    assert rt.main(args) == 0
    assert (tmp_path / "docs" / "figures" / "box_sizes.png").read_bytes() == png + b"new"
    # a block without a name, or a figure not made: a one-line error, nothing written
    readme.write_text("<!-- demo-figure:start -->\n<!-- demo-figure:end -->\n")
    assert rt.main(args) == 1
    readme.write_text("<!-- demo-figure:start nope -->\n<!-- demo-figure:end -->\n")
    assert rt.main(args) == 1
    assert readme.read_text() == "<!-- demo-figure:start nope -->\n<!-- demo-figure:end -->\n"


def test_incomplete_run_keeps_previous_record(rt, tmp_path):
    results = tmp_path / "results"
    log = tmp_path / "x.snakemake.log"
    log.write_text(LOG.replace("17 of 17 steps (100%) done", ""))
    assert rt.record(results, log) is None
    assert not (results / "demo_run.json").exists()


def test_a_target_has_its_own_record_and_block(rt, tmp_path, monkeypatch):
    """`make demo-street` and `make demo-closeup` build two config targets: each run keeps its
    record, and a named demo-run block renders that one, with the command that ran it."""
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "x.snakemake.log"
    log.write_text(LOG)
    results = tmp_path / "results"
    rt.record(results, log, target="street")
    rt.record(results, log, target="closeup",
              command="make demo-closeup")
    assert json.loads((results / "demo_run-street.json").read_text())["command"] == "make demo"
    assert not (results / "demo_run.json").exists()
    readme = tmp_path / "R.md"
    readme.write_text("<!-- demo-run:start street -->\n<!-- demo-run:end -->\n"
                      "<!-- demo-run:start closeup -->\n<!-- demo-run:end -->\n")
    assert rt.main(["render", "--results", str(results), "--readme", str(readme)]) == 0
    street, closeup = readme.read_text().split("<!-- demo-run:start closeup -->")
    assert "Measured on 2 cores, `make demo`, 2026-12-02" in street
    assert "Measured on 2 cores, `make demo-closeup`, 2026-12-02" in closeup
    readme.write_text("<!-- demo-run:start other -->\n<!-- demo-run:end -->\n")
    assert rt.main(["render", "--results", str(results), "--readme", str(readme)]) == 1
