"""One function per workflow rule. ``scripts/*.py`` unpack Snakemake's input/output/params and
call exactly one of these; they hold no logic of their own."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Iterator

from . import annotate, anonymize, reference, shards, tables
from .manifest import load_manifest, write_json


@contextlib.contextmanager
def logged(log: str | None) -> Iterator[None]:
    """Send stdout and stderr of the step to the rule's log file (kept on failure)."""
    if not log:
        yield
        return
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", buffering=1) as f, contextlib.redirect_stdout(f), \
            contextlib.redirect_stderr(f):
        t0 = time.perf_counter()
        try:
            yield
        except BaseException:
            # the rule's log is what Snakemake (and SLURM's failure report) shows: put the
            # traceback there too, then let Snakemake report the error as usual
            traceback.print_exc(file=f)
            raise
        print(f"done in {time.perf_counter() - t0:.1f} s", file=f)


def demo_world(root: str, generate: dict[str, Any]) -> None:
    from .datasets import demo

    if os.path.isdir(root):  # a stale, incomplete world from an interrupted run
        shutil.rmtree(root)
    summary = demo.generate_world_in_layout(root, generate.get("layout", "coco"),
                                            seed=generate.get("seed", 0),
                                            n_train=generate.get("train_images", 200),
                                            n_val=generate.get("val_images", 60),
                                            width=generate.get("width", 256),
                                            height=generate.get("height", 160),
                                            style=generate.get("style", "street"))
    print(json.dumps(summary, indent=1))


def prepare(fmt: str, root: str, split: str, dataset: str, out: str,
            persons: str = "auto", options: dict[str, Any] | None = None) -> None:
    from .datasets import load_split, summary_line

    manifest = load_split(fmt, root, split, dataset, persons, **(options or {}))
    print(summary_line(dataset, fmt, split, manifest["info"].get("summary", {})))
    print(f"{dataset}/{split}: {json.dumps(manifest['info'].get('summary', {}))}")
    write_json(out, manifest)


def make_shards(prepared: str, n: int, out_dir: str) -> None:
    """Write ``out_dir/{shard}.json`` for every shard (the directory appears complete or not at all)."""
    manifest = load_manifest(prepared)
    out = Path(out_dir)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for shard in shards.split_shards(manifest, n):
        write_json(tmp / f"{shard['info']['shard']}.json", shard)
        print(f"shard {shard['info']['shard']}: {json.dumps(shards.summary(shard))}")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)


def check_images(shard_json: str, out: str, *, train_json: str | None = None,
                 progress: bool = True) -> None:
    """Decode every image of a shard in full (:func:`anonbench.images.verify_image`) and check
    its size against the manifest; writes the count and the time per image. With
    ``train_json`` (for the val split) first refuses val images that are train images too,
    and warns of (and lists) val images that are byte-identical copies of train images."""
    from . import images
    from .datasets.checks import disjoint_splits
    from .manifest import image_path

    m = load_manifest(shard_json)
    copies = disjoint_splits(load_manifest(train_json), m) if train_json else []
    if copies:
        t, v = copies[0]
        print(f"warning: val image {v['id']} ({v['file_name']!r}) is a byte-identical copy of "
              f"the train split's image {t['id']} ({t['file_name']!r}); {len(copies)} of the "
              f"{len(m['images'])} val images are copies of train images, which the evaluation "
              "scores though the model trained on them", file=sys.stderr)
    items = m["images"]
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc=f"check images {m['info'].get('shard', '')}", mininterval=2.0)
    t0 = time.perf_counter()
    for img in items:
        path = image_path(m, img)
        size = images.verify_image(path)
        if size != (img["width"], img["height"]):
            raise images.ImageReadError(
                f"{path}: image {img['id']} is {size[0]}x{size[1]} but its annotation says "
                f"{img['width']}x{img['height']}")
    seconds = time.perf_counter() - t0
    n = len(m["images"])
    result = {"shard": m["info"].get("shard"), "images": n, "seconds": round(seconds, 3),
              "ms_per_image": round(1000 * seconds / n, 2) if n else None}
    if train_json:
        result["copies_of_train_images"] = [[t["id"], v["id"]] for t, v in copies]
    print(json.dumps(result))
    write_json(out, result)


