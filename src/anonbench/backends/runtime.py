"""What every training backend does the same way around torch: pick the device a model config
names, run with a given number of CPU threads, and write a checkpoint atomically (a crash never
leaves a half-written ``model.pt`` that Snakemake would take as done)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..config import RUN_SETTINGS
from ..manifest import atomic_path


def read_model_checkpoint(path: str | os.PathLike[str], fmt: str, backend: str
                          ) -> dict[str, Any]:
    """A trained model's checkpoint (``model.pt``) of ``backend`` (its ``format`` ``fmt``);
    raises ``ValueError`` naming the file when it cannot be read (cut short, another file) or
    is another backend's."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{path}: cannot read the model checkpoint ({why}); delete it and "
                         "run its train job again") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        raise ValueError(f"{path}: not a checkpoint of the {backend} backend")
    return ckpt


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` where CUDA is available, else ``cpu``; a ``cuda`` device without CUDA
    is an error that says how to fix the config."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"model config device: {name}, but CUDA is not available here "
                           f"(set device: cpu or auto)")
    return name


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads; the previous number is restored after."""
    old = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def save_checkpoint(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` through a temporary file in the same folder, renamed into place."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


# --------------------------------------------------------------------------------------------
# resume checkpoints: survive a job's time limit, preemption or a crash
#
# A training run writes ``<out_dir>/resume.pt`` every ``checkpoint_every_iters`` iterations and
# every ``checkpoint_every_minutes`` minutes (atomically: complete or absent), when SIGUSR1 or
# SIGTERM arrives (at the next iteration boundary; then it stops with TrainingInterrupted, a
# non-zero exit, so that Snakemake's retry resumes) and shortly before a SLURM job's end time.
# The file is not an output of the train rule: Snakemake does not delete it when the job fails.
# It is used only when its key (model config, training manifest file, seed) matches the run's,
# and removed once model.pt is written.

RESUME_FORMAT = "anonbench-resume-v1"
RESUME_FILE = "resume.pt"
# model config keys that say when to checkpoint, not what to train: not part of the resume key


class TrainingInterrupted(RuntimeError):
    """Training stopped on a signal or before the job's time limit, after saving a resume
    checkpoint; the job fails (non-zero exit) and its retry resumes from the checkpoint."""


def resume_path(out_dir: str | os.PathLike[str]) -> Path:
    return Path(out_dir) / RESUME_FILE


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resume_key(model_cfg: dict[str, Any], train_manifest: str | os.PathLike[str],
               seed: int) -> dict[str, str]:
    """What a resume checkpoint must match: hashes of the resolved model config (without the
    run settings: checkpoint schedule, data loading, logging), of the training manifest's
    bytes, and the seed."""
    cfg = {k: v for k, v in model_cfg.items() if k not in RUN_SETTINGS}
    return {"config": hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode())
            .hexdigest(),
            "manifest": file_sha256(train_manifest), "seed": str(int(seed))}


def rng_state(device: str | torch.device = "cpu") -> dict[str, Any]:
    """torch (CPU and, on a CUDA device, CUDA), numpy's and Python's global RNG states, in types
    that ``torch.load(weights_only=True)`` reads back."""
    npst = np.random.get_state(legacy=False)
    cuda = (torch.cuda.get_rng_state_all()
            if torch.device(device).type == "cuda" and torch.cuda.is_available() else [])
    return {"torch": torch.get_rng_state(), "cuda": cuda,
            "numpy": {"bit_generator": npst["bit_generator"],
                      "key": torch.from_numpy(np.asarray(npst["state"]["key"], np.int64)),
                      "pos": int(npst["state"]["pos"]), "has_gauss": int(npst["has_gauss"]),
                      "gauss": float(npst["gauss"])},
            "python": list(_py_state_to_list(random.getstate()))}


