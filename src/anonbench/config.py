"""config.yaml: validation with a one-line reason, and the job lists the rules derive from it."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml

#: The repository (the workflow's directory): relative paths of its own files start here.
REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """config.yaml is invalid; the message is one line that names the setting."""


def _path(err: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in err.absolute_path) or "(top level)"


def _finite_number(checker: Any, value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _integer(checker: Any, value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: JSON Schema's types, but a number is finite (``.nan`` passes every bound, since no comparison
#: with NaN is true) and an integer is not written as a float (``2.0`` would reach range() and
#: file names such as seed0.0.json).
_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"number": _finite_number, "integer": _integer}))


def schema_error(config: dict[str, Any], schema_path: str | os.PathLike[str] = SCHEMA) -> str | None:
    """The most relevant schema violation as one line, or None."""
    with open(schema_path) as f:
        schema = yaml.safe_load(f)
    err = jsonschema.exceptions.best_match(_Validator(schema).iter_errors(config))
    if err is None:
        return None
    return f"{_path(err)}: {err.message}"


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key written twice in one mapping is an error (PyYAML, and so
    Snakemake, keep the last silently: a second ``variants:`` block drops the first one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[tuple[str, str], yaml.Node] = {}
        for key, _ in node.value:  # before merge keys (<<) are flattened: those may override
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                first = seen.setdefault((key.tag, key.value), key)
                if first is not key:
                    raise _DuplicateKey(
                        problem=f"key {key.value!r} appears twice in one mapping (first at "
                                f"line {first.start_mark.line + 1}); YAML would keep only the "
                                "last one, so remove or merge one of them",
                        problem_mark=key.start_mark)
        return super().construct_mapping(node, deep=deep)


def check_unique_keys(path: str | os.PathLike[str]) -> None:
    """Raises :class:`ConfigError` ``FILE:LINE:COL: ...`` for a key written twice in one mapping
    of a config file (a file that cannot be read or parsed is Snakemake's to report)."""
    try:
        with open(path, encoding="utf-8") as f:
            yaml.load(f, Loader=_UniqueKeyLoader)
    except _DuplicateKey as e:
        m = e.problem_mark
        raise ConfigError(f"{path}:{m.line + 1}:{m.column + 1}: {e.problem}") from None
    except (OSError, UnicodeError, yaml.YAMLError):
        pass


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One ``--configfile`` as Snakemake reads it (JSON or YAML, a mapping at the top level);
    a syntax error is a :class:`ConfigError` ``FILE:LINE:COL: reason`` (Snakemake's own message,
    raised before the Snakefile runs, names neither the file nor the line)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}: {e.object[e.start]:#04x}); "
                          "save the config as UTF-8") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except _DuplicateKey as e:
        m = e.problem_mark
        raise ConfigError(f"{path}:{m.line + 1}:{m.column + 1}: {e.problem}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        context = getattr(e, "context", None)
        ctx = getattr(e, "context_mark", None)
        detail = f" ({context} at line {ctx.line + 1})" if context and ctx is not None \
            and mark is not None and ctx.line != mark.line else ""
        tabs = "; YAML indents with spaces, not tabs" if "\t" in text.splitlines()[
            mark.line if mark is not None and mark.line < len(text.splitlines()) else 0] else ""
        raise ConfigError(f"{where}: YAML syntax error: {problem}{detail}{tabs}") from None
    if isinstance(data, dict) and data.get("__use_yte__"):
        import io

        import yte

        data = yte.process_yaml(io.StringIO(text), require_use_yte=True)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file is a mapping of keys at the top level "
                          f"(this one is {type(data).__name__})")
    return data


def load_config_files(paths: list[str | os.PathLike[str]]) -> dict[str, Any]:
    """``--configfile A B ...``: each file read by :func:`load_config_file`, merged in order by
    Snakemake's own ``update_config`` (mappings key by key, later files win)."""
    from snakemake.utils import update_config

    config: dict[str, Any] = {}
    for p in paths:
        update_config(config, load_config_file(p))
    return config


