"""The weights registry (anonbench.weights), the `anonbench` command and the Snakefile's preflight.

Downloads go to a local HTTP server on 127.0.0.1 that the tests start and stop (Range requests,
404s, a connection cut half-way); nothing else on the network is touched. Every test points
TORCH_HOME, FVCORE_CACHE and HF_HOME at empty directories and unsets ANONBENCH_WEIGHTS.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from conftest import REPO, snakemake, write_config

from anonbench import cli
from anonbench.config import ConfigError, check_dataset_root
from anonbench import weights as W


@pytest.fixture(autouse=True)
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.delenv(W.ENV, raising=False)
    for var, sub in (("TORCH_HOME", "torch"), ("FVCORE_CACHE", "fvcore"), ("HF_HOME", "hf")):
        monkeypatch.setenv(var, str(tmp_path / "caches" / sub))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)


# --- a local file server ----------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if rng:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.path in srv.cut_once:        # the connection drops half-way, once
            srv.cut_once.discard(self.path)
            self.wfile.write(chunk[: len(chunk) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(chunk)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests, srv.cut_once = {}, [], set()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def blob(seed: int, size: int = 300_000) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (size // 32)


def entry(name: str, data: bytes, *urls: str) -> W.WeightFile:
    return W.WeightFile(key=name, name=name, cache="torch_hub", purpose="test file",
                        md5=hashlib.md5(data).hexdigest(),
                        sources=tuple(W.Source(u) for u in urls))


def quiet_fetch(files, **kw):
    log: list[str] = []
    final = W.fetch(files, progress=False, timeout=5, report=log.append, **kw)
    return final, "\n".join(log)


# --- fetch ------------------------------------------------------------------------------------

def test_a_404_source_falls_back_to_the_next(server, tmp_path):
    data = blob(1)
    server.files["/good/a.pth"] = data
    f = entry("a.pth", data, server.url + "/gone/a.pth", server.url + "/good/a.pth")
    (st,), log = quiet_fetch([f], dest=tmp_path / "w")
    assert st.ok and (tmp_path / "w" / "a.pth").read_bytes() == data
    assert [p for p, _ in server.requests] == ["/gone/a.pth", "/good/a.pth"]
    assert "404" in log


def test_a_checksum_mismatch_is_deleted_and_never_installed(server, tmp_path):
    good, bad = blob(2), blob(3)
    server.files["/bad/b.pth"] = bad
    f = entry("b.pth", good, server.url + "/bad/b.pth")
    dest = tmp_path / "w"
    (st,), log = quiet_fetch([f], dest=dest)
    assert not st.ok and "REJECTED" in log and f.md5 in log
    assert list(dest.iterdir()) == []            # neither the file nor a .part
    # a wrong file already in place is never trusted: replaced by a matching download
    server.files["/good/b.pth"] = good
    (dest / "b.pth").write_bytes(bad)
    assert W.status(f, dest).problem.startswith("md5")
    f2 = dataclasses.replace(f, sources=(W.Source(server.url + "/bad/b.pth"),
                                         W.Source(server.url + "/good/b.pth")))
    (st,), log = quiet_fetch([f2], dest=dest)
    assert st.ok and (dest / "b.pth").read_bytes() == good
    assert sorted(p.name for p in dest.iterdir()) == ["b.pth"]


def test_an_interrupted_download_is_resumed_with_a_range_request(server, tmp_path):
    data = blob(4)
    server.files["/c.pth"] = data
    server.cut_once.add("/c.pth")
    f = entry("c.pth", data, server.url + "/c.pth")
    dest = tmp_path / "w"
    (st,), log = quiet_fetch([f], dest=dest)
    part = dest / "c.pth.part"
    assert not st.ok and not (dest / "c.pth").exists()
    assert 0 < part.stat().st_size < len(data)
    have = part.stat().st_size
    (st,), log = quiet_fetch([f], dest=dest)
    assert st.ok and (dest / "c.pth").read_bytes() == data and not part.exists()
    assert server.requests == [("/c.pth", None), ("/c.pth", f"bytes={have}-")]


def test_the_mirror_is_tried_first(server, tmp_path):
    data = blob(5)
    server.files["/mirror/d.pth"] = data
    server.files["/origin/d.pth"] = data
    f = entry("d.pth", data, server.url + "/origin/d.pth")
    (st,), _ = quiet_fetch([f], dest=tmp_path / "w", mirror=server.url + "/mirror/")
    assert st.ok and [p for p, _ in server.requests] == ["/mirror/d.pth"]
    # a mirror without the file: then the sources
    g = entry("e.pth", data, server.url + "/origin/d.pth")
    (st,), _ = quiet_fetch([g], dest=tmp_path / "w", mirror=server.url + "/mirror")
    assert st.ok and [p for p, _ in server.requests][1:] == ["/mirror/e.pth", "/origin/d.pth"]


def test_a_local_directory_works_as_the_mirror(tmp_path):
    """The manual steps (a browser download) end with: fetch --mirror DIR."""
    data = blob(6)
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "f.pth").write_bytes(data)
    f = entry("f.pth", data)
    (st,), _ = quiet_fetch([f], dest=tmp_path / "w", mirror=str(tmp_path / "downloads"))
    assert st.ok and (tmp_path / "w" / "f.pth").read_bytes() == data


# --- the command, on the real registry --------------------------------------------------------

def run_cli(capsys, *argv):
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def paper_keys():
    return [f.key for f in W.needed_files(cli.load_config([str(REPO / "config" / "paper.yaml")]))]


def test_paper_config_needs_the_study_weights():
    assert paper_keys() == ["dsfd", "dp2-body", "dp2-face", "dp2-face-hr", "resnet50",
                            "resnet101", "resnet152"]
    demo = cli.load_config([str(REPO / "config.yaml")])
    assert W.needed_files(demo) == []
    # one table of COCO without realistic variants or DSFD: only its backbone
    paper = cli.load_config([str(REPO / "config" / "paper.yaml")])
    paper["tables"] = {"tableA2": paper["tables"]["tableA2"]}
    paper["figures"] = {}
    assert [f.key for f in W.needed_files(paper)] == ["resnet50"]
    # the run whose backbone a demo model starts from (backbone_weights) loads what it needs
    demo["models"]["backbone-demo"].update({"pretrained": True, "width": 1.0, "depth": 34})
    assert [f.key for f in W.needed_files(demo)] == ["resnet34"]
    # the study's own backends: detectron2's zoo weights, mmdet's torchvision backbone
    both = cli.load_config([str(REPO / "config" / "paper.yaml"),
                            str(REPO / "config" / "study-backends.yaml")])
    keys = [f.key for f in W.needed_files(both)]
    assert {"d2-R-50", "d2-model_final_f10217", "resnet50", "dsfd", "dp2-body"} <= set(keys)


def test_weights_list_on_the_paper_config_names_files_checksums_and_sources(capsys):
    rc, out, _ = run_cli(capsys, "weights", "list", "--configfile",
                         str(REPO / "config" / "paper.yaml"))
    assert rc == 0
    body = W.get("dp2-body")
    block = out.split("dp2-body:")[1].split("\n\n")[0]
    assert body.name in block and "md5 b649410e831b45f7800a89c738b411ce" in block
    assert "status:   missing" in block and "api.loke.aws.unit.no" in block
    dsfd = out.split("dsfd:")[1].split("\n\n")[0]
    assert "WIDERFace_DSFD_RES152.pth" in dsfd
    assert "checksum: none (no checksum is published" in dsfd
    assert "Tencent/FaceDetection-DSFD" in dsfd and "410 Gone" in dsfd
    assert "sha256 0676ba61" in out and "97.8 MiB" in out
    # the Space is a source only of the file it is known to hold (FDF256)
    space = "spaces/haakohu/deep_privacy2_face"
    assert space in out.split("dp2-face-hr:")[1].split("\n\n")[0]
    assert space not in block and space not in out.split("dp2-face:")[1].split("\n\n")[0]


def test_check_on_the_demo_config_exits_0(capsys):
    rc, out, _ = run_cli(capsys, "weights", "check", "--configfile", str(REPO / "config.yaml"))
    assert rc == 0 and "needs no model files" in out
    rc, out, _ = run_cli(capsys, "check", "--configfile", str(REPO / "config.yaml"))
    assert rc == 0, out
    assert "weights:  ok" in out and "datasets: ok" in out


def test_check_of_a_partial_config_says_how_snakemake_reads_it(capsys, tmp_path):
    """A file like the README's mine.yaml is merged over config.yaml by snakemake --configfile;
    checked alone it lacks the top-level keys, and the message says what to give instead."""
    mine = tmp_path / "mine.yaml"
    mine.write_text("datasets:\n  mine: {format: coco, root: /nowhere}\n")
    rc, out, _ = run_cli(capsys, "check", "--configfile", str(mine))
    assert rc == 1
    assert "is a required property" in out
    assert f"check them as it does with --configfile config.yaml {mine}" in out
    rc, out, _ = run_cli(capsys, "check", "--configfile", str(REPO / "config.yaml"), str(mine))
    assert "config:   ok" in out and "datasets: FAIL" in out and "/nowhere" in out


def test_check_with_an_export_target_counts_what_the_export_needs(capsys, tmp_path):
    """A variant that only an export uses (no table) was not checked: check said ok, and the
    run then stopped at the preflight."""
    extra = tmp_path / "rr.yaml"
    extra.write_text("variants:\n  rr: {region: body, method: realistic, generator: dp2}\n")
    files = [str(REPO / "config.yaml"), str(extra)]
    config = cli.load_config(files)
    assert W.needed_files(config) == []
    assert "dp2-body" in [f.key for f in W.needed_files(config, [("demo", "rr")])]
    rc, out, _ = run_cli(capsys, "check", "--configfile", *files)
    assert rc == 0, out
    rc, out, _ = run_cli(capsys, "check", "--configfile", *files,
                         "--target", "results/demo/export/rr")
    assert rc == 1 and "weights:  FAIL" in out and "dp2-body" in out
    rc, out, _ = run_cli(capsys, "check", "--configfile", *files,
                         "--target", "results/demo/export/nope")
    assert rc == 1 and "--target results/demo/export/nope: no variant 'nope'" in out
    rc, out, _ = run_cli(capsys, "check", "--target", "results/tables/table1.md")
    assert rc == 1 and "not an export target" in out
    rc, out, _ = run_cli(capsys, "check", "--target", "results/demo/export/original")
    assert rc == 1 and "variant 'original' anonymizes nothing (method none)" in out
    # with --target, what the targets need only: the tables' DSFD is not the export's
    dsfd = tmp_path / "dsfd.yaml"
    dsfd.write_text("datasets:\n  demo: {faces: {detector: dsfd}}\n")
    files = [str(REPO / "config.yaml"), str(dsfd)]
    if not W.status(W.get("dsfd")).ok:
        rc, out, _ = run_cli(capsys, "check", "--configfile", *files)
        assert rc == 1 and "MISSING dsfd" in out
    rc, out, _ = run_cli(capsys, "check", "--configfile", *files,
                         "--target", "results/demo/export/body-blur")
    assert rc == 0 and "dsfd" not in out, out


def test_check_on_the_paper_config_lists_each_missing_file_and_exits_1(capsys):
    rc, out, err = run_cli(capsys, "weights", "check", "--configfile",
                           str(REPO / "config" / "paper.yaml"))
    assert rc == 1
    lines = out.strip().splitlines()
    assert len(lines) == 7 and all(line.startswith("MISSING ") for line in lines)
    assert "anonbench weights fetch" in err
    rc, out, _ = run_cli(capsys, "check", "--configfile", str(REPO / "config" / "paper.yaml"))
    assert rc == 1 and "datasets: FAIL" in out and "weights:  FAIL" in out


def _serve_paper_registry(server, monkeypatch, base):
    """Point the paper config's registry entries at generated files on the local server."""
    for i, key in enumerate(paper_keys()):
        f = W.get(key)
        data = blob(100 + i, 4096)
        server.files[f"{base}/{f.name}"] = data
        monkeypatch.setitem(W.REGISTRY, key, dataclasses.replace(
            f, md5=hashlib.md5(data).hexdigest(), sha256=None,
            sources=(W.Source(server.url + "/missing/" + f.name),
                     W.Source(server.url + f"{base}/{f.name}"))))


