# Annotation, one job per shard: face boxes (rule faces) from the detector in the dataset's
# `faces` settings, and COCO-17 keypoints (rule keypoints) where the dataset's `keypoints`
# estimator is a model (not `groundtruth`, whose keypoints are already in the manifest).
# Slow models (dsfd, vitpose) declare gpu=1 for the cluster; gpu=0 asks SLURM for none.


rule faces:
    input:
        unpack(faces_input),
    output:
        "results/{dataset}/faces/{shard}.json",
    log:
        "results/logs/faces/{dataset}/{shard}.log",
    priority: DATA_PRIORITY
    conda:
        BASE_ENV
    resources:
        gpu=_faces_gpu,
    params:
        shard=lambda w: f"results/{w.dataset}/prepared/shards/{w.shard}.json",
        faces=lambda w: dataset_cfg(w)["faces"],
    script:
        "../scripts/faces.py"


rule keypoints:
    input:
        shards="results/{dataset}/prepared/shards",
        checked=shard_checked,
    output:
        "results/{dataset}/keypoints/{shard}.json",
    log:
        "results/logs/keypoints/{dataset}/{shard}.log",
    wildcard_constraints:
        # only datasets whose keypoints are estimated; "(?!)" matches nothing
        dataset="|".join(re.escape(d) for d in _KEYPOINT_DATASETS) or "(?!)",
    priority: DATA_PRIORITY
    conda:
        BASE_ENV
    resources:
        gpu=_keypoints_gpu,
    params:
        shard=lambda w: f"results/{w.dataset}/prepared/shards/{w.shard}.json",
        keypoints=lambda w: dataset_cfg(w)["keypoints"],
    script:
        "../scripts/keypoints.py"
