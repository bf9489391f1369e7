"""The DAG: which jobs a target needs, counted from dry runs of the real Snakefile."""

from conftest import fake_coco_root, job_counts, snakemake, write_config


def expected_counts(config, table):
    t = config["tables"][table]
    d = config["datasets"][t["dataset"]]
    seeds = len(t.get("seeds", config["seeds"]))
    variants = [config["variants"][v] for v in t["variants"]]
    anonymized = [v for v in variants if v["method"] != "none"]
    counts = {"prepare": 2, "shards": 1,
              "faces": d["shards"] if any(v.get("region") == "face" for v in variants) else 0,
              "anonymize": d["shards"] * len(anonymized),
              "variant_manifest": len(variants), "train": len(variants) * seeds,
              "evaluate": len(variants) * seeds, "table": 1}
    if "generate" in d:
        counts["demo_world"] = 1
    return {k: v for k, v in counts.items() if v}


def test_paper_table_dry_run_lists_exactly_the_needed_jobs(paper_config, tmp_path):
    paper_config["datasets"]["coco"]["root"] = str(fake_coco_root(tmp_path / "coco"))
    cfg = write_config(tmp_path / "paper.yaml", paper_config)
    p = snakemake(tmp_path, "-n", "results/tables/table3.md", configfile=cfg)
    counts = job_counts(p.stdout + p.stderr)
    assert counts == expected_counts(paper_config, "table3")
    assert counts["anonymize"] == 4 * 64 and counts["train"] == 15


def test_paper_all_tables_share_jobs(paper_config, tmp_path):
    paper_config["datasets"]["coco"]["root"] = str(fake_coco_root(tmp_path / "coco"))
    cfg = write_config(tmp_path / "paper.yaml", paper_config)
    counts = job_counts(snakemake(tmp_path, "-n", configfile=cfg).stdout)
    # tableA2's variants are a subset of table3's: anonymization is shared, training is not
    assert counts["anonymize"] == 4 * 64
    assert counts["train"] == 15 + 12 and counts["table"] == 2


def test_demo_default_target(demo_config, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    counts = job_counts(snakemake(tmp_path, "-n", configfile=cfg).stdout)
    expected = expected_counts(demo_config, "table1")
    expected["all"] = 1
    assert counts == expected


def test_one_metrics_file_builds_only_its_chain(demo_config, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    p = snakemake(tmp_path, "-n", "results/demo/metrics/body-blur/maskrcnn-demo/seed1.json",
                  configfile=cfg)
    assert job_counts(p.stdout) == {"demo_world": 1, "prepare": 2, "shards": 1,
                                    "anonymize": demo_config["datasets"]["demo"]["shards"],
                                    "variant_manifest": 1, "train": 1, "evaluate": 1}
