"""Your own COCO-format data in (explicit paths, own categories), an anonymized dataset out in
the dataset's own layout, which the loaders (and pycocotools) read back."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from anonbench import audit, cli, steps
from anonbench.datasets import demo, load_split
from anonbench.manifest import load_manifest
from anonbench.metadata import has_metadata
from conftest import job_counts, load_config, pretrain_worlds, snakemake, write_config

BODY_MASKOUT = {"region": "body", "method": "maskout", "value": 127}


def run_chain(tmp_path, fmt, root, options=None, shards=2):
    """prepare -> shards -> anonymize -> variant manifest -> audit -> export, in process."""
    res = tmp_path / "results"
    for split in ("train", "val"):
        steps.prepare(fmt, str(root), split, "d", str(res / f"prepared/{split}.json"),
                      options=options)
    steps.make_shards(str(res / "prepared/train.json"), shards, str(res / "prepared/shards"))
    audits = []
    for k in range(shards):
        shard = str(res / f"prepared/shards/{k:03d}.json")
        out = res / f"anonymized/v/{k:03d}"
        steps.anonymize_shard(shard, None, BODY_MASKOUT, str(out))
        steps.audit_shard(shard, None, BODY_MASKOUT, str(out), str(res / f"audit/v/{k:03d}.json"),
                          {"face_detector": "none"})
        audits.append(str(res / f"audit/v/{k:03d}.json"))
    steps.anonymized_train_manifest(str(res / "prepared/train.json"), "v", BODY_MASKOUT, shards,
                                    str(res / "anonymized/v/train.json"))
    steps.audit_variant(audits, "v", BODY_MASKOUT, str(res / "audit/v.json"))
    steps.export(str(root), str(res / "prepared/train.json"), str(res / "prepared/val.json"),
                 str(res / "anonymized/v/train.json"), str(res / "audit/v.json"), "v",
                 BODY_MASKOUT, str(res / "export/v"))
    return res


def pixels(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("fmt", ["coco", "cityscapes", "bdd100k"])
def test_the_export_re_ingests_with_the_same_images_and_persons(tmp_path, fmt):
    if fmt == "cityscapes":
        pytest.importorskip("cityscapesscripts")
    root = tmp_path / "src"
    demo.generate_world_in_layout(root, fmt, seed=6, n_train=4, n_val=2)
    res = run_chain(tmp_path, fmt, root)
    export = res / "export/v"
    for split in ("train", "val"):
        src = load_manifest(res / f"prepared/{split}.json")
        back = load_split(fmt, str(export), split, "d")
        assert [i["file_name"] for i in back["images"]] == [i["file_name"] for i in src["images"]]
        assert back["info"]["summary"]["persons"] == src["info"]["summary"]["persons"]
        changed = 0
        for img in src["images"]:
            a = pixels(f"{src['info']['image_root']}/{img['file_name']}")
            b = pixels(f"{back['info']['image_root']}/{img['file_name']}")
            assert has_metadata(f"{back['info']['image_root']}/{img['file_name']}") == []
            changed += int(not np.array_equal(a, b))
        if split == "val":
            assert changed == 0  # never anonymized
        else:
            assert changed > 0
    text = (export / "README.txt").read_text()
    cov = json.loads((res / "audit/v.json").read_text())["coverage"]
    assert "Variant: v" in text and "NOT anonymized" in text
    assert f"{cov['present']} present, {cov['anonymized']} anonymized" in text
    assert not list(export.parent.glob(".v.*"))  # no temporary directory left
    if fmt == "coco":
        from pycocotools.coco import COCO

        coco = COCO(str(export / "annotations/instances_train2017.json"))
        assert len(coco.getImgIds()) == 4


def own_dataset(tmp_path):
    """The demo world as a user's own COCO data: other folders and file names, categories
    renumbered, persons called 'human', no keypoints file."""
    world = tmp_path / "world"
    demo.generate_world(world, seed=7, n_train=4, n_val=2)
    root = tmp_path / "mine"
    for split, folder in (("train", "pics/training"), ("val", "pics/validation")):
        data = json.loads((world / f"annotations/instances_{split}2017.json").read_text())
        ids = {c["id"]: c["id"] + 40 for c in data["categories"]}
        for c in data["categories"]:
            c["id"] = ids[c["id"]]
            c["name"] = "human" if c["name"] == "person" else c["name"]
        for a in data["annotations"]:
            a["category_id"] = ids[a["category_id"]]
        for img in data["images"]:
            new = f"cam0/frame_{img['id']:05d}.jpg"
            (root / folder / "cam0").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(world / f"{split}2017" / img["file_name"], root / folder / new)
            img["file_name"] = new
        (root / "labels").mkdir(exist_ok=True)
        (root / f"labels/{split}_set.json").write_text(json.dumps(data))
    options = {"annotations": {"train": "labels/train_set.json", "val": "labels/val_set.json"},
               "images": {"train": "pics/training", "val": "pics/validation"},
               "person_categories": ["human"]}
    return root, options


def test_a_generic_coco_dataset_is_anonymized_and_exported_in_its_own_paths(tmp_path):
    root, options = own_dataset(tmp_path)
    m = load_split("coco", str(root), "train", "d", **options)
    persons = m["info"]["summary"]["persons"]
    assert persons["rule"] == "all" and persons["eligible"] > 0
    res = run_chain(tmp_path, "coco", root, options=options)
    export = res / "export/v"
    assert (export / "labels/train_set.json").is_file()
    assert (export / "pics/training/cam0/frame_00001.jpg").is_file()
    assert not (export / "annotations").exists() and not (export / "train2017").exists()
    cov = json.loads((res / "audit/v.json").read_text())["coverage"]
    assert cov["anonymized"] == persons["eligible"]
    back = load_split("coco", str(export), "train", "d", **options)
    assert back["info"]["summary"]["persons"] == persons


def test_a_missing_explicit_file_is_named_at_parse_time(tmp_path, demo_config):
    root, options = own_dataset(tmp_path)
    demo_config["datasets"] = {"mine": {"format": "coco", "root": str(root), **options,
                                        "annotations": {"train": "labels/nope.json",
                                                        "val": "labels/val_set.json"}},
                               **pretrain_worlds(demo_config)}
    for t in demo_config["tables"].values():
        t["dataset"] = "mine"
    demo_config["figures"] = {}
    demo_config["targets"] = {}  # the config's targets name its figures
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    p = snakemake(tmp_path / "w", "-n", configfile=cfg, check=False)
    assert p.returncode != 0
    assert "labels/nope.json" in p.stdout + p.stderr


def test_the_export_target_runs_no_training(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", load_config())
    p = snakemake(tmp_path, "-n", "results/demo/export/body-blur", configfile=cfg)
    counts = job_counts(p.stdout)
    assert counts["export"] == 1 and counts["audit"] == 1
    assert "train" not in counts and "evaluate" not in counts
    p = snakemake(tmp_path, "-n", "results/demo/export/original", configfile=cfg, check=False)
    assert p.returncode != 0


def test_the_readme_export_command_as_written(tmp_path, monkeypatch, capsys):
    """README, "Anonymize your own dataset": the YAML and the command lines, verbatim (the
    preflight check, and the workflow as a dry run)."""
    import re
    import shlex

    import yaml

    from conftest import REPO

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Anonymize your own dataset", 1)[1].split("\n## ", 1)[0]
    mine_yaml, commands = re.findall(r"```(?:yaml|bash)\n(.*?)```", section, re.S)[:2]
    check, command = (line.split("#")[0].strip() for line in commands.strip().splitlines())
    root, _ = own_dataset(tmp_path)
    cfg = yaml.safe_load(mine_yaml)
    cfg["datasets"]["mine"]["root"] = str(root)
    cfg["datasets"]["mine"]["annotations"] = {"train": "labels/train_set.json",
                                              "val": "labels/val_set.json"}
    work = tmp_path / "w"
    work.mkdir()
    write_config(work / "mine.yaml", cfg)
    shutil.copyfile(REPO / "config.yaml", work / "config.yaml")  # run from the repository
    args = shlex.split(check)
    assert args[:2] == ["anonbench", "check"]
    monkeypatch.chdir(work)
    assert cli.main(args[1:]) == 0
    out = capsys.readouterr().out
    assert "config:   ok" in out and f"mine={root}" in out
    args = shlex.split(command)
    assert args[0] == "snakemake"
    args = [str(work / a) if a == "mine.yaml" else a for a in args[1:]
            if a not in ("--profile", "profiles/local")] + ["-n"]
    p = snakemake(work, *args)
    counts = job_counts(p.stdout)
    assert counts["export"] == 1 and "train" not in counts


def test_a_dataset_inside_the_results_folder_is_refused_before_any_job(tmp_path, demo_config):
    """A dataset whose root is where its export goes: the export job removed its folder, the
    whole dataset, before writing. Refused at parse time; the job itself refuses it too."""
    work = tmp_path / "w"
    root, options = own_dataset(tmp_path)
    inside = work / "results/mine/export/v"
    shutil.copytree(root, inside)
    demo_config["datasets"] = {"mine": {"format": "coco", "root": "results/mine/export/v",
                                        **options}, **pretrain_worlds(demo_config)}
    demo_config["variants"]["v"] = BODY_MASKOUT
    for t in demo_config["tables"].values():
        t["dataset"] = "mine"
    demo_config["figures"] = {}
    demo_config["targets"] = {}
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    p = snakemake(work, "-n", "results/mine/export/v", configfile=cfg, check=False)
    assert p.returncode != 0
    assert (f"invalid config: datasets.mine.root: 'results/mine/export/v' lies inside the "
            f"workflow's output folder {work / 'results'}") in p.stdout + p.stderr
    res = run_chain(tmp_path / "chain", "coco", inside, options=options)
    before = sorted(p.relative_to(inside) for p in inside.rglob("*"))
    with pytest.raises(ValueError, match=r"export/v: the job's input .* lies inside its output"):
        steps.export(str(inside), str(res / "prepared/train.json"), str(res / "prepared/val.json"),
                     str(res / "anonymized/v/train.json"), str(res / "audit/v.json"), "v",
                     BODY_MASKOUT, str(inside))
    assert sorted(p.relative_to(inside) for p in inside.rglob("*")) == before


def test_an_export_killed_half_way_leaves_nothing_behind_after_the_next(tmp_path):
    root, options = own_dataset(tmp_path)
    res = tmp_path / "results"
    stale = res / "export/.v.ab12cd_9"  # a SIGKILLed export's temporary folder (originals in it)
    other = res / "export/.v.x.ab12cd_9"  # variant 'v.x''s: not this job's to remove
    for d in (stale, other):
        (d / "pics/validation").mkdir(parents=True)
    run_chain(tmp_path, "coco", root, options=options)
    assert not stale.exists() and other.exists()
    assert sorted(p.name for p in (res / "export").iterdir()) == [".v.x.ab12cd_9", "v"]


def test_files_made_for_another_setting_of_the_variant_are_refused(tmp_path):
    """With Snakemake's params trigger off (--rerun-triggers mtime) or its metadata lost, a
    variant's files made before the variant changed were handed on under its new settings: a
    variant built as `method: none` then blurred exported the originals as body-blurred."""
    root, options = own_dataset(tmp_path)
    res = run_chain(tmp_path, "coco", root, options=options)
    blur = {"region": "body", "method": "blur", "sigma": 7}
    args = (str(root), str(res / "prepared/train.json"), str(res / "prepared/val.json"),
            str(res / "anonymized/v/train.json"), str(res / "audit/v.json"), "v")
    with pytest.raises(ValueError, match=r"audit/v\.json: made for variant v as \{\"method\": "
                                         r"\"maskout\", .*but the config now says .*\"blur\""):
        steps.export(*args, blur, str(res / "export/w"))
    assert not (res / "export/w").exists()
    audit_v = json.loads((res / "audit/v.json").read_text())
    (res / "audit/v.json").write_text(json.dumps({**audit_v, "variant_config": blur}))
    with pytest.raises(ValueError, match=r"anonymized/v/train\.json: made for variant v as "):
        steps.export(*args, blur, str(res / "export/w"))
    with pytest.raises(ValueError, match=r"anonymized/v/000: made for variant v as "):
        steps.anonymized_train_manifest(str(res / "prepared/train.json"), "v", blur, 2,
                                        str(res / "anonymized/v/train.json"))
    with pytest.raises(ValueError, match=r"anonymized/v/train\.json: made for variant v as "):
        steps.train(str(res / "anonymized/v/train.json"), {"backend": "torchvision"}, 0,
                    str(tmp_path / "run"), 1, variant=("v", blur))
    assert not (tmp_path / "run").exists()


def test_the_export_readme_carries_no_local_folders():
    from anonbench.export import readme

    variant = {"region": "body", "method": "realistic", "generator": "dp2", "seed": 0,
               "checkpoints": {"body": "/home/jane/dp2/body.ckpt"}, "dp2_root": "~/src/dp2/"}
    text = readme("d", "rr", variant, "coco", None, 3, 1)
    assert "jane" not in text and "~" not in text
    assert ('"checkpoints": {"body": "body.ckpt"}, "dp2_root": "dp2", "generator": "dp2"'
            in text)


@pytest.mark.parametrize("layout", ["coco", "cityscapes", "bdd100k", "bdd100k-rles"])
def test_no_exported_file_keeps_what_names_or_locates_the_originals(tmp_path, layout):
    """The annotation files and label images were exported byte for byte: COCO's flickr_url,
    coco_url and date_captured point at every original photo online, and a user's own keys or
    a label PNG's text chunk can name people."""
    fmt = layout.split("-")[0]
    if fmt == "cityscapes":
        pytest.importorskip("cityscapesscripts")
    secret = "John Smith <js@example.org>"
    root = tmp_path / "src"
    demo.generate_world_in_layout(root, fmt, seed=6, n_train=4, n_val=2)
    if layout == "bdd100k-rles":  # the loader reads the bitmasks where both are there
        shutil.rmtree(root / "labels" / "ins_seg" / "bitmasks")
    planted = 0
    for path in sorted(root.rglob("*.json")):
        data = json.loads(path.read_text())
        if fmt == "coco":
            data["info"] = {"description": "mine", "contributor": secret}
            for img in data["images"]:
                img.update(flickr_url=f"http://farm.example/{secret}", date_captured="2013-11-14")
            data["annotations"][0]["attributes"] = {"name": secret}
        elif fmt == "cityscapes":
            for obj in data["objects"]:
                obj.update(user=secret, date="14-Nov-2013 10:12:13")
        else:
            frames = data if isinstance(data, list) else data["frames"]
            for fr in frames:
                fr.update(url=f"http://bdd.example/{secret}", timestamp=10000)
        path.write_text(json.dumps(data))
        planted += 1
    for path in sorted(root.rglob("*.png")):
        if "leftImg8bit" in path.parts or "images" in path.parts:
            continue
        with Image.open(path) as im:
            info = PngImagePlugin.PngInfo()
            info.add_text("Author", secret)
            im.save(path, pnginfo=info)
        planted += 1
    assert planted
    res = run_chain(tmp_path, fmt, root)
    export = res / "export/v"
    for f in export.rglob("*"):
        if f.is_file():
            assert b"John Smith" not in f.read_bytes(), f
            assert not f.suffix == ".png" or has_metadata(f) == [], f
    readme = (export / "README.txt").read_text()
    assert {"coco": "images.flickr_url (", "cityscapes": "objects.user (",
            "bdd100k": "name people): none.", "bdd100k-rles": "frames.url ("}[layout] in readme
    for split in ("train", "val"):  # and the loaders read it back as before
        src = load_manifest(res / f"prepared/{split}.json")
        back = load_split(fmt, str(export), split, "d")
        assert len(back["annotations"]) == len(src["annotations"])