def faces(shard_json: str, cfg: dict[str, Any], out: str, *, keypoints_json: str | None = None,
          threads: int = 1) -> None:
    keypoints = None
    if keypoints_json:
        with open(keypoints_json) as f:
            keypoints = json.load(f)
    result = annotate.detect_faces(load_manifest(shard_json), cfg, keypoints=keypoints,
                                   threads=threads, progress=True)
    print(f"shard {result['shard']}: {result['persons_with_face']} of {result['persons']} "
          f"persons with a face ({result['detector']}; {result['detections']} detections, "
          f"{result['unmatched_detections']} unmatched)")
    write_json(out, result)


def keypoints(shard_json: str, cfg: dict[str, Any], out: str, *, threads: int = 1) -> None:
    result = annotate.estimate_keypoints(load_manifest(shard_json), cfg, threads=threads,
                                         progress=True)
    print(f"shard {result['shard']}: {result['persons_with_keypoints']} of {result['persons']} "
          f"persons with keypoints ({result['estimator']})")
    write_json(out, result)


def anonymize_shard(shard_json: str, faces_json: str | None, variant: dict[str, Any],
                    out_dir: str, *, keypoints_json: str | None = None) -> None:
    stats = anonymize.anonymize_shard(shard_json, faces_json, variant, out_dir,
                                      keypoints_json=keypoints_json)
    print(json.dumps(stats))


def check_made_with(recorded: Any, variant: dict[str, Any], variant_name: str,
                    path: str | os.PathLike[str]) -> None:
    """Raises ``ValueError`` when the file ``path`` records another configuration of the variant
    than the config's: it was made before the variant changed and not remade (results copied
    from elsewhere, ``--rerun-triggers mtime``, lost ``.snakemake`` metadata). Its images would
    be handed on under the new settings, originals under an anonymizing variant's name."""
    def made(v: Any) -> str:  # allow_empty decides whether the coverage check passes only
        return json.dumps({k: x for k, x in v.items() if k != "allow_empty"}
                          if isinstance(v, dict) else v, sort_keys=True)

    if made(recorded) != made(variant):
        raise ValueError(
            f"{path}: made for variant {variant_name} as {json.dumps(recorded, sort_keys=True)}, "
            f"but the config now says {json.dumps(variant, sort_keys=True)}; remake it "
            f"(snakemake --forcerun {path} ...)")


def anonymized_train_manifest(prepared: str, variant_name: str, variant: dict[str, Any],
                              n_shards: int, out: str) -> None:
    root = None if variant["method"] == "none" else str(Path(out).parent)
    m = shards.anonymized_manifest(load_manifest(prepared), root, n_shards, variant_name)
    m["info"]["variant_config"] = variant
    if root is not None:
        for img in m["images"]:
            p = os.path.join(root, img["file_name"])
            if not os.path.isfile(p):
                raise FileNotFoundError(f"{p}: anonymized image missing (incomplete shard?)")
        m["info"]["coverage"] = variant_coverage(m, root, n_shards, variant_name, variant)
    write_json(out, m)


def variant_coverage(prepared: dict[str, Any], root: str, n_shards: int, variant_name: str,
                     variant: dict[str, Any]) -> dict[str, Any]:
    """The variant's person coverage from its shards' summaries: it must account for every
    person that prepare found, and anonymize somebody (:func:`coverage.check_not_empty`)."""
    from . import coverage
    from .shards import shard_names

    parts = []
    for shard in shard_names(n_shards):
        with open(os.path.join(root, shard, "summary.json")) as f:
            summary = json.load(f)
        check_made_with(summary.get("variant"), variant, variant_name, os.path.join(root, shard))
        parts.append(summary["coverage"])
    cov = coverage.merge(parts)
    coverage.check_sums(cov, root)
    present = prepared["info"].get("summary", {}).get("persons", {}).get("present")
    if present is not None and present != cov["present"]:
        raise AssertionError(f"{root}: the shards account for {cov['present']} persons, "
                             f"prepare found {present}")
    dataset = prepared["info"].get("dataset", "?")
    print(f"{dataset}/{variant_name}: {coverage.describe(cov)}")
    coverage.check_not_empty(cov, dataset, variant_name, variant)
    return {k: v for k, v in cov.items() if k != "ids"}