def test_offline_fetch_prints_the_list_and_exits_1(capsys, monkeypatch, tmp_path):
    port = closed_port()
    for key in paper_keys():
        f = W.get(key)
        monkeypatch.setitem(W.REGISTRY, key, dataclasses.replace(
            f, sources=tuple(W.Source(f"http://127.0.0.1:{port}/{f.name}") if s.url else s
                             for s in f.sources)))
    rc, out, err = run_cli(capsys, "weights", "fetch", "--configfile",
                           str(REPO / "config" / "paper.yaml"), "--dest", str(tmp_path / "w"),
                           "--mirror", f"http://127.0.0.1:{port}/mirror", "--no-progress",
                           "--timeout", "2")
    assert rc == 1
    assert "ConnectionError" in out
    missing = [line for line in err.splitlines() if line.startswith("MISSING ")]
    assert [line.split()[1].rstrip(":") for line in missing] == paper_keys()
    assert "manual step: the DSFD authors' release" in err
    assert not any(p.is_file() for p in (tmp_path / "w").rglob("*"))


def test_fetch_then_check_then_a_corrupt_file(server, capsys, monkeypatch, tmp_path):
    _serve_paper_registry(server, monkeypatch, "/files")
    paper = str(REPO / "config" / "paper.yaml")
    dest = tmp_path / "w"
    rc, out, err = run_cli(capsys, "weights", "fetch", "--configfile", paper, "--dest", str(dest),
                           "--no-progress")
    assert rc == 0, out + err
    assert sorted(p.name for p in dest.iterdir()) == sorted(W.get(k).name for k in paper_keys())
    monkeypatch.setenv(W.ENV, str(dest))      # the loaders' rule: $ANONBENCH_WEIGHTS/<name>
    assert run_cli(capsys, "weights", "check", "--configfile", paper)[0] == 0
    body = dest / W.get("dp2-body").name
    body.write_bytes(b"x" + body.read_bytes()[1:])
    rc, out, _ = run_cli(capsys, "weights", "check", "--configfile", paper)
    assert rc == 1 and out.strip().splitlines() == [out.strip()]
    assert out.startswith("BAD     dp2-body:") and "expected" in out


