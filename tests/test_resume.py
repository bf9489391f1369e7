"""Resume checkpoints of the torchvision backend (CPU): a run killed with SIGKILL or stopped by
SIGUSR1 and restarted ends bit-identical to an uninterrupted one; stale or corrupt resume
checkpoints are ignored with a warning."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from anonbench.backends import runtime
from anonbench.backends import torchvision_backend as tb
from anonbench.backends.torchvision_config import resolve_config
from test_backend_torchvision import TINY, tiny  # noqa: F401  (the fixture)

REPO = Path(__file__).resolve().parents[1]
ITERS = 24
CFG = {**TINY, "iterations": ITERS, "warmup_iters": 4, "log_every": 2,
       "checkpoint_every_iters": 4, "checkpoint_every_minutes": None}


def _train(manifest, out, cfg=CFG, seed=0, lines=None, on_line=None):
    def log(line):
        if lines is not None:
            lines.append(line)
        if on_line is not None:
            on_line(line)
    return tb.train(manifest, cfg, seed, str(out), threads=1, log=log)


def _records(out: Path, name="train_log.jsonl"):
    return [json.loads(x) for x in (out / name).read_text().splitlines()]


def _same_model(a: Path, b: Path) -> None:
    sa = torch.load(a / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
    sb = torch.load(b / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
    assert sa.keys() == sb.keys()
    diff = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not diff, f"{len(diff)} tensors differ, e.g. {diff[:3]}"


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory):  # noqa: F811
    """The uninterrupted run and its predictions."""
    out = tmp_path_factory.mktemp("ref")
    summary = _train(tiny, out)
    assert summary["resumed_from"] == 0 and summary["attempt"] == 1
    assert not (out / runtime.RESUME_FILE).exists()  # removed when model.pt is written
    return out, tb.predict(str(out / "model.pt"), tiny, threads=1, batch_size=2)


def _stop_by_sigusr1(manifest, out, at_iter=10, cfg=CFG, sig=signal.SIGUSR1):
    """Train in this process; ``sig`` to ourselves once iteration ``at_iter`` is logged."""
    def on_line(line):
        if f"iter {at_iter}/" in line:
            os.kill(os.getpid(), sig)
    lines: list[str] = []
    with pytest.raises(runtime.TrainingInterrupted, match=f"signal {sig.name}"):
        _train(manifest, out, cfg=cfg, lines=lines, on_line=on_line)
    assert not (out / "model.pt").exists()
    return lines


def test_sigusr1_checkpoints_stops_and_resumes_bit_identical(tiny, reference, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    _stop_by_sigusr1(tiny, out)
    ckpt = torch.load(out / runtime.RESUME_FILE, map_location="cpu", weights_only=True)
    assert ckpt["iteration"] == 10 and ckpt["reason"] == "signal SIGUSR1"
    assert {"model", "optimizer", "rng", "sampler", "key"} <= set(ckpt)
    assert {"torch", "numpy", "python", "cuda"} <= set(ckpt["rng"])
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # handlers restored
    lines: list[str] = []
    summary = _train(tiny, out, lines=lines)
    assert summary["resumed_from"] == 10 and summary["attempt"] == 2
    assert any("resumed from" in line and "iteration 10/" in line for line in lines), lines
    _same_model(out, reference[0])
    assert tb.predict(str(out / "model.pt"), tiny, threads=1, batch_size=2) == reference[1]
    assert not (out / runtime.RESUME_FILE).exists()
    recs = _records(out)
    steps = [(r["iter"], r["attempt"]) for r in recs if "losses" in r]
    assert steps == [(i, 1 if i <= 10 else 2) for i in range(2, ITERS + 1, 2)], steps
    assert [r for r in recs if r.get("event") == "resume"] == [
        {"event": "resume", "iter": 10, "attempt": 2, "reason": "signal SIGUSR1"}]
    assert not list(out.glob(".*tmp"))



def test_ctrl_c_checkpoints_too(tiny, reference, tmp_path):  # noqa: F811
    """Ctrl-C (SIGINT) in a local run lost the training since its last checkpoint."""
    out = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)
    _stop_by_sigusr1(tiny, out, at_iter=6, sig=signal.SIGINT)
    ckpt = torch.load(out / runtime.RESUME_FILE, map_location="cpu", weights_only=True)
    assert ckpt["iteration"] == 6 and ckpt["reason"] == "signal SIGINT"
    assert signal.getsignal(signal.SIGINT) is before
    assert _train(tiny, out)["resumed_from"] == 6
    _same_model(out, reference[0])

def test_sigkill_mid_run_then_restart_is_bit_identical(tiny, reference, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    code = ("import json, sys; from anonbench.backends import torchvision_backend as tb; "
            "tb.train(sys.argv[1], json.loads(sys.argv[2]), 0, sys.argv[3], threads=1)")
    p = subprocess.Popen([sys.executable, "-c", code, tiny, json.dumps(CFG), str(out)],
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resume = out / runtime.RESUME_FILE
    try:
        deadline = time.time() + 120
        while time.time() < deadline and p.poll() is None and not resume.exists():
            time.sleep(0.01)
        assert p.poll() is None, "training ended before it could be killed"
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait()
    assert resume.exists() and not (out / "model.pt").exists()
    killed_at = torch.load(resume, map_location="cpu", weights_only=True)["iteration"]
    assert 0 < killed_at < ITERS
    summary = _train(tiny, out)
    assert summary["resumed_from"] == killed_at >= 4
    _same_model(out, reference[0])
    assert tb.predict(str(out / "model.pt"), tiny, threads=1, batch_size=2) == reference[1]
    iters = [r["iter"] for r in _records(out) if "losses" in r]
    assert iters == list(range(2, ITERS + 1, 2))  # records after the checkpoint: logged once


@pytest.mark.parametrize("change", ["config", "manifest"])
def test_stale_checkpoint_is_ignored_with_a_warning(tiny, tmp_path, change):  # noqa: F811
    out = tmp_path / "run"
    _stop_by_sigusr1(tiny, out, at_iter=6)
    cfg, manifest = CFG, tiny
    if change == "config":
        cfg = {**CFG, "lr": 0.02}
    else:
        m = json.loads(Path(tiny).read_text())
        m["images"] = m["images"][:-1]
        manifest = str(tmp_path / "changed.json")
        Path(manifest).write_text(json.dumps(m))
    lines: list[str] = []
    summary = _train(manifest, out, cfg=cfg, lines=lines)
    assert summary["resumed_from"] == 0 and summary["attempt"] == 1
    what = "model config" if change == "config" else "training manifest"
    assert any("WARNING" in line and "stale resume checkpoint" in line and what in line
               for line in lines), lines
    assert not any("resumed from" in line for line in lines)
    assert not any(r.get("event") == "resume" for r in _records(out))
    assert not (out / runtime.RESUME_FILE).exists()


def test_truncated_checkpoint_is_ignored_with_a_warning(tiny, reference, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    _stop_by_sigusr1(tiny, out, at_iter=6)
    resume = out / runtime.RESUME_FILE
    data = resume.read_bytes()
    resume.write_bytes(data[: len(data) // 2])
    left = out / f".{runtime.RESUME_FILE}.x1y2z3.tmp"  # a write killed half-way
    left.write_bytes(data[:100])
    lines: list[str] = []
    summary = _train(tiny, out, lines=lines)
    assert summary["resumed_from"] == 0
    assert any("WARNING" in line and "cannot be read" in line for line in lines), lines
    _same_model(out, reference[0])
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    # the model file cut short: the evaluation names it
    model = out / "model.pt"
    model.write_bytes(model.read_bytes()[:1000])
    from anonbench.backends import torchvision_backend

    with pytest.raises(ValueError, match=rf"{model}: cannot read the model checkpoint \(.*\); "
                                         "delete it and run its train job again"):
        torchvision_backend.load_checkpoint(str(model))
    # not even a torch file: the same
    shutil.rmtree(out)
    out.mkdir()
    (out / runtime.RESUME_FILE).write_bytes(b"garbage")
    assert runtime.load_resume(out, {"config": "", "manifest": "", "seed": "0"},
                               warn=lines.append) is None
    assert "cannot be read" in lines[-1]


def test_resume_key_and_checkpoint_options(tiny, tmp_path):  # noqa: F811
    cfg = resolve_config(CFG)
    key = runtime.resume_key(cfg, tiny, 0)
    # when to checkpoint is not what is trained: the key stays the same
    assert runtime.resume_key({**cfg, "checkpoint_every_iters": 7,
                               "checkpoint_every_minutes": 1}, tiny, 0) == key
    assert runtime.resume_key(cfg, tiny, 1)["seed"] != key["seed"]
    assert resolve_config({**TINY})["checkpoint_every_minutes"] == 30
    for bad in ({"checkpoint_every_iters": 0}, {"checkpoint_every_iters": 2.5},
                {"checkpoint_every_minutes": -1}, {"stop_before_walltime_minutes": "5"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            resolve_config({**TINY, **bad})
    assert runtime.resume_key({**cfg, "workers": 1, "prefetch_factor": 2}, tiny, 0) == key
    # the walltime stop: a job that ends within stop_before_walltime_minutes would stop at
    # once on every attempt (each writing a checkpoint after one iteration): refused at start
    with pytest.raises(ValueError, match=r"the SLURM job ends in 2\.0 min, within its "
                                         r"stop_before_walltime_minutes \(5\)"):
        runtime.Checkpointing(None, None, 5, deadline=time.time() + 120)
    # ... and one that gets there -> checkpoint after the next iteration, stop
    plan = runtime.Checkpointing(None, None, 5, deadline=time.time() + 301)
    assert plan.due(1) is None
    plan.stop_at = time.time()
    assert plan.due(1) == "walltime"
    assert runtime.Checkpointing(3, None).due(3) == "iterations"
    assert runtime.Checkpointing(3, None).due(2) is None