def check_config_files(paths: list[str | os.PathLike[str]],
                       roots: str | list[str] = "all") -> dict[str, Any]:
    """The workflow's parse-time checks on ``--configfile PATHS --replace-workflow-config``:
    syntax (file and line), schema, cross references, and the ``roots`` of the named datasets
    (``"all"``, ``"none"`` or a list of names). Returns the config with the schema's defaults;
    raises :class:`ConfigError` with one line."""
    config = load_config_files(paths)
    err = schema_error(config)
    if err:
        raise ConfigError(err)
    from snakemake.utils import validate

    validate(config, str(SCHEMA))  # the Snakefile's: fills the schema's defaults
    check_config(config, check_roots=False)
    names = (list(config["datasets"]) if roots == "all" else [] if roots == "none"
             else list(roots))
    for name in names:
        if name not in config["datasets"]:
            raise ConfigError(f"--roots: unknown dataset {name!r} "
                              f"(config has: {', '.join(config['datasets'])})")
        check_dataset_root(config, name)
    return config


def main(argv: list[str] | None = None) -> int:
    """``python -m anonbench.config check FILE...``: see :func:`check_config_files`."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(
        prog="python -m anonbench.config",
        description="Check config files as the workflow would read them with "
                    "--configfile FILE... --replace-workflow-config (merged in order).")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="syntax (file:line:col), schema, cross references, roots")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--roots", default="all", metavar="all|none|NAME[,NAME...]",
                   help="datasets whose root to check (default all; the workflow checks those "
                        "its targets use)")
    args = ap.parse_args(argv)
    roots = args.roots if args.roots in ("all", "none") else args.roots.split(",")
    try:
        config = check_config_files(args.files, roots)
    except ConfigError as e:
        print(f"invalid config: {e}", file=sys.stderr)
        return 1
    print(f"{' + '.join(map(str, args.files))}: valid ({len(config['datasets'])} datasets, "
          f"{len(config['variants'])} variants, {len(config['models'])} models, "
          f"{len(config['tables'])} tables)")
    return 0


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
        if t.get("reference"):
            _check_reference(t, where)
    from .backends import check_model_config

    for name in models:
        try:
            check_model_config(with_run_settings(model_params(config, name), config, name))
        except ValueError as e:
            raise ConfigError(f"models.{name}: {str(e).removeprefix('model config: ')}") from None
    for name, t in config["tables"].items():  # the backbones of the models that train
        check_backbone(config, t["model"], t["dataset"], f"tables.{name}", check_roots)
    from .evaluation import arch_iou_types

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
        _check_metric_keys(config, name)
    _check_figures(config)
    _check_targets(config)
    for name, f in config.get("figures", {}).items():
        if f["kind"] == "depth":  # its metric, read from every table's metrics files
            for t in f["tables"]:
                _check_metric_keys(config, t, {"metric": f["metric"]}, f"figures.{name}")
    for name, d in datasets.items():
        coco_only = [k for k in dataset_options(config, name) if d["format"] != "coco"]
        if coco_only:
            raise ConfigError(f"datasets.{name}.{coco_only[0]}: only format coco takes explicit "
                              f"paths and person categories; {d['format']} is read in its own "
                              "layout")
        if d.get("persons", "auto") == "keypoints" and d["format"] != "coco":
            raise ConfigError(f"datasets.{name}.persons: keypoints needs COCO keypoint "
                              f"annotations; {d['format']} has none (use all)")
        if ("root" in d) == ("generate" in d):
            raise ConfigError(f"datasets.{name}: give either root (a dataset on disk) or "
                              "generate (the demo world), not both or neither")
    for name, v in variants.items():  # an explicit DeepPrivacy2 checkout must be one
        root = v.get("dp2_root") if v.get("generator") == "dp2" else None
        if root and not os.path.isdir(os.path.join(os.path.expanduser(root), "configs")):
            raise ConfigError(f"variants.{name}.dp2_root: {root!r} is not a DeepPrivacy2 "
                              f"checkout (no configs/ in "
                              f"{os.path.abspath(os.path.expanduser(root))})")
    if check_roots:
        for name in datasets:
            check_dataset_root(config, name)


#: The workflow's output folder (relative to its working directory). Its jobs replace what they
#: write there (an export or an anonymized shard removes its folder first).
RESULTS = "results"


def _outside_results(name: str, d: dict[str, Any]) -> None:
    """A dataset on disk (its root, explicit annotation and image paths) must not lie inside the
    workflow's outputs: an export whose folder is the dataset deleted it before writing."""
    results = os.path.realpath(RESULTS)
    paths = [("root", d["root"])]
    for key in ("annotations", "keypoint_annotations", "images"):
        value = d.get(key)
        for split, p in (value.items() if isinstance(value, dict) else [("", value)]):
            if isinstance(p, str):
                paths.append((f"{key}.{split}" if split else key, os.path.join(d["root"], p)))
    for key, p in paths:
        if os.path.commonpath([results, os.path.realpath(p)]) == results:
            raise ConfigError(f"datasets.{name}.{key}: {p!r} lies inside the workflow's output "
                              f"folder {results}, whose jobs replace what they write (an "
                              "export removes its folder first); keep datasets outside it")


