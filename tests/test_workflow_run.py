"""The real workflow, executed: a tiny world end to end, resumption, and the rerun triggers."""

import json

import numpy as np
import pytest

from anonbench.metadata import has_metadata
from conftest import job_counts, shrink_pretraining, snakemake, street_only, write_config


def tiny(config):
    config = street_only(config)
    config["datasets"]["demo"]["generate"].update({"train_images": 10, "val_images": 4})
    config["datasets"]["demo"]["shards"] = 2
    for v in ("face-maskout", "body-blur"):
        config["variants"].pop(v)
    t = config["tables"]["table1"]
    t["variants"] = ["original", "face-blur", "body-maskout"]
    config["figures"]["qualitative_demo"]["variants"] = t["variants"]
    config["seeds"] = [0, 1]
    config["models"]["maskrcnn-demo"].update({"iterations": 2, "batch_size": 2})
    return shrink_pretraining(config)


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
    main, _, rest = md.partition("Difference to `original`")
    rest, _, study = rest.partition("\nBeside the study's BDD100K runs (")
    rows = [l for l in main.splitlines()
            if l.startswith("| ") and not l.startswith(("| variant", "| ---"))]
    assert [r.split("|")[1].strip() for r in rows] == config["tables"]["table1"]["variants"]
    for r in rows:
        assert r.count("±") == 3  # every cell filled: mean ± stderr over 2 seeds
    # every difference with its intervals over seeds and over validation images (the demo's
    # COCO evaluation stores per-image results), and the footnote with method and resamples
    tests = [l for l in rest.splitlines() if l.startswith("| ") and not l.startswith(
        ("| variant", "| ---"))]
    assert [t.split("|")[1].strip() for t in tests] == ["face-blur", "body-maskout"]
    for t in tests:
        assert t.count("seeds [") == 3 and t.count("images [") == 3, t
    assert "1000 resamples, seed 0" in rest and "seed test only" not in rest
    # config.yaml's table1 names the study's BDD100K runs: each row here beside the study's
    beside = [l for l in study.splitlines() if l.startswith("| ") and not l.startswith(
        ("| variant", "| ---"))]
    assert [b.split("|")[1].strip() for b in beside] == ["face-blur", "body-maskout"]
    assert "| -32.0 (-100.0 %), p <0.001 |" in beside[1]  # the study's body mask-out: 0.0
    csv = (work / "results/tables/table1.csv").read_text().splitlines()
    assert csv[0].endswith(",ci95_low,ci95_high,p,img_ci95_low,img_ci95_high,img_p")
    assert (work / "results/demo/metrics/body-maskout/maskrcnn-demo/seed1.perimage.npz").is_file()
    # the privacy audit's column: mask-out leaves (almost) no pixel of a body as it was
    assert "| px unchanged % |" in md
    audit = json.loads((work / "results/demo/audit/body-maskout.json").read_text())
    assert audit["regions"] > 0 and audit["unchanged_mean"] < 0.1
    # face variants: the offline face detector was run again on originals and anonymized images
    faces = json.loads((work / "results/demo/audit/face-blur.json").read_text())
    assert faces["face_check"]["detector"] == "centerface", faces.get("face_check")
    assert faces["faces_detected"]["faces"] == faces["regions"] + faces["flat_regions"]
    assert "faces_detected" not in audit
    rec = json.loads((work / "results/demo/metrics/body-maskout/maskrcnn-demo/seed1.json")
                     .read_text())
    assert rec["variant"] == "body-maskout" and rec["seed"] == 1
    assert "segm/AP_person" in rec["metrics"]
    # the original variant trains on the original images, not on copies
    m = json.loads((work / "results/demo/anonymized/original/train.json").read_text())
    assert m["info"]["image_root"].endswith("world/train2017")
    assert not (work / "results/demo/anonymized/original/000").exists()


def test_figures_and_the_html_report(tiny_run):
    from PIL import Image

    work, cfg, config, _ = tiny_run
    for name in config["figures"]:  # rule all drew them
        with Image.open(work / f"results/figures/{name}.png") as im:
            a = np.asarray(im.convert("L"), dtype=np.float64)
        assert min(a.shape) > 200 and a.std() > 10, name  # a drawing, not a blank page
        assert has_metadata(work / f"results/figures/{name}.png") == [], name  # no text chunk
        assert len((work / f"results/figures/{name}.csv").read_text().splitlines()) > 1, name
    curve = (work / "results/figures/box_sizes.csv").read_text().splitlines()
    assert curve[0] == "dataset,persons,relative_size,cumulative_fraction"
    assert curve[-1].startswith("demo,") and curve[-1].endswith(",1.0000")
    grid = (work / "results/figures/qualitative_demo.csv").read_text().splitlines()
    columns = config["figures"]["qualitative_demo"]["variants"]
    n_rows, rest = divmod(len(grid) - 1, len(columns))
    assert rest == 0 and 1 <= n_rows <= config["figures"]["qualitative_demo"]["images"]
    assert "/anonymized/body-maskout/000/" in grid[-1]  # the columns show the anonymized shards
    pu = (work / "results/figures/privacy_utility.csv").read_text().splitlines()
    assert pu[0].startswith("table,variant,privacy_measure,privacy_percent,metric,delta")
    assert [l.split(",")[1] for l in pu[1:]] == config["tables"]["table1"]["variants"]
    assert pu[1].split(",")[3:6] == ["100.0000", "AP_person", "0.0000"]  # the baseline
    report = work / "report.html"
    snakemake(work, "--report", str(report), configfile=cfg)
    html = report.read_text(errors="replace")
    assert "qualitative_demo.png" in html and "box_sizes.png" in html and "table1.csv" in html
    assert "privacy_utility.png" in html and "Privacy against utility" in html


