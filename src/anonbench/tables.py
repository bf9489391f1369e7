"""Aggregate metrics JSONs into the study's tables: mean +- standard error over seeds, and the
difference to the baseline (original) row in brackets, with its 95 % interval and p-value from
two sources of variance (:mod:`anonbench.significance`): the seeds (Welch's t-test) and the
validation images (a paired bootstrap over image ids, where the evaluator stored per-image
results)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from typing import Any, Sequence

import numpy as np

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


def load_records(paths: Sequence[str], perimage_paths: Sequence[str] | None = None
                 ) -> list[dict[str, Any]]:
    """The metrics records; with ``perimage_paths`` (one per record, in the same order) each
    gets its per-image results as ``_per_image`` = (data or None, reason)."""
    from . import significance

    if perimage_paths is not None and len(perimage_paths) != len(paths):
        raise ValueError(f"{len(paths)} metrics files but {len(perimage_paths)} per-image files")
    records = []
    for j, p in enumerate(paths):
        with open(p) as f:
            r = json.load(f)
        if perimage_paths is not None:
            r["_per_image"] = significance.load(perimage_paths[j])
        records.append(r)
    return records


def significance_settings(cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config's ``significance`` section with its defaults."""
    from . import significance

    cfg = cfg or {}
    return {"resamples": int(cfg.get("resamples", significance.DEFAULT_RESAMPLES)),
            "seed": int(cfg.get("seed", significance.DEFAULT_SEED)),
            "confidence": significance.CONFIDENCE}


def _image_bootstrap(runs: list[dict[str, Any]], base: list[dict[str, Any]],
                     keys: list[str], settings: dict[str, Any], memo: dict[int, Any],
                     pool: Any = None) -> tuple[dict[str, dict[str, float]], str | None]:
    """Paired image bootstrap of the row's keys that every run's per-image data can give;
    ``({key: {"low", "high", "p"}}, reason for the keys left out or None)``."""
    from . import significance as sig

    reasons = []
    for r in runs + base:
        data, reason = r.get("_per_image", (None, "no per-image results were given"))
        if data is None:
            reasons.append(reason)
    if reasons:
        return {}, reasons[0]
    img_ids = [tuple(np.asarray(d["img_ids"]).tolist()) for r in runs + base
               for d in r["_per_image"][0].values()]
    if len(set(img_ids)) != 1:
        return {}, "the runs were evaluated on different image sets"
    ok = set.intersection(*(sig.bootstrappable(r["_per_image"][0]) for r in runs + base))
    boot = [k for k in dict.fromkeys(keys) if k in ok]
    left = [k for k in keys if k not in ok]
    reason = (f"{', '.join(left)}: not re-accumulated from the per-image results"
              if left else None)
    if not boot:
        return {}, reason

    def fn(r: dict[str, Any]) -> Any:
        if id(r) not in memo:
            memo[id(r)] = (sig.Memo({iou: sig.Accumulator(d)
                                     for iou, d in r["_per_image"][0].items()}, boot), boot)
        m, mkeys = memo[id(r)]
        if mkeys != boot:  # another row asks for other keys
            m = sig.Memo(m.acc, boot)
            memo[id(r)] = (m, boot)
        return m

    out = sig.bootstrap_difference([fn(r) for r in runs], [fn(r) for r in base], len(img_ids[0]),
                                   n_resamples=settings["resamples"], seed=settings["seed"],
                                   confidence=settings["confidence"], pool=pool)
    return dict(zip(boot, out)), reason


def build_rows(records: list[dict[str, Any]], table: dict[str, Any],
               significance: dict[str, Any] | None = None, workers: int = 1
               ) -> list[dict[str, Any]]:
    """One row per variant of the table, in its order: per column mean, stderr, n, delta, and
    for every row but the baseline the tests of the difference: ``seeds`` (Welch) and
    ``images`` (paired bootstrap; None where not available, ``images_reason`` says why), each
    ``{"low", "high", "p"}``. ``workers`` > 1: the image bootstrap in that many processes (the
    same numbers)."""
    from .significance import make_pool

    boot = any(r.get("_per_image", (None,))[0] is not None for r in records)
    pool = make_pool(workers) if boot else None
    with pool if pool is not None else contextlib.nullcontext():
        return _build_rows(records, table, significance, pool)


