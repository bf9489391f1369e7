# One job per dataset x variant x shard; then the variant's training manifest.


def anonymize_input(wildcards):
    inputs = {"shards": f"results/{wildcards.dataset}/prepared/shards"}
    if variant_cfg(wildcards).get("region") == "face":
        inputs["faces"] = f"results/{wildcards.dataset}/faces/{wildcards.shard}.json"
    return inputs


rule anonymize:
    input:
        unpack(anonymize_input),
    output:
        directory("results/{dataset}/anonymized/{variant}/{shard}"),
    params:
        shard=lambda w: f"results/{w.dataset}/prepared/shards/{w.shard}.json",
        variant=variant_cfg,
    log:
        "results/logs/anonymize/{dataset}_{variant}_{shard}.log",
    script:
        "../scripts/anonymize.py"


def variant_train_input(wildcards):
    inputs = {"prepared": f"results/{wildcards.dataset}/prepared/train.json"}
    if variant_cfg(wildcards)["method"] != "none":
        inputs["shards"] = expand(
            "results/{dataset}/anonymized/{variant}/{shard}",
            dataset=wildcards.dataset,
            variant=wildcards.variant,
            shard=dataset_shards(wildcards.dataset),
        )
    return inputs


rule variant_manifest:
    input:
        unpack(variant_train_input),
    output:
        "results/{dataset}/anonymized/{variant}/train.json",
    params:
        variant=variant_cfg,
        n=lambda w: dataset_cfg(w)["shards"],
    log:
        "results/logs/variant_manifest/{dataset}_{variant}.log",
    script:
        "../scripts/variant_manifest.py"