def check_dataset_root(config: dict[str, Any], name: str) -> None:
    """The dataset's ``root`` is a dataset of its format on disk (nothing to check for a generated
    one); raises :class:`ConfigError` with one line. The workflow calls it for the datasets its
    targets use only (from ``prepare``'s input function, while Snakemake builds the DAG), so that
    a target of one dataset runs without the others' roots."""
    from .datasets import missing_root_files

    d = config["datasets"][name]
    model = (d.get("faces") or {}).get("model")
    if model and not os.path.isfile(model):
        raise ConfigError(f"datasets.{name}.faces.model: file {model!r} not found (absolute: "
                          f"{os.path.abspath(model)})")
    pose = (d.get("keypoints") or {}).get("model")
    if pose and (pose.startswith(("/", ".", "~")) or os.path.exists(pose)) and not os.path.isfile(
            os.path.join(os.path.expanduser(pose), "config.json")):
        raise ConfigError(f"datasets.{name}.keypoints.model: {pose!r} is not a model directory "
                          f"(no config.json in {os.path.abspath(os.path.expanduser(pose))}); "
                          "give a local copy of a ViTPose model or a Hugging Face model id")
    if "generate" in d:
        return
    _outside_results(name, d)
    if not os.path.isdir(d["root"]):
        raise ConfigError(f"datasets.{name}.root: directory {d['root']!r} not found "
                          f"(absolute: {os.path.abspath(d['root'])})")
    if d["format"] == "coco" and d.get("persons", "auto") == "keypoints":
        from .datasets.coco import annotation_files as coco_files

        opts = dataset_options(config, name)
        if opts.get("annotations") and not opts.get("keypoint_annotations"):
            # explicit instances files and no keypoints files: nothing to look for
            raise ConfigError(f"datasets.{name}.persons: keypoints needs keypoint annotations: "
                              f"set datasets.{name}.keypoint_annotations (or use persons: all "
                              "for an instance-only dataset)")
        kp = coco_files(d["root"], "train", opts.get("annotations"),
                        opts.get("keypoint_annotations"))["keypoints"]
        if not kp.is_file():
            raise ConfigError(f"datasets.{name}.persons: keypoints, but {kp} is missing "
                              "(use persons: all for an instance-only dataset)")
    missing = missing_root_files(d["format"], d["root"], options=dataset_options(config, name))
    if missing:
        raise ConfigError(f"datasets.{name}.root: not a {d['format']} dataset, missing "
                          f"{missing[0]}" + (f" and {len(missing) - 1} more"
                                             if len(missing) > 1 else ""))


def _check_figures(config: dict[str, Any]) -> None:
    datasets, variants, tables = config["datasets"], config["variants"], config["tables"]
    for name, f in config.get("figures", {}).items():
        where, kind = f"figures.{name}", f["kind"]
        need = {"box_sizes": ["datasets"], "qualitative": ["dataset", "variants"],
                "depth": ["tables", "variants", "metric"],
                "privacy_utility": ["tables", "metric"]}[kind]
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
        for t in f.get("tables", []):
            if t not in tables:
                raise ConfigError(f"{where}.tables: unknown table {t!r} (config has: "
                                  f"{', '.join(tables)})")
        if kind == "privacy_utility":
            for t in f["tables"]:
                if not tables[t].get("privacy", True):
                    raise ConfigError(f"{where}: table {t} has privacy: false, so no audit to "
                                      "plot against")
                if figure_metric_column(tables[t], f["metric"]) is None:
                    raise ConfigError(f"{where}.metric: {f['metric']!r} is neither a column nor "
                                      f"a metric key of table {t} (columns: "
                                      f"{', '.join(tables[t]['metrics'])})")
        if kind == "depth":
            if len(f["tables"]) < 2:
                raise ConfigError(f"{where}.tables: kind depth needs at least 2 tables")
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


