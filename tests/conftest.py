import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


# `make test` runs two pytest-xdist workers with `--dist loadfile --no-loadscope-reorder`. Each
# test file goes whole to a worker (its module fixtures are built once), except a test LONG_FIRST
# names, which is a unit of its own. LONG_FIRST's units are handed out first, in its order: the
# first to one worker, the second to the other, the third after the first on the first worker.
# So the two SLURM units, which mostly wait for SLURM, run side by side (each on a cluster of its
# own), then the demo trainings beside the short tests.
LONG_FIRST = (
    # trains over attempts of SLURM's shortest time limit (1 minute), each taking its minute
    # however fast it trains: the more the other worker trains beside it, the more attempts
    # (one process: 143 s; beside the SLURM study: 229 s)
    "tests/test_slurm.py::test_training_longer_than_its_time_limit_finishes_over_attempts",
    # the SLURM study, 3 minutes
    "tests/test_slurm.py",
    # 7 demo trainings, both cores busy: 5-6 minutes alone
    "tests/test_demo_direction.py",
)


def _unit(nodeid: str) -> str:
    """The xdist work unit of a test: its file, or the test where LONG_FIRST names it."""
    return nodeid if nodeid in LONG_FIRST else nodeid.split("::", 1)[0]


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongFirst(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    return LongFirst(config, log)


def pytest_collection_modifyitems(config, items):
    """On an xdist worker: LONG_FIRST's units first, in its order (the scheduler hands out the
    units in the order of the collection)."""
    if hasattr(config, "workerinput"):
        def rank(item):
            unit = _unit(item.nodeid)
            return LONG_FIRST.index(unit) if unit in LONG_FIRST else len(LONG_FIRST)
        items.sort(key=rank)  # stable


def load_config(name="config.yaml"):
    with open(REPO / name) as f:
        return yaml.safe_load(f)


def snakemake(workdir, *args, configfile=None, check=True, timeout=900):
    """Run the repo's workflow in ``workdir`` with the same Python; returns CompletedProcess."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--cores", "2"]
    if configfile is not None:
        cmd += ["--configfile", str(configfile), "--replace-workflow-config"]
    cmd += list(args)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"snakemake failed ({p.returncode}):\n{p.stdout[-4000:]}\n"
                             f"{p.stderr[-6000:]}")
    return p


def job_counts(output):
    """The 'Job stats' table of a snakemake run or dry run, as {rule: count}."""
    lines = output.splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "Job stats:")
    counts = {}
    for line in lines[start + 3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def write_config(path, config):
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path


def pretrain_worlds(config):
    """The datasets that the config's models learn their backbones on (``backbone_weights``:
    config.yaml's pretrain world), as {name: dataset}."""
    names = {m["backbone_weights"]["dataset"] for m in config["models"].values()
             if isinstance(m.get("backbone_weights"), dict)}
    return {k: d for k, d in config["datasets"].items() if k in names}


def shrink_pretraining(config, train_images=4, iterations=2):
    """The backbone runs at test size: their worlds' images and their models' iterations."""
    for m in config["models"].values():
        w = m.get("backbone_weights")
        if isinstance(w, dict):
            config["datasets"][w["dataset"]]["generate"].update(
                {"train_images": train_images, "val_images": 2})
            config["datasets"][w["dataset"]]["shards"] = 1
            config["models"][w["model"]].update({"iterations": iterations, "batch_size": 2})
    return config


def from_scratch(config):
    """The config's models without ``backbone_weights`` (trained from scratch), and without the
    worlds and models only their backbones needed: for tests of other mechanics."""
    worlds = pretrain_worlds(config)
    sources = {m["backbone_weights"]["model"] for m in config["models"].values()
               if isinstance(m.get("backbone_weights"), dict)}
    for m in config["models"].values():
        m.pop("backbone_weights", None)
    used = {t["model"] for t in config["tables"].values()}
    config["models"] = {k: m for k, m in config["models"].items()
                        if k not in sources or k in used}
    config["datasets"] = {k: d for k, d in config["datasets"].items() if k not in worlds}
    return config


def street_only(config):
    """config.yaml's street world alone: its table1 and dataset `demo`, and the world its
    model's backbone learns on (the close-up world's table3 and dataset dropped, the box-size
    figure on the street world only). For tests sized for one table."""
    config["tables"] = {"table1": config["tables"]["table1"]}
    config["datasets"] = {"demo": config["datasets"]["demo"], **pretrain_worlds(config)}
    for fig in config.get("figures", {}).values():
        if "datasets" in fig:
            fig["datasets"] = [d for d in fig["datasets"] if d == "demo"]
    config["targets"] = {k: t for k, t in config.get("targets", {}).items()
                         if set(t.get("tables", [])) <= set(config["tables"])}
    return config


@pytest.fixture
def demo_config():
    return copy.deepcopy(load_config())


@pytest.fixture
def paper_config():
    return copy.deepcopy(load_config("config/paper.yaml"))


def check_predictions(results, manifest, arch):
    """A backend's predictions are COCO results that fit the manifest: known categories, boxes
    inside the image, masks at image size (mask_rcnn), 17 keypoints (keypoint_rcnn)."""
    from anonbench.manifest import annotation_mask

    assert results, "no detections at score threshold 0"
    assert {r["category_id"] for r in results} <= {c["id"] for c in manifest["categories"]}
    img = {i["id"]: i for i in manifest["images"]}
    for r in results[:20]:
        size = img[r["image_id"]]
        x, y, w, h = r["bbox"]
        assert w >= 0 and h >= 0 and x >= -1 and x + w <= size["width"] + 1
        if arch == "mask_rcnn":
            mask = annotation_mask(r, size["height"], size["width"])
            assert mask.shape == (size["height"], size["width"])
        else:
            assert len(r["keypoints"]) == 51


def fake_coco_root(root):
    """The files the parse-time check looks for (their contents are never read in a dry run)."""
    for split in ("train", "val"):
        (root / f"{split}2017").mkdir(parents=True, exist_ok=True)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        for kind in ("instances", "person_keypoints"):
            (root / "annotations" / f"{kind}_{split}2017.json").write_text("{}")
    return root
