# Ingest: the demo world (when a dataset is generated), one manifest per split, training shards.


def demo_world_settings(wildcards):
    """The generate settings, plus the layout to write when the format is not coco."""
    d = dataset_cfg(wildcards)
    return {**d["generate"], **({} if d["format"] == "coco" else {"layout": d["format"]})}


rule demo_world:
    output:
        directory("results/{dataset}/world"),
    params:
        generate=demo_world_settings,
    log:
        "results/logs/demo_world/{dataset}.log",
    script:
        "../scripts/demo_world.py"


def prepare_input(wildcards):
    d = dataset_cfg(wildcards)
    if "generate" in d:
        return [anonbench_config.dataset_root(config, wildcards.dataset)]
    return anonbench_config.annotation_inputs(config, wildcards.dataset, wildcards.split)


rule prepare:
    input:
        prepare_input,
    output:
        "results/{dataset}/prepared/{split}.json",
    params:
        format=lambda w: dataset_cfg(w)["format"],
        root=lambda w: anonbench_config.dataset_root(config, w.dataset),
        persons=lambda w: dataset_cfg(w)["persons"],
        options=lambda w: anonbench_config.dataset_options(config, w.dataset),
    log:
        "results/logs/prepare/{dataset}_{split}.log",
    script:
        "../scripts/prepare.py"


rule shards:
    input:
        "results/{dataset}/prepared/train.json",
    output:
        directory("results/{dataset}/prepared/shards"),
    params:
        n=lambda w: dataset_cfg(w)["shards"],
    log:
        "results/logs/shards/{dataset}.log",
    script:
        "../scripts/shards.py"


# Every training image decoded in full once (libjpeg warnings are errors), one job per shard,
# before any train job (variant_manifest depends on every shard's check).
rule check_images:
    input:
        "results/{dataset}/prepared/shards",
    output:
        "results/{dataset}/prepared/checked/{shard}.json",
    params:
        shard=lambda w: f"results/{w.dataset}/prepared/shards/{w.shard}.json",
    log:
        "results/logs/check_images/{dataset}_{shard}.log",
    script:
        "../scripts/check_images.py"
