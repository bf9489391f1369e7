"""config.yaml: validation with a one-line reason, and the job lists the rules derive from it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """config.yaml is invalid; the message is one line that names the setting."""


def _path(err: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in err.absolute_path) or "(top level)"


def schema_error(config: dict[str, Any], schema_path: str | os.PathLike[str] = SCHEMA) -> str | None:
    """The most relevant schema violation as one line, or None."""
    with open(schema_path) as f:
        schema = yaml.safe_load(f)
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if err is None:
        return None
    return f"{_path(err)}: {err.message}"


def check_config(config: dict[str, Any], *, check_roots: bool = True) -> None:
    """Checks that a schema cannot express; raises :class:`ConfigError` with one line."""
    datasets, variants, models = config["datasets"], config["variants"], config["models"]
    for name, v in variants.items():
        if v["method"] != "none" and "region" not in v:
            raise ConfigError(f"variants.{name}: method {v['method']!r} needs a region (face, body)")
    for name, t in config["tables"].items():
        where = f"tables.{name}"
        if t["dataset"] not in datasets:
            raise ConfigError(f"{where}.dataset: unknown dataset {t['dataset']!r} "
                              f"(config has: {', '.join(datasets)})")
        if t["model"] not in models:
            raise ConfigError(f"{where}.model: unknown model {t['model']!r} "
                              f"(config has: {', '.join(models)})")
        for v in t["variants"]:
            if v not in variants:
                raise ConfigError(f"{where}.variants: unknown variant {v!r} "
                                  f"(config has: {', '.join(variants)})")
        baseline = t.get("baseline", "original")
        if baseline not in t["variants"]:
            raise ConfigError(f"{where}.baseline: {baseline!r} is not one of the table's variants")
        for s in t.get("seeds", []):
            if s not in config["seeds"]:
                raise ConfigError(f"{where}.seeds: seed {s} is not in the top-level seeds")
    from .backends import check_model_config

    for name, m in models.items():
        try:
            check_model_config(m)
        except ValueError as e:
            raise ConfigError(f"models.{name}: {str(e).removeprefix('model config: ')}") from None
    from .evaluate_datasets import arch_iou_types

    for name, t in config["tables"].items():  # what the table asks of what the model predicts
        arch = models[t["model"]].get("arch")
        kinds = arch_iou_types(arch)
        fmt = datasets[t["dataset"]]["format"]
        if fmt in ("cityscapes", "bdd100k") and "segm" not in kinds:
            raise ConfigError(f"tables.{name}: {fmt} is evaluated on instance masks, but model "
                              f"{t['model']} (arch {arch}) predicts none")
        for col, key in t["metrics"].items():
            kind = str(key).split("/", 1)[0]
            if kind in ("bbox", "segm", "keypoints") and kind not in kinds:
                raise ConfigError(f"tables.{name}.metrics.{col}: {key} needs {kind} predictions; "
                                  f"model {t['model']} (arch {arch}) gives {', '.join(kinds)}")
    _check_figures(config)
    for name, d in datasets.items():
        if ("root" in d) == ("generate" in d):
            raise ConfigError(f"datasets.{name}: give either root (a dataset on disk) or "
                              "generate (the demo world), not both or neither")
    if check_roots:
        from .datasets import missing_root_files

        for name, d in datasets.items():
            if "generate" in d:
                continue
            if not os.path.isdir(d["root"]):
                raise ConfigError(f"datasets.{name}.root: directory {d['root']!r} not found "
                                  f"(absolute: {os.path.abspath(d['root'])})")
            missing = missing_root_files(d["format"], d["root"])
            if missing:
                raise ConfigError(f"datasets.{name}.root: not a {d['format']} dataset, missing "
                                  f"{missing[0]}" + (f" and {len(missing) - 1} more"
                                                     if len(missing) > 1 else ""))


def _check_figures(config: dict[str, Any]) -> None:
    datasets, variants, tables = config["datasets"], config["variants"], config["tables"]
    for name, f in config.get("figures", {}).items():
        where, kind = f"figures.{name}", f["kind"]
        need = {"box_sizes": ["datasets"], "qualitative": ["dataset", "variants"],
                "depth": ["tables", "variants", "metric"]}[kind]
        for key in need:
            if key not in f:
                raise ConfigError(f"{where}: kind {kind} needs {key}")
        for d in f.get("datasets", []) + ([f["dataset"]] if "dataset" in f else []):
            if d not in datasets:
                raise ConfigError(f"{where}: unknown dataset {d!r} (config has: "
                                  f"{', '.join(datasets)})")
        for v in f.get("variants", []):
            if v not in variants:
                raise ConfigError(f"{where}.variants: unknown variant {v!r} (config has: "
                                  f"{', '.join(variants)})")
        if kind == "depth":
            for t in f["tables"]:
                if t not in tables:
                    raise ConfigError(f"{where}.tables: unknown table {t!r} (config has: "
                                      f"{', '.join(tables)})")
            models = [tables[t]["model"] for t in f["tables"]]
            depths = [config["models"][m].get("depth", 50) for m in models]
            if len(set(depths)) != len(depths):
                raise ConfigError(f"{where}.tables: their models must differ in depth "
                                  f"(got {', '.join(map(str, depths))})")
            for t in f["tables"]:
                baseline = tables[t].get("baseline", "original")
                missing = [v for v in [baseline, *f["variants"]] if v not in tables[t]["variants"]]
                if missing:
                    raise ConfigError(f"{where}: table {t} has no row {missing[0]!r}")


def figure_inputs(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The files a figure is drawn from (the rule's inputs), by kind."""
    from .shards import shard_names

    f = config["figures"][name]
    if f["kind"] == "box_sizes":
        return {"manifests": [f"results/{d}/prepared/train.json" for d in f["datasets"]]}
    if f["kind"] == "qualitative":
        d = f["dataset"]
        first = shard_names(config["datasets"][d]["shards"])[0]
        return {"shard": f"results/{d}/prepared/shards",
                "anonymized": [f"results/{d}/anonymized/{v}/{first}" for v in f["variants"]
                               if config["variants"][v]["method"] != "none"]}
    return {"metrics": [p for t in f["tables"] for p in table_metrics_files(config, t)]}


