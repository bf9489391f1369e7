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
