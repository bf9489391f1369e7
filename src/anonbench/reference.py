"""The study's own runs beside a table.

A reference file (YAML; ``config/study/bdd100k_ins_seg.yaml`` holds the study's BDD100K runs
as its authors logged them) gives, per variant, the per-seed values of some of the table's
columns. A table that names it (``tables.NAME.reference``) shows, for each variant that both
have, the difference to the baseline here and in the study: in points, in % of the baseline,
and its p-value over seeds from the same test as the table's † (Welch's t-test,
:func:`anonbench.significance.welch`).

The file::

    name: the study's BDD100K runs      # how the table names them
    source: where each number is        # repository, commit, files
    model: what the study trained       # optional
    baseline: original                  # optional, default original
    metrics: {AP_person: mask AP of the class pedestrian}   # table column -> what it is there
    runs: {original: {run: original, AP_person: [32.0, 32.0, 31.9]}, ...}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import yaml

from .config import REPO


class ReferenceError(ValueError):
    """A reference file that cannot be used: one line naming the file and the key."""


def resolve(path: str | Path) -> Path:
    """A reference path: relative ones are relative to the repository."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else REPO / p


def load(path: str | Path) -> dict[str, Any]:
    """The reference file at ``path``, checked; raises :class:`ReferenceError`."""
    where = str(path)
    try:
        data = yaml.safe_load(resolve(path).read_text())
    except OSError as e:
        raise ReferenceError(f"{where}: cannot be read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise ReferenceError(f"{where}: not YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ReferenceError(f"{where}: a mapping with name, source, metrics and runs")
    for key in ("name", "source"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ReferenceError(f"{where}: {key}: a non-empty string")
    metrics, runs = data.get("metrics"), data.get("runs")
    if not isinstance(metrics, dict) or not metrics:
        raise ReferenceError(f"{where}: metrics: table column -> what the study's value is")
    if not isinstance(runs, dict) or not runs:
        raise ReferenceError(f"{where}: runs: variant -> its values per seed")
    baseline = data.setdefault("baseline", "original")
    if baseline not in runs:
        raise ReferenceError(f"{where}: runs: no run of the baseline {baseline!r}")
    for variant, run in runs.items():
        if not isinstance(run, dict):
            raise ReferenceError(f"{where}: runs.{variant}: a mapping of column -> values per seed")
        if not isinstance(run.get("run", ""), str):
            raise ReferenceError(f"{where}: runs.{variant}.run: the run's name in the source, "
                                 "a string")
        unknown = [k for k in run if k != "run" and k not in metrics]
        if unknown:
            raise ReferenceError(f"{where}: runs.{variant}.{unknown[0]}: not one of metrics "
                                 f"({', '.join(metrics)})")
        for col in metrics:
            values = run.get(col)
            if not isinstance(values, list) or not values or not all(
                    _finite_number(v) for v in values):
                raise ReferenceError(f"{where}: runs.{variant}.{col}: a list of finite numbers, "
                                     "one per seed")
    return data


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _difference(values: Sequence[float], base: Sequence[float]) -> dict[str, Any]:
    from .significance import welch

    b = sum(base) / len(base)
    d = sum(values) / len(values) - b
    return {"delta": d, "relative": 100.0 * d / b if b else None,
            "p": welch(values, base)["p"]}


def compare(rows: list[dict[str, Any]], ref: dict[str, Any], baseline: str = "original"
            ) -> list[dict[str, Any]]:
    """Per variant of ``rows`` (the table's, :func:`anonbench.tables.build_rows`) that the
    reference has, but the baseline: ``{"variant", "columns": {col: {"here": ..., "study":
    ...}}}`` for the columns both have, in the table's order; each side ``{"delta",
    "relative" (% of the baseline, None where it is 0), "p"}``, here also ``p_images`` (the
    paired bootstrap; None without it)."""
    cols = [c for c in (rows[0]["columns"] if rows else ()) if c in ref["metrics"]]
    base_ref = ref["runs"][ref["baseline"]]
    out = []
    for r in rows:
        if r["variant"] == baseline or r["variant"] not in ref["runs"]:
            continue
        run = ref["runs"][r["variant"]]
        cells = {}
        for col in cols:
            c = r["columns"][col]
            if c["delta"] is None:
                continue
            base_mean = c["mean"] - c["delta"]
            here = {"delta": c["delta"],
                    "relative": 100.0 * c["delta"] / base_mean if base_mean else None,
                    "p": (c.get("seeds_test") or {}).get("p"),
                    "p_images": (c.get("images_test") or {}).get("p")}
            cells[col] = {"here": here, "study": _difference(run[col], base_ref[col])}
        if cells:
            out.append({"variant": r["variant"], "columns": cells})
    return out


def _cell(side: dict[str, Any], images: bool = False) -> str:
    from .tables import format_p

    rel = "" if side["relative"] is None else f" ({side['relative']:+.1f} %)"
    ps = [format_p(side["p"])]
    if images:
        ps.append(format_p(side.get("p_images")))
    return f"{side['delta']:+.1f}{rel}, p {' / '.join(ps)}"


def render_lines(ref: dict[str, Any], comparison: list[dict[str, Any]],
                 variants: Sequence[str], baseline: str = "original") -> list[str]:
    """Markdown lines for below the table: the comparison and what the study's values are (or
    that the two share no variant and column)."""
    if not comparison:
        return ["", f"Beside {ref['name']}: nothing to compare (this table and the study's runs "
                f"share no column, or no variant but `{baseline}`)."]
    cols = list(dict.fromkeys(c for v in comparison for c in v["columns"]))
    lines = ["", f"Beside {ref['name']} ({ref['source'].strip()}"
             + (f"; {ref['model'].strip()}" if ref.get("model") else "") + "): the difference "
             f"to `{baseline}` in points and in % of it, and its p-value over seeds (Welch's "
             "t-test, as the table's †); here also over validation images (p seeds / images).",
             "",
             "| variant | " + " | ".join(f"{c} here | {c}, study" for c in cols) + " |",
             "| --- | " + " | ".join("--- | ---" for _ in cols) + " |"]
    for v in comparison:
        cells = []
        for c in cols:
            cell = v["columns"].get(c)
            cells += ([_cell(cell["here"], images=True), _cell(cell["study"])] if cell
                      else ["-", "-"])
        lines.append(f"| {v['variant']} | " + " | ".join(cells) + " |")
    meaning = "; ".join(f"{c}: {ref['metrics'][c]}" for c in cols)
    lines += ["", f"The study's values: {meaning}."]
    missing = [v for v in variants if v != baseline and v not in ref["runs"]]
    if missing:
        lines[-1] += f" No run of the study for: {', '.join(missing)}."
    return lines
