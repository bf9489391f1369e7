"""The annotation rules in the real Snakefile (dry runs): keypoints jobs only where keypoints
are estimated, GPU hints for slow models, and schema errors for unknown models."""

import re

from conftest import job_counts, snakemake, write_config


def _jobs(output, rule):
    """The printed blocks of a dry run's jobs of one rule."""
    blocks = re.split(r"\n(?=\[|rule |localrule )", output)
    return [b for b in blocks if b.startswith((f"rule {rule}:", f"localrule {rule}:"))]


def test_estimated_keypoints_get_a_job_per_shard_and_feed_the_faces(demo_config, tmp_path):
    d = demo_config["datasets"]["demo"]
    d["keypoints"] = {"estimator": "vitpose"}
    d["faces"] = {"detector": "keypoints"}  # face boxes from the estimated keypoints
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    targets = [f"results/demo/faces/{s:03d}.json" for s in range(d["shards"])]
    p = snakemake(tmp_path, "-n", *targets, configfile=cfg)
    out = p.stdout + p.stderr
    counts = job_counts(out)
    assert counts["keypoints"] == counts["faces"] == d["shards"]
    for job in _jobs(out, "faces"):
        assert re.search(r"input: .*results/demo/keypoints/\d+\.json", job)
        assert "gpu=0" in job
    assert all("gpu=1" in job for job in _jobs(out, "keypoints"))


def test_groundtruth_keypoints_have_no_rule_and_dsfd_asks_for_a_gpu(demo_config, tmp_path):
    demo_config["datasets"]["demo"]["faces"] = {"detector": "dsfd", "threshold": 0.2}
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    p = snakemake(tmp_path, "-n", "results/demo/faces/000.json", configfile=cfg)
    out = p.stdout + p.stderr
    assert "keypoints" not in job_counts(out)
    (job,) = _jobs(out, "faces")
    assert "gpu=1" in job and "keypoints" not in job.split("output:")[0]
    p = snakemake(tmp_path, "-n", "results/demo/keypoints/000.json", configfile=cfg, check=False)
    assert p.returncode != 0


def test_unknown_detector_is_a_config_error(demo_config, tmp_path):
    demo_config["datasets"]["demo"]["faces"] = {"detector": "retinaface"}
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    p = snakemake(tmp_path, "-n", configfile=cfg, check=False)
    assert p.returncode != 0
    assert "invalid config: datasets.demo.faces.detector" in p.stdout + p.stderr
