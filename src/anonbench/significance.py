"""How sure is a difference to the baseline: a Welch test over seeds and a paired bootstrap over
the validation images.

Seeds: :func:`welch` -- ``scipy.stats.ttest_ind(equal_var=False)`` on the per-seed values of a
row and of the baseline; its ``confidence_interval`` is the interval of the difference of the
means with the Welch-Satterthwaite degrees of freedom.

Images: every run is evaluated on the same validation images, so resampling image ids (with
replacement) and re-accumulating each run's per-image results gives the distribution of the
difference. COCOeval's per-image results (``evalImgs``: score, match and ignore flag of every
detection at every IoU threshold, and the number of non-ignored ground truths) are stored
compactly by :func:`per_image_data` next to the metrics (``seed{n}.perimage.npz``);
:func:`accumulate` is COCOeval's ``accumulate`` + ``summarize`` on them with a weight (how often
the resample drew it) per image, so that all-ones weights give the evaluation's own numbers
(tested). A resample that draws an image twice counts its detections and ground truths twice,
as COCOeval on a list with the image duplicated does. :func:`bootstrap_difference` draws the
resamples with ``scipy.stats.bootstrap`` (percentile interval), the same resamples for every run
of a table (a fixed seed), and gives the interval and a two-sided p-value
``min(1, 2 min(P(d* <= 0), P(d* >= 0)))`` of the difference of the seed means.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Iterable, Sequence

import numpy as np

CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
SUFFIX = ".perimage.npz"

_COCO_STATS = {  # name -> (ap?, iouThr, area label, maxDets index): COCOeval.summarize
    "bbox": {"AP": (1, None, "all", 2), "AP50": (1, .5, "all", 2), "AP75": (1, .75, "all", 2),
             "APs": (1, None, "small", 2), "APm": (1, None, "medium", 2),
             "APl": (1, None, "large", 2), "AR1": (0, None, "all", 0),
             "AR10": (0, None, "all", 1), "AR100": (0, None, "all", 2),
             "ARs": (0, None, "small", 2), "ARm": (0, None, "medium", 2),
             "ARl": (0, None, "large", 2)},
    "keypoints": {"AP": (1, None, "all", 0), "AP50": (1, .5, "all", 0),
                  "AP75": (1, .75, "all", 0), "APm": (1, None, "medium", 0),
                  "APl": (1, None, "large", 0), "AR": (0, None, "all", 0),
                  "AR50": (0, .5, "all", 0), "AR75": (0, .75, "all", 0),
                  "ARm": (0, None, "medium", 0), "ARl": (0, None, "large", 0)},
}
_COCO_STATS["segm"] = _COCO_STATS["bbox"]


def sidecar_path(metrics_json: str | os.PathLike[str]) -> str:
    """``.../seed0.json`` -> ``.../seed0.perimage.npz``."""
    p = str(metrics_json)
    return (p[:-5] if p.endswith(".json") else p) + SUFFIX


# --------------------------------------------------------------------------------------------
# seeds


def welch(values: Sequence[float], baseline: Sequence[float],
          confidence: float = CONFIDENCE) -> dict[str, float | None]:
    """Difference ``mean(values) - mean(baseline)``: its interval and p-value from Welch's
    t-test; ``None`` where a side has fewer than 2 seeds. Both sides without variance: p = 1 and
    the interval [0, 0] if the means are equal, else undefined (NaN)."""
    from scipy import stats

    a, b = np.asarray(values, float), np.asarray(baseline, float)
    if a.size < 2 or b.size < 2:
        return {"low": None, "high": None, "p": None}
    d = float(a.mean() - b.mean())
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return {"low": float("nan"), "high": float("nan"), "p": float("nan")}
    if a.var() == 0 and b.var() == 0:
        same = d == 0
        return {"low": 0.0 if same else float("nan"), "high": 0.0 if same else float("nan"),
                "p": 1.0 if same else float("nan")}
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(confidence)
    return {"low": float(ci.low), "high": float(ci.high), "p": float(res.pvalue)}


# --------------------------------------------------------------------------------------------
# per-image results of COCOeval


def per_image_data(ev: Any, category_names: dict[int, str], person_ids: Sequence[int],
                   iou_type: str) -> dict[str, np.ndarray]:
    """COCOeval's per-image results after ``evaluate()``, compact: one row per detection and
    area range that counts at some IoU threshold (rank within its image and category, score,
    match and ignore bits per threshold) and the non-ignored ground truths per (category, area,
    image) where there are any."""
    p = ev.params
    T, K, A, I = len(p.iouThrs), len(p.catIds), len(p.areaRng), len(p.imgIds)
    if T > 16:
        raise ValueError(f"{T} IoU thresholds: at most 16 fit the stored bit masks")
    bit = (1 << np.arange(T)).astype(np.uint16)
    full = int(bit.sum())
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("k", "a", "i", "rank", "score", "tp",
                                                          "ig")}
    gk, ga, gi, gn = [], [], [], []
    for k in range(K):
        for a in range(A):
            for i in range(I):
                e = ev.evalImgs[k * A * I + a * I + i]
                if e is None:
                    continue
                n = int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
                if n:
                    gk.append(k), ga.append(a), gi.append(i), gn.append(n)
                d = len(e["dtScores"])
                if not d:
                    continue
                tp = (np.asarray(e["dtMatches"]).reshape(T, d) > 0).astype(np.uint16)
                ig = np.asarray(e["dtIgnore"]).reshape(T, d).astype(bool).astype(np.uint16)
                tpb, igb = (tp * bit[:, None]).sum(0), (ig * bit[:, None]).sum(0)
                keep = igb != full
                if not keep.any():
                    continue
                m = int(keep.sum())
                rows["k"].append(np.full(m, k)), rows["a"].append(np.full(m, a))
                rows["i"].append(np.full(m, i)), rows["rank"].append(np.arange(d)[keep])
                rows["score"].append(np.asarray(e["dtScores"], float)[keep])
                rows["tp"].append(tpb[keep]), rows["ig"].append(igb[keep])
    dtypes = {"k": np.int32, "a": np.int8, "i": np.int32, "rank": np.int32, "score": np.float64,
              "tp": np.uint16, "ig": np.uint16}
    out = {f"det_{k}": (np.concatenate(v).astype(dtypes[k]) if v else np.zeros(0, dtypes[k]))
           for k, v in rows.items()}
    out.update({"gt_k": np.asarray(gk, np.int32), "gt_a": np.asarray(ga, np.int8),
                "gt_i": np.asarray(gi, np.int32), "gt_n": np.asarray(gn, np.int32),
                "iou_thrs": np.asarray(p.iouThrs, float), "rec_thrs": np.asarray(p.recThrs, float),
                "max_dets": np.asarray(p.maxDets, np.int32),
                "areas": np.asarray(p.areaRngLbl, str),
                "cat_ids": np.asarray(p.catIds, np.int64),
                "cat_names": np.asarray(["_".join(str(category_names.get(c, c)).split())
                                         for c in p.catIds], str),
                "person_k": np.asarray([k for k, c in enumerate(p.catIds) if c in person_ids],
                                       np.int32),
                "img_ids": np.asarray(p.imgIds, np.int64),
                "iou_type": np.asarray(iou_type)})
    return out


def save(path: str | os.PathLike[str], data: dict[str, dict[str, np.ndarray]] | None,
         evaluator: str, reason: str | None = None) -> None:
    """Write the per-image data of every iou type (``{iou}/{name}`` arrays) to ``path``
    (compressed npz, no pickles); without data, an empty file that says why."""
    import io

    from .manifest import atomic_path

    arrays: dict[str, np.ndarray] = {"evaluator": np.asarray(evaluator)}
    if data is None:
        arrays["reason"] = np.asarray(reason or "no per-image results")
    else:
        for iou, d in data.items():
            arrays.update({f"{iou}/{k}": v for k, v in d.items()})
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def load(path: str | os.PathLike[str]) -> tuple[dict[str, dict[str, np.ndarray]] | None, str]:
    """``(data by iou type, "")``, or ``(None, reason)`` where the evaluation stored none."""
    with np.load(path, allow_pickle=False) as z:
        files = list(z.files)
        if "reason" in files:
            return None, str(z["reason"])
        out: dict[str, dict[str, np.ndarray]] = {}
        for f in files:
            if "/" in f:
                iou, name = f.split("/", 1)
                out.setdefault(iou, {})[name] = z[f]
    return out, ""


# --------------------------------------------------------------------------------------------
# re-accumulation


class Accumulator:
    """COCOeval's ``accumulate`` + ``summarize`` on stored per-image data of one iou type, for
    image weights ``w`` (length: the number of images; all ones = the evaluation itself)."""

    def __init__(self, d: dict[str, np.ndarray]):
        self.d = d
        self.iou = str(d["iou_type"])
        self.n_images = len(d["img_ids"])
        self.T, self.K = len(d["iou_thrs"]), len(d["cat_ids"])
        self.areas = [str(a) for a in d["areas"]]
        self.max_dets = [int(m) for m in d["max_dets"]]
        self.bits = (1 << np.arange(self.T)).astype(np.uint16)
        # COCOeval: per (category, area) all images' detections, stable-sorted by score
        # (images in id order, within an image by rank)
        order = np.lexsort((d["det_rank"], d["det_i"], -d["det_score"], d["det_a"], d["det_k"]))
        self.groups: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        k, a = d["det_k"][order], d["det_a"][order]
        if order.size:
            cut = np.flatnonzero((np.diff(k) != 0) | (np.diff(a) != 0)) + 1
            for s in np.split(np.arange(order.size), cut):
                idx = order[s]
                tp = ((d["det_tp"][idx][None, :] & self.bits[:, None]) > 0)
                ig = ((d["det_ig"][idx][None, :] & self.bits[:, None]) > 0)
                # true and false positives per threshold, stacked: one cumsum for both
                self.groups[(int(k[s[0]]), int(a[s[0]]))] = {
                    "i": d["det_i"][idx], "rank": d["det_rank"][idx],
                    "tpfp": np.concatenate([tp & ~ig, ~tp & ~ig]).astype(float)}
        self.gt: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for key in {(int(x), int(y)) for x, y in zip(d["gt_k"], d["gt_a"])}:
            m = (d["gt_k"] == key[0]) & (d["gt_a"] == key[1])
            self.gt[key] = (d["gt_i"][m], d["gt_n"][m].astype(float))

    def keys(self) -> list[str]:
        """The metric keys it can give (those of :func:`anonbench.evaluation.coco.evaluate_coco`)."""
        names = [n for n, (_, _, area, _) in _COCO_STATS[self.iou].items() if area in self.areas]
        out = [f"{self.iou}/{n}" for n in names]
        if len(self.d["person_k"]):
            out.append(f"{self.iou}/AP_person")
        return out + [f"{self.iou}/AP_{n}" for n in self.d["cat_names"]]

    def _pr(self, w: np.ndarray, a: int, m: int, cats: Iterable[int]
            ) -> tuple[np.ndarray, np.ndarray]:
        """precision [T, R, K] and recall [T, K] at area ``a`` and maxDets index ``m``, for the
        categories ``cats`` (the others stay -1)."""
        R = len(self.d["rec_thrs"])
        prec = -np.ones((self.T, R, self.K))
        rec = -np.ones((self.T, self.K))
        max_det = self.max_dets[m]
        eps = np.spacing(1)
        for k in cats:
            gi, gn = self.gt.get((k, a), (None, None))
            npig = float(np.dot(gn, w[gi])) if gi is not None else 0.0
            if npig == 0:
                continue
            g = self.groups.get((k, a))
            if g is None:
                prec[:, :, k], rec[:, k] = 0.0, 0.0
                continue
            wd = w[g["i"]] * (g["rank"] < max_det)
            sel = wd > 0
            if not sel.any():
                prec[:, :, k], rec[:, k] = 0.0, 0.0
                continue
            tpfp = np.cumsum(g["tpfp"][:, sel] * wd[sel], axis=1)
            tp, fp = tpfp[:self.T], tpfp[self.T:]
            rc = tp / npig
            pr = tp / (fp + tp + eps)
            env = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            nd = tp.shape[1]
            rec[:, k] = rc[:, -1]
            inds = np.stack([np.searchsorted(rc[t], self.d["rec_thrs"], side="left")
                             for t in range(self.T)])
            prec[:, :, k] = np.where(inds < nd, np.take_along_axis(
                env, np.clip(inds, 0, nd - 1), axis=1), 0.0)
        return prec, rec

    def metrics(self, w: np.ndarray | None = None, keys: Iterable[str] | None = None
                ) -> dict[str, float]:
        """The metrics (percent, NaN where COCOeval gives -1) for image weights ``w``.

        Only the categories the keys read are accumulated (``AP_person`` alone: the person
        categories), the rest of COCOeval's precision array is never looked at."""
        w = np.ones(self.n_images) if w is None else np.asarray(w, float)
        keys = list(self.keys() if keys is None else keys)
        thrs = self.d["iou_thrs"]
        last = len(self.max_dets) - 1
        names = list(self.d["cat_names"])
        every = list(range(self.K))
        # per key: (area index, maxDets index, precision (0) or recall (1), thresholds, categories)
        plan = {}
        for key in keys:
            stat = key.split("/", 1)[1]
            if stat.startswith("AP_"):
                ks = (list(self.d["person_k"]) if stat == "AP_person"
                      else [names.index(stat[3:])])
                plan[key] = (0, last, 0, None, ks)
            else:
                ap, thr, area, m = _COCO_STATS[self.iou][stat]
                plan[key] = (self.areas.index(area), m, 0 if ap else 1,
                             None if thr is None else np.flatnonzero(thr == thrs), every)
        need: dict[tuple[int, int], set[int]] = {}
        for a, m, _, _, ks in plan.values():
            need.setdefault((a, m), set()).update(int(k) for k in ks)
        pr = {am: self._pr(w, *am, sorted(ks)) for am, ks in need.items()}
        out = {}
        for key, (a, m, which, t, ks) in plan.items():
            s = pr[(a, m)][which]
            s = s[..., ks] if which == 0 else s[:, ks]
            if t is not None:
                s = s[t]
            s = s[s > -1]
            out[key] = float(np.mean(s)) * 100.0 if s.size else float("nan")
        return out


