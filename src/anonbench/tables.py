"""Aggregate metrics JSONs into the study's tables: mean +- standard error over seeds, and the
difference to the baseline (original) row in brackets."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Sequence

from .coverage import describe, percent_anonymized


def mean_stderr(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and standard error of the mean (sample std, ddof=1, over sqrt(n)); None for n = 1."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def load_records(paths: Sequence[str]) -> list[dict[str, Any]]:
    records = []
    for p in paths:
        with open(p) as f:
            records.append(json.load(f))
    return records


def build_rows(records: list[dict[str, Any]], table: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per variant of the table, in its order: per column mean, stderr, n, delta."""
    baseline = table.get("baseline", "original")
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_variant.setdefault(r["variant"], []).append(r)
    stats: dict[str, dict[str, dict[str, Any]]] = {}
    for variant in table["variants"]:
        runs = sorted(by_variant.get(variant, []), key=lambda r: r["seed"])
        if not runs:
            raise ValueError(f"table {table.get('name', '')}: no metrics for variant {variant!r}")
        cols = {}
        for col, key in table["metrics"].items():
            try:
                vals = [float(r["metrics"][key]) for r in runs]
            except KeyError:
                raise ValueError(f"table {table.get('name', '')}: metric {key!r} missing in the "
                                 f"metrics of variant {variant!r}") from None
            mean, se = mean_stderr(vals)
            cols[col] = {"mean": mean, "stderr": se, "n": len(vals),
                         "seeds": [r["seed"] for r in runs]}
        stats[variant] = cols
    rows = []
    for variant in table["variants"]:
        row = {"variant": variant, "columns": stats[variant]}
        for col, c in row["columns"].items():
            base = stats.get(baseline, {}).get(col)
            c["delta"] = None if (variant == baseline or base is None) else c["mean"] - base["mean"]
        rows.append(row)
    return rows


def format_cell(c: dict[str, Any], digits: int = 1) -> str:
    s = f"{c['mean']:.{digits}f}"
    if c["stderr"] is not None:
        s += f" ± {c['stderr']:.{digits}f}"
    if c.get("delta") is not None:
        s += f" ({c['delta']:+.{digits}f})"
    return s


PRIVACY_COLUMN = "px unchanged %"


def load_audits(paths: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Privacy audits by variant name."""
    out = {}
    for p in paths:
        with open(p) as f:
            a = json.load(f)
        out[a["variant"]] = a
    return out


def privacy_cell(audit: dict[str, Any] | None) -> str:
    """Mean % of region pixels within the tolerance of the original; '-' when not anonymized."""
    if audit is None:
        return "-"
    if not audit["regions"]:
        return "no regions"
    return f"{100.0 * audit['unchanged_mean']:.1f}"


FACES_COLUMN = "faces found %"
PERSONS_COLUMN = "persons anonymized %"


def persons_cell(audit: dict[str, Any] | None) -> str:
    """% of the training split's persons that the variant anonymized; '-' when not audited."""
    pct = percent_anonymized((audit or {}).get("coverage"))
    return "-" if pct is None else f"{pct:.1f}"


def faces_cell(audit: dict[str, Any] | None) -> str:
    """% of the anonymized face boxes in which the audit's face detector still finds a face,
    with the % on the original images in brackets; '-' when not checked."""
    found = (audit or {}).get("faces_detected")
    if not found or not found["faces"]:
        return "-"
    return (f"{100.0 * found['anonymized'] / found['faces']:.0f} "
            f"(original {100.0 * found['original'] / found['faces']:.0f})")


def render_markdown(name: str, table: dict[str, Any], rows: list[dict[str, Any]],
                    provenance: str, audits: dict[str, dict[str, Any]] | None = None) -> str:
    cols = list(table["metrics"])
    extra = []
    if audits is not None:
        extra.append(PRIVACY_COLUMN)
        if any(a.get("coverage") for a in audits.values()):
            extra.append(PERSONS_COLUMN)
        if any(a.get("faces_detected") for a in audits.values()):
            extra.append(FACES_COLUMN)
    n = sorted({c["n"] for r in rows for c in r["columns"].values()})
    lines = [f"# {name}: {table.get('title', '')}".rstrip(": "), "", f"> {provenance}", "",
             f"Dataset `{table['dataset']}`, model `{table['model']}`; mean ± standard error over "
             f"{'/'.join(map(str, n))} seeds; in brackets the difference to "
             f"`{table.get('baseline', 'original')}`.", "",
             "| variant | " + " | ".join(cols + extra) + " |",
             "| --- | " + " | ".join("---" for _ in cols + extra) + " |"]
    for r in rows:
        cells = [format_cell(r["columns"][c]) for c in cols]
        a = (audits or {}).get(r["variant"])
        if PRIVACY_COLUMN in extra:
            cells.append(privacy_cell(a))
        if PERSONS_COLUMN in extra:
            cells.append(persons_cell(a))
        if FACES_COLUMN in extra:
            cells.append(faces_cell(a))
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    if audits is not None:
        tol = sorted({a["tolerance"] for a in audits.values()})
        lines += ["", f"{PRIVACY_COLUMN}: privacy audit, mean over the anonymized regions of the "
                  f"share of pixels within {'/'.join(map(str, tol)) or 2} levels of the original "
                  "(blur keeps flat areas; 0 = every pixel replaced). No region was left untouched."]
    if PERSONS_COLUMN in extra:
        lines += ["", f"{PERSONS_COLUMN}: person instances of the training split that the variant "
                  "anonymized, of all present; the others were left with a named reason:"]
        for r in rows:
            cov = ((audits or {}).get(r["variant"]) or {}).get("coverage")
            if cov:
                lines.append(f"- `{r['variant']}`: {describe(cov)}")
    if FACES_COLUMN in extra:
        check = next(a["face_check"] for a in audits.values() if a.get("face_check")
                     and a.get("faces_detected"))
        lines += ["", f"{FACES_COLUMN}: face boxes of the face variants in which the face detector "
                  f"`{check['detector']}` (confidence >= {check['threshold']:g}) still finds a face "
                  f"(a detection with IoU >= {check['iou']:g}) on the anonymized images; in "
                  "brackets on the original images. A realistic face is meant to be found."]
    return "\n".join(lines) + "\n"


def render_csv(rows: list[dict[str, Any]],
               audits: dict[str, dict[str, Any]] | None = None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["variant", "metric", "mean", "stderr", "delta", "n", "seeds"])
    for r in rows:
        a = (audits or {}).get(r["variant"])
        if a is not None and a["regions"]:
            w.writerow([r["variant"], "privacy/unchanged_fraction", f"{a['unchanged_mean']:.4f}",
                        "", "", a["regions"], ""])
        cov = (a or {}).get("coverage")
        if cov and cov["present"]:
            w.writerow([r["variant"], "privacy/persons_anonymized_fraction",
                        f"{cov['anonymized'] / cov['present']:.4f}", "", "", cov["present"], ""])
        found = (a or {}).get("faces_detected")
        if found and found["faces"]:
            for key in ("anonymized", "original"):
                w.writerow([r["variant"], f"privacy/faces_found_{key}",
                            f"{found[key] / found['faces']:.4f}", "", "", found["faces"], ""])
        for col, c in r["columns"].items():
            w.writerow([r["variant"], col, f"{c['mean']:.4f}",
                        "" if c["stderr"] is None else f"{c['stderr']:.4f}",
                        "" if c["delta"] is None else f"{c['delta']:.4f}", c["n"],
                        " ".join(map(str, c["seeds"]))])
    return buf.getvalue()