def export(root: str, prepared_train: str, prepared_val: str, variant_manifest: str,
           audit_json: str | None, variant_name: str, variant: dict[str, Any],
           out_dir: str) -> None:
    """The variant's anonymized dataset in the dataset's own layout (:mod:`anonbench.export`)."""
    from .export import export_dataset

    if variant.get("method", "none") == "none":
        raise ValueError(f"{variant_name}: the original variant anonymizes nothing; export an "
                         "anonymizing variant")
    audit = None
    if audit_json:
        with open(audit_json) as f:
            audit = json.load(f)
        check_made_with(audit.get("variant_config"), variant, variant_name, audit_json)
    anonymized = load_manifest(variant_manifest)
    check_made_with(anonymized["info"].get("variant_config"), variant, variant_name,
                    variant_manifest)
    t0 = time.perf_counter()
    result = export_dataset(root, load_manifest(prepared_train), load_manifest(prepared_val),
                            anonymized, audit, variant_name, variant, out_dir)
    seconds = time.perf_counter() - t0
    print(json.dumps({**result, "seconds": round(seconds, 2),
                      "ms_per_image": round(1000 * seconds / max(1, result["images"]), 2)}))


def train(train_manifest: str, model_cfg: dict[str, Any], seed: int, out_dir: str,
          threads: int, *, variant: tuple[str, dict[str, Any]] | None = None) -> None:
    """``variant``: (name, config) that the training manifest must have been made with."""
    from .backends import get_backend

    if variant is not None:
        check_made_with(load_manifest(train_manifest)["info"].get("variant_config"),
                        variant[1], variant[0], train_manifest)

    summary = get_backend(model_cfg["backend"]).train(train_manifest, model_cfg, seed, out_dir,
                                                      threads=threads)
    print(json.dumps(summary, default=str))


def evaluate(checkpoint: str, val_manifest: str, model_cfg: dict[str, Any], record: dict[str, Any],
             threads: int, predictions_out: str, metrics_out: str,
             perimage_out: str | None = None) -> None:
    """Predict on the validation set and evaluate; the averages run over the categories the
    model was trained on. ``perimage_out``: the evaluator's per-image results for the tables'
    image bootstrap (:mod:`anonbench.significance`), or a file that says why there are none."""
    from . import significance
    from .backends import get_backend
    from .evaluation.coco import metrics_record
    from .evaluation import evaluate_manifest, trained_category_ids

    results = get_backend(model_cfg["backend"]).predict(checkpoint, val_manifest, threads=threads)
    write_json(predictions_out, results)
    manifest = load_manifest(val_manifest)
    categories = trained_category_ids(manifest, model_cfg, results)
    ev = evaluate_manifest(manifest, results, model_cfg["arch"], categories)  # per dataset format
    names = {c["id"]: c["name"] for c in manifest["categories"]}
    rec = metrics_record(ev["metrics"], **record, iou_types=ev["iou_types"],
                         evaluator=ev["evaluator"], versions=ev["versions"],
                         categories=[{"id": c, "name": names.get(c, str(c))} for c in categories])
    print(json.dumps(rec["metrics"], indent=1))
    if perimage_out is not None:
        significance.save(perimage_out, ev.get("per_image"), ev["evaluator"],
                          reason=ev.get("per_image_reason"))
    write_json(metrics_out, rec, indent=1)


def table(name: str, table_cfg: dict[str, Any], metrics_files: list[str], audit_files: list[str],
          provenance: str, out_md: str, out_csv: str, perimage_files: list[str] | None = None,
          significance_cfg: dict[str, Any] | None = None, threads: int = 1,
          reference_file: str | None = None) -> None:
    study = reference.load(reference_file) if reference_file else None  # before the bootstrap
    records = tables.load_records(metrics_files, perimage_files)
    rows = tables.build_rows(records, {**table_cfg, "name": name},
                             significance=significance_cfg or {}, workers=threads)
    audits = tables.load_audits(audit_files) if audit_files else None
    md = tables.render_markdown(name, table_cfg, rows, provenance, audits=audits,
                                significance=significance_cfg, reference=study)
    write_csv = tables.render_csv(rows, audits=audits)
    from .manifest import atomic_write_text

    atomic_write_text(out_csv, write_csv)
    atomic_write_text(out_md, md)
    print(md)