def _build_rows(records: list[dict[str, Any]], table: dict[str, Any],
                significance: dict[str, Any] | None, pool: Any) -> list[dict[str, Any]]:
    from . import significance as sig

    settings = significance_settings(significance)
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
                         "seeds": [r["seed"] for r in runs], "values": vals, "key": key}
        stats[variant] = cols
    runs_of = {v: sorted(by_variant.get(v, []), key=lambda r: r["seed"])
               for v in table["variants"]}
    memo: dict[int, Any] = {}
    rows = []
    for variant in table["variants"]:
        row = {"variant": variant, "columns": stats[variant]}
        is_base = variant == baseline or baseline not in stats
        images, reason = ({}, None) if is_base else _image_bootstrap(
            runs_of[variant], runs_of[baseline], list(table["metrics"].values()), settings, memo,
            pool)
        for col, c in row["columns"].items():
            base = stats.get(baseline, {}).get(col)
            c["delta"] = None if (is_base or base is None) else c["mean"] - base["mean"]
            c["seeds_test"] = None if c["delta"] is None else sig.welch(c["values"],
                                                                        base["values"])
            c["images_test"] = None if c["delta"] is None else images.get(c["key"])
            c["images_reason"] = None if c["images_test"] is not None or is_base else reason
        rows.append(row)
    return rows


SEEDS_MARK, IMAGES_MARK = "†", "‡"


def excludes_zero(test: dict[str, Any] | None) -> bool:
    """The test's interval lies entirely above or below 0."""
    if not test or test.get("low") is None or test.get("high") is None:
        return False
    lo, hi = float(test["low"]), float(test["high"])
    return bool(np.isfinite(lo) and np.isfinite(hi) and (lo > 0 or hi < 0))


def markers(c: dict[str, Any]) -> str:
    return ((SEEDS_MARK if excludes_zero(c.get("seeds_test")) else "")
            + (IMAGES_MARK if excludes_zero(c.get("images_test")) else ""))


def format_cell(c: dict[str, Any], digits: int = 1) -> str:
    s = f"{c['mean']:.{digits}f}"
    if c["stderr"] is not None:
        s += f" ± {c['stderr']:.{digits}f}"
    if c.get("delta") is not None:
        s += f" ({c['delta']:+.{digits}f}{markers(c)})"
    return s


def format_p(p: float | None) -> str:
    if p is None or not np.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_test(test: dict[str, Any] | None, digits: int = 1) -> str:
    """``[-1.2, +0.6] p 0.410``; ``–`` where there is no test."""
    if not test or test.get("low") is None or not np.isfinite(test["low"]):
        return "–"
    return f"[{test['low']:+.{digits}f}, {test['high']:+.{digits}f}] p {format_p(test['p'])}"


