"""The ``anonbench`` command: model files (``weights list|check|fetch``) and the preflight
report (``check``) of a config, without running the workflow.

Configs are read as ``snakemake --replace-workflow-config --configfile F...`` reads them: the
files merged in order, dict by dict (a later file wins), then validated and defaulted as the
Snakefile does (rules/common.smk: the JSON schema, Snakemake's ``validate``, the cross-checks).
Without ``--configfile``: ``config.yaml`` of the current directory (else the repository's).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from . import weights as W


class UsageError(Exception):
    pass


def load_config(files: Sequence[str] | None) -> dict[str, Any]:
    """The merged, validated and defaulted config of ``files`` (the Snakefile's checks, dataset
    roots not looked at)."""
    from snakemake.utils import update_config, validate

    from .config import REPO, SCHEMA, ConfigError, check_config, load_config_file, schema_error

    if not files:
        here = Path("config.yaml")
        files = [str(here if here.is_file() else REPO / "config.yaml")]
    config: dict[str, Any] = {}
    for f in files:
        try:  # as the Snakefile reads it: a syntax error or a key written twice names its line
            part = load_config_file(f)
        except ConfigError as e:
            raise UsageError(str(e)) from None
        update_config(config, part)
    err = schema_error(config, SCHEMA)
    if err:
        if err.startswith("(top level)") and "required property" in err:
            # snakemake --configfile merges a partial file over the Snakefile's config.yaml
            err += (f"; snakemake merges {' '.join(files)} over the workflow's config.yaml: "
                    f"check them as it does with --configfile config.yaml {' '.join(files)}")
        raise UsageError(f"invalid config: {err}")
    validate(config, str(SCHEMA))   # fills the schema's defaults, as the Snakefile does
    try:
        check_config(config, check_roots=False)
    except ConfigError as e:
        raise UsageError(f"invalid config: {e}") from None
    return config


# --- weights ----------------------------------------------------------------------------------

def _print_entry(st: W.Status, out) -> None:
    f = st.file
    state = "present, matches" if st.ok else st.problem
    if st.ok and not (f.md5 or f.sha256) and st.path.is_file():
        state += f" (no published checksum; this file: sha256 {W.file_digest(st.path, 'sha256')})"
    print(f"{f.key}: {f.purpose}", file=out)
    print(f"  file:     {f.name}", file=out)
    print(f"  checksum: {f.checksum}", file=out)
    print(f"  size:     {f.size}", file=out)
    print(f"  expected: {st.path}", file=out)
    print(f"  status:   {state}", file=out)
    for i, s in enumerate(f.sources, 1):
        print(f"  source {i}: {s.describe()}", file=out)
    if f.original:
        print(f"  original: {f.original}", file=out)


def _files(args) -> list[W.WeightFile]:
    if getattr(args, "all", False):
        return list(W.REGISTRY.values())
    return W.needed_files(load_config(args.configfile))


def cmd_weights(args) -> int:
    files = _files(args)
    dest = args.dest
    rule = (f"--dest {dest}" if dest else
            f"${W.ENV}={W.weights_dir()}" if W.weights_dir() else
            "the loaders' caches (torch hub, Hugging Face, $FVCORE_CACHE)")
    if args.action == "list":
        if not files:
            print("this config needs no model files outside the installed wheels")
            return 0
        print(f"{len(files)} model file(s); looked for in {rule}\n")
        for f in files:
            _print_entry(W.status(f, dest), sys.stdout)
            print()
        return 0
    if args.action == "check":
        bad = [s for s in (W.status(f, dest) for f in files) if not s.ok]
        for s in bad:
            print(s.line())
        if bad:
            print(f"{len(bad)} of {len(files)} model file(s) missing or wrong; fetch them with: "
                  f"{W.FETCH_HINT}", file=sys.stderr)
            return 1
        print(f"all {len(files)} model file(s) the config needs are present and match"
              if files else "this config needs no model files outside the installed wheels")
        return 0
    # fetch
    print(f"fetching into {rule}" + (f", mirror {args.mirror} first" if args.mirror else ""))
    final = W.fetch(files, dest=dest, mirror=args.mirror, progress=not args.no_progress,
                    timeout=args.timeout)
    bad = [s for s in final if not s.ok]
    if bad:
        print(f"\n{len(bad)} of {len(final)} model file(s) not installed:", file=sys.stderr)
        for s in bad:
            print(s.line(), file=sys.stderr)
            for src in s.file.sources:
                if src.manual:
                    print(f"         manual step: {src.manual}", file=sys.stderr)
        return 1
    print(f"all {len(final)} model file(s) present and matching")
    if dest and not W.weights_dir():
        print(f"the loaders look there when {W.ENV} is set: export {W.ENV}={os.path.abspath(dest)}")
    return 0


# --- check ------------------------------------------------------------------------------------

def export_targets(config: dict[str, Any], targets: Sequence[str] | None
                   ) -> list[tuple[str, str]]:
    """(dataset, variant) of each ``results/{dataset}/export/{variant}`` target; a target of
    another kind, or of an unknown dataset or variant, is a :class:`UsageError`."""
    out = []
    for t in targets or []:
        parts = Path(t).parts
        if len(parts) != 4 or parts[0] != "results" or parts[2] != "export":
            raise UsageError(f"--target {t}: not an export target (results/DATASET/export/VARIANT;"
                             " the tables' and figures' needs are checked without --target)")
        d, v = parts[1], parts[3]
        for kind, name in (("dataset", d), ("variant", v)):
            if name not in config[f"{kind}s"]:
                raise UsageError(f"--target {t}: no {kind} {name!r} in the config")
        if config["variants"][v]["method"] == "none":
            raise UsageError(f"--target {t}: variant {v!r} anonymizes nothing (method none); "
                             "export an anonymizing variant")
        out.append((d, v))
    return out


def package_needs(config: dict[str, Any], exports: Sequence[tuple[str, str]] = ()
                  ) -> list[tuple[str, str, str | None]]:
    """(python module, what needs it, conda env of its rule or None) for the config's jobs
    (:func:`anonbench.weights.job_packages`), each module once."""
    out: dict[str, tuple[str, str, str | None]] = {}
    for t in config["tables"].values() if not exports else ():
        for module, what, env in W.job_packages(config, "train", {"model": t["model"]}):
            out.setdefault(module, (module, f"{what} (model {t['model']})", env))
    for rule, wc in W._units(config, exports):
        for module, what, env in W.job_packages(config, rule, wc):
            where = f" (variant {wc['variant']})" if rule == "anonymize_realistic" else ""
            out.setdefault(module, (module, what + where, env))
    return list(out.values())


def cmd_check(args) -> int:
    from .config import ConfigError, check_config, check_dataset_root

    failures = 0
    try:
        config = load_config(args.configfile)
        exports = export_targets(config, args.target)
    except UsageError as e:
        print(f"config:   FAIL {e}")
        return 1
    print("config:   ok (schema, defaults and cross-checks as the Snakefile applies them)")
    try:
        check_config(copy.deepcopy(config), check_roots=not exports)
        names = dict.fromkeys(d for d, _ in exports) if exports else config["datasets"]
        for name in names if exports else ():  # --target: its datasets only
            check_dataset_root(config, name)
        roots = [f"{n}={config['datasets'][n]['root']}" for n in names
                 if "root" in config["datasets"][n]]
        print("datasets: ok" + (f" ({', '.join(roots)})" if roots else " (generated)"))
    except ConfigError as e:
        failures += 1
        print(f"datasets: FAIL {e}")
    files = W.needed_files(config, exports)
    bad = [s for s in (W.status(f, args.dest) for f in files) if not s.ok]
    if bad:
        failures += 1
        print(f"weights:  FAIL {len(bad)} of {len(files)} model file(s) missing or wrong "
              f"(fetch: {W.FETCH_HINT})")
        for s in bad:
            print(f"          {s.line()}")
    else:
        print(f"weights:  ok ({len(files)} model file(s))" if files else
              "weights:  ok (none needed outside the installed wheels)")
    conda = args.sdm == "conda"
    for module, what, env in package_needs(config, exports):
        if conda and env:
            print(f"packages: conda {module} ({what}): --sdm conda builds {env}")
        elif conda:
            failures += 1
            print(f"packages: FAIL {module} ({what}) is in no conda env of the workflow: run "
                  "without --sdm conda in an environment that has it")
        elif importlib.util.find_spec(module) is not None:
            print(f"packages: ok   {module} ({what})")
        else:
            failures += 1
            hint = ("pip install 'anonbench[faces]' / 'anonbench[pose]'" if env in (
                None, "envs/base.yaml") else f"run snakemake with --sdm conda (its rule uses "
                                             f"{env}), or install it here")
            print(f"packages: FAIL {module} ({what}) is not importable here: {hint}")
    if not conda and any(env not in (None, "envs/base.yaml")
                         for _, _, env in package_needs(config, exports)):
        print("hint:     on a cluster, `snakemake --profile profiles/slurm --sdm conda ...` builds "
              "the rules' environments (envs/*.yaml); check with `anonbench check --sdm conda`")
    print("result:   " + ("ok" if not failures else f"{failures} problem(s); a real run stops "
                                                    "at the preflight"))
    return 1 if failures else 0


# --- main -------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="anonbench", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    def config_args(p):
        p.add_argument("--configfile", nargs="+", metavar="F",
                       help="config files, merged in order as Snakemake merges them "
                            "(default: config.yaml)")
        p.add_argument("--dest", metavar="DIR", default=None,
                       help=f"the weights directory instead of ${W.ENV} / the loaders' caches")

    w = sub.add_parser("weights", help="the model files a config needs")
    wsub = w.add_subparsers(dest="action", required=True)
    p = wsub.add_parser("list", help="each needed file: checksum, size, where, status, sources")
    config_args(p)
    p.add_argument("--all", action="store_true", help="the whole registry, not a config's files")
    p = wsub.add_parser("check", help="exit 0 only when every needed file is present and matches")
    config_args(p)
    p = wsub.add_parser("fetch", help="download what is missing (mirror first, then the sources)")
    config_args(p)
    p.add_argument("--mirror", metavar="URL", help="a base URL (or directory) holding <name>")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per connection/read")
    c = sub.add_parser("check", help="the preflight report: config, dataset roots, weights, "
                                     "packages")
    config_args(c)
    c.add_argument("--sdm", choices=["conda", "none"], default="none",
                   help="conda: the rules' conda environments provide their packages")
    c.add_argument("--target", nargs="+", metavar="T",
                   help="also what these export targets need (results/DATASET/export/VARIANT)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "weights":
            return cmd_weights(args)
        return cmd_check(args)
    except UsageError as e:
        print(f"anonbench: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