def _check_targets(config: dict[str, Any]) -> None:
    """Every table and figure a target names is in the config."""
    for name, t in config.get("targets", {}).items():
        if not (t.get("tables") or t.get("figures")):
            raise ConfigError(f"targets.{name}: names no table or figure")
        for kind in ("tables", "figures"):
            known = config.get(kind, {})
            for item in t.get(kind, []):
                if item not in known:
                    raise ConfigError(f"targets.{name}.{kind}: unknown {kind[:-1]} {item!r} "
                                      f"(config has: {', '.join(known) or 'none'})")


def target_files(config: dict[str, Any], name: str) -> list[str]:
    """What target ``name`` builds: its tables' Markdown files and its figures."""
    t = config["targets"][name]
    return ([f"results/tables/{x}.md" for x in t.get("tables", [])]
            + [f"results/figures/{x}.png" for x in t.get("figures", [])])


def dataset_category_names(config: dict[str, Any], dataset: str) -> list[str] | None:
    """The category names (in id order) of the dataset's validation ground truth, as far as they
    are known before ``prepare``: fixed for Cityscapes and BDD100K and for the demo world; a COCO
    dataset's from ``annotations/instances_val2017.json`` where that file is readable (its tail:
    the categories come last in COCO's files), else None (unknown)."""
    d = config["datasets"][dataset]
    fmt = d["format"]
    if fmt == "cityscapes":
        from .evaluation.cityscapes import class_names

        return class_names()
    if fmt == "bdd100k":
        from .datasets.bdd100k import CATEGORY_NAMES

        return list(CATEGORY_NAMES)
    if "generate" in d:
        from .datasets.demo import CATEGORIES

        return [c["name"] for c in CATEGORIES]
    from .datasets.coco import annotation_files

    return _coco_category_names(annotation_files(d["root"], "val")["instances"])


def _coco_category_names(path: str | os.PathLike[str], tail: int = 1 << 20,
                         full_limit: int = 256 << 20) -> list[str] | None:
    import json

    def names(cats: Any) -> list[str] | None:
        if isinstance(cats, list) and cats and all(isinstance(c, dict) and "name" in c
                                                   and "id" in c for c in cats):
            return [str(c["name"]) for c in sorted(cats, key=lambda c: c["id"])]
        return None

    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            f.seek(max(0, size - tail))
            text = f.read().decode("utf-8", errors="replace")
        at = text.rfind('"categories"')
        if at >= 0:
            rest = text[at + len('"categories"'):].lstrip()
            if rest.startswith(":"):
                try:
                    found = names(json.JSONDecoder().raw_decode(rest[1:].lstrip())[0])
                except ValueError:
                    found = None
                if found:
                    return found
        if size <= full_limit:  # the categories are not at the end: read it all
            with open(path) as f:
                data = json.load(f)
            return names(data.get("categories")) if isinstance(data, dict) else None
    except (OSError, ValueError):
        pass
    return None


def _format_keys(keys: list[str]) -> str:
    """``bbox/{AP, AP50, ...}; segm/{...}``: the keys grouped by iou type, one line."""
    groups: dict[str, list[str]] = {}
    for k in keys:
        kind, _, rest = k.partition("/")
        groups.setdefault(kind, []).append(rest)
    return "; ".join(f"{kind}/{{{', '.join(v)}}}" for kind, v in groups.items())