def figure_context(config: dict[str, Any], name: str) -> dict[str, Any]:
    """What a figure's step needs besides its input files (paths, depths, provenance)."""
    from .shards import shard_names

    f = config["figures"][name]
    if f["kind"] == "box_sizes":
        return {"datasets": {d: f"results/{d}/prepared/train.json" for d in f["datasets"]},
                "provenance": " ".join(provenance(config, d) for d in f["datasets"]
                                       if "generate" in config["datasets"][d])[:200]}
    if f["kind"] == "qualitative":
        d = f["dataset"]
        first = shard_names(config["datasets"][d]["shards"])[0]
        return {"shard": f"results/{d}/prepared/shards/{first}.json",
                "columns": {v: (None if config["variants"][v]["method"] == "none"
                                else f"results/{d}/anonymized/{v}/{first}")
                            for v in f["variants"]}}
    tables = config["tables"]
    return {"depths": {tables[t]["model"]: config["models"][tables[t]["model"]].get("depth", 50)
                       for t in f["tables"]},
            "baseline": tables[f["tables"][0]].get("baseline", "original")}


def table_seeds(config: dict[str, Any], table: str) -> list[int]:
    return list(config["tables"][table].get("seeds", config["seeds"]))


def table_metrics_files(config: dict[str, Any], table: str) -> list[str]:
    t = config["tables"][table]
    return [f"results/{t['dataset']}/metrics/{v}/{t['model']}/seed{s}.json"
            for v in t["variants"] for s in table_seeds(config, table)]


def table_audit_files(config: dict[str, Any], table: str) -> list[str]:
    """The privacy audits a table shows: one per anonymizing variant (none if privacy: false)."""
    t = config["tables"][table]
    if not t.get("privacy", True):
        return []
    return [f"results/{t['dataset']}/audit/{v}.json" for v in t["variants"]
            if config["variants"][v]["method"] != "none"]


def dataset_root(config: dict[str, Any], dataset: str) -> str:
    """Where a dataset lies: its ``root``, or ``results/{dataset}/world`` when generated."""
    d = config["datasets"][dataset]
    return d["root"] if "root" in d else f"results/{dataset}/world"


def annotation_inputs(config: dict[str, Any], dataset: str, split: str) -> list[str]:
    """The annotation files of a dataset on disk, so that Snakemake notices when they change."""
    from .datasets import annotation_files

    d = config["datasets"][dataset]
    return annotation_files(d["format"], d["root"], split)


def provenance(config: dict[str, Any], dataset: str) -> str:
    d = config["datasets"][dataset]
    if "generate" in d:
        g = d["generate"]
        return ("Demo world: synthetic street scenes generated by anonbench "
                f"(seed {g.get('seed', 0)}, {g.get('train_images', 200)} train / "
                f"{g.get('val_images', 60)} val images). These numbers show the pipeline and the "
                "direction of effects on generated data; they are not the study's numbers and do "
                "not reproduce them.")
    return (f"Dataset `{dataset}` read from {d['root']} ({d['format']} format); compare with "
            "Hukkelås & Lindseth, CVPRW 2023, Tables 1-4.")
