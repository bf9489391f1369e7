# Export: one anonymizing variant's dataset in the dataset's own layout, ready for the user's
# training code. Not part of rule all: ask for results/{dataset}/export/{variant}.


rule export:
    input:
        unpack(variant_images_input),
        train="results/{dataset}/prepared/train.json",
        val="results/{dataset}/prepared/val.json",
        audit="results/{dataset}/audit/{variant}.json",
    output:
        directory("results/{dataset}/export/{variant}"),
    log:
        "results/logs/export/{dataset}/{variant}.log",
    wildcard_constraints:
        variant=_alternatives(
            v for v, c in config["variants"].items() if c["method"] != "none"
        )
        or "(?!)",
    conda:
        BASE_ENV
    params:
        root=lambda w: anonbench_config.dataset_root(config, w.dataset),
        variant=variant_cfg,
    script:
        "../scripts/export.py"
