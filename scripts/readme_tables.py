"""Figures in the README come from files: render results/ into README.md's marked blocks.

    python scripts/readme_tables.py record  [--results results] [--log .snakemake/log/X.log]
                                            [--target NAME] [--command 'make demo']
    python scripts/readme_tables.py render  [--results results] [--readme README.md] [--check]

`record` (run by `make demo` after Snakemake succeeded) reads the Snakemake log of that run and
writes ``results/demo_run.json`` (``results/demo_run-NAME.json`` for ``--target NAME``, the config
target the run built): wall time, jobs done, jobs per rule, cores, date, the command that ran it,
and the sha256 of requirements/lock.txt. A run that had nothing to do leaves the previous record
alone.

`render` (`make readme`) replaces what stands between each pair of marker comments:

    <!-- demo-table:start -->            results/tables/table1.md (or name the table:
    ...                                  <!-- demo-table:start table2 -->), without its heading
    <!-- demo-table:end -->
    <!-- demo-run:start -->              "Measured on N cores (...): J jobs in M min S s." and
    ...                                  the jobs per rule, from results/demo_run.json (or name
    <!-- demo-run:end -->                the target: <!-- demo-run:start street -->)
    <!-- demo-figure:start NAME -->      results/figures/NAME.png, copied to docs/figures/NAME.png
    ...                                  (beside the README), and a link to the copy
    <!-- demo-figure:end -->

Text outside the markers is never touched. `--check` changes nothing and exits 1 when the README
(or a figure's copy) is not what results/ gives (for a check after `make demo`). Standard
library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LOCK = "requirements/lock.txt"
RUN_RECORD = "demo_run.json"

BLOCK = re.compile(r"(?P<start><!-- (?P<kind>demo-table|demo-run|demo-figure):start"
                   r"(?: (?P<arg>[\w.-]+))? -->\n)"
                   r"(?P<body>.*?)"
                   r"(?P<end><!-- (?P=kind):end -->)", re.S)

_DATE = re.compile(r"^\s*Date: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", re.M)
_STAMP = re.compile(r"^\[(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})\]$", re.M)
_STEPS = re.compile(r"^(\d+) of (\d+) steps \((\d+)%\) done", re.M)
_CORES = re.compile(r"^Provided cores: (\d+)", re.M)


def lock_sha256(repo: Path = REPO) -> str | None:
    try:
        return hashlib.sha256((repo / LOCK).read_bytes()).hexdigest()
    except OSError:
        return None


def parse_log(text: str) -> dict[str, Any] | None:
    """What one Snakemake log says about its run; None when it ran no job."""
    steps = _STEPS.findall(text)
    if not steps:
        return None
    done, total, pct = (int(v) for v in steps[-1])
    start = _DATE.search(text)
    stamps = _STAMP.findall(text)
    t0 = datetime.strptime(start.group(1), "%Y-%m-%d %H:%M:%S") if start else None
    t1 = datetime.strptime(" ".join(stamps[-1].split()), "%a %b %d %H:%M:%S %Y") if stamps else None
    rules: dict[str, int] = {}
    stats = re.search(r"^Job stats:\n.*?\n-+ +-+\n(.*?)\n\s*\n", text, re.M | re.S)
    if stats:
        for line in stats.group(1).splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
                rules[parts[0]] = int(parts[1])
    cores = _CORES.search(text)
    return {"jobs_done": done, "jobs_total": total, "complete": pct == 100 and done == total,
            "wall_s": (t1 - t0).total_seconds() if t0 and t1 else None,
            "started": t0.isoformat(sep=" ") if t0 else None,
            "cores": int(cores.group(1)) if cores else None, "jobs_per_rule": rules}


def newest_log(workdir: Path) -> Path | None:
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    return logs[-1] if logs else None


def record_name(target: str | None) -> str:
    """The run record's file name for a config target (None: the whole run)."""
    return RUN_RECORD if not target else f"demo_run-{target}.json"


def record(results: Path, log: Path | None, repo: Path = REPO, target: str | None = None,
           command: str = "make demo") -> dict[str, Any] | None:
    log = log or newest_log(Path.cwd())
    if log is None:
        print("readme_tables: no Snakemake log found; nothing recorded", file=sys.stderr)
        return None
    run = parse_log(log.read_text(errors="replace"))
    if run is None or not run["complete"]:
        print(f"readme_tables: {log} ran no complete workflow; previous record kept", file=sys.stderr)
        return None
    run = {**run, "log": os.path.relpath(log, Path.cwd()), "lock_sha256": lock_sha256(repo),
           "target": target, "command": command}
    results.mkdir(parents=True, exist_ok=True)
    name = record_name(target)
    tmp = results / f".{name}.tmp"
    tmp.write_text(json.dumps(run, indent=1) + "\n")
    os.replace(tmp, results / name)
    return run


