"""What the backends' torch-free config modules share: a preset plus the user's keys."""

from __future__ import annotations

from typing import Any


def with_preset(model_cfg: dict[str, Any] | None, presets: dict[str, dict[str, Any]],
                defaults: dict[str, Any], meta_keys: set[str], backend: str
                ) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(the preset's values updated by the known keys of ``model_cfg``, ``model_cfg`` as a
    dict, the preset's name); one-line ``ValueError`` for an unknown preset or key."""
    model_cfg = dict(model_cfg or {})
    preset = model_cfg.get("preset", "paper")
    if preset not in presets:
        raise ValueError(f"model config: unknown preset {preset!r}; known: {', '.join(presets)}")
    unknown = sorted(set(model_cfg) - set(defaults) - meta_keys)
    if unknown:
        raise ValueError(
            f"model config: unknown key(s) {', '.join(unknown)} for the {backend} backend; "
            f"known keys: {', '.join(sorted(defaults))}")
    cfg = {**presets[preset], **{k: v for k, v in model_cfg.items() if k in defaults}}
    return cfg, model_cfg, preset


# Resume checkpoints (out_dir/resume.pt; backends.runtime), shared by the backends' configs:
# every N iterations and every M minutes (null: not on that schedule); the torchvision and
# detectron2 backends also stop with a checkpoint this many minutes before a SLURM job's end.
CHECKPOINT_DEFAULTS: dict[str, Any] = {
    "checkpoint_every_iters": 5000,
    "checkpoint_every_minutes": 30,
    "stop_before_walltime_minutes": 5,
}


def check_checkpoint_keys(cfg: dict[str, Any], err: Any) -> None:
    """Check (and normalize) the checkpoint keys present in ``cfg``; ``err(msg)`` -> exception."""
    for key, integer in (("checkpoint_every_iters", True), ("checkpoint_every_minutes", False),
                         ("stop_before_walltime_minutes", False)):
        if key not in cfg or cfg[key] is None:
            continue
        v = cfg[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (
                integer and not float(v).is_integer()) or v < (1 if integer else 0):
            raise err(f"{key} must be null or " + ("an integer >= 1" if integer else
                                                   "a number >= 0") + f", got {v!r}")
        if integer:
            cfg[key] = int(v)
