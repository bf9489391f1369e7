"""Realistic variants in the real Snakefile (dry runs) and in the config schema."""

import copy
import re

import pytest

from anonbench.config import check_config, schema_error
from conftest import job_counts, load_config, snakemake, write_config


def _jobs(output, rule):
    blocks = re.split(r"\n(?=\[|rule |localrule )", output)
    return [b for b in blocks if b.startswith((f"rule {rule}:", f"localrule {rule}:"))]


def test_anonymize_asks_for_a_gpu_only_for_deepprivacy2(demo_config, tmp_path):
    demo_config["variants"]["body-realistic-dp2"] = {**demo_config["variants"]["body-realistic"],
                                                     "generator": "dp2"}
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    targets = [f"results/demo/anonymized/{v}/000"
               for v in ("body-realistic", "body-realistic-dp2", "body-blur", "face-realistic")]
    out = snakemake(tmp_path, "-n", *targets, configfile=cfg).stdout
    jobs = {re.search(r"anonymized/([^/]+)/000", j).group(1): j
            for j in _jobs(out, "anonymize") + _jobs(out, "anonymize_realistic")}
    assert set(jobs) == {"body-realistic", "body-realistic-dp2", "body-blur", "face-realistic"}
    assert "gpu=1" in jobs["body-realistic-dp2"]
    for v in ("body-realistic", "body-blur", "face-realistic"):
        assert "gpu=0" in jobs[v]
    assert re.search(r"input: .*results/demo/faces/000\.json", jobs["face-realistic"])


def test_realistic_table_builds_its_variants(demo_config, tmp_path):
    names = [v for v, c in demo_config["variants"].items() if c["method"] == "realistic"]
    assert len(names) == 8
    demo_config["tables"]["table1-realistic"] = {
        **copy.deepcopy(demo_config["tables"]["table1"]), "variants": ["original", *names]}
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    p = snakemake(tmp_path, "-n", "results/tables/table1-realistic.md", configfile=cfg)
    counts = job_counts(p.stdout)
    shards = demo_config["datasets"]["demo"]["shards"]
    assert counts["anonymize_realistic"] == len(names) * shards and "anonymize" not in counts
    # and the run whose backbone maskrcnn-demo starts from (backbone_weights), once
    assert counts["train"] == (len(names) + 1) * len(demo_config["seeds"]) + 1


def test_paper_config_has_the_same_rows_with_deepprivacy2():
    paper, demo = load_config("config/paper.yaml"), load_config()
    real = {k: v for k, v in demo["variants"].items() if v["method"] == "realistic"}
    for name, v in real.items():
        assert paper["variants"][name] == {**v, "generator": "dp2"}


@pytest.mark.parametrize("change, message", [
    ({"truncation": "bimodal"}, "variants.body-realistic.truncation"),
    ({"generator": "stylegan"}, "variants.body-realistic.generator"),
    ({"truncation_value": 1.5}, "variants.body-realistic.truncation_value"),
    ({"checkpoints": {"car": "x.ckpt"}}, "variants.body-realistic.checkpoints"),
])
def test_bad_realistic_options_are_schema_errors(change, message):
    config = load_config()
    config["variants"]["body-realistic"].update(change)
    assert schema_error(config).startswith(message)


def test_demo_config_with_realistic_variants_is_valid():
    config = load_config()
    assert schema_error(config) is None
    check_config(config)


def test_estimated_keypoints_reach_the_realistic_generators_only(demo_config, tmp_path):
    """`keypoints.estimator` (ViTPose where a dataset has none) was read by the face detector
    only: the keypoint-conditioned body generators drew figures without them."""
    demo_config["datasets"]["demo"]["keypoints"] = {"estimator": "vitpose"}
    demo_config["datasets"]["demo"]["faces"] = {"detector": "centerface"}
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    targets = [f"results/demo/anonymized/{v}/000" for v in ("body-realistic", "body-blur")]
    out = snakemake(tmp_path, "-n", *targets, configfile=cfg).stdout
    realistic, = _jobs(out, "anonymize_realistic")
    assert re.search(r"input: .*results/demo/keypoints/000\.json", realistic)
    blur, = _jobs(out, "anonymize")
    assert "keypoints" not in blur
    assert job_counts(out)["keypoints"] == 1
