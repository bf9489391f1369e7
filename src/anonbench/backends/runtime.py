"""What every training backend does the same way around torch: pick the device a model config
names, run with a given number of CPU threads, and write a checkpoint atomically (a crash never
leaves a half-written ``model.pt`` that Snakemake would take as done)."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import torch

from ..manifest import atomic_path


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
