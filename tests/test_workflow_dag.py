"""The DAG: which jobs a target needs, counted from dry runs of the real Snakefile."""

import copy

from conftest import fake_coco_root, job_counts, snakemake, street_only, write_config


def expected_jobs(config, table):
    """The jobs a table needs, as {rule: set of job keys} (sets, so that tables can share)."""
    t = config["tables"][table]
    name = t["dataset"]
    d = config["datasets"][name]
    seeds = t.get("seeds", config["seeds"])
    variants = {v: config["variants"][v] for v in t["variants"]}
    anonymized = [v for v, c in variants.items() if c["method"] != "none"]
    shards = range(d["shards"])
    jobs = {"prepare": {(name, s) for s in ("train", "val")}, "shards": {name},
            "check_images": {(name, k) for k in range(d["shards"])},
            "check_val_images": {name},
            "faces": ({(name, k) for k in shards}
                      if any(c.get("region") == "face" for c in variants.values()) else set()),
            "anonymize": {(name, v, k) for v in anonymized for k in shards
                          if variants[v]["method"] != "realistic"},
            "anonymize_realistic": {(name, v, k) for v in anonymized for k in shards
                                    if variants[v]["method"] == "realistic"},
            "variant_manifest": {(name, v) for v in variants},
            "train": {(name, v, t["model"], s) for v in variants for s in seeds},
            "evaluate": {(name, v, t["model"], s) for v in variants for s in seeds},
            "table": {table}}
    # every shard of a trained variant is audited before its training (variant_manifest)
    jobs["audit_shard"] = {(name, v, k) for v in anonymized for k in shards}
    if t.get("privacy", True):  # the privacy audit's column: the merged audit per variant
        jobs["audit"] = {(name, v) for v in anonymized}
    if "generate" in d:
        jobs["demo_world"] = {name}
    w = config["models"][t["model"]].get("backbone_weights")
    if isinstance(w, dict):  # the run whose backbone the model starts from: trained first
        src = config["datasets"][w["dataset"]]
        for rule, keys in {"prepare": {(w["dataset"], s) for s in ("train", "val")},
                           "shards": {w["dataset"]}, "check_val_images": {w["dataset"]},
                           "check_images": {(w["dataset"], k) for k in range(src["shards"])},
                           "variant_manifest": {(w["dataset"], "original")},
                           "train": {(w["dataset"], "original", w["model"], w.get("seed", 0))},
                           "demo_world": {w["dataset"]} if "generate" in src else set()}.items():
            jobs.setdefault(rule, set()).update(keys)
    return jobs


def expected_counts(config, *tables):
    """Job counts of the given tables together (shared jobs counted once)."""
    union = {}
    for table in tables:
        for rule, keys in expected_jobs(config, table).items():
            union.setdefault(rule, set()).update(keys)
    return {rule: len(keys) for rule, keys in union.items() if keys}


def fake_cityscapes_root(root):
    for split in ("train", "val"):
        for d in ("leftImg8bit", "gtFine"):
            (root / d / split).mkdir(parents=True, exist_ok=True)
    return root


def fake_bdd100k_root(root):
    for split in ("train", "val"):
        (root / "images" / "10k" / split).mkdir(parents=True, exist_ok=True)
        rles = root / "labels" / "ins_seg" / "rles"
        rles.mkdir(parents=True, exist_ok=True)
        (rles / f"ins_seg_{split}.json").write_text("[]")
    return root


def fake_paper_roots(paper_config, tmp_path):
    """Point the paper config's three datasets at files the parse-time check accepts."""
    ds = paper_config["datasets"]
    ds["coco"]["root"] = str(fake_coco_root(tmp_path / "coco"))
    ds["cityscapes"]["root"] = str(fake_cityscapes_root(tmp_path / "cityscapes"))
    ds["bdd100k"]["root"] = str(fake_bdd100k_root(tmp_path / "bdd100k"))
    return paper_config


def test_paper_table_dry_run_lists_exactly_the_needed_jobs(paper_config, tmp_path):
    fake_paper_roots(paper_config, tmp_path)
    cfg = write_config(tmp_path / "paper.yaml", paper_config)
    p = snakemake(tmp_path, "-n", "results/tables/table3.md", configfile=cfg)
    counts = job_counts(p.stdout + p.stderr)
    assert counts == expected_counts(paper_config, "table3")
    assert counts["anonymize"] == 4 * 64 and counts["anonymize_realistic"] == 4 * 64
    assert counts["train"] == 9 * 3