def bootstrappable(data: dict[str, dict[str, np.ndarray]] | None) -> set[str]:
    """The metric keys that stored per-image data can re-accumulate."""
    if not data:
        return set()
    return {k for d in data.values() for k in Accumulator(d).keys()}


# --------------------------------------------------------------------------------------------
# paired bootstrap over images


def bootstrap_difference(runs: Sequence[Callable[[np.ndarray], np.ndarray]],
                         baseline: Sequence[Callable[[np.ndarray], np.ndarray]],
                         n_images: int, *, n_resamples: int = DEFAULT_RESAMPLES,
                         seed: int = DEFAULT_SEED, confidence: float = CONFIDENCE,
                         pool: Pool | None = None) -> list[dict[str, float]]:
    """Paired bootstrap over images of ``mean(runs) - mean(baseline)``.

    Every element of ``runs`` / ``baseline`` maps image weights (length ``n_images``) to a
    vector of metrics (the same metrics for all). Returns per metric ``{"low", "high", "p"}``
    (percentile interval; two-sided p-value from the bootstrap distribution). The resamples
    come from ``scipy.stats.bootstrap`` with ``seed``: the same for every call.

    ``pool``: :class:`Memo` runs re-accumulate their resamples in its worker processes, all runs
    at once (the same numbers as without it)."""
    from scipy import stats

    def weights(idx: np.ndarray) -> np.ndarray:
        return np.bincount(idx.astype(np.int64), minlength=n_images).astype(float)

    every = list(dict.fromkeys([*runs, *baseline]))

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        rows = idx.reshape(-1, idx.shape[-1])
        w = np.stack([weights(row) for row in rows])
        # ask every run first (in the pool they run side by side), then collect
        pending = {f: (f.submit(w, pool) if isinstance(f, Memo)
                       else (lambda f=f: np.stack([f(x) for x in w]))) for f in every}
        vals = {f: get() for f, get in pending.items()}
        d = np.stack([np.mean([vals[f][i] for f in runs], axis=0)
                      - np.mean([vals[f][i] for f in baseline], axis=0)
                      for i in range(len(w))], axis=-1)
        return d[:, 0] if idx.ndim == 1 else d

    res = stats.bootstrap((np.arange(n_images),), statistic, n_resamples=n_resamples,
                          confidence_level=confidence, method="percentile", vectorized=True,
                          random_state=np.random.default_rng(seed))
    dist = np.atleast_2d(res.bootstrap_distribution)
    low, high = np.atleast_1d(res.confidence_interval.low), np.atleast_1d(res.confidence_interval.high)
    out = []
    for j in range(dist.shape[0]):
        d = dist[j]
        if not np.all(np.isfinite(d)):
            out.append({"low": float("nan"), "high": float("nan"), "p": float("nan")})
            continue
        p = min(1.0, 2.0 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
        out.append({"low": float(low[j]), "high": float(high[j]), "p": p})
    return out


class Memo:
    """Metric vectors of one run by resample (the baseline's are asked for once per row)."""

    def __init__(self, acc: dict[str, Accumulator], keys: Sequence[str]):
        self.acc, self.keys = acc, list(keys)
        self.cache: dict[bytes, np.ndarray] = {}

    def __call__(self, w: np.ndarray) -> np.ndarray:
        h = w.tobytes()
        if h not in self.cache:
            self.cache[h] = _metric_vector(self.acc, self.keys, w)
        return self.cache[h]

    def submit(self, w: np.ndarray, pool: Pool | None) -> Callable[[], np.ndarray]:
        """Start the metric vectors of the resamples ``w`` (one row of weights each) in
        ``pool``; returns the function that waits for them (``[resample, metric]``)."""
        todo = [i for i, row in enumerate(w) if row.tobytes() not in self.cache]
        if pool is None or not todo:
            return lambda: np.stack([self(row) for row in w])
        data = {iou: a.d for iou, a in self.acc.items()}
        futures = [(chunk, pool.executor.submit(_metric_vectors, data, self.keys, w[chunk]))
                   for chunk in np.array_split(np.asarray(todo), pool.workers) if chunk.size]

        def collect() -> np.ndarray:
            for chunk, fut in futures:
                for i, v in zip(chunk, fut.result()):
                    self.cache[w[i].tobytes()] = v
            return np.stack([self(row) for row in w])
        return collect


class Pool:
    """Worker processes for the image bootstrap (``with Pool(4) as pool``).

    Forked: a spawned worker would run the calling program's main module again (a Snakemake
    ``script:`` has no ``__main__`` guard). The workers only run numpy on arrays they are sent.
    Where there is no fork (Windows), :func:`make_pool` gives None: the bootstrap runs in one
    process."""

    def __init__(self, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = int(workers)
        self.executor = ProcessPoolExecutor(self.workers,
                                            mp_context=multiprocessing.get_context("fork"))

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.executor.shutdown(cancel_futures=True)


def make_pool(workers: int) -> Pool | None:
    """A :class:`Pool` of ``workers`` processes; None for one worker or without fork."""
    import multiprocessing

    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return Pool(workers)


def _metric_vector(acc: dict[str, Accumulator], keys: Sequence[str], w: np.ndarray
                   ) -> np.ndarray:
    vals = {}
    for iou, a in acc.items():
        ks = [k for k in keys if k.startswith(f"{iou}/")]
        if ks:
            vals.update(a.metrics(w, ks))
    return np.asarray([vals[k] for k in keys])


def _metric_vectors(data: dict[str, dict[str, np.ndarray]], keys: Sequence[str], w: np.ndarray
                    ) -> list[np.ndarray]:
    """In a worker: one run's metric vectors for the rows of ``w``."""
    acc = {iou: Accumulator(d) for iou, d in data.items()}
    return [_metric_vector(acc, keys, row) for row in w]


def metric_iou(key: str) -> str:
    return re.split("/", key, maxsplit=1)[0]


__all__ = ["Accumulator", "CONFIDENCE", "DEFAULT_RESAMPLES", "DEFAULT_SEED", "Memo", "SUFFIX",
           "bootstrap_difference", "bootstrappable", "load", "per_image_data", "save",
           "sidecar_path", "welch"]