# --- where the loaders look, and what they say ------------------------------------------------

def test_one_location_rule(tmp_path, monkeypatch):
    dsfd = W.get("dsfd")
    assert W.location(dsfd) == tmp_path / "caches" / "torch" / "hub" / "checkpoints" / dsfd.name
    r50 = W.get("d2-R-50")
    assert W.location(r50) == tmp_path / "caches" / "fvcore" / "ImageNetPretrained/MSRA/R-50.pkl"
    monkeypatch.setenv(W.ENV, str(tmp_path / "w"))
    assert W.location(dsfd) == tmp_path / "w" / dsfd.name
    assert W.location(r50) == tmp_path / "w" / "R-50.pkl"
    from anonbench.annotators.faces import dsfd_weights_path
    from anonbench.backends.mmdet_config import torchvision_weights_path
    from anonbench.realistic.dp2 import cache_path

    assert dsfd_weights_path() == str(tmp_path / "w" / dsfd.name)
    assert torchvision_weights_path(50) == str(tmp_path / "w" / "resnet50-0676ba61.pth")
    body = W.get("dp2-body")
    assert cache_path(body.sources[0].url) == tmp_path / "w" / body.name


def test_loader_messages_name_the_file_the_checksum_and_the_fetch_command(tmp_path, monkeypatch):
    from anonbench.realistic import dp2

    body = W.get("dp2-body")
    with pytest.raises(dp2.CheckpointError) as e:
        dp2.resolve_checkpoint("body", {}, body.sources[0].url, dp2.MODELS["body"][1])
    msg = str(e.value)
    assert body.name in msg and body.md5 in msg and "anonbench weights fetch" in msg
    pytest.importorskip("face_detection")
    from anonbench.annotators import AnnotatorUnavailable
    from anonbench.annotators.faces import DSFD

    with pytest.raises(AnnotatorUnavailable) as e:
        DSFD({"download": False})
    msg = str(e.value)
    assert "WIDERFace_DSFD_RES152.pth" in msg and "no checksum is published" in msg
    assert "anonbench weights fetch" in msg and "Tencent/FaceDetection-DSFD" in msg