def test_paper_all_tables_share_jobs(paper_config, tmp_path):
    fake_paper_roots(paper_config, tmp_path)
    cfg = write_config(tmp_path / "paper.yaml", paper_config)
    counts = job_counts(snakemake(tmp_path, "-n", configfile=cfg).stdout)
    # tableA2's variants are a subset of table3's: anonymization is shared, training is not;
    # table1 (Cityscapes, 16 shards) and table2 (BDD100K, 16 shards) add their own jobs, and
    # the realistic ablations (Cityscapes) share table1's runs of the variants both have; the
    # depth (R-101, R-152: 3 variants), no-person (4 variants) and RetinaNet (table3's 9
    # variants) ablations add training runs only (their variants are anonymized already), and
    # ablation-depth-r50 adds none (table1's runs)
    assert counts["anonymize"] == 4 * 64 + 4 * 16 + 4 * 16
    assert counts["anonymize_realistic"] == 4 * 64 + 8 * 16 + 4 * 16
    assert counts["train"] == 27 + 12 + 27 + 27 + 4 * 3 + 2 * 9 + 12 + 27
    assert counts["table"] == 10
    assert counts["prepare"] == 3 * 2
    expected = expected_counts(paper_config, *paper_config["tables"])
    # the figures draw from the tables' jobs: one job each, nothing else
    expected.update({"all": 1, "figure": len(paper_config["figures"])})
    assert counts == expected


def test_paper_cityscapes_table_builds_only_cityscapes_jobs(paper_config, tmp_path):
    fake_paper_roots(paper_config, tmp_path)
    cfg = write_config(tmp_path / "paper.yaml", paper_config)
    p = snakemake(tmp_path, "-n", "results/tables/table1.md", configfile=cfg)
    assert job_counts(p.stdout) == expected_counts(paper_config, "table1")
    assert "results/coco/" not in p.stdout and "results/bdd100k/" not in p.stdout


def test_demo_worlds_in_all_three_formats(demo_config, tmp_path):
    """One config, the demo world as COCO, Cityscapes and BDD100K datasets: one chain each."""
    cfg = street_only(copy.deepcopy(demo_config))
    demo = cfg["datasets"]["demo"]
    for fmt in ("cityscapes", "bdd100k"):
        cfg["datasets"][f"demo_{fmt}"] = {**copy.deepcopy(demo), "format": fmt}
        cfg["tables"][f"table_{fmt}"] = {**copy.deepcopy(cfg["tables"]["table1"]),
                                         "dataset": f"demo_{fmt}"}
        # Cityscapes' toolkit evaluates masks only
        cfg["tables"][f"table_{fmt}"]["metrics"] = {"AP": "segm/AP",
                                                    "AP_person": "segm/AP_person"}
    path = write_config(tmp_path / "c.yaml", cfg)
    counts = job_counts(snakemake(tmp_path, "-n", configfile=path).stdout)
    expected = expected_counts(cfg, *cfg["tables"])
    expected.update({"all": 1, "figure": len(cfg["figures"])})
    assert counts == expected
    # the three formats' worlds and the pretrain world of maskrcnn-demo's backbone
    assert counts["demo_world"] == 4 and counts["prepare"] == 8 and counts["table"] == 3