def _check_metric_keys(config: dict[str, Any], table: str,
                       keys: dict[str, Any] | None = None, where: str | None = None) -> None:
    """Every metric key of the table (or ``keys``, named ``where.<col>``) is one its dataset's
    evaluation writes for its model."""
    import difflib

    from .evaluation import metric_keys

    t = config["tables"][table]
    fmt = config["datasets"][t["dataset"]]["format"]
    arch = config["models"][t["model"]].get("arch")
    names = dataset_category_names(config, t["dataset"])
    valid = metric_keys(fmt, arch, names)
    for col, key in (t["metrics"] if keys is None else keys).items():
        key = str(key)
        if key in valid:
            continue
        kind, _, stat = key.partition("/")
        if names is None and stat.startswith("AP_") and len(stat) > 3 \
                and any(k.startswith(f"{kind}/") for k in valid):
            continue  # a COCO category we cannot list before prepare
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        cats = "" if names is not None else " (and AP_<category> of the dataset's categories)"
        raise ConfigError(f"{where or f'tables.{table}.metrics'}.{col}: {key!r} is not a "
                          f"metric the {fmt} "
                          f"evaluation writes for model {t['model']} (arch {arch}){hint}; "
                          f"valid: {_format_keys(valid)}{cats}")


def figure_metric_column(table: dict[str, Any], metric: str) -> str | None:
    """The table's column of ``metric`` (a column name, or a metric key it shows)."""
    if metric in table["metrics"]:
        return metric
    return next((c for c, k in table["metrics"].items() if k == metric), None)


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
    if f["kind"] == "privacy_utility":
        return {"tables": [f"results/tables/{t}.csv" for t in f["tables"]]}
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
    if f["kind"] == "privacy_utility":
        return {"tables": {t: f"results/tables/{t}.csv" for t in f["tables"]},
                "metric": {t: figure_metric_column(tables[t], f["metric"]) for t in f["tables"]},
                "baseline": {t: tables[t].get("baseline", "original") for t in f["tables"]},
                "privacy": f.get("privacy", "persons_anonymized"),
                "interval": f.get("interval", "seeds"),
                "provenance": " ".join(provenance(config, tables[t]["dataset"])
                                       for t in f["tables"]
                                       if "generate" in config["datasets"][tables[t]["dataset"]]
                                       )[:200]}
    return {"depths": {tables[t]["model"]: config["models"][tables[t]["model"]].get("depth", 50)
                       for t in f["tables"]},
            "baseline": tables[f["tables"][0]].get("baseline", "original")}


def table_seeds(config: dict[str, Any], table: str) -> list[int]:
    return list(config["tables"][table].get("seeds", config["seeds"]))


def table_metrics_files(config: dict[str, Any], table: str) -> list[str]:
    t = config["tables"][table]
    return [f"results/{t['dataset']}/metrics/{v}/{t['model']}/seed{s}.json"
            for v in t["variants"] for s in table_seeds(config, table)]


def table_perimage_files(config: dict[str, Any], table: str) -> list[str]:
    """The per-image results of the table's runs (rule evaluate), in the order of
    :func:`table_metrics_files`."""
    from .significance import sidecar_path

    return [sidecar_path(p) for p in table_metrics_files(config, table)]


def table_audit_files(config: dict[str, Any], table: str) -> list[str]:
    """The privacy audits a table shows: one per anonymizing variant (none if privacy: false)."""
    t = config["tables"][table]
    if not t.get("privacy", True):
        return []
    return [f"results/{t['dataset']}/audit/{v}.json" for v in t["variants"]
            if config["variants"][v]["method"] != "none"]


def table_reference_files(config: dict[str, Any], table: str) -> list[str]:
    """The study's runs that a table shows beside its own (``reference``), as an absolute path;
    none without one."""
    from .reference import resolve

    ref = config["tables"][table].get("reference")
    return [str(resolve(ref))] if ref else []


def _check_reference(table: dict[str, Any], where: str) -> None:
    """The file loads and compares to the same baseline. A table that shares no column or
    variant with it (one cut down from the demo's, say) says so below itself instead."""
    from .reference import ReferenceError, load

    try:
        ref = load(table["reference"])
    except ReferenceError as e:
        raise ConfigError(f"{where}.reference: {e}") from None
    baseline = table.get("baseline", "original")
    if ref["baseline"] != baseline:
        raise ConfigError(f"{where}.reference: its baseline is {ref['baseline']!r}, the table's "
                          f"{baseline!r}")


