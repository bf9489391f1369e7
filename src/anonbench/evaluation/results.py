"""What the evaluators read of a COCO result besides its annotation fields."""

from __future__ import annotations

from typing import Any


def segm_score(result: dict[str, Any]) -> float:
    """The score that ranks a result's mask in the segm evaluations: its ``segm_score`` where the
    model gives one (``mask_score: maskness`` of the torchvision backend), else its ``score``,
    the detection's, as Mask R-CNN ranks masks."""
    return float(result.get("segm_score", result["score"]))