def test_demo_default_target(demo_config, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    counts = job_counts(snakemake(tmp_path, "-n", configfile=cfg).stdout)
    expected = expected_counts(demo_config, *demo_config["tables"])  # both worlds' tables
    assert set(demo_config["tables"]) == {"table1", "table3"}
    expected.update({"all": 1, "figure": len(demo_config["figures"])})
    assert counts == expected


def test_demo_targets_split_the_run_by_world(demo_config, tmp_path):
    """`make demo-street` builds target street (table1 and the figures), `make demo-closeup`
    target closeup (table3): together the jobs of the whole run (`make demo`), no training in
    both."""
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    street = job_counts(snakemake(tmp_path, "-n", "street", configfile=cfg).stdout)
    closeup = job_counts(snakemake(tmp_path, "-n", "closeup", configfile=cfg).stdout)
    # the box-size figure draws both worlds: the close-up world is made and its training set
    # prepared, nothing more of it
    expected = expected_counts(demo_config, "table1")
    expected.update({"demo_world": expected["demo_world"] + 1,
                     "prepare": expected["prepare"] + 1, "figure": len(demo_config["figures"]),
                     "street": 1})
    assert street == expected
    assert closeup == {**expected_counts(demo_config, "table3"), "closeup": 1}
    # each part trains the pretrain world's backbone run (one run, shared by `make demo`)
    assert street["train"] + closeup["train"] - 2 == sum(
        len(t["variants"]) * len(demo_config["seeds"]) for t in demo_config["tables"].values())


def test_target_named_like_a_rule_is_refused(demo_config, tmp_path):
    demo_config["targets"]["train"] = {"tables": ["table1"]}
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    p = snakemake(tmp_path, "-n", "street", configfile=cfg, check=False)
    assert p.returncode != 0
    assert "targets.train: 'train' is the name of a rule of the workflow" in p.stdout + p.stderr


def test_one_metrics_file_builds_only_its_chain(demo_config, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    p = snakemake(tmp_path, "-n", "results/demo/metrics/body-blur/maskrcnn-demo/seed1.json",
                  configfile=cfg)
    shards = demo_config["datasets"]["demo"]["shards"]
    pretrain = demo_config["datasets"]["pretrain"]["shards"]  # its backbone's run, first
    assert job_counts(p.stdout) == {"demo_world": 2, "prepare": 4, "shards": 2,
                                    "check_images": shards + pretrain, "check_val_images": 2,
                                    "anonymize": shards, "audit_shard": shards,
                                    "variant_manifest": 2, "train": 2, "evaluate": 1}


def test_every_job_has_its_own_log(demo_config, tmp_path):
    """Log names joined the wildcards with '_', which names may contain: variant body-blur_000's
    audit log was shard 000's audit log of body-blur, and one overwrote the other."""
    import re

    cfg = copy.deepcopy(demo_config)
    cfg["variants"]["body-blur_000"] = dict(cfg["variants"]["body-maskout"])
    cfg["datasets"]["demo_face"] = copy.deepcopy(cfg["datasets"]["demo"])
    cfg["variants"]["blur"] = dict(cfg["variants"]["face-blur"])
    write_config(tmp_path / "c.yaml", cfg)
    targets = ["results/demo/export/body-blur_000", "results/demo/export/body-blur",
               "results/demo/export/face-blur", "results/demo_face/export/blur",
               "results/tables/table1.md"]
    p = snakemake(tmp_path, "-n", *targets, configfile=tmp_path / "c.yaml")
    logs = re.findall(r"^\s*log: (\S+)", p.stdout, re.M)
    assert len(logs) > 40
    assert len(logs) == len(set(logs)), sorted(l for l in logs if logs.count(l) > 1)


def test_the_val_check_reads_the_train_split(demo_config, tmp_path):
    """The val images are checked against the train split's files (val images that are train
    images are refused) before any training job can start."""
    import re

    cfg = write_config(tmp_path / "c.yaml", demo_config)
    p = snakemake(tmp_path, "-n", "results/demo/metrics/original/maskrcnn-demo/seed0.json",
                  configfile=cfg)
    blocks = re.findall(r"rule check_val_images:\n((?:    .*\n)+)", p.stdout)
    block = next((b for b in blocks if "results/demo/prepared/val.json" in b), None)
    assert block, p.stdout[-3000:]
    inputs = re.search(r"input: (.*)", block).group(1).split(", ")
    assert sorted(inputs) == ["results/demo/prepared/train.json", "results/demo/prepared/val.json"]


def test_gpu_annotators_and_anonymizers_wait_for_their_shards_image_check(paper_config, tmp_path):
    """DSFD faces, ViTPose keypoints and DeepPrivacy2 anonymization (GPU jobs on a cluster)
    start on a shard only after its images were decoded in full: a corrupt image stops the
    workflow before any GPU hour is spent on that shard."""
    import re

    fake_paper_roots(paper_config, tmp_path)
    paper_config["datasets"]["cityscapes"]["keypoints"] = {"estimator": "vitpose"}
    cfg = write_config(tmp_path / "paper.yaml", paper_config)
    p = snakemake(tmp_path, "-n", "results/cityscapes/anonymized/body-realistic/003",
                  "results/cityscapes/anonymized/face-blur/005", configfile=cfg)
    seen = set()
    for rule, block in re.findall(r"^rule (\w+):\n((?:    .*\n)+)", p.stdout, re.M):
        if rule not in ("faces", "keypoints", "anonymize", "anonymize_realistic"):
            continue
        shard = re.search(r"output: results/cityscapes/\S*/(\d{3})(?:\.json)?\b", block).group(1)
        inputs = re.search(r"input: (.*)", block).group(1).split(", ")
        assert f"results/cityscapes/prepared/checked/{shard}.json" in inputs, (rule, block)
        seen.add((rule, shard))
    assert seen == {("faces", "005"), ("anonymize", "005"), ("keypoints", "003"),
                    ("anonymize_realistic", "003")}, seen