def dataset_root(config: dict[str, Any], dataset: str) -> str:
    """Where a dataset lies: its ``root``, or ``results/{dataset}/world`` when generated."""
    d = config["datasets"][dataset]
    return d["root"] if "root" in d else f"results/{dataset}/world"


#: Model settings that say how a training runs, not what it learns (checkpointing, data
#: loading, logging): left out of the train and evaluate rules' params, so that changing one
#: does not retrain the finished models (Snakemake reruns a job whose params changed).
RUN_SETTINGS = ("checkpoint_every_iters", "checkpoint_every_minutes",
                "stop_before_walltime_minutes", "workers", "prefetch_factor", "log_every")


def model_params(config: dict[str, Any], model: str) -> dict[str, Any]:
    """What the model learns from: its settings without :data:`RUN_SETTINGS`, a
    ``backbone_weights`` run named by its checkpoint file (:func:`backbone_weights_file`)."""
    params = {k: v for k, v in config["models"][model].items() if k not in RUN_SETTINGS}
    if "backbone_weights" in params:
        params["backbone_weights"] = backbone_weights_file(config, model)
    return params


def backbone_run(config: dict[str, Any], model: str) -> tuple[str, str, int] | None:
    """(dataset, model, seed) of the workflow's run whose backbone ``model`` starts from
    (``backbone_weights: {dataset, model, seed}``: the ``original`` variant), or None."""
    w = config["models"][model].get("backbone_weights")
    if not isinstance(w, dict):
        return None
    return str(w["dataset"]), str(w["model"]), int(w.get("seed", 0))


def backbone_weights_file(config: dict[str, Any], model: str) -> str | None:
    """The checkpoint whose ResNet body ``model`` starts from: a file the config names, or the
    ``model.pt`` of the run :func:`backbone_run` names (rule train makes it first)."""
    run = backbone_run(config, model)
    if run is not None:
        dataset, source, seed = run
        return f"{RESULTS}/{dataset}/runs/original/{source}/seed{seed}/model.pt"
    w = config["models"][model].get("backbone_weights")
    return os.path.expanduser(w) if isinstance(w, str) else None


def check_backbone(config: dict[str, Any], model: str, dataset: str, where: str,
                   check_files: bool = True) -> None:
    """What ``backbone_weights`` of a model that trains on ``dataset`` names must be: a run of a
    torchvision model on another dataset of the config, or a file. Checked for the models that
    tables (at parse time) and train targets (train's input function) train, as dataset roots
    are: an unused model's entry stops nothing."""
    _check_backbone_weights(config, model, check_files)
    run = backbone_run(config, model)
    if run is not None and run[0] == dataset:  # the anonymized rows would learn the originals
        raise ConfigError(
            f"{where}: model {model} starts from the backbone that {run[1]} learned from the "
            f"original images of {dataset}, the dataset it trains on here: its anonymized "
            f"variants would learn from the images they anonymize (models.{model}."
            "backbone_weights.dataset must name another dataset)")


def _check_backbone_weights(config: dict[str, Any], name: str, check_files: bool) -> None:
    m = config["models"][name]
    w = m.get("backbone_weights")
    if w is None:
        return
    where = f"models.{name}.backbone_weights"
    if m.get("backend") != "torchvision":
        raise ConfigError(f"{where}: only the torchvision backend starts from another model's "
                          f"backbone; {m.get('backend')} loads its own weights")
    run = backbone_run(config, name)
    if run is None:
        if check_files and not os.path.isfile(os.path.expanduser(w)):
            raise ConfigError(f"{where}: {w!r} is not a file (a model.pt of the torchvision "
                              "backend)")
        return
    dataset, source, _ = run
    fix = "; keep its entry (config.yaml has it) or remove backbone_weights to train from scratch"
    if dataset not in config["datasets"]:
        raise ConfigError(f"{where}.dataset: unknown dataset {dataset!r} "
                          f"(config has: {', '.join(config['datasets'])}){fix}")
    if source not in config["models"]:
        raise ConfigError(f"{where}.model: unknown model {source!r} "
                          f"(config has: {', '.join(config['models'])}){fix}")
    if config["models"][source].get("backbone_weights") is not None:
        raise ConfigError(f"{where}.model: {source} starts from another backbone itself; name "
                          "a model that trains its backbone from scratch or from ImageNet")
    if config["models"][source].get("backend") != "torchvision":
        raise ConfigError(f"{where}.model: {source} is a {config['models'][source].get('backend')}"
                          " model; its checkpoint holds no torchvision backbone")
    from .backends.torchvision_config import resolve_config

    def body(model: str) -> tuple[int, float, str]:  # what decides the ResNet body's weights
        cfg = resolve_config(model_params(config, model))
        return cfg["depth"], cfg["width"], "gn" if cfg["norm"] == "gn" else "bn"

    (d, wd, n), (d2, wd2, n2) = body(source), body(name)
    if (d, wd, n) != (d2, wd2, n2):  # found now, not after the source's training
        raise ConfigError(f"{where}.model: {source} trains a depth-{d} width-{wd} ResNet with "
                          f"{n} norm, models.{name} builds a depth-{d2} width-{wd2} one with "
                          f"{n2} norm: its backbone would not fit")