def test_the_registry_is_read_without_torch():
    code = ("import sys, anonbench.cli as c, anonbench.weights as w; "
            f"w.needed_files(c.load_config([{str(REPO / 'config' / 'paper.yaml')!r}])); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# --- the preflight: a real run stops before its first job -------------------------------------

def test_a_real_paper_run_without_weights_stops_before_any_job(paper_config, tmp_path):
    from anonbench.datasets.demo import generate_world_in_layout

    cfg = copy.deepcopy(paper_config)
    for name in ("coco", "cityscapes", "bdd100k"):
        root = tmp_path / "data" / name
        generate_world_in_layout(root, name, n_train=4, n_val=2, width=64, height=48)
        cfg["datasets"][name]["root"] = str(root)
    path = write_config(tmp_path / "paper.yaml", cfg)
    work = tmp_path / "work"
    # table1: Cityscapes, whose faces come from DSFD and whose realistic rows use DP2
    p = snakemake(work, "results/tables/table1.md", configfile=path, check=False)
    out = p.stdout + p.stderr
    assert p.returncode != 0
    assert "anonbench preflight: this run stops before its first job" in out
    body, dsfd = W.get("dp2-body"), W.get("dsfd")
    assert re.search(rf"MISSING dp2-body: \S*{body.name} \[md5 {body.md5}\]", out)
    assert re.search(r"MISSING dsfd: \S*WIDERFace_DSFD_RES152\.pth", out)
    assert "anonbench weights fetch" in out
    assert not (work / "results").exists()           # no job ran
    assert "rule prepare" not in out and "localrule" not in out
    # a dry run is not stopped
    p = snakemake(work, "-n", "results/tables/table1.md", configfile=path)
    assert "anonbench preflight" not in p.stdout + p.stderr


def test_the_preflight_passes_when_the_jobs_need_nothing(demo_config, tmp_path):
    """The demo config's jobs load no registry file: the run starts (here: one small job)."""
    demo_config["datasets"]["demo"]["generate"].update(train_images=4, val_images=2)
    path = write_config(tmp_path / "c.yaml", demo_config)
    p = snakemake(tmp_path, "results/demo/world", configfile=path)
    assert "anonbench preflight" not in p.stdout + p.stderr
    assert (tmp_path / "results/demo/world").is_dir()


def test_cli_entry_point_is_declared():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"anonbench": "anonbench.cli:main"}


