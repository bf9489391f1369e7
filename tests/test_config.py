import pytest

from anonbench.config import ConfigError, check_config, schema_error, table_metrics_files
from conftest import snakemake, write_config


def test_default_and_paper_configs_are_valid(demo_config, paper_config):
    assert schema_error(demo_config) is None
    assert schema_error(paper_config) is None
    check_config(demo_config)
    check_config(paper_config, check_roots=False)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["variants"].update({"x": {"method": "pixelate", "region": "face"}}),
     "variants.x.method: 'pixelate' is not one of"),
    (lambda c: c["variants"]["face-blur"].update({"sigma": -1}),
     "variants.face-blur.sigma: -1 is less than the minimum of 0.5"),
    (lambda c: c.update({"seeds": []}), "seeds: [] should be non-empty"),
    (lambda c: c["tables"]["table1"].pop("metrics"), "tables.table1: 'metrics' is a required"),
])
def test_schema_errors_name_the_setting(demo_config, edit, message):
    edit(demo_config)
    assert message in schema_error(demo_config)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["tables"]["table1"]["variants"].append("face-pixelate"),
     "tables.table1.variants: unknown variant 'face-pixelate'"),
    (lambda c: c["tables"]["table1"].update({"dataset": "cityscapes"}),
     "tables.table1.dataset: unknown dataset 'cityscapes'"),
    (lambda c: c["tables"]["table1"].update({"baseline": "face-blur",
                                             "variants": ["original"]}),
     "tables.table1.baseline: 'face-blur' is not one of the table's variants"),
    (lambda c: c["variants"].update({"v": {"method": "blur"}}),
     "variants.v: method 'blur' needs a region"),
    (lambda c: c["datasets"]["demo"].update({"root": "/nowhere"}),
     "datasets.demo: give either root"),
    (lambda c: c["models"]["maskrcnn-demo"].update({"iterationz": 5}),
     "models.maskrcnn-demo: unknown key(s) iterationz for the torchvision backend"),
    (lambda c: c["models"]["maskrcnn-demo"].update({"preset": "tiny"}),
     "models.maskrcnn-demo: unknown preset 'tiny'"),
    (lambda c: c["models"]["backbone-demo"].update({"pretrained": True}),
     "models.backbone-demo: pretrained: true needs width: 1.0"),
    (lambda c: c["models"]["maskrcnn-demo"].update({"pretrained": True}),
     "models.maskrcnn-demo: give pretrained: true (ImageNet weights) or backbone_weights"),
    (lambda c: c["models"]["maskrcnn-demo"]["backbone_weights"].update({"dataset": "imagenet"}),
     "models.maskrcnn-demo.backbone_weights.dataset: unknown dataset 'imagenet'"),
    (lambda c: c["models"]["maskrcnn-demo"]["backbone_weights"].update({"model": "r18"}),
     "models.maskrcnn-demo.backbone_weights.model: unknown model 'r18'"),
    (lambda c: c["models"]["maskrcnn-demo"]["backbone_weights"].update(
        {"model": "keypointrcnn-demo"}),
     "models.maskrcnn-demo.backbone_weights.model: keypointrcnn-demo starts from another "
     "backbone itself"),
    (lambda c: c["models"]["maskrcnn-demo"]["backbone_weights"].update({"dataset": "demo"}),
     "tables.table1: model maskrcnn-demo starts from the backbone that backbone-demo learned "
     "from the original images of demo, the dataset it trains on here"),
    (lambda c: c["models"]["backbone-demo"].update({"width": 0.5}),
     "models.maskrcnn-demo.backbone_weights.model: backbone-demo trains a depth-18 width-0.5 "
     "ResNet with bn norm, models.maskrcnn-demo builds a depth-18 width-0.25 one with bn norm"),
    (lambda c: c["models"]["maskrcnn-demo"].update({"norm": "gn"}),
     "ResNet with bn norm, models.maskrcnn-demo builds a depth-18 width-0.25 one with gn norm"),
    (lambda c: c["models"]["maskrcnn-demo"].update({"backbone_weights": "/nowhere/model.pt"}),
     "models.maskrcnn-demo.backbone_weights: '/nowhere/model.pt' is not a file"),
    (lambda c: c["models"]["maskrcnn-demo"].update({"backend": "detectron2"}),
     "models.maskrcnn-demo: unknown key(s) backbone_weights, box_positive_fraction for the "
     "detectron2 backend"),
    (lambda c: c["targets"]["street"]["tables"].append("table9"),
     "targets.street.tables: unknown table 'table9' (config has: table1, table3)"),
    (lambda c: c["targets"]["closeup"].update({"figures": ["fig7"]}),
     "targets.closeup.figures: unknown figure 'fig7'"),
    (lambda c: c["targets"].update({"empty": {"description": "x"}}),
     "targets.empty: names no table or figure"),
])
def test_cross_reference_errors(demo_config, edit, message):
    edit(demo_config)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_config(demo_config)


def test_a_backbone_is_checked_where_its_model_trains(demo_config, tmp_path):
    """A dangling backbone_weights of a model no table trains stops nothing (as a dataset root
    no target reads); asked for, that model's training stops at parse time with the key."""
    demo_config["datasets"] = {"demo": demo_config["datasets"]["demo"]}  # no pretrain world
    demo_config["models"]["maskrcnn-demo"].pop("backbone_weights")
    demo_config["tables"] = {"table1": demo_config["tables"]["table1"]}
    demo_config["figures"], demo_config["targets"] = {}, {}
    check_config(demo_config)  # keypointrcnn-demo's backbone: no table trains it
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    p = snakemake(tmp_path, "-n", "results/demo/runs/original/keypointrcnn-demo/seed0/model.pt",
                  configfile=cfg, check=False)
    assert p.returncode != 0
    assert ("invalid config: models.keypointrcnn-demo.backbone_weights.dataset: unknown dataset "
            "'pretrain'") in p.stdout + p.stderr


def test_missing_dataset_root(paper_config, tmp_path):
    paper_config["datasets"]["coco"]["root"] = str(tmp_path / "coco")
    with pytest.raises(ConfigError, match="datasets.coco.root: directory .* not found"):
        check_config(paper_config)
    (tmp_path / "coco").mkdir()
    with pytest.raises(ConfigError, match="not a coco dataset, missing .*instances_train2017"):
        check_config(paper_config)


def test_table_needs_every_variant_and_seed(demo_config):
    files = table_metrics_files(demo_config, "table1")
    assert len(files) == len(demo_config["tables"]["table1"]["variants"]) * 3
    assert "results/demo/metrics/body-blur/maskrcnn-demo/seed2.json" in files


def test_snakemake_stops_at_parse_time_with_one_line(demo_config, tmp_path):
    demo_config["tables"]["table1"]["variants"].append("face-pixelate")
    cfg = write_config(tmp_path / "bad.yaml", demo_config)
    p = snakemake(tmp_path, "-n", configfile=cfg, check=False)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    line = next(l for l in out.splitlines() if l.startswith("invalid config:"))
    assert "unknown variant 'face-pixelate'" in line
    assert not (tmp_path / "results").exists()
