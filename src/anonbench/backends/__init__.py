"""Training backends: a registry from a config name (``models.<name>.backend``) to a backend.

A backend is any object (usually a module) with two callables::

    train(train_manifest: str, model_cfg: dict, seed: int, out_dir: str, *, threads=1, log=None) -> dict
    predict(checkpoint: str, manifest: str, *, threads=1, batch_size=4) -> list[dict]   # COCO results

Backends are registered by *import path* and imported only when asked for, so heavy optional
dependencies (detectron2, mmdet, ...) cost nothing unless a model config names them::

    register_backend("detectron2", "anonbench.backends.detectron2_backend")
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

# name -> "package.module" (imported lazily) or a zero-argument factory returning the backend.
_REGISTRY: dict[str, str | Callable[[], Any]] = {
    "torchvision": "anonbench.backends.torchvision_backend",
    "detectron2": "anonbench.backends.detectron2_backend",   # envs/detectron2.yaml
    "mmdet": "anonbench.backends.mmdet_backend",             # envs/mmdet.yaml
}
_LOADED: dict[str, Any] = {}
# name -> "package.module:function" that checks a model config without heavy imports (parse time)
_CONFIG_CHECKERS: dict[str, str] = {
    "torchvision": "anonbench.backends.torchvision_config:resolve_config",
    "detectron2": "anonbench.backends.detectron2_config:resolve_config",
    "mmdet": "anonbench.backends.mmdet_config:resolve_config",
}


def register_backend(name: str, target: str | Callable[[], Any], *, replace: bool = False) -> None:
    """Register ``name`` -> a module path (imported on first use) or a factory callable."""
    if not isinstance(name, str) or not name:
        raise ValueError("backend name must be a non-empty string")
    if name in _REGISTRY and not replace and _REGISTRY[name] != target:
        raise ValueError(f"backend {name!r} is already registered (pass replace=True to override)")
    _REGISTRY[name] = target
    _LOADED.pop(name, None)


def available_backends() -> list[str]:
    """Names that ``get_backend`` accepts (registered; not necessarily importable here)."""
    return sorted(_REGISTRY)


def get_backend(name: str) -> Any:
    """The backend registered as ``name``; ``ValueError`` naming the known backends otherwise."""
    if name in _LOADED:
        return _LOADED[name]
    target = _REGISTRY.get(name)
    if target is None:
        raise ValueError(
            f"unknown training backend {name!r}; known backends: {', '.join(available_backends())}"
        )
    if isinstance(target, str):
        try:
            backend = importlib.import_module(target)
        except ImportError as e:
            raise ImportError(
                f"training backend {name!r} needs {target!r}, which could not be imported: {e}. "
                f"Install the backend's optional dependencies or choose another backend "
                f"({', '.join(available_backends())})."
            ) from e
    else:
        backend = target()
    for attr in ("train", "predict"):
        if not callable(getattr(backend, attr, None)):
            raise TypeError(f"training backend {name!r} ({target!r}) has no callable {attr!r}")
    _LOADED[name] = backend
    return backend


def check_model_config(model_cfg: dict[str, Any]) -> None:
    """Raise ``ValueError`` (one line) if the backend named in ``model_cfg`` rejects it.

    Runs when the workflow parses config.yaml, so it must stay cheap: backends register a
    checker that imports nothing heavy. Backends without a checker are checked when they train.
    """
    name = model_cfg.get("backend")
    if name not in _REGISTRY:
        raise ValueError(f"unknown training backend {name!r}; known backends: "
                         f"{', '.join(available_backends())}")
    target = _CONFIG_CHECKERS.get(name)
    if target is None:
        return
    module, func = target.split(":")
    getattr(importlib.import_module(module), func)(model_cfg)


__all__ = ["available_backends", "check_model_config", "get_backend", "register_backend"]
