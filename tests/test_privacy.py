"""The privacy invariants (DESIGN.md): every person accounted for, no metadata in any output,
no write outside the outputs, no silent no-op."""

import hashlib
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from anonbench import anonymize, audit, coverage, steps
from anonbench.datasets import demo, load_split
from anonbench.manifest import ManifestError, encode_mask, load_manifest, write_json
from anonbench.metadata import has_metadata
from conftest import load_config, snakemake, write_config

BODY_MASKOUT = {"region": "body", "method": "maskout", "value": 127}
FACE_BLUR = {"region": "face", "method": "blur", "sigma": 7}


def instance_only_world(root, n_train=6, n_val=3, seed=3):
    """The demo world as most users' own COCO data: instances_*.json only, no keypoints file."""
    demo.generate_world(root, seed=seed, n_train=n_train, n_val=n_val)
    for split in ("train", "val"):
        os.unlink(root / "annotations" / f"person_keypoints_{split}2017.json")
    return root


def add_metadata(path):
    """EXIF with GPS and ImageDescription, an XMP packet and a JPEG comment; PNG text chunks."""
    with Image.open(path) as im:
        im.load()
        exif = Image.Exif()
        exif[0x010E] = "Jane Doe at home"  # ImageDescription
        exif.get_ifd(0x8825)[2] = (63.0, 25.0, 0.0)  # GPSLatitude
        if im.format == "JPEG":
            im.save(path, quality=95, exif=exif.tobytes(), comment=b"taken by Jane",
                    xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">Jane</x:xmpmeta>')
        else:
            from PIL import PngImagePlugin

            info = PngImagePlugin.PngInfo()
            info.add_text("Author", "Jane Doe")
            info.add_itxt("Description", "at home", zip=True)
            im.save(path, pnginfo=info, exif=exif.tobytes())
    assert has_metadata(path)


def pixels(path):
    with Image.open(path) as im:
        return np.asarray(im).copy()


# --- 1. eligibility: instance-only COCO data is anonymized --------------------------------------

def test_instance_only_coco_makes_every_non_crowd_person_eligible(tmp_path, capsys):
    root = instance_only_world(tmp_path / "world")
    out = tmp_path / "train.json"
    steps.prepare("coco", str(root), "train", "mine", str(out))
    m = load_manifest(out)
    persons = m["info"]["summary"]["persons"]
    assert m["info"]["persons_rule"] == persons["rule"] == "all"
    non_crowd = [a for a in m["annotations"] if a["category_id"] == 1 and not a["iscrowd"]]
    assert persons["eligible"] == len(non_crowd) > 0
    assert persons["present"] == persons["eligible"] + sum(persons["skipped"].values())
    assert "eligible by the rule 'all'" in capsys.readouterr().out
    # the study's rule, asked for explicitly, needs the keypoints file: one line naming it
    with pytest.raises(ManifestError, match=r"person_keypoints_train2017\.json.*persons: all"):
        load_split("coco", str(root), "train", "mine", persons="keypoints")


def test_instance_only_coco_shard_anonymizes_every_eligible_person(tmp_path):
    root = instance_only_world(tmp_path / "world")
    steps.prepare("coco", str(root), "train", "mine", str(tmp_path / "train.json"))
    m = load_manifest(tmp_path / "train.json")
    write_json(tmp_path / "shard.json", {**m, "info": {**m["info"], "shard": "000"}})
    stats = anonymize.anonymize_shard(str(tmp_path / "shard.json"), None, BODY_MASKOUT,
                                      str(tmp_path / "anon" / "000"), progress=False)
    cov = stats["coverage"]
    assert cov["anonymized"] == m["info"]["summary"]["persons"]["eligible"] > 0
    assert cov["skipped"] == m["info"]["summary"]["persons"]["skipped"]
    assert stats["anonymized_images"] > 0


# --- 2. metadata ---------------------------------------------------------------------------------

def _shard_with_metadata(tmp_path):
    root = tmp_path / "originals"
    root.mkdir()
    rng = np.random.default_rng(0)
    imgs, anns = [], []
    for i, name in enumerate(["person.jpg", "empty.jpg", "person.png", "empty.png"], start=1):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / name)
        add_metadata(root / name)
        imgs.append({"id": i, "file_name": name, "width": 64, "height": 48})
        if name.startswith("person"):
            mask = np.zeros((48, 64), bool)
            mask[10:40, 20:40] = True
            anns.append({"id": 10 + i, "image_id": i, "category_id": 1, "iscrowd": 0,
                         "anonymize": True, "bbox": [20, 10, 20, 30],
                         "segmentation": encode_mask(mask)})
    m = {"info": {"image_root": str(root), "shard": "000"}, "images": imgs, "annotations": anns,
         "categories": [{"id": 1, "name": "person"}]}
    write_json(tmp_path / "shard.json", m)
    return str(tmp_path / "shard.json"), root