def with_run_settings(params: dict[str, Any], config: dict[str, Any], model: str
                      ) -> dict[str, Any]:
    """A job's model settings: its params and the config's :data:`RUN_SETTINGS`."""
    return {**params, **{k: v for k, v in config["models"][model].items()
                         if k in RUN_SETTINGS}}


def dataset_options(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The generic-COCO options of a dataset (explicit paths, person categories) as its loader
    takes them (:data:`anonbench.datasets.COCO_OPTIONS`)."""
    from .datasets import COCO_OPTIONS

    d = config["datasets"][dataset]
    return {k: d[k] for k in COCO_OPTIONS if k in d}


def annotation_inputs(config: dict[str, Any], dataset: str, split: str) -> list[str]:
    """The annotation files of a dataset on disk, so that Snakemake notices when they change.

    ``prepare``'s input function: the dataset's root is checked here (:func:`check_dataset_root`),
    when Snakemake builds the DAG, for the datasets that the targets use only."""
    from .datasets import annotation_files

    try:
        check_dataset_root(config, dataset)
    except ConfigError as e:
        raise ConfigError(f"invalid config: {e}") from None
    d = config["datasets"][dataset]
    return annotation_files(d["format"], d["root"], split, dataset_options(config, dataset))


#: The locked environment of `make` (requirements/lock.txt, written by `make lock`), relative to
#: the repository root; absent when anonbench is installed into someone else's environment.
LOCK_FILE = "requirements/lock.txt"


def environment_lock(root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``{"file", "sha256"}`` of the repository's lock file; sha256 is None when there is none."""
    import hashlib

    base = Path(root) if root is not None else REPO
    path = base / LOCK_FILE
    try:
        digest: str | None = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        digest = None
    return {"file": LOCK_FILE, "sha256": digest}


def lock_note(lock: dict[str, Any] | None = None) -> str:
    """The environment sentence of a table's provenance line (12-hex short hash)."""
    lock = environment_lock() if lock is None else lock
    if not lock.get("sha256"):
        return f"Environment: not the locked one (no {lock.get('file', LOCK_FILE)})."
    return f"Environment: `{lock['file']}` sha256 `{lock['sha256'][:12]}`."


def provenance(config: dict[str, Any], dataset: str) -> str:
    d = config["datasets"][dataset]
    if "generate" in d:
        g = d["generate"]
        scenes = {"street": "street scenes", "closeup": "close-up scenes of people"}[
            g.get("style", "street")]
        return (f"Demo world: synthetic {scenes} generated by anonbench "
                f"(seed {g.get('seed', 0)}, {g.get('train_images', 200)} train / "
                f"{g.get('val_images', 60)} val images). These numbers show the pipeline and the "
                "direction of effects on generated data; they are not the study's numbers and do "
                f"not reproduce them. {lock_note()}")
    return (f"Dataset `{dataset}` read from {d['root']} ({d['format']} format); compare with "
            f"Hukkelås & Lindseth, CVPRW 2023, Tables 1-4. {lock_note()}")


if __name__ == "__main__":
    raise SystemExit(main())
