"""The demo world shows the study's direction: anonymizing whole bodies costs the person class
far more than anonymizing faces.  One seed, three variants, the real demo model (a few minutes)."""

import json

import pytest

from conftest import load_config, snakemake, write_config


@pytest.mark.slow
def test_body_maskout_costs_far_more_than_face_blur(tmp_path):
    config = load_config()
    config["seeds"] = [0]
    t = config["tables"]["table1"]
    t["variants"] = ["original", "face-blur", "body-maskout"]
    t["privacy"] = False
    config["figures"] = {}
    cfg = write_config(tmp_path / "direction.yaml", config)
    snakemake(tmp_path, configfile=cfg)

    def ap_person(variant):
        rec = json.loads((tmp_path / f"results/demo/metrics/{variant}/maskrcnn-demo/seed0.json")
                         .read_text())
        return rec["metrics"]["segm/AP_person"]

    original, face, body = ap_person("original"), ap_person("face-blur"), ap_person("body-maskout")
    assert original > 2.0, "the demo model learned (almost) nothing about persons"
    assert body < 0.5 * face and body < 0.5 * original, (original, face, body)