def test_no_output_image_carries_metadata_and_copies_keep_their_pixels(tmp_path):
    shard, root = _shard_with_metadata(tmp_path)
    out = tmp_path / "anon" / "000"
    stats = anonymize.anonymize_shard(shard, None, BODY_MASKOUT, str(out), progress=False)
    assert stats["copied_images"] == 2 and stats["anonymized_images"] == 2
    for name in ("person.jpg", "empty.jpg", "person.png", "empty.png"):
        assert has_metadata(out / name) == [], name
        raw = (out / name).read_bytes()
        for needle in (b"Jane", b"xmpmeta", b"GPS"):
            assert needle not in raw, (name, needle)
    for name in ("empty.jpg", "empty.png"):  # untouched: bit-identical pixels, not re-encoded
        assert np.array_equal(pixels(out / name), pixels(root / name))
    result = audit.audit_shard(shard, None, BODY_MASKOUT, str(out))
    assert result["coverage"]["anonymized"] == 2


def test_the_audit_refuses_an_output_with_metadata(tmp_path):
    shard, root = _shard_with_metadata(tmp_path)
    out = tmp_path / "anon" / "000"
    anonymize.anonymize_shard(shard, None, BODY_MASKOUT, str(out), progress=False)
    shutil.copyfile(root / "empty.jpg", out / "empty.jpg")  # as the old byte-for-byte copy did
    with pytest.raises(audit.MetadataLeakError, match=r"empty\.jpg.*EXIF"):
        audit.audit_shard(shard, None, BODY_MASKOUT, str(out))


# --- 3. confinement -----------------------------------------------------------------------------

def _tamper(root, name):
    path = root / "annotations" / "instances_train2017.json"
    data = json.loads(path.read_text())
    data["images"][0]["file_name"] = name
    path.write_text(json.dumps(data))
    return data["images"][0]["id"], path


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink"])
def test_an_image_path_outside_the_image_directory_stops_prepare(tmp_path, kind):
    root = instance_only_world(tmp_path / "world", n_train=3, n_val=2)
    victim = tmp_path / "victim.jpg"
    shutil.copyfile(next((root / "train2017").iterdir()), victim)
    name = {"absolute": str(victim), "dotdot": "../../victim.jpg", "symlink": "link.jpg"}[kind]
    if kind == "symlink":
        os.symlink(victim, root / "train2017" / "link.jpg")
    image_id, ann_file = _tamper(root, name)
    with pytest.raises(ManifestError) as e:
        load_split("coco", str(root), "train", "mine")
    msg = str(e.value)
    assert str(ann_file) in msg and f"image {image_id}" in msg and name in msg
    assert "\n" not in msg


def test_the_writer_never_writes_outside_its_output_even_from_a_forged_shard(tmp_path):
    shard, root = _shard_with_metadata(tmp_path)
    m = load_manifest(shard)
    before = hashlib.sha256((root / "empty.jpg").read_bytes()).hexdigest()
    m["images"][1]["file_name"] = str(root / "empty.jpg")  # absolute: the original itself
    write_json(shard, m)
    out = tmp_path / "anon" / "000"
    with pytest.raises(ValueError, match="outside the output directory"):
        anonymize.anonymize_shard(shard, None, BODY_MASKOUT, str(out), progress=False)
    assert hashlib.sha256((root / "empty.jpg").read_bytes()).hexdigest() == before
    assert not out.exists() and not list((tmp_path / "anon").iterdir())


# --- 4. coverage ---------------------------------------------------------------------------------