def test_gpu_jobs_on_a_machine_without_a_gpu_stop_the_preflight(monkeypatch):
    from anonbench import weights

    monkeypatch.delenv(weights.ALLOW_CPU_ENV, raising=False)
    line = weights.gpu_problem(["anonymize_realistic", "faces"], local=True, cuda=False)
    assert "anonymize_realistic, faces" in line and "ANONBENCH_ALLOW_CPU=1" in line
    assert weights.gpu_problem(["faces"], local=False, cuda=False) is None  # on the cluster
    assert weights.gpu_problem(["faces"], local=True, cuda=True) is None
    assert weights.gpu_problem([], local=True, cuda=False) is None
    monkeypatch.setenv(weights.ALLOW_CPU_ENV, "1")
    assert weights.gpu_problem(["faces"], local=True, cuda=False) is None


def test_the_annotators_packages_stop_the_preflight_and_check(demo_config, tmp_path, capsys,
                                                             monkeypatch):
    """ViTPose keypoints without transformers: `anonbench check` said the run would stop, but
    the preflight checked the backends' and DeepPrivacy2's packages only, and the original
    model trained before the keypoints job failed."""
    import importlib.util

    if importlib.util.find_spec("transformers") is not None:
        pytest.skip("transformers is installed here")
    demo_config["datasets"]["demo"]["generate"].update(train_images=4, val_images=2)
    demo_config["datasets"]["demo"]["keypoints"] = {"estimator": "vitpose"}
    path = write_config(tmp_path / "c.yaml", demo_config)
    want = ("datasets.demo.keypoints.estimator vitpose: python package 'transformers' is not "
            "importable here")
    assert W.job_import_problems(demo_config, "keypoints", {"dataset": "demo"}) == [want]
    assert "is in no conda env of the workflow" in W.job_import_problems(
        demo_config, "keypoints", {"dataset": "demo"}, conda=True)[0]
    assert W.job_import_problems(demo_config, "faces", {"dataset": "demo"}) == []
    monkeypatch.setenv(W.ALLOW_CPU_ENV, "1")  # the keypoints jobs ask for a GPU
    p = snakemake(tmp_path, "results/tables/table1.md", configfile=path, check=False)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "anonbench preflight: this run stops" in out
    assert f"{want} (2 jobs)" in out  # one keypoints job per shard
    assert not (tmp_path / "results").exists()
    assert cli.main(["check", "--configfile", str(path), "--sdm", "conda"]) == 1
    assert ("packages: FAIL transformers (datasets.demo.keypoints.estimator vitpose) is in no "
            "conda env of the workflow") in capsys.readouterr().out


