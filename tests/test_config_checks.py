"""Issue 14, config part: bad settings stop at parse time with one line; the README's paper
override command works as written (dry run)."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from anonbench.config import (ConfigError, check_config, check_config_files, load_config_files,
                              schema_error)
from conftest import REPO, fake_coco_root, job_counts, snakemake, write_config


# --- table metric keys --------------------------------------------------------------------

@pytest.mark.parametrize("key, message", [
    ("segm/AP_persn", r"'segm/AP_persn' is not a metric the coco evaluation writes for model "
                      r"maskrcnn-demo \(arch mask_rcnn\) \(did you mean segm/AP_person\?\); "
                      r"valid: bbox/\{AP, AP50, .*AP_car\}; segm/\{AP, .*AP_person.*\}$"),
    ("AP", r"tables.table1.metrics.X: 'AP' is not a metric .*valid: bbox/\{AP, "),
    ("segm/AP_giraffe", "'segm/AP_giraffe' is not a metric"),  # not a demo world category
])
def test_unknown_table_metric_key_is_one_line_listing_the_valid_ones(demo_config, key, message):
    demo_config["tables"]["table1"]["metrics"]["X"] = key
    with pytest.raises(ConfigError, match=message) as e:
        check_config(demo_config)
    assert "\n" not in str(e.value)


def test_metric_keys_follow_the_dataset_format(paper_config):
    check_config(paper_config, check_roots=False)
    for table, key in [("table1", "bbox/AP"),            # Cityscapes' evaluation: masks only
                       ("table1", "segm/AP75"),          # ... and AP, AP50 only
                       ("table2", "segm/AP_persn"),
                       ("table3", "keypoints/APs")]:     # COCO keypoints have no APs
        cfg = json.loads(json.dumps(paper_config))
        cfg["tables"][table]["metrics"]["X"] = key
        with pytest.raises(ConfigError, match=f"tables.{table}.metrics.X: '{key}' is not a"):
            check_config(cfg, check_roots=False)
    cfg = json.loads(json.dumps(paper_config))
    cfg["tables"]["table2"]["metrics"].update({"p": "segm/AP_pedestrian", "b": "bbox/AP50"})
    cfg["tables"]["table1"]["metrics"].update({"p50": "segm/AP50_person"})
    check_config(cfg, check_roots=False)
    cfg["figures"]["depth"]["metric"] = "segm/AP_persn"
    with pytest.raises(ConfigError, match="figures.depth.metric: 'segm/AP_persn' is not a"):
        check_config(cfg, check_roots=False)


def test_coco_categories_are_read_from_the_val_annotations(paper_config, tmp_path):
    root = fake_coco_root(tmp_path / "coco")
    cats = [{"id": 1, "name": "person"}, {"id": 3, "name": "traffic light"},
            {"id": 2, "name": "dog"}]
    (root / "annotations" / "instances_val2017.json").write_text(
        json.dumps({"images": [], "annotations": [], "categories": cats}))
    paper_config["datasets"]["coco"]["root"] = str(root)
    paper_config["tables"]["tableA2"]["metrics"].update({"tl": "segm/AP_traffic_light",
                                                         "dog": "bbox/AP_dog"})
    check_config(paper_config, check_roots=False)
    paper_config["tables"]["tableA2"]["metrics"]["cat"] = "segm/AP_cat"
    with pytest.raises(ConfigError, match=r"'segm/AP_cat' is not a metric .*AP_person, AP_dog, "
                                          r"AP_traffic_light"):
        check_config(paper_config, check_roots=False)


def _results(manifest, fields=("bbox", "segmentation", "keypoints")):
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9,
             **{f: a[f] for f in fields if a.get(f) is not None}}
            for a in manifest["annotations"] if not a.get("iscrowd")]


@pytest.mark.parametrize("fmt", ["coco", "cityscapes", "bdd100k"])
def test_keys_the_evaluators_write_are_the_declared_ones(fmt, tmp_path):
    """A tiny real evaluation per format and arch: every key it writes is declared (what the
    parse-time check accepts), so the check and the evaluators cannot drift apart."""
    from anonbench.config import dataset_category_names
    from anonbench.datasets import demo, load_split
    from anonbench.evaluation import evaluate_manifest, metric_keys

    if fmt == "cityscapes":
        pytest.importorskip("cityscapesscripts")
    root = tmp_path / fmt
    if fmt == "coco":
        demo.generate_world(root, seed=3, n_train=1, n_val=3)
    else:
        demo.generate_world_in_layout(root, fmt, seed=3, n_train=1, n_val=3)
    val = load_split(fmt, str(root), "val", "d")
    config = {"datasets": {"d": {"format": fmt, "generate": {}}}}
    names = dataset_category_names(config, "d")
    assert names == [c["name"] for c in sorted(val["categories"], key=lambda c: c["id"])] \
        or fmt == "cityscapes"
    archs = ["mask_rcnn", "keypoint_rcnn", "retinanet"] if fmt == "coco" else ["mask_rcnn"]
    for arch in archs:
        written = evaluate_manifest(val, _results(val), arch)["metrics"]
        declared = metric_keys(fmt, arch, names)
        assert set(written) <= set(declared), (arch, sorted(set(written) - set(declared)))
        assert len(declared) == len(set(declared))
        if fmt != "bdd100k":  # bdd100k declares both of its evaluators' keys
            assert set(written) == set(declared), (arch, set(declared) - set(written))


# --- numeric bounds -----------------------------------------------------------------------

@pytest.mark.parametrize("edit, message", [
    (lambda c: c["variants"]["face-blur"].update({"sigma": 1e9}),
     "variants.face-blur.sigma: 1000000000.0 is greater than the maximum of 100"),
    (lambda c: c["variants"]["face-blur"].update({"sigma": 0}),
     "variants.face-blur.sigma: 0 is less than the minimum of 0.5"),
    # a kernel of 1 pixel: the blur changed nothing, and the audit counted each region as flat
    (lambda c: c["variants"]["face-blur"].update({"sigma": 0.49}),
     "variants.face-blur.sigma: 0.49 is less than the minimum of 0.5"),
    # NaN passes every bound (no comparison with it is true)
    (lambda c: c["variants"]["face-blur"].update({"sigma": float("nan")}),
     "variants.face-blur.sigma: nan is not of type 'number'"),
    (lambda c: c["variants"]["body-realistic-hm"].update({"truncation_value": float("nan")}),
     "variants.body-realistic-hm.truncation_value: nan is not of type 'number'"),
    (lambda c: c["datasets"]["demo"]["faces"].update({"threshold": float("nan")}),
     "datasets.demo.faces.threshold: nan is not of type 'number'"),
    # 2.0 counts as an integer in JSON Schema, and reached range() and seed0.0.json
    (lambda c: c["datasets"]["demo"].update({"shards": 2.0}),
     "datasets.demo.shards: 2.0 is not of type 'integer'"),
    (lambda c: c.update({"seeds": [0.0, 1]}), "seeds.0: 0.0 is not of type 'integer'"),
    (lambda c: c["variants"]["body-realistic-hm"].update({"hm_sigma": 1e9}),
     "variants.body-realistic-hm.hm_sigma: 1000000000.0 is greater than the maximum of 100"),
    (lambda c: c["variants"]["body-realistic-hm"].update({"lo": True, "lo_lr": 1e6}),
     "variants.body-realistic-hm.lo_lr: 1000000.0 is greater than the maximum of 10"),
])
def test_schema_bounds(demo_config, edit, message):
    """New bounds (mask-out value 0..255, iterations, batch size and shards >= 1, thresholds
    0..1 were bounded already: tests/test_config.py and the schema)."""
    demo_config["variants"]["body-realistic-hm"] = {"region": "body", "method": "realistic",
                                                    "hm": True}
    edit(demo_config)
    assert schema_error(demo_config) == message


@pytest.mark.parametrize("key, value, message", [
    ("lr", 0, "lr must be > 0, got 0"),
    ("lr", "fast", "lr must be a number, got 'fast'"),
    ("momentum", 1.5, "momentum must be >= 0 and <= 1, got 1.5"),
    ("box_score_thresh", 2, "box_score_thresh must be >= 0 and <= 1, got 2"),
    ("warmup_factor", 0, "warmup_factor must be > 0 and <= 1, got 0"),
    ("steps", [0, 0.5], "steps must be a list of positive numbers"),
    ("clip_grad_norm", -1, "clip_grad_norm must be > 0, got -1"),
])
def test_torchvision_model_bounds_name_the_key(demo_config, key, value, message):
    demo_config["models"]["maskrcnn-demo"][key] = value
    with pytest.raises(ConfigError, match=re.escape(f"models.maskrcnn-demo: {message}")):
        check_config(demo_config)


# --- YAML syntax errors -------------------------------------------------------------------

BAD_YAML = "datasets:\n  coco: {format: coco, root: /data/coco\nseeds: [0]\n"


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    good = write_config(tmp_path / "good.yaml", {"seeds": [0]})
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_YAML)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(bad))}:3:6: YAML syntax error: "
                                          r"expected ',' or '\}', but got ':' \(while parsing a "
                                          r"flow mapping at line 2\)$"):
        load_config_files([good, bad])
    tabs = tmp_path / "tabs.yaml"
    tabs.write_text("seeds:\n\t- 0\n")
    with pytest.raises(ConfigError, match=r"tabs.yaml:2:1: .*indents with spaces, not tabs"):
        load_config_files([tabs])
    listed = tmp_path / "list.yaml"
    listed.write_text("- 0\n")
    with pytest.raises(ConfigError, match="list.yaml: a config file is a mapping"):
        load_config_files([listed])


def test_check_command(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_YAML)
    # why the command exists: Snakemake reads --configfile before the Snakefile runs, and its
    # message names neither the file nor the line
    p = snakemake(tmp_path, "-n", configfile=bad, check=False)
    assert p.returncode != 0 and "not valid JSON or YAML" in p.stdout + p.stderr
    assert "bad.yaml" not in p.stdout + p.stderr.replace(str(bad), "")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "anonbench.config", "check"]
    p = subprocess.run(cmd + [str(bad)], capture_output=True, text=True, env=env, cwd=REPO)
    assert p.returncode == 1
    assert p.stderr.strip() == (f"invalid config: {bad}:3:6: YAML syntax error: expected ',' "
                                "or '}', but got ':' (while parsing a flow mapping at line 2)")
    p = subprocess.run(cmd + ["--roots", "none", "config/paper.yaml",
                              "config/study-backends.yaml"],
                       capture_output=True, text=True, env=env, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert "valid (3 datasets" in p.stdout
    p = subprocess.run(cmd + ["config/paper.yaml"], capture_output=True, text=True, env=env,
                       cwd=REPO)
    assert p.returncode == 1 and p.stderr.startswith("invalid config: datasets.") \
        and ".root: directory" in p.stderr and p.stderr.count("\n") == 1



def test_a_key_written_twice_is_refused_with_its_line(demo_config, tmp_path):
    """PyYAML, and with it Snakemake, keeps the last of two equal keys: a second ``variants:``
    block, or a variant pasted twice with other settings, silently replaced the first."""
    text = Path(write_config(tmp_path / "c.yaml", demo_config)).read_text()
    twice = tmp_path / "twice.yaml"
    twice.write_text(text + "variants:\n  original: {method: none}\n")
    line = text.count("\n") + 1
    expected = (f"{twice}:{line}:1: key 'variants' appears twice in one mapping (first at line "
                f"{text.splitlines().index('variants:') + 1}); YAML would keep only the last one, "
                "so remove or merge one of them")
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        load_config_files([twice])
    p = snakemake(tmp_path, "-n", configfile=twice, check=False)
    assert p.returncode != 0
    assert f"invalid config: {expected}" in p.stdout + p.stderr
    assert not (tmp_path / "results").exists()
    merged = tmp_path / "merged.yaml"  # a YAML merge key may override what it merges
    merged.write_text("base: &b {sigma: 3, method: blur, region: face}\n"
                      "variants:\n  soft:\n    <<: *b\n    sigma: 5\n")
    assert load_config_files([merged])["variants"]["soft"] == {
        "sigma": 5, "method": "blur", "region": "face"}

def test_merge_is_snakemakes(tmp_path):
    cfg = check_config_files([REPO / "config/paper.yaml", REPO / "config/paper-coco.yaml"],
                             roots="none")
    assert cfg["datasets"]["coco"]["shards"] == 64
    assert cfg["datasets"]["coco"]["faces"]["detector"] == "keypoints"  # kept from paper.yaml
    assert set(cfg["datasets"]) == {"coco", "cityscapes", "bdd100k"}


# --- the README's paper override command, verbatim ---------------------------------------

def readme_commands(containing):
    """The README's shell commands (backslash continuations joined) that mention ``containing``."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    out = []
    for block in blocks:
        for cmd in block.replace("\\\n", " ").splitlines():
            cmd = cmd.split("  #")[0].strip()
            if cmd.startswith("snakemake ") and containing in cmd:
                out.append(cmd)
    return out


