"""Pose estimators (registry ``POSE_ESTIMATORS``; ``keypoints.estimator`` in config.yaml).

Top-down: one pose per person instance, estimated inside the tightest box around its mask.
Output keypoints are COCO-17 (nose, eyes, ears, shoulders, elbows, wrists, hips, knees,
ankles); a keypoint is visible (COCO ``v = 2``) when its confidence >= ``threshold`` (study:
0.3), else ``v = 0`` with ``x = y = 0`` (COCO's "not labelled").

- ``groundtruth``: the dataset's own keypoints (COCO, the demo world): nothing to estimate.
- ``vitpose``: ViTPose through transformers (``VitPoseForPoseEstimation``; default
  ``usyd-community/vitpose-base-simple``, COCO-17 order), for the cluster. Weights come from
  ``$ANONBENCH_WEIGHTS/vitpose-base-simple/`` when that is set, else the Hugging Face cache
  (:mod:`anonbench.weights`; ``anonbench weights fetch``); ``download: false`` only looks there,
  ``model`` may be a local directory.

BlazePose (MediaPipe) is not offered: mediapipe >= 0.10.30 no longer ships the pose model in
its wheel, and 0.10.21, the last that does, pins numpy < 2 and protobuf < 5.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import AnnotatorUnavailable, torch_device

N_KEYPOINTS = 17
#: The study's visibility threshold on keypoint confidence.
DEFAULT_THRESHOLD = 0.3
VITPOSE_MODEL = "usyd-community/vitpose-base-simple"


def coco_keypoints(xy: np.ndarray, conf: np.ndarray, threshold: float) -> list[float]:
    """(17, 2) positions and (17,) confidences -> COCO's 51 numbers ``x, y, v``."""
    xy = np.asarray(xy, dtype=np.float64).reshape(N_KEYPOINTS, 2)
    conf = np.asarray(conf, dtype=np.float64).reshape(N_KEYPOINTS)
    out: list[float] = []
    for (x, y), c in zip(xy, conf):
        out += [round(float(x), 2), round(float(y), 2), 2] if c >= threshold else [0, 0, 0]
    return out


class PoseEstimator:
    """Base class: ``estimate(image, boxes)`` -> positions (N, 17, 2), confidences (N, 17)."""

    name = ""
    needs_pixels = True
    uses_gpu = False

    def __init__(self, opts: dict[str, Any] | None = None, *, threads: int = 1) -> None:
        self.opts = dict(opts or {})
        self.threshold = float(self.opts.get("threshold", DEFAULT_THRESHOLD))
        self.batch_size = int(self.opts.get("batch_size", 16))
        self.threads = threads

    def estimate(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class GroundTruth(PoseEstimator):
    """The annotation's own keypoints; :func:`anonbench.annotate.estimate_keypoints` copies them."""

    name = "groundtruth"
    needs_pixels = False


class VitPose(PoseEstimator):
    name = "vitpose"
    uses_gpu = True

    def __init__(self, opts: dict[str, Any] | None = None, *, threads: int = 1) -> None:
        super().__init__(opts, threads=threads)
        try:
            import torch
            from transformers import AutoProcessor, VitPoseForPoseEstimation
        except ImportError as e:
            raise AnnotatorUnavailable(
                f"pose estimator 'vitpose' needs transformers >= 4.49 with ViTPose ({e}): "
                "pip install 'anonbench[pose]' (or: pip install transformers)") from None
        from .. import weights

        model = self.opts.get("model", VITPOSE_MODEL)
        local_only = not self.opts.get("download", True)
        entry = weights.get("vitpose-base-simple")
        if model == VITPOSE_MODEL and weights.weights_dir() is not None:
            # $ANONBENCH_WEIGHTS/vitpose-base-simple/ (what `anonbench weights fetch` writes)
            path = weights.location(entry)
            problem = weights.verify(entry, path)
            if problem:
                raise AnnotatorUnavailable(
                    f"ViTPose weights: {weights.missing_message(entry, path, problem)}")
            model, local_only = str(path), True
        try:
            self.processor = AutoProcessor.from_pretrained(model, local_files_only=local_only)
            self.model = VitPoseForPoseEstimation.from_pretrained(model,
                                                                  local_files_only=local_only)
        except (OSError, ValueError) as e:
            hint = (f" {weights.missing_message(entry)}" if model == VITPOSE_MODEL else "")
            raise AnnotatorUnavailable(
                f"ViTPose weights {model!r} not available ({str(e).splitlines()[0]}).{hint} "
                "Or download them on a machine with internet access (huggingface-cli download "
                f"{model}) into the Hugging Face cache ($HF_HOME, default ~/.cache/huggingface) "
                "of the nodes, or set keypoints.model to a local directory") from None
        torch.set_num_threads(max(1, threads))
        self.torch = torch
        self.device = torch_device(self.opts)
        self.model.to(self.device).eval()

    def estimate(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        xy = np.zeros((len(boxes), N_KEYPOINTS, 2))
        conf = np.zeros((len(boxes), N_KEYPOINTS))
        for s in range(0, len(boxes), self.batch_size):
            chunk = boxes[s:s + self.batch_size]
            xywh = [[float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
                    for x0, y0, x1, y1 in chunk]
            inputs = self.processor(image, boxes=[xywh], return_tensors="pt").to(self.device)
            with self.torch.no_grad():
                outputs = self.model(**inputs)
            results = self.processor.post_process_pose_estimation(outputs, boxes=[xywh])[0]
            for k, r in enumerate(results):
                if len(r["scores"]) != N_KEYPOINTS:
                    raise ValueError(f"pose model {self.opts.get('model', VITPOSE_MODEL)!r} gives "
                                     f"{len(r['scores'])} keypoints, not COCO's {N_KEYPOINTS}")
                xy[s + k] = np.asarray(r["keypoints"].cpu(), dtype=np.float64)[:, :2]
                conf[s + k] = np.asarray(r["scores"].cpu(), dtype=np.float64)
        return xy, conf


#: Registry: ``keypoints.estimator`` -> class (options, threads=) -> estimator.
POSE_ESTIMATORS: dict[str, type[PoseEstimator]] = {
    "groundtruth": GroundTruth,
    "vitpose": VitPose,
}


def get_pose_estimator(name: str) -> type[PoseEstimator]:
    try:
        return POSE_ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown pose estimator {name!r} "
                         f"(known: {', '.join(sorted(POSE_ESTIMATORS))})") from None

