"""The three dataset formats together: registry, root checks, the prepare step and rule."""

import copy
import json

import pytest

from anonbench import steps
from anonbench.config import ConfigError, annotation_inputs, check_config
from anonbench.datasets import (FORMATS, ROOT_MARKERS, STUDY_PERSONS_KEPT, annotation_files, demo,
                                missing_root_files, summary_line)
from anonbench.manifest import load_manifest
from anonbench.shards import split_shards
from conftest import job_counts, snakemake, street_only, write_config

pytest.importorskip("cityscapesscripts")


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    base = tmp_path_factory.mktemp("layouts")
    for fmt in ("coco", "cityscapes", "bdd100k"):
        demo.generate_world_in_layout(base / fmt, fmt, seed=2, n_train=6, n_val=3)
    return {fmt: base / fmt for fmt in ("coco", "cityscapes", "bdd100k")}


def test_every_format_has_a_loader_markers_and_the_studys_count():
    assert set(FORMATS) == set(ROOT_MARKERS) == set(STUDY_PERSONS_KEPT) == \
        {"coco", "cityscapes", "bdd100k"}


@pytest.mark.parametrize("fmt", ["coco", "cityscapes", "bdd100k"])
def test_prepare_each_format_on_the_demo_world_in_its_layout(layouts, fmt, tmp_path, capsys):
    root = layouts[fmt]
    assert missing_root_files(fmt, str(root)) == []
    counts = {}
    for split in ("train", "val"):
        out = tmp_path / f"{split}.json"
        steps.prepare(fmt, str(root), split, "d", str(out))
        m = load_manifest(out)
        assert m["info"]["format"] == fmt and m["info"]["dataset"] == "d"
        counts[split] = m["info"]["summary"]
        kept = sum(1 for a in m["annotations"] if a.get("anonymize"))
        assert kept == m["info"]["summary"]["persons_kept"] > 0
        assert len(m["images"]) == {"train": 6, "val": 3}[split]
        assert sum(len(s["images"]) for s in split_shards(m, 4)) == len(m["images"])
    out = capsys.readouterr().out
    assert f"d/train ({fmt}): 6 images, {counts['train']['persons_kept']} person instances kept " \
           f"(the study, real {fmt} train set: {STUDY_PERSONS_KEPT[fmt]:,})" in out
    assert f"d/val ({fmt}): 3 images" in out and "the study" not in out.split("d/val")[1]


def test_the_same_persons_in_every_layout(layouts):
    """COCO keeps persons with a keypoint; Cityscapes and BDD100K keep every person instance."""
    from anonbench.datasets import load_split

    coco = load_split("coco", str(layouts["coco"]), "train", "d")
    persons = [a for a in coco["annotations"] if a["category_id"] == 1 and not a["iscrowd"]]
    for fmt in ("cityscapes", "bdd100k"):
        m = load_split(fmt, str(layouts[fmt]), "train", "d")
        assert m["info"]["summary"]["persons_kept"] == len(persons)
        assert m["info"]["summary"]["persons_skipped"]["crowd"] == \
            sum(1 for a in coco["annotations"] if a["iscrowd"])


def test_bdd100k_root_needs_bitmasks_or_rles(tmp_path):
    root = tmp_path / "bdd"
    for split in ("train", "val"):
        (root / "images" / "10k" / split).mkdir(parents=True)
    missing = missing_root_files("bdd100k", str(root))
    assert len(missing) == 2 and "bitmasks/train or " in missing[0]
    rles = root / "labels" / "ins_seg" / "rles"
    rles.mkdir(parents=True)
    for split in ("train", "val"):
        (rles / f"ins_seg_{split}.json").write_text("[]")
    assert missing_root_files("bdd100k", str(root)) == []
    assert annotation_files("bdd100k", str(root), "val") == [str(rles / "ins_seg_val.json")]
    (root / "labels" / "ins_seg" / "bitmasks" / "val").mkdir(parents=True)
    (rles / "ins_seg_val.json").unlink()
    assert missing_root_files("bdd100k", str(root)) == []
    assert annotation_files("bdd100k", str(root), "val") == []


def test_config_checks_cityscapes_and_bdd100k_roots(paper_config, tmp_path):
    paper_config["datasets"] = {"cityscapes": paper_config["datasets"]["cityscapes"]}
    paper_config["tables"] = {"table1": paper_config["tables"]["table1"]}
    paper_config["figures"] = {}
    paper_config["datasets"]["cityscapes"]["root"] = str(tmp_path)
    with pytest.raises(ConfigError, match="datasets.cityscapes.root: not a cityscapes dataset, "
                                          "missing .*leftImg8bit/train and 3 more"):
        check_config(paper_config)
    for d in ("leftImg8bit", "gtFine"):
        for split in ("train", "val"):
            (tmp_path / d / split).mkdir(parents=True)
    check_config(paper_config)
    assert annotation_inputs(paper_config, "cityscapes", "train") == []


def test_summary_line_names_every_skip_reason():
    line = summary_line("bdd", "bdd100k", "train", {
        "images": 7000, "persons_kept": 9954, "persons_skipped": {"crowd": 12, "ignored": 3},
        "skipped_other_category": 0})
    assert line.startswith("bdd/train (bdd100k): 7,000 images, 9,954 person instances kept "
                           "(the study, real bdd100k train set: 9,954)")
    assert "skipped: crowd 12, ignored 3" in line and "skipped_other_category=0" in line


def test_workflow_writes_and_prepares_the_demo_world_in_each_format(demo_config, tmp_path):
    """demo_world + prepare through the real Snakefile for a config holding all three formats."""
    cfg = street_only(copy.deepcopy(demo_config))
    demo_ds = cfg["datasets"]["demo"]
    demo_ds["generate"].update({"train_images": 3, "val_images": 2})
    for fmt in ("cityscapes", "bdd100k"):
        cfg["datasets"][f"demo_{fmt}"] = {**copy.deepcopy(demo_ds), "format": fmt}
    path = write_config(tmp_path / "c.yaml", cfg)
    worlds = ["demo", "demo_cityscapes", "demo_bdd100k"]
    targets = [f"results/{d}/prepared/{s}.json" for d in worlds for s in ("train", "val")]
    p = snakemake(tmp_path, *targets, configfile=path, timeout=300)
    assert job_counts(p.stdout + p.stderr) == {"demo_world": 3, "prepare": 6}
    for d, marker in (("demo", "train2017"), ("demo_cityscapes", "leftImg8bit/train"),
                      ("demo_bdd100k", "labels/ins_seg/bitmasks/train")):
        assert (tmp_path / "results" / d / "world" / marker).is_dir()
        m = json.loads((tmp_path / "results" / d / "prepared" / "train.json").read_text())
        assert len(m["images"]) == 3
        log = (tmp_path / "results" / "logs" / "prepare" / d / "train.log").read_text()
        assert "person instances kept (the study, real" in log