def format_duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def table_block(results: Path, name: str | None) -> str:
    path = results / "tables" / f"{name or 'table1'}.md"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not there; run `make demo` first")
    lines = path.read_text().splitlines()
    if lines and lines[0].startswith("# "):  # the README has its own heading
        lines = lines[1:]
    while lines and not lines[0].strip():
        lines = lines[1:]
    return "\n".join(lines).rstrip() + "\n"


def run_block(results: Path, target: str | None = None) -> str:
    path = results / record_name(target)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not there; run `make demo` (it records the run)")
    run = json.loads(path.read_text())
    cmd = f"`{run.get('command') or 'make demo'}`"
    what = [f"{run['cores']} cores" if run.get("cores") else None,
            f"{cmd}, {run['started'][:10]}" if run.get("started") else cmd,
            f"lock `{run['lock_sha256'][:12]}`" if run.get("lock_sha256") else None]
    wall = format_duration(run["wall_s"]) if run.get("wall_s") is not None else "unknown time"
    out = [f"Measured on {', '.join(w for w in what if w)}: {run['jobs_done']} jobs in **{wall}**."]
    if run.get("jobs_per_rule"):
        out.append("Jobs per rule: " + ", ".join(f"{k} {v}" for k, v in run["jobs_per_rule"].items())
                   + ".")
    return "\n".join(out) + "\n"


FIGURE_DIR = Path("docs") / "figures"


def figure_block(results: Path, name: str | None) -> tuple[str, Path, bytes]:
    """(the block's text, where the figure's copy goes relative to the README, its bytes)."""
    if not name:
        raise FileNotFoundError("a demo-figure block names its figure: <!-- demo-figure:start NAME -->")
    path = results / "figures" / f"{name}.png"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not there; run `make demo` first")
    copy = FIGURE_DIR / f"{name}.png"
    return f"![{name}]({copy.as_posix()})\n", copy, path.read_bytes()


def render_text(readme: str, results: Path) -> tuple[str, int, dict[Path, bytes]]:
    """README text with every marked block re-rendered, how many blocks there were, and the
    figure copies it links to (path relative to the README -> bytes)."""
    n = 0
    figures: dict[Path, bytes] = {}

    def sub(m: re.Match[str]) -> str:
        nonlocal n
        n += 1
        kind = m.group("kind")
        if kind == "demo-table":
            body = table_block(results, m.group("arg"))
        elif kind == "demo-figure":
            body, copy, data = figure_block(results, m.group("arg"))
            figures[copy] = data
        else:
            body = run_block(results, m.group("arg"))
        return m.group("start") + body + m.group("end")

    return BLOCK.sub(sub, readme), n, figures


def render(readme: Path, results: Path, check: bool = False) -> int:
    text = readme.read_text()
    new, n, figures = render_text(text, results)
    if n == 0:
        print(f"readme_tables: {readme} has no <!-- demo-table:start --> / <!-- demo-run:start --> "
              "markers; nothing to render", file=sys.stderr)
        return 1
    stale = [c for c, data in figures.items() if not (readme.parent / c).is_file()
             or (readme.parent / c).read_bytes() != data]
    if check:
        if new != text or stale:
            what = ", ".join([str(readme)] * (new != text) + [str(c) for c in stale])
            print(f"readme_tables: {what} differs from what {results}/ gives; run `make readme`",
                  file=sys.stderr)
            return 1
        return 0
    for copy in stale:
        dst = readme.parent / copy
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp")
        tmp.write_bytes(figures[copy])
        os.replace(tmp, dst)
    if new != text:
        tmp = readme.with_name(f".{readme.name}.tmp")
        tmp.write_text(new)
        os.replace(tmp, readme)
    print(f"readme_tables: {n} block(s) of {readme} rendered from {results}/"
          + ("" if new != text else " (unchanged)")
          + "".join(f"; {c} copied" for c in stale))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record", help="results/demo_run.json from the newest Snakemake log")
    r.add_argument("--results", default="results", type=Path)
    r.add_argument("--log", type=Path)
    r.add_argument("--target", help="the config target the run built (its own record file)")
    r.add_argument("--command", default="make demo", help="what ran it, for the README")
    w = sub.add_parser("render", help="render results/ into README.md's marked blocks")
    w.add_argument("--results", default="results", type=Path)
    w.add_argument("--readme", default="README.md", type=Path)
    w.add_argument("--check", action="store_true", help="change nothing; exit 1 if out of date")
    a = ap.parse_args(argv)
    if a.cmd == "record":
        record(a.results, a.log, target=a.target, command=a.command)
        return 0
    try:
        return render(a.readme, a.results, a.check)
    except FileNotFoundError as e:
        print(f"readme_tables: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
