"""Pluggable annotation models: face detectors (:mod:`.faces`), pose estimators (:mod:`.pose`),
and the study's face-to-instance matching (:mod:`.match`). Heavy dependencies (onnxruntime,
face-detection, transformers) are imported only when a model is built."""

from .base import AnnotatorUnavailable
from .faces import FACE_DETECTORS, get_face_detector
from .pose import POSE_ESTIMATORS, get_pose_estimator

__all__ = ["AnnotatorUnavailable", "FACE_DETECTORS", "POSE_ESTIMATORS", "get_face_detector",
           "get_pose_estimator"]
