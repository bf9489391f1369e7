"""Figures: the study's Fig. 7 (person sizes), Fig. 8 (drop vs. backbone depth), a
qualitative grid per dataset (App. B) and the privacy-utility picture (per table: the privacy
each variant buys against the difference to the baseline it costs, with its interval). Pure functions compute what is plotted; ``plot_*``
draw it with matplotlib's Agg backend into a PNG.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .manifest import Manifest

#: relative sizes at which the cumulative curve is tabulated (x axis of Fig. 7)
SIZE_GRID = np.round(np.linspace(0.0, 1.0, 101), 4)


def relative_person_sizes(manifest: Manifest) -> np.ndarray:
    """sqrt(box area / image area) of every person the dataset anonymizes (0..1).

    The square root makes it a length: 0.1 is a person whose box is as large as a tenth of the
    image in each direction (what the study's Fig. 7 plots as relative box size).
    """
    area = {img["id"]: float(img["width"]) * float(img["height"]) for img in manifest["images"]}
    out = [math.sqrt(max(0.0, a["bbox"][2] * a["bbox"][3]) / area[a["image_id"]])
           for a in manifest["annotations"] if a.get("anonymize") and area.get(a["image_id"])]
    return np.clip(np.asarray(out, dtype=np.float64), 0.0, 1.0)


def cumulative_fraction(sizes: np.ndarray, grid: np.ndarray = SIZE_GRID) -> np.ndarray:
    """Fraction of ``sizes`` that are <= each grid value."""
    sizes = np.sort(np.asarray(sizes, dtype=np.float64))
    if sizes.size == 0:
        return np.zeros(len(grid))
    return np.searchsorted(sizes, grid, side="right") / sizes.size


def relative_drop(baseline: float, value: float) -> float:
    """Drop of ``value`` relative to ``baseline``, in % of the baseline (Fig. 8)."""
    if baseline == 0:
        raise ValueError("relative drop to a baseline of 0 is undefined")
    return 100.0 * (baseline - value) / baseline


def depth_points(records: list[dict[str, Any]], depth_of_model: dict[str, int],
                 variants: Sequence[str], metric: str, baseline: str = "original"
                 ) -> dict[str, list[tuple[int, float]]]:
    """{variant: [(depth, relative drop of the seed mean to the baseline's), ...]} from metrics
    records (``variant``, ``model``, ``seed``, ``metrics``)."""
    means: dict[tuple[str, str], list[float]] = {}
    for r in records:
        if metric not in r["metrics"]:
            raise KeyError(f"metric {metric!r} missing in the {r['variant']} / {r['model']} run "
                           f"(has: {', '.join(sorted(r['metrics']))})")
        means.setdefault((r["model"], r["variant"]), []).append(float(r["metrics"][metric]))
    out: dict[str, list[tuple[int, float]]] = {v: [] for v in variants}
    for model, depth in sorted(depth_of_model.items(), key=lambda kv: kv[1]):
        if (model, baseline) not in means:
            raise KeyError(f"no {baseline} run of model {model}")
        base = float(np.mean(means[(model, baseline)]))
        for v in variants:
            if (model, v) in means:
                out[v].append((depth, relative_drop(base, float(np.mean(means[(model, v)])))))
    return out


def grid_rows(images_by_column: Sequence[Sequence[np.ndarray]], height: int = 160
              ) -> list[list[np.ndarray]]:
    """Rows of equally high tiles: ``images_by_column[c][r]`` resized to ``height`` px."""
    import cv2

    n_rows = min(len(col) for col in images_by_column) if images_by_column else 0
    rows = []
    for r in range(n_rows):
        row = []
        for col in images_by_column:
            im = col[r]
            w = max(1, round(im.shape[1] * height / im.shape[0]))
            row.append(cv2.resize(im, (w, height), interpolation=cv2.INTER_AREA))
        rows.append(row)
    return rows


def crop_around_person(image: np.ndarray, anns: list[dict[str, Any]], scale: float = 1.6,
                       min_side: int = 96) -> np.ndarray:
    """The image cut around its largest anonymized person (box grown ``scale`` times, at least
    ``min_side`` px), so that faces stay visible in a grid of large images."""
    persons = [a for a in anns if a.get("anonymize")]
    if not persons:
        return image
    x, y, w, h = max(persons, key=lambda a: a["bbox"][2] * a["bbox"][3])["bbox"]
    H, W = image.shape[:2]
    side_w, side_h = max(w * scale, min_side), max(h * scale, min_side)
    cx, cy = x + w / 2, y + h / 2
    x0, x1 = int(max(0, cx - side_w / 2)), int(min(W, cx + side_w / 2))
    y0, y1 = int(max(0, cy - side_h / 2)), int(min(H, cy + side_h / 2))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image
    return image[y0:y1, x0:x1]


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=(width, height), dpi=100)


def plot_box_sizes(curves: dict[str, np.ndarray], out_png: str, title: str) -> None:
    plt, fig = _figure(6, 4)
    ax = fig.add_subplot(1, 1, 1)
    for name, frac in curves.items():
        ax.plot(SIZE_GRID, frac, label=name)
    ax.set_xlabel("person box size relative to image size, sqrt(box area / image area)")
    ax.set_ylabel("cumulative fraction of persons")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png, metadata={"Software": None})  # no text chunk in any output image
    plt.close(fig)


def plot_depth(points: dict[str, list[tuple[int, float]]], out_png: str, title: str,
               metric: str) -> None:
    plt, fig = _figure(5, 4)
    ax = fig.add_subplot(1, 1, 1)
    for v, pts in points.items():
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=v)
    ax.set_xticks(sorted({p[0] for pts in points.values() for p in pts}))
    ax.set_xlabel("ResNet depth")
    ax.set_ylabel(f"relative drop of {metric} (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png, metadata={"Software": None})  # no text chunk in any output image
    plt.close(fig)


def _wrap_to_width(text: str, width_px: float, fontsize: float) -> str:
    """``text`` wrapped into lines that each fit ``width_px`` (measured with matplotlib's text
    renderer), so that a long title (e.g. a results path) is not cut off at the edges."""
    import textwrap

    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    font = FontProperties(size=fontsize)

    def px(line: str) -> float:  # points -> pixels at 100 dpi
        return TextPath((0, 0), line, prop=font).get_extents().width * 100 / 72

    for chars in range(max(len(text), 1), 9, -1):
        lines = textwrap.wrap(text, chars, break_long_words=True, break_on_hyphens=False)
        if all(px(line) <= 0.96 * width_px for line in lines):
            return "\n".join(lines)
    return "\n".join(textwrap.wrap(text, 10, break_long_words=True))


def plot_grid(rows: list[list[np.ndarray]], column_titles: Sequence[str], out_png: str,
              title: str) -> None:
    if not rows:
        raise ValueError("no images for the qualitative grid")
    n_rows, n_cols = len(rows), len(column_titles)
    tile_w = max(t.shape[1] for row in rows for t in row)
    tile_h = rows[0][0].shape[0]
    width = n_cols * tile_w / 100 + 0.4
    title = _wrap_to_width(title, width * 100, fontsize=9)
    lines = title.count("\n") + 1
    plt, fig = _figure(width, n_rows * tile_h / 100 + 0.6 + 0.18 * lines)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            ax = fig.add_subplot(n_rows, n_cols, r * n_cols + c + 1)
            ax.imshow(tile)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(column_titles[c], fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png, metadata={"Software": None})  # no text chunk in any output image
    plt.close(fig)


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def curves_csv(curves: dict[str, np.ndarray], counts: dict[str, int]) -> str:
    """The data of a box_sizes figure: one row per dataset and grid point."""
    return _csv(["dataset", "persons", "relative_size", "cumulative_fraction"],
                [(name, counts[name], f"{x:.2f}", f"{f:.4f}")
                 for name, frac in curves.items() for x, f in zip(SIZE_GRID, frac)])


def depth_csv(points: dict[str, list[tuple[int, float]]], metric: str) -> str:
    """The data of a depth figure: one row per variant and depth."""
    return _csv(["variant", "depth", "metric", "relative_drop_percent"],
                [(v, d, metric, f"{drop:.4f}") for v, pts in points.items() for d, drop in pts])


def grid_csv(files_by_column: dict[str, Sequence[str]]) -> str:
    """The data of a qualitative grid: the image file of each tile (row, variant)."""
    return _csv(["row", "variant", "image"],
                [(r, v, f) for v, files in files_by_column.items() for r, f in enumerate(files)])


# --------------------------------------------------------------------------------------------
# privacy-utility: what each variant costs (difference to the baseline) for the privacy it buys

#: privacy measure (config ``privacy``) -> (table CSV row, axis label, the baseline's value,
#: which way is more private)
PRIVACY_MEASURES: dict[str, tuple[str, str, float | None, str]] = {
    "persons_anonymized": ("privacy/persons_anonymized_fraction", "persons anonymized %", 0.0,
                           "higher"),
    "px_unchanged": ("privacy/unchanged_fraction", "px unchanged %", 100.0, "lower"),
    "faces_found": ("privacy/faces_found_anonymized", "faces found %", None, "lower"),
}
#: interval (config ``interval``) -> the table CSV's columns of the difference's 95 % interval
INTERVAL_COLUMNS = {"seeds": ("ci95_low", "ci95_high"), "images": ("img_ci95_low",
                                                                  "img_ci95_high")}


def privacy_utility_points(table_csv: str, metric: str, privacy: str, interval: str,
                           baseline: str) -> list[dict[str, Any]]:
    """One point per variant of a table (its CSV, :func:`anonbench.tables.render_csv`):
    ``{"variant", "x"`` (the privacy measure, %), ``"y"`` (the difference of ``metric`` to the
    baseline; 0 for the baseline), ``"low", "high"`` (its interval, None where not tested)``}``.
    Variants without the measure (e.g. faces found % of a body variant) are left out. The
    baseline's x: 0 persons anonymized, 100 % px unchanged, faces found on the originals."""
    import csv
    import io

    if privacy not in PRIVACY_MEASURES:
        raise ValueError(f"unknown privacy measure {privacy!r} (known: "
                         f"{', '.join(PRIVACY_MEASURES)})")
    row_name, _, base_x, _ = PRIVACY_MEASURES[privacy]
    lo_col, hi_col = INTERVAL_COLUMNS[interval]
    rows = list(csv.DictReader(io.StringIO(table_csv)))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    by = {(r["variant"], r["metric"]): r for r in rows}
    if not any(m == metric for _, m in by):
        raise ValueError(f"the table has no metric column {metric!r} "
                         f"(has: {', '.join(sorted({m for _, m in by if '/' not in m}))})")
    if base_x is None:  # faces found on the original images (the same boxes for every variant)
        orig = [float(r["mean"]) for r in rows if r["metric"] == "privacy/faces_found_original"]
        base_x = 100.0 * float(np.mean(orig)) if orig else None

    def num(v: str | None) -> float | None:
        return None if v in (None, "") else float(v)

    out = []
    for v in variants:
        m = by.get((v, metric))
        if m is None:
            continue
        if v == baseline:
            x, y, lo, hi = base_x, 0.0, None, None
        else:
            p = by.get((v, row_name))
            x = None if p is None else 100.0 * float(p["mean"])
            y, lo, hi = num(m["delta"]), num(m.get(lo_col)), num(m.get(hi_col))
        if x is None or y is None:
            continue
        out.append({"variant": v, "x": x, "y": y, "low": lo, "high": hi})
    return out


def privacy_utility_csv(points: dict[str, list[dict[str, Any]]], metric: str, privacy: str,
                        interval: str) -> str:
    """The data of a privacy_utility figure: one row per table and variant."""
    f = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
    return _csv(["table", "variant", "privacy_measure", "privacy_percent", "metric",
                 "delta", "ci95_low", "ci95_high", "interval"],
                [(t, p["variant"], PRIVACY_MEASURES[privacy][1], f(p["x"]), metric, f(p["y"]),
                  f(p["low"]), f(p["high"]), interval) for t, pts in points.items() for p in pts])


def plot_privacy_utility(points: dict[str, list[dict[str, Any]]], out_png: str, title: str,
                         metric: str, privacy: str, interval: str, baseline: str) -> None:
    """One panel per table: x the privacy measure, y the difference of ``metric`` to the
    baseline with its 95 % interval as error bars, every point labelled, the baseline at 0."""
    _, label, _, better = PRIVACY_MEASURES[privacy]
    n = max(1, len(points))
    plt, fig = _figure(5.5 * n, 4.5)
    for j, (table, pts) in enumerate(points.items()):
        ax = fig.add_subplot(1, n, j + 1)
        ax.axhline(0.0, color="0.5", lw=0.8, ls="--", zorder=0)
        for p in pts:
            is_base = p["variant"] == baseline
            if p["low"] is not None and p["high"] is not None:
                err = [[max(0.0, p["y"] - p["low"])], [max(0.0, p["high"] - p["y"])]]
                ax.errorbar([p["x"]], [p["y"]], yerr=err, fmt="o", capsize=3, color="C0")
            else:
                ax.plot([p["x"]], [p["y"]], marker="s" if is_base else "o",
                        color="k" if is_base else "C0", ls="none")
            ax.annotate(p["variant"], (p["x"], p["y"]), textcoords="offset points",
                        xytext=(5, 5), fontsize=7)
        xs = [p["x"] for p in pts] or [0.0, 100.0]
        pad = max(5.0, 0.08 * (max(xs) - min(xs)))
        ax.set_xlim(min(xs) - pad, max(xs) + 3 * pad)  # room for the labels on the right
        ax.set_xlabel(f"{label} (more private: {better})")
        ax.set_ylabel(f"difference of {metric} to {baseline}")
        ax.grid(alpha=0.3)
        ax.set_title(f"{table}; error bars: 95 % interval over {interval}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png, metadata={"Software": None})  # no text chunk in any output image
    plt.close(fig)
