# Ingest: the demo world (when a dataset is generated), one manifest per split, training shards.


rule demo_world:
    output:
        directory("results/{dataset}/world"),
    log:
        "results/logs/demo_world/{dataset}.log",
    conda:
        BASE_ENV
    params:
        generate=demo_world_settings,
    script:
        "../scripts/demo_world.py"


rule prepare:
    input:
        prepare_input,
    output:
        "results/{dataset}/prepared/{split}.json",
    log:
        "results/logs/prepare/{dataset}/{split}.log",
    conda:
        BASE_ENV
    params:
        format=lambda w: dataset_cfg(w)["format"],
        root=lambda w: anonbench_config.dataset_root(config, w.dataset),
        persons=lambda w: dataset_cfg(w)["persons"],
        options=lambda w: anonbench_config.dataset_options(config, w.dataset),
    script:
        "../scripts/prepare.py"


rule shards:
    input:
        "results/{dataset}/prepared/train.json",
    output:
        directory("results/{dataset}/prepared/shards"),
    log:
        "results/logs/shards/{dataset}.log",
    conda:
        BASE_ENV
    params:
        n=lambda w: dataset_cfg(w)["shards"],
    script:
        "../scripts/shards.py"


# Every training image decoded in full once (libjpeg warnings are errors), one job per shard,
# and the val images in one job per dataset, before any train job (variant_manifest depends on
# every check): a corrupt val image would otherwise fail only the evaluation after training.
# A shard's faces, keypoints and anonymize jobs (GPU jobs with DSFD, ViTPose, DeepPrivacy2)
# wait for its own check (common.smk: shard_checked).
rule check_images:
    input:
        "results/{dataset}/prepared/shards",
    output:
        "results/{dataset}/prepared/checked/{shard}.json",
    log:
        "results/logs/check_images/{dataset}/{shard}.log",
    priority: DATA_PRIORITY
    conda:
        BASE_ENV
    params:
        shard=lambda w: f"results/{w.dataset}/prepared/shards/{w.shard}.json",
    script:
        "../scripts/check_images.py"


use rule check_images as check_val_images with:
    input:
        "results/{dataset}/prepared/val.json",
        train="results/{dataset}/prepared/train.json",
    output:
        "results/{dataset}/prepared/checked/val.json",
    log:
        "results/logs/check_images/{dataset}/val.log",
    params:
        shard=lambda w: f"results/{w.dataset}/prepared/val.json",