def audit_shard(shard_json: str, faces_json: str | None, variant: dict[str, Any],
                anonymized_dir: str, out: str, audit_cfg: dict[str, Any] | None = None) -> None:
    from . import audit

    detector, face_check = None, None
    if variant.get("region") == "face":
        detector, face_check = audit.load_face_detector(audit_cfg)
    result = audit.audit_shard(shard_json, faces_json, variant, anonymized_dir,
                               face_detector=detector, progress=True)
    if face_check is not None:
        result["face_check"] = face_check
    _print_audit(result)
    write_json(out, result)


def _print_audit(result: dict[str, Any]) -> None:
    from .coverage import describe

    print(json.dumps({k: v for k, v in result.items() if k not in ("fractions", "coverage")}))
    if "coverage" in result:
        print(describe(result["coverage"]))


def audit_variant(shard_audits: list[str], variant_name: str, variant: dict[str, Any],
                  out: str) -> None:
    from . import audit

    shards = []
    for p in shard_audits:
        with open(p) as f:
            shards.append(json.load(f))
    result = audit.merge(shards, variant_name, variant)
    _print_audit(result)
    write_json(out, result)


def figure(name: str, fig_cfg: dict[str, Any], context: dict[str, Any], input_files: list[str],
           out_png: str, out_csv: str) -> None:
    """One figure (see :mod:`anonbench.figures`): the PNG and a .csv of what it plots."""
    import numpy as np

    from . import figures, images
    from .manifest import atomic_write_text, image_path, iter_images

    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.png")
    kind = fig_cfg["kind"]
    if kind == "box_sizes":
        curves, counts = {}, {}
        for d, path in context["datasets"].items():
            sizes = figures.relative_person_sizes(load_manifest(path))
            curves[d], counts[d] = figures.cumulative_fraction(sizes), int(sizes.size)
            print(f"{d}: {sizes.size} persons, median relative size "
                  f"{float(np.median(sizes)) if sizes.size else float('nan'):.3f}")
        title = fig_cfg.get("title",
                            "Person box size relative to image size (cf. the study's Fig. 7)")
        if context.get("provenance"):
            title += "\n(demo world: generated data)"
        figures.plot_box_sizes(curves, str(tmp), title)
        data = figures.curves_csv(curves, counts)
    elif kind == "qualitative":
        shard = load_manifest(context["shard"])
        picked = [(img, anns) for img, anns in iter_images(shard)
                  if any(a.get("anonymize") for a in anns)][:int(fig_cfg.get("images", 4))]
        if not picked:
            raise ValueError(f"{context['shard']}: no training image with a person to show")
        columns, files = [], {}
        for variant, directory in context["columns"].items():
            tiles, files[variant] = [], []
            for img, anns in picked:
                src = (image_path(shard, img) if directory is None
                       else os.path.join(directory, img["file_name"]))
                tiles.append(figures.crop_around_person(images.read_image(src), anns))
                files[variant].append(str(src))
            columns.append(tiles)
        data = figures.grid_csv(files)
        title = fig_cfg.get("title", f"Training images per variant ({context['shard']})")
        figures.plot_grid(figures.grid_rows(columns), list(context["columns"]), str(tmp), title)
    elif kind == "privacy_utility":
        points = {}
        for table, path in context["tables"].items():
            with open(path) as f:
                points[table] = figures.privacy_utility_points(
                    f.read(), context["metric"][table], context["privacy"], context["interval"],
                    context["baseline"][table])
            print(f"{table}: {json.dumps(points[table])}")
        metric = fig_cfg["metric"]
        data = figures.privacy_utility_csv(points, metric, context["privacy"],
                                           context["interval"])
        title = fig_cfg.get("title", "Privacy bought vs. utility lost, per variant")
        if context.get("provenance"):
            title += "\n(demo world: generated data)"
        figures.plot_privacy_utility(points, str(tmp), title, metric, context["privacy"],
                                     context["interval"], next(iter(context["baseline"].values())))
    else:
        from . import tables

        records = tables.load_records(input_files)
        points = figures.depth_points(records, context["depths"], fig_cfg["variants"],
                                      fig_cfg["metric"], context["baseline"])
        print(json.dumps(points))
        data = figures.depth_csv(points, fig_cfg["metric"])
        title = fig_cfg.get("title", "Relative drop vs. backbone depth (cf. the study's Fig. 8)")
        figures.plot_depth(points, str(tmp), title, fig_cfg["metric"])
    atomic_write_text(out_csv, data)
    os.replace(tmp, out)