def _py_state_to_list(st: tuple) -> list:
    version, internal, gauss = st
    return [version, list(internal), gauss]


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state({"bit_generator": n["bit_generator"],
                         "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_resume(state: dict[str, Any], key: dict[str, str], out_dir: str | os.PathLike[str]
                ) -> tuple[float, int]:
    """Write ``out_dir/resume.pt`` atomically; (seconds, bytes)."""
    t0 = time.perf_counter()
    path = resume_path(out_dir)
    save_checkpoint({"format": RESUME_FORMAT, "key": key, **state}, path)
    return time.perf_counter() - t0, path.stat().st_size


def load_resume(out_dir: str | os.PathLike[str], key: dict[str, str],
                warn: Callable[[str], None]) -> dict[str, Any] | None:
    """The resume checkpoint of ``out_dir`` when it belongs to this run (same key), else None:
    a missing file silently, a corrupt/truncated one or one of another config, manifest or seed
    with a warning through ``warn`` (the run then starts from iteration 0). Never raises.
    Removes the temporary files of checkpoint writes that a killed attempt left."""
    path = resume_path(out_dir)
    for name in (RESUME_FILE, "model.pt"):
        for stale in Path(out_dir).glob(f".{name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()
    if not path.is_file():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, corrupt, unreadable: start over, never crash
        warn(f"WARNING: ignoring the resume checkpoint {path}: it cannot be read "
             f"({type(e).__name__}: {str(e)[:200]}); training starts from iteration 0")
        return None
    if not isinstance(ckpt, dict) or ckpt.get("format") != RESUME_FORMAT:
        warn(f"WARNING: ignoring {path}: not a resume checkpoint of anonbench; training starts "
             f"from iteration 0")
        return None
    old = ckpt.get("key") or {}
    differ = [k for k in ("config", "manifest", "seed") if old.get(k) != key[k]]
    if differ:
        what = {"config": "model config", "manifest": "training manifest", "seed": "seed"}
        warn(f"WARNING: ignoring the stale resume checkpoint {path} (iteration "
             f"{ckpt.get('iteration')}): its {', '.join(what[k] for k in differ)} differ"
             f"{'s' if len(differ) == 1 else ''} from this run's; training starts from "
             f"iteration 0")
        return None
    return ckpt


def remove_resume(out_dir: str | os.PathLike[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        resume_path(out_dir).unlink()


def log_lines_until(path: str | os.PathLike[str], iteration: int) -> list[str]:
    """The lines of a partial training log up to ``iteration``: a resumed run keeps them, the
    records of later iterations (not in the checkpoint) are logged again."""
    path = Path(path)
    if not path.is_file():
        return []
    kept = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue   # a line cut by a kill
        if isinstance(rec, dict) and int(rec.get("iter", 0)) <= iteration:
            kept.append(line)
    return kept


def walltime_deadline() -> float | None:
    """The SLURM job's end time (epoch seconds) when running inside one, else None:
    ``$SLURM_JOB_END_TIME`` (Slurm >= 23.02) or ``squeue -j $SLURM_JOB_ID -o %e``."""
    end = os.environ.get("SLURM_JOB_END_TIME")
    if end and end.isdigit():
        return float(end)
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return None
    try:
        p = subprocess.run(["squeue", "-h", "-j", job, "-o", "%e"], capture_output=True,
                           text=True, timeout=20)
        line = p.stdout.strip().splitlines()[0] if p.returncode == 0 else ""
        return time.mktime(time.strptime(line.strip(), "%Y-%m-%dT%H:%M:%S"))
    except Exception:  # no squeue, no such job, "Unknown"/"NONE" (no limit): no deadline
        return None


class Checkpointing:
    """When to write a resume checkpoint and when to stop: every ``every_iters`` iterations,
    every ``every_minutes`` minutes, on SIGUSR1/SIGTERM (installed by :meth:`signals`), and
    ``stop_before_minutes`` before the SLURM job's end time (checkpoint, then stop)."""

    def __init__(self, every_iters: int | None, every_minutes: float | None,
                 stop_before_minutes: float | None = None,
                 deadline: float | None = None) -> None:
        self.every_iters = int(every_iters) if every_iters else None
        self.every_s = float(every_minutes) * 60 if every_minutes else None
        self.stop_at = (deadline - float(stop_before_minutes) * 60
                        if deadline is not None and stop_before_minutes else None)
        if self.stop_at is not None and time.time() >= self.stop_at:
            # every attempt would train one iteration, write a checkpoint and stop
            raise ValueError(
                f"the SLURM job ends in {(deadline - time.time()) / 60:.1f} min, within its "
                f"stop_before_walltime_minutes ({float(stop_before_minutes):g}): the training "
                "would stop at once on every attempt; give the train jobs more time "
                "(ANONBENCH_SLURM_TRAIN_RUNTIME) or lower the model's "
                "stop_before_walltime_minutes")
        self.last = time.perf_counter()
        self.signal: str | None = None

    def due(self, iteration: int) -> str | None:
        """Why a checkpoint is due after ``iteration`` finished iterations, or None.
        ``"signal ..."``/``"walltime"``: save, then stop."""
        if self.signal:
            return f"signal {self.signal}"
        if self.stop_at is not None and time.time() >= self.stop_at:
            return "walltime"
        if self.every_iters and iteration % self.every_iters == 0:
            return "iterations"
        if self.every_s is not None and time.perf_counter() - self.last >= self.every_s:
            return "minutes"
        return None

    def saved(self) -> None:
        self.last = time.perf_counter()

    @contextlib.contextmanager
    def signals(self) -> Iterator["Checkpointing"]:
        """SIGUSR1, SIGTERM and SIGINT (Ctrl-C) ask for a checkpoint at the next iteration
        boundary (then stop); a second one stops at once. Previous handlers are restored after
        the block."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        old: dict[int, Any] = {}

        def handler(signum: int, frame: Any) -> None:
            if self.signal is not None:
                raise SystemExit(128 + signum)
            self.signal = signal.Signals(signum).name

        for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
            old[s] = signal.signal(s, handler)
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)
