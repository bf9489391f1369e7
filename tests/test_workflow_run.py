"""The real workflow, executed: a tiny world end to end, resumption, and the rerun triggers."""

import json

import pytest

from conftest import job_counts, snakemake, write_config


def tiny(config):
    config["datasets"]["demo"]["generate"].update({"train_images": 10, "val_images": 4})
    config["datasets"]["demo"]["shards"] = 2
    for v in ("face-maskout", "body-blur"):
        config["variants"].pop(v)
    t = config["tables"]["table1"]
    t["variants"] = ["original", "face-blur", "body-maskout"]
    config["seeds"] = [0, 1]
    config["models"]["maskrcnn-demo"].update({"iterations": 2, "batch_size": 2})
    return config


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import yaml

    from conftest import load_config

    work = tmp_path_factory.mktemp("tiny")
    cfg = write_config(work / "tiny.yaml", tiny(load_config()))
    p = snakemake(work, configfile=cfg)
    return work, cfg, yaml.safe_load(open(cfg)), p


def test_tiny_world_end_to_end(tiny_run):
    work, _, config, p = tiny_run
    md = (work / "results/tables/table1.md").read_text()
    assert md.splitlines()[2].startswith("> Demo world")
    rows = [l for l in md.splitlines()
            if l.startswith("| ") and not l.startswith(("| variant", "| ---"))]
    assert [r.split("|")[1].strip() for r in rows] == config["tables"]["table1"]["variants"]
    for r in rows:
        assert r.count("±") == 3  # every cell filled: mean ± stderr over 2 seeds
    rec = json.loads((work / "results/demo/metrics/body-maskout/maskrcnn-demo/seed1.json")
                     .read_text())
    assert rec["variant"] == "body-maskout" and rec["seed"] == 1
    assert "segm/AP_person" in rec["metrics"]
    # the original variant trains on the original images, not on copies
    m = json.loads((work / "results/demo/anonymized/original/train.json").read_text())
    assert m["info"]["image_root"].endswith("world/train2017")
    assert not (work / "results/demo/anonymized/original/000").exists()


def test_nothing_to_do_after_a_complete_run(tiny_run):
    work, cfg, _, _ = tiny_run
    p = snakemake(work, "-n", configfile=cfg)
    assert "Nothing to be done" in p.stdout + p.stderr


def test_changing_one_variant_reruns_only_that_variant(tiny_run, tmp_path):
    work, _, config, _ = tiny_run
    config["variants"]["face-blur"]["sigma"] = 3
    cfg = write_config(tmp_path / "changed.yaml", config)
    p = snakemake(work, "-n", configfile=cfg)
    out = p.stdout + p.stderr
    counts = job_counts(out)
    counts.pop("all", None)  # the target rule reruns whenever anything does
    assert counts == {"anonymize": 2, "variant_manifest": 1, "train": 2, "evaluate": 2,
                      "table": 1}
    assert "body-maskout" not in "".join(l for l in out.splitlines() if "wildcards:" in l)