def _coco_with_every_kind_of_person(root):
    """One image: a person, a crowd, a rider, a person with no pixels, one with no keypoints."""
    (root / "train2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    Image.fromarray(np.full((60, 80, 3), 90, np.uint8)).save(root / "train2017" / "a.jpg")

    def ann(i, cat, box, crowd=0, kp=1):
        x, y, w, h = box
        seg = [[x, y, x + w, y, x + w, y + h, x, y + h]] if w else []
        return {"id": i, "image_id": 1, "category_id": cat, "iscrowd": crowd, "bbox": box,
                "area": w * h, "segmentation": seg}, kp

    specs = [ann(1, 1, [5, 5, 20, 30]), ann(2, 1, [30, 5, 20, 30], crowd=1),
             ann(3, 2, [50, 5, 20, 30]), ann(4, 1, [0, 0, 0, 0]), ann(5, 1, [10, 30, 20, 25], kp=0)]
    cats = [{"id": 1, "name": "person"}, {"id": 2, "name": "rider"}]
    images = [{"id": 1, "file_name": "a.jpg", "width": 80, "height": 60}]
    inst = {"images": images, "annotations": [a for a, _ in specs], "categories": cats}
    def points(a, kp):  # the person with no pixels has a hip labelled, no face (a labelled
        # face on an empty mask is anonymized by the face variants: test_input_checks)
        return ([0, 0, 0] * 11 + [12, 12, 2] + [0, 0, 0] * 5 if a["id"] == 4
                else [12, 12, 2] * kp + [0, 0, 0] * (17 - kp))

    kps = {"images": images, "categories": [{**cats[0], "keypoints": [f"k{i}" for i in range(17)]}],
           "annotations": [{**a, "keypoints": points(a, kp), "num_keypoints": kp}
                           for a, kp in specs if a["category_id"] == 1]}
    for split in ("train", "val"):
        (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(inst))
        (root / "annotations" / f"person_keypoints_{split}2017.json").write_text(json.dumps(kps))
    return root


def test_coverage_buckets_add_up_to_the_persons_present(tmp_path):
    root = _coco_with_every_kind_of_person(tmp_path / "coco")
    m = load_split("coco", str(root), "train", "d")
    persons = m["info"]["summary"]["persons"]
    assert persons["rule"] == "keypoints"
    assert persons["present"] == 5 and persons["eligible"] == 1
    assert persons["skipped"] == {"crowd": 1, "rider": 1, "no_pixels": 1, "no_keypoints": 1}
    write_json(tmp_path / "shard.json", {**m, "info": {**m["info"], "shard": "000"}})
    for variant, expect in ((BODY_MASKOUT, {"anonymized": [1]}),
                            ({**BODY_MASKOUT, "min_body_size": 30},
                             {"below_min_body_size": [1]})):
        out = tmp_path / f"anon{len(expect)}{variant.get('min_body_size', 0)}" / "000"
        stats = anonymize.anonymize_shard(str(tmp_path / "shard.json"), None, variant, str(out),
                                          progress=False)
        ids = stats["coverage"]["ids"]
        assert {k: sorted(v) for k, v in ids.items()} == {
            **expect, "crowd": [2], "rider": [3], "no_pixels": [4], "no_keypoints": [5]}
    # the other rule: every non-crowd person with pixels
    m = load_split("coco", str(root), "train", "d", persons="all")
    assert m["info"]["summary"]["persons"]["eligible"] == 2


@pytest.mark.parametrize("fmt", ["cityscapes", "bdd100k"])
def test_coverage_of_the_other_formats_adds_up(tmp_path, fmt):
    pytest.importorskip("cityscapesscripts")
    root = tmp_path / fmt
    demo.generate_world_in_layout(root, fmt, seed=2, n_train=4, n_val=2)
    m = load_split(fmt, str(root), "train", "d")
    persons = m["info"]["summary"]["persons"]
    assert persons["rule"] == "all" and persons["eligible"] > 0
    assert persons["present"] == persons["eligible"] + sum(persons["skipped"].values())
    write_json(tmp_path / "shard.json", {**m, "info": {**m["info"], "shard": "000"}})
    stats = anonymize.anonymize_shard(str(tmp_path / "shard.json"), None, BODY_MASKOUT,
                                      str(tmp_path / "anon" / "000"), progress=False)
    assert stats["coverage"]["present"] == persons["present"]
    assert stats["coverage"]["anonymized"] == persons["eligible"]


def test_a_variant_that_anonymizes_nobody_fails_in_one_line(tmp_path):
    root = _coco_with_every_kind_of_person(tmp_path / "coco")
    prepared = tmp_path / "prepared" / "train.json"
    steps.prepare("coco", str(root), "train", "d", str(prepared))
    steps.make_shards(str(prepared), 1, str(tmp_path / "prepared" / "shards"))
    faces = tmp_path / "faces.json"
    write_json(faces, {"faces": []})  # the face detector found nobody
    variant_dir = tmp_path / "anonymized" / "face-blur"
    anonymize.anonymize_shard(str(tmp_path / "prepared" / "shards" / "000.json"), str(faces),
                              FACE_BLUR, str(variant_dir / "000"), progress=False)
    with pytest.raises(coverage.NothingAnonymizedError) as e:
        steps.anonymized_train_manifest(str(prepared), "face-blur", FACE_BLUR, 1,
                                        str(variant_dir / "train.json"))
    msg = str(e.value)
    assert msg.startswith("d/face-blur: anonymized 0 of 5 persons present") and "\n" not in msg
    assert "no_face 1" in msg and "face detector found no face" in msg and "allow_empty" in msg
    assert not (variant_dir / "train.json").exists()
    steps.anonymized_train_manifest(str(prepared), "face-blur", {**FACE_BLUR, "allow_empty": True},
                                    1, str(variant_dir / "train.json"))
    info = load_manifest(variant_dir / "train.json")["info"]
    assert info["coverage"]["present"] == 5 and info["coverage"]["anonymized"] == 0


# --- the whole tiny study on a read-only dataset ------------------------------------------------

def _sha(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def readonly_dataset(tmp_path):
    src = instance_only_world(tmp_path / "src", n_train=8, n_val=3, seed=5)
    for p in sorted((src / "train2017").iterdir())[:3]:
        add_metadata(p)
    ro = tmp_path / "ro"
    ro.mkdir()
    try:
        subprocess.run(["mount", "--bind", str(src), str(ro)], check=True, capture_output=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        subprocess.run(["umount", str(ro)], capture_output=True)
        pytest.skip(f"cannot make a read-only bind mount here ({e})")
    try:
        yield ro
    finally:
        subprocess.run(["umount", str(ro)], check=True)


def test_tiny_study_on_a_read_only_instance_only_dataset(tmp_path, readonly_dataset):
    before = _sha(readonly_dataset)
    config = load_config()
    config["datasets"] = {"mine": {"format": "coco", "root": str(readonly_dataset), "shards": 2}}
    config["variants"] = {k: config["variants"][k] for k in ("original", "body-maskout")}
    config["seeds"] = [0]
    config["models"] = {"maskrcnn-demo": {**config["models"]["maskrcnn-demo"],
                                          "iterations": 1, "batch_size": 2}}
    config["models"]["maskrcnn-demo"].pop("backbone_weights")  # from scratch: one dataset
    config["tables"] = {"table1": {**config["tables"]["table1"], "dataset": "mine",
                                   "variants": ["original", "body-maskout"]}}
    config["figures"] = {}
    config["targets"] = {}  # the config's targets name its figures
    cfg = write_config(tmp_path / "mine.yaml", config)
    work = tmp_path / "work"
    snakemake(work, "results/tables/table1.md", configfile=cfg)
    assert _sha(readonly_dataset) == before
    audit_json = json.loads((work / "results/mine/audit/body-maskout.json").read_text())
    cov = audit_json["coverage"]
    prepared = load_manifest(work / "results/mine/prepared/train.json")
    persons = prepared["info"]["summary"]["persons"]
    assert cov["anonymized"] == persons["eligible"] > 0  # 100 % of the eligible
    assert cov["present"] == cov["anonymized"] + sum(cov["skipped"].values())
    for p in (work / "results/mine/anonymized/body-maskout").rglob("*.jpg"):
        assert has_metadata(p) == [], p
    md = (work / "results/tables/table1.md").read_text()
    assert "persons anonymized %" in md
    row = next(l for l in md.splitlines() if l.startswith("| body-maskout |"))
    assert f"{100 * cov['anonymized'] / cov['present']:.1f}" in row