def test_the_demo_models_start_from_the_pretrain_worlds_backbone(tiny_run):
    """backbone-demo trains first, on the pretrain world's original images; maskrcnn-demo's
    runs start from its ResNet body and keep its frozen stem and layer1."""
    torch = pytest.importorskip("torch")
    work, _, config, _ = tiny_run
    src = config["models"]["maskrcnn-demo"]["backbone_weights"]
    source = work / f"results/{src['dataset']}/runs/original/{src['model']}/seed0/model.pt"
    body = {k: v for k, v in torch.load(source, weights_only=True)["state_dict"].items()
            if k.startswith("backbone.body.layer1.") and k.endswith("weight")}
    assert body
    for seed in config["seeds"]:
        ckpt = torch.load(work / f"results/demo/runs/original/maskrcnn-demo/seed{seed}/model.pt",
                          weights_only=True)
        assert ckpt["model_cfg"]["backbone_weights"] == str(source.relative_to(work))
        assert all(torch.equal(ckpt["state_dict"][k], v) for k, v in body.items())


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
    # figures: the qualitative grid (a face-blur column) and privacy_utility (table1's csv)
    assert counts == {"anonymize": 2, "variant_manifest": 1, "train": 2, "evaluate": 2, "figure": 2,
                      "audit_shard": 2, "audit": 1, "table": 1}
    assert "body-maskout" not in "".join(l for l in out.splitlines() if "wildcards:" in l)



def test_run_settings_retrain_nothing_and_what_it_learns_does(tiny_run, tmp_path):
    """Checkpointing, data loading and logging say how a training runs: changing them (as
    docs/slurm.md advises for checkpoint_every_minutes) reran, and so deleted, every finished
    training. The number of iterations is what the model learns from."""
    import yaml

    work, cfg, _, _ = tiny_run
    changed = yaml.safe_load(open(cfg))  # the fixture's dict: other tests change it
    changed["models"]["maskrcnn-demo"].update(
        {"checkpoint_every_iters": 7, "checkpoint_every_minutes": 3, "workers": 1,
         "prefetch_factor": 2, "stop_before_walltime_minutes": 4, "log_every": 1})
    p = snakemake(work, "-n", configfile=write_config(tmp_path / "run.yaml", changed))
    assert "Nothing to be done" in p.stdout + p.stderr
    changed["models"]["maskrcnn-demo"]["iterations"] = 3
    p = snakemake(work, "-n", configfile=write_config(tmp_path / "learn.yaml", changed))
    counts = job_counts(p.stdout)
    assert counts["train"] == counts["evaluate"] == 6  # 3 variants x 2 seeds

def test_killed_run_resumes_without_redoing_and_gives_the_same_table(tiny_run, tmp_path):
    """SIGKILL the whole run while a training job is writing, rerun: finished jobs are kept,
    the killed one is redone, and the table equals the one of the uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO

    work, cfg, _, _ = tiny_run
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
           "--cores", "1", "--configfile", str(cfg), "--replace-workflow-config"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                         start_new_session=True)
    runs = tmp_path / "results/demo/runs"
    deadline = time.time() + 600
    try:
        while time.time() < deadline and p.poll() is None:
            partial = {f.parent for f in runs.glob("*/*/seed*/.train_log.jsonl.tmp")}
            finished = {f.parent for f in runs.glob("*/*/seed*/model.pt")} - partial
            shards = list((tmp_path / "results/demo/anonymized").glob("*/0*"))
            if partial and finished and shards:
                break  # shards and one training job finished, another one is half-way
            time.sleep(0.02)
        assert p.poll() is None, "the run ended before it could be killed"
        os.killpg(p.pid, signal.SIGKILL)
    finally:
        p.wait()
    done = {d / "model.pt": (d / "model.pt").stat().st_mtime_ns for d in finished}
    shards = {d: d.stat().st_mtime_ns for d in (tmp_path / "results/demo/anonymized").glob("*/0*")}
    assert done and shards
    # SIGKILL leaves Snakemake's lock behind: the documented way back is --unlock, then rerun
    snakemake(tmp_path, "--unlock", configfile=cfg)
    snakemake(tmp_path, "--rerun-incomplete", configfile=cfg)
    assert {f: f.stat().st_mtime_ns for f in done} == done  # finished runs were not redone
    assert {d: d.stat().st_mtime_ns for d in shards} == shards
    assert not list(tmp_path.glob("results/**/.*.tmp"))
    assert ((tmp_path / "results/tables/table1.md").read_text()
            == (work / "results/tables/table1.md").read_text())