def workdir_copy(tmp_path, coco_root):
    """The repository as a user has it (links), with config/paper-coco.yaml's root edited."""
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("Snakefile", "rules", "scripts", "src", "schemas", "envs", "profiles", "report",
                 "config.yaml"):
        (work / name).symlink_to(REPO / name)
    shutil.copytree(REPO / "config", work / "config")
    override = work / "config" / "paper-coco.yaml"
    text = override.read_text()
    assert "root: /data/coco" in text
    override.write_text(text.replace("root: /data/coco", f"root: {coco_root}"))
    return work


def test_readme_paper_override_command_runs_as_written(tmp_path):
    commands = [c for c in readme_commands("config/paper-coco.yaml") if "--report" not in c]
    assert commands, "README.md shows no command with config/paper-coco.yaml"
    work = workdir_copy(tmp_path, fake_coco_root(tmp_path / "coco"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for cmd in commands:
        args = shlex.split(cmd)
        assert "--config" not in args  # its values are strings, and it swallows targets
        if "-n" not in args and "--dry-run" not in args:
            args.append("-n")
        p = subprocess.run([sys.executable, "-m", *args], cwd=work, env=env, capture_output=True,
                           text=True, timeout=600)
        out = p.stdout + p.stderr
        assert p.returncode == 0, f"{cmd}\n{out[-4000:]}"
        counts = job_counts(out)
        assert counts["table"] == 1 and counts["prepare"] == 2 and counts["check_images"] == 64
        assert "results/cityscapes/" not in out and "results/bdd100k/" not in out


def test_roots_are_checked_for_the_datasets_the_targets_use(paper_config, tmp_path):
    paper_config["datasets"]["coco"]["root"] = str(fake_coco_root(tmp_path / "coco"))
    cfg = write_config(tmp_path / "paper.yaml", paper_config)
    p = snakemake(tmp_path, "-n", "results/tables/table3.md", configfile=cfg)
    assert job_counts(p.stdout)["table"] == 1
    p = snakemake(tmp_path, "-n", "results/tables/table1.md", configfile=cfg, check=False)
    out = p.stdout + p.stderr
    assert p.returncode != 0
    line = next(l for l in out.splitlines() if "invalid config:" in l)
    assert "datasets.cityscapes.root: directory '/data/cityscapes' not found" in line
    assert not (tmp_path / "results").exists()


# --- the paper matrix's job count, as stated -----------------------------------------------

def test_stated_paper_job_counts_are_the_dry_runs(paper_config, tmp_path):
    """README.md, docs/slurm.md and the profile's comment state the dry run's numbers."""
    from test_slurm import profile_snakemake, slurm_job_count
    from test_workflow_dag import fake_paper_roots

    fake_paper_roots(paper_config, tmp_path)
    cfg = write_config(tmp_path / "paper.yaml", paper_config)
    p = profile_snakemake(tmp_path, "-n", configfile=cfg)
    with_groups, without, _ = slurm_job_count(p.stdout)
    total = int(re.search(r"^total\s+(\d+)$", p.stdout, re.M).group(1))
    assert total == without + 1  # rule all
    readme = (REPO / "README.md").read_text()
    m = re.search(r"paper matrix \(`config/paper.yaml`[^)]*\) is (\d+) jobs in a dry run \((\d+) "
                  r"on the cluster[^)]*\), submitted as (\d+) SLURM jobs", readme.replace("\n", " "))
    assert m, "README.md: no 'paper matrix (...) is N jobs in a dry run (M on the cluster ...), " \
              "submitted as K SLURM jobs'"
    assert tuple(map(int, m.groups())) == (total, without, with_groups)
    profile = (REPO / "profiles/slurm/config.v8+.yaml").read_text()
    m = re.search(r"Paper matrix .*: (\d+) jobs \(\+ `all`\) -> (\d+) SLURM jobs", profile)
    assert m and tuple(map(int, m.groups())) == (without, with_groups)
    doc = (REPO / "docs/slurm.md").read_text().replace("\n", " ")
    assert f"so the dry run's `total` is {total}." in doc


def test_readme_dag_and_report_commands():
    """--dag needs Graphviz for a picture: the README writes the dot file, then names the
    package; --report names the run's --configfile."""
    text = (REPO / "README.md").read_text()
    assert "--dag dot | dot" not in text
    dag = readme_commands("--dag")
    assert dag and all(c.endswith("--dag > dag.dot") and "| dot" not in c for c in dag)
    assert "dot -Tpng dag.dot -o dag.png" in text and "graphviz" in text
    reports = readme_commands("--report")
    assert reports and any("--configfile config/paper.yaml" in c for c in reports)
    assert "the same `--configfile`" in text


def test_dataset_paths_of_the_wrong_kind_are_named_at_parse_time(demo_config, tmp_path):
    """An annotations path that is a directory, or an images path that is a file, failed in
    prepare with a traceback (IsADirectoryError) or an unclear message."""
    from anonbench.config import check_dataset_root

    root = tmp_path / "mine"
    (root / "labels").mkdir(parents=True)
    (root / "pics").mkdir()
    for split in ("train", "val"):
        (root / "labels" / f"{split}.json").write_text("{}")
    mine = {"format": "coco", "root": str(root), "persons": "all",
            "annotations": {"train": "labels/train.json", "val": "labels/val.json"},
            "images": {"train": "pics", "val": "pics"}}
    demo_config["datasets"]["mine"] = mine
    check_dataset_root(demo_config, "mine")
    mine["annotations"]["train"] = "labels"
    with pytest.raises(ConfigError, match=rf"datasets.mine.root: not a coco dataset, missing "
                                          rf"{root}/labels \(a directory, where a file is "
                                          r"expected\)"):
        check_dataset_root(demo_config, "mine")
    mine["annotations"]["train"] = "labels/train.json"
    mine["images"]["val"] = "labels/val.json"
    with pytest.raises(ConfigError, match=r"labels/val.json \(a file, where a directory is "
                                          r"expected\)"):
        check_dataset_root(demo_config, "mine")
    mine["images"]["val"] = "pics"
    mine["persons"] = "keypoints"  # explicit instances files, no keypoint files named
    with pytest.raises(ConfigError, match=r"datasets.mine.persons: keypoints needs keypoint "
                                          r"annotations: set datasets.mine.keypoint_annotations"):
        check_dataset_root(demo_config, "mine")


def test_a_face_model_file_that_is_missing_is_named_at_parse_time(demo_config, tmp_path):
    """It failed in the faces job with a FileNotFoundError traceback."""
    from anonbench.config import check_dataset_root

    demo_config["datasets"]["demo"]["faces"] = {"detector": "centerface",
                                                "model": str(tmp_path / "nope.onnx")}
    with pytest.raises(ConfigError, match=r"datasets.demo.faces.model: file '.*nope.onnx' not "
                                          "found"):
        check_dataset_root(demo_config, "demo")
    (tmp_path / "nope.onnx").write_bytes(b"x")
    check_dataset_root(demo_config, "demo")


def test_a_deepprivacy2_checkout_that_is_not_one_is_named_at_parse_time(demo_config, tmp_path):
    """A wrong dp2_root was found only inside the GPU job, after the data jobs."""
    v = {**demo_config["variants"]["body-realistic"], "generator": "dp2",
         "dp2_root": str(tmp_path / "deep_privacy2")}
    demo_config["variants"]["body-realistic-dp2"] = v
    with pytest.raises(ConfigError, match=r"variants\.body-realistic-dp2\.dp2_root: .* is not a "
                                          r"DeepPrivacy2 checkout \(no configs/ in "):
        check_config(demo_config, check_roots=False)
    (tmp_path / "deep_privacy2/configs").mkdir(parents=True)
    check_config(demo_config, check_roots=False)


@pytest.mark.parametrize("content, message", [
    (b"seeds:\n\t- 0\n", r"tabs.yaml:2:1: YAML syntax error: .*indents with spaces"),
    (b"seeds: [0]\n\xff\xfe\n", r"tabs.yaml: not UTF-8 text \(byte 11: 0xff\); save the config "
                                "as UTF-8"),
    (b"seeds: [0]\nseeds: [1]\n", r"tabs.yaml:2:1: key 'seeds' appears twice"),
])
def test_the_check_command_names_the_file_and_line_of_a_config_it_cannot_read(
        tmp_path, capsys, content, message):
    """`anonbench check` read its files with a plain YAML load: a tab or a byte that is not
    UTF-8 gave a traceback, and a key written twice went through as its last value."""
    from anonbench import cli

    bad = tmp_path / "tabs.yaml"
    bad.write_bytes(content)
    assert cli.main(["check", "--configfile", str(REPO / "config.yaml"), str(bad)]) == 1
    out = capsys.readouterr()
    assert re.search(rf"^config: +FAIL \S*{message}", out.out, re.M), out
    assert "Traceback" not in out.out + out.err
