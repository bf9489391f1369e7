# Annotation, one job per shard: face boxes (rule faces) from the detector in the dataset's
# `faces` settings, and COCO-17 keypoints (rule keypoints) where the dataset's `keypoints`
# estimator is a model (not `groundtruth`, whose keypoints are already in the manifest).
# Slow models (dsfd, vitpose) declare gpu=1 for the cluster; gpu=0 asks SLURM for none.
from anonbench.annotate import uses_gpu as _annotator_uses_gpu


def _estimated_keypoints(dataset):
    return config["datasets"][dataset]["keypoints"].get("estimator", "groundtruth") != "groundtruth"


_KEYPOINT_DATASETS = [d for d in config["datasets"] if _estimated_keypoints(d)]


def keypoints_input(wildcards):
    """The shard's keypoints file when the dataset's keypoints are estimated, else nothing
    (for rules that need keypoints, e.g. keypoint-conditioned anonymizers)."""
    if _estimated_keypoints(wildcards.dataset):
        return f"results/{wildcards.dataset}/keypoints/{wildcards.shard}.json"
    return []


def faces_input(wildcards):
    inputs = {"shards": f"results/{wildcards.dataset}/prepared/shards"}
    if dataset_cfg(wildcards)["faces"].get("detector", "keypoints") == "keypoints":
        kp = keypoints_input(wildcards)
        if kp:
            inputs["keypoints"] = kp
    return inputs


def _faces_gpu(wildcards):
    detector = dataset_cfg(wildcards)["faces"].get("detector", "keypoints")
    return int(_annotator_uses_gpu("faces", detector))


def _keypoints_gpu(wildcards):
    return int(_annotator_uses_gpu("keypoints", dataset_cfg(wildcards)["keypoints"]["estimator"]))


rule faces:
    input:
        unpack(faces_input),
    output:
        "results/{dataset}/faces/{shard}.json",
    params:
        shard=lambda w: f"results/{w.dataset}/prepared/shards/{w.shard}.json",
        faces=lambda w: dataset_cfg(w)["faces"],
    resources:
        gpu=_faces_gpu,
    log:
        "results/logs/faces/{dataset}_{shard}.log",
    script:
        "../scripts/faces.py"


rule keypoints:
    input:
        shards="results/{dataset}/prepared/shards",
    output:
        "results/{dataset}/keypoints/{shard}.json",
    wildcard_constraints:
        # only datasets whose keypoints are estimated; "(?!)" matches nothing
        dataset="|".join(re.escape(d) for d in _KEYPOINT_DATASETS) or "(?!)",
    params:
        shard=lambda w: f"results/{w.dataset}/prepared/shards/{w.shard}.json",
        keypoints=lambda w: dataset_cfg(w)["keypoints"],
    resources:
        gpu=_keypoints_gpu,
    log:
        "results/logs/keypoints/{dataset}_{shard}.log",
    script:
        "../scripts/keypoints.py"