def significance_lines(table: dict[str, Any], rows: list[dict[str, Any]],
                       settings: dict[str, Any]) -> list[str]:
    """The intervals and p-values of every difference, as a second table, and the footnote
    with the methods, the number of resamples and the seed."""
    cols = list(table["metrics"])
    baseline = table.get("baseline", "original")
    tested = [r for r in rows if any(r["columns"][c].get("delta") is not None for c in cols)]
    if not tested:
        return []
    pct = f"{100 * settings['confidence']:g} %"
    lines = ["", f"Difference to `{baseline}`: {pct} intervals and p-values over seeds "
             "(Welch) and over validation images (paired bootstrap).", "",
             "| variant | " + " | ".join(cols) + " |",
             "| --- | " + " | ".join("---" for _ in cols) + " |"]
    for r in tested:
        cells = []
        for c in cols:
            cell = r["columns"][c]
            cells.append(f"seeds {format_test(cell.get('seeds_test'))}; "
                         f"images {format_test(cell.get('images_test'))}")
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    lines += ["", f"{SEEDS_MARK}: the {pct} interval of the difference over seeds excludes 0 "
              "(Welch's t-test on the per-seed values, scipy.stats.ttest_ind(equal_var=False); "
              "interval with the Welch-Satterthwaite degrees of freedom; needs 2 seeds per row). "
              f"{IMAGES_MARK}: the {pct} interval of the paired bootstrap over the validation "
              "images excludes 0 (image ids resampled with replacement, every run of both rows "
              "re-accumulated from the evaluator's stored per-image results, difference of the "
              "seed means; scipy.stats.bootstrap, percentile interval, "
              f"{settings['resamples']} resamples, seed {settings['seed']}; p two-sided from the "
              "bootstrap distribution). Seeds measure training randomness, images the "
              "finite validation set; neither corrects for the number of comparisons."]
    missing: dict[str, list[str]] = {}
    for r in tested:
        for c in cols:
            why = r["columns"][c].get("images_reason")
            if why:
                missing.setdefault(why, []).append(c)
    for why, cs in missing.items():
        lines.append("")
        lines.append(f"Image bootstrap not done for {', '.join(dict.fromkeys(cs))} "
                     f"(seed test only): {why}.")
    return lines


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
                    provenance: str, audits: dict[str, dict[str, Any]] | None = None,
                    significance: dict[str, Any] | None = None,
                    reference: dict[str, Any] | None = None) -> str:
    """The table in Markdown; ``reference`` (:func:`anonbench.reference.load`): the study's own
    runs, compared below the tests."""
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
             f"`{table.get('baseline', 'original')}`, marked {SEEDS_MARK} / {IMAGES_MARK} where "
             "its 95 % interval over seeds / over validation images excludes 0 (below).", "",
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
    lines += significance_lines(table, rows, significance_settings(significance))
    if reference is not None:
        from . import reference as ref

        baseline = table.get("baseline", "original")
        lines += ref.render_lines(reference, ref.compare(rows, reference, baseline),
                                  table["variants"], baseline)
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
    w.writerow(CSV_HEADER)
    for r in rows:
        a = (audits or {}).get(r["variant"])
        if a is not None and a["regions"]:
            w.writerow([r["variant"], "privacy/unchanged_fraction", f"{a['unchanged_mean']:.4f}",
                        "", "", a["regions"], ""] + [""] * 6)
        cov = (a or {}).get("coverage")
        if cov and cov["present"]:
            w.writerow([r["variant"], "privacy/persons_anonymized_fraction",
                        f"{cov['anonymized'] / cov['present']:.4f}", "", "", cov["present"], ""]
                       + [""] * 6)
        found = (a or {}).get("faces_detected")
        if found and found["faces"]:
            for key in ("anonymized", "original"):
                w.writerow([r["variant"], f"privacy/faces_found_{key}",
                            f"{found[key] / found['faces']:.4f}", "", "", found["faces"], ""]
                           + [""] * 6)
        for col, c in r["columns"].items():
            w.writerow([r["variant"], col, f"{c['mean']:.4f}",
                        "" if c["stderr"] is None else f"{c['stderr']:.4f}",
                        "" if c["delta"] is None else f"{c['delta']:.4f}", c["n"],
                        " ".join(map(str, c["seeds"]))]
                       + _csv_test(c.get("seeds_test")) + _csv_test(c.get("images_test")))
    return buf.getvalue()


#: The long format: one row per variant and metric (and privacy measure); the difference to the
#: baseline with its 95 % interval and p-value over seeds (``ci95_low``, ``ci95_high``, ``p``:
#: Welch) and over validation images (``img_ci95_low``, ``img_ci95_high``, ``img_p``: paired
#: bootstrap); empty where not tested (the baseline row, one seed, no per-image results).
CSV_HEADER = ["variant", "metric", "mean", "stderr", "delta", "n", "seeds", "ci95_low",
              "ci95_high", "p", "img_ci95_low", "img_ci95_high", "img_p"]


def _csv_test(test: dict[str, Any] | None) -> list[str]:
    if not test:
        return ["", "", ""]
    return ["" if v is None or not np.isfinite(v) else f"{v:.4f}" if k != "p" else f"{v:.4g}"
            for k, v in ((k, test.get(k)) for k in ("low", "high", "p"))]