def test_a_local_pose_model_that_is_not_there_is_named_at_parse_time(demo_config, tmp_path):
    demo_config["datasets"]["demo"]["keypoints"] = {"estimator": "vitpose",
                                                    "model": str(tmp_path / "vitpose")}
    with pytest.raises(ConfigError, match=r"datasets\.demo\.keypoints\.model: .*vitpose' is not a "
                                          r"model directory \(no config\.json in "):
        check_dataset_root(demo_config, "demo")
    (tmp_path / "vitpose").mkdir()
    (tmp_path / "vitpose/config.json").write_text("{}")
    check_dataset_root(demo_config, "demo")
    demo_config["datasets"]["demo"]["keypoints"]["model"] = "usyd-community/vitpose-base-simple"
    check_dataset_root(demo_config, "demo")  # a Hugging Face id: its cache is the loader's


def test_checksum_less_files_cut_short_are_bad(tmp_path):
    """A checksum-less file was checked by its first bytes only: an interrupted copy of DSFD
    passed `anonbench check` and the preflight, and the GPU job failed in torch.load without
    the file's name."""
    import os

    import torch

    dsfd = dataclasses.replace(W.get("dsfd"), md5=None, sha256=None)
    good = tmp_path / "WIDERFace_DSFD_RES152.pth"
    torch.save({"w": torch.zeros(1000)}, good)
    assert W.verify(dsfd, good) is None
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:300])
    assert W.verify(dsfd, cut).startswith("a torch zip file cut short or corrupt (300 bytes")
    (tmp_path / "empty.pth").write_bytes(b"")
    assert W.verify(dsfd, tmp_path / "empty.pth") == "empty file"
    (tmp_path / "page.pth").write_text("<html>404</html>")
    assert W.verify(dsfd, tmp_path / "page.pth") == "not a torch/pickle file (an error page?)"
    (tmp_path / "dir.pth").mkdir()
    assert W.verify(dsfd, tmp_path / "dir.pth").startswith("a directory, not a file")
    if os.geteuid() != 0:  # root reads a file of mode 000
        good.chmod(0)
        assert W.verify(dsfd, good).startswith(f"cannot read {good}: Permission denied")
    vitpose = W.get("vitpose-base-simple")
    snap = tmp_path / "snapshot"
    snap.mkdir()
    (snap / "config.json").write_text('{"model_type": "vitpose"}')
    (snap / "preprocessor_config.json").write_text("{}")
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    tensors = len(header).to_bytes(8, "little") + header + bytes(16)
    (snap / "model.safetensors").write_bytes(tensors)
    assert W.verify(vitpose, snap) is None
    (snap / "model.safetensors").write_bytes(tensors[:-4])
    assert W.verify(vitpose, snap) == ("model.safetensors: not a complete safetensors file "
                                       f"({len(tensors) - 4} bytes)")
    (snap / "model.safetensors").write_bytes(tensors)
    (snap / "config.json").write_text("")
    assert W.verify(vitpose, snap) == "config.json: empty file"
