# Face boxes per shard, from the detector named in the dataset's `faces` settings.


rule faces:
    input:
        shards="results/{dataset}/prepared/shards",
    output:
        "results/{dataset}/faces/{shard}.json",
    params:
        shard=lambda w: f"results/{w.dataset}/prepared/shards/{w.shard}.json",
        faces=lambda w: dataset_cfg(w)["faces"],
    log:
        "results/logs/faces/{dataset}_{shard}.log",
    script:
        "../scripts/faces.py"
