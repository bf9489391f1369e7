"""Dry run of the full paper matrix: wall time and job count.  Not a test.

Builds a throw-away copy of config/paper.yaml whose dataset roots are empty stand-ins holding
only the files the parse-time check looks for, with ``--shards`` shards per dataset (default 64),
and times ``snakemake -n`` for every table (rule ``all``)::

    python benchmarks/bench_dry_run.py             # goal: <= 10 s on 2 cores
    python benchmarks/bench_dry_run.py --shards 16 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from anonbench.datasets import ROOT_MARKERS  # noqa: E402


def fake_root(root: Path, fmt: str) -> None:
    for split in ("train", "val"):
        for marker in ROOT_MARKERS[fmt]:
            path = root / marker.split("|")[0].format(split=split)
            if path.suffix == ".json":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("{}")
            else:
                path.mkdir(parents=True, exist_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "config/paper.yaml"))
    ap.add_argument("--shards", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    config = yaml.safe_load(open(args.config))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, d in config["datasets"].items():
            d.pop("generate", None)
            d["root"] = str(tmp / "data" / name)
            d["shards"] = args.shards
            fake_root(Path(d["root"]), d["format"])
        cfg = tmp / "paper.yaml"
        cfg.write_text(yaml.safe_dump(config, sort_keys=False))
        snakemake = str(Path(sys.executable).with_name("snakemake"))
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            p = subprocess.run([snakemake, "-n", "-s", str(REPO / "Snakefile"), "-d", str(tmp),
                                "--configfile", str(cfg), "--replace-workflow-config",
                                "--cores", "2", "--quiet", "rules"], capture_output=True,
                               text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            times.append(time.perf_counter() - t0)
            if p.returncode:
                sys.exit(p.stdout + p.stderr)
    counts = {}
    for line in (p.stdout + p.stderr).splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m:
            counts[m.group(1)] = int(m.group(2))
    total = counts.pop("total", sum(counts.values()))
    print(f"paper matrix: {len(config['datasets'])} datasets x {args.shards} shards, "
          f"{len(config['variants'])} variants, {len(config['models'])} models, "
          f"{len(config['seeds'])} seeds, {len(config['tables'])} tables")
    for rule, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {rule:<20} {n:>6}")
    print(f"  {'total':<20} {total:>6}")
    print(f"dry run wall time: {' '.join(f'{t:.1f}' for t in times)} s (goal <= 10 s on 2 cores)")


if __name__ == "__main__":
    main()
