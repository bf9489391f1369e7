"""backends.runtime: the device, thread and checkpoint handling every backend shares."""

from __future__ import annotations

import threading

import pytest
import torch

from anonbench.backends.runtime import resolve_device, save_checkpoint, torch_threads


def test_auto_device_follows_cuda_and_cpu_is_kept():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_says_how_to_fix_the_config():
    with pytest.raises(RuntimeError, match="device: cuda:1, but CUDA is not available"):
        resolve_device("cuda:1")


def test_threads_are_restored_even_after_an_error():
    before = torch.get_num_threads()
    inside = []
    with pytest.raises(KeyError):
        with torch_threads(1):
            inside.append(torch.get_num_threads())
            raise KeyError("boom")
    assert inside == [1] and torch.get_num_threads() == before


def test_checkpoint_is_written_whole_and_replaces_the_old_one(tmp_path):
    path = tmp_path / "run" / "model.pt"
    save_checkpoint({"w": torch.arange(3)}, path)
    save_checkpoint({"w": torch.arange(5)}, path)
    assert torch.load(path, weights_only=True)["w"].tolist() == [0, 1, 2, 3, 4]
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]


def test_a_failed_save_keeps_the_old_checkpoint_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint({"w": torch.zeros(2)}, path)
    with pytest.raises(Exception):
        save_checkpoint({"lock": threading.Lock()}, path)     # not picklable
    assert torch.load(path, weights_only=True)["w"].tolist() == [0.0, 0.0]
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
