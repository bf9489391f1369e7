# Privacy audit: one job per dataset x variant x shard compares the anonymized images on disk
# with the originals, region by region; one merged audit per variant feeds the tables.


def audit_shard_input(wildcards):
    inputs = {
        "shards": f"results/{wildcards.dataset}/prepared/shards",
        "anonymized": f"results/{wildcards.dataset}/anonymized/{wildcards.variant}/{wildcards.shard}",
    }
    if variant_cfg(wildcards).get("region") == "face":
        inputs["faces"] = f"results/{wildcards.dataset}/faces/{wildcards.shard}.json"
    return inputs


rule audit_shard:
    input:
        unpack(audit_shard_input),
    output:
        "results/{dataset}/audit/{variant}/{shard}.json",
    params:
        shard=lambda w: f"results/{w.dataset}/prepared/shards/{w.shard}.json",
        variant=variant_cfg,
        audit=config.get("audit", {}),
    log:
        "results/logs/audit/{dataset}_{variant}_{shard}.log",
    script:
        "../scripts/audit_shard.py"


rule audit:
    input:
        lambda w: expand(
            "results/{dataset}/audit/{variant}/{shard}.json",
            dataset=w.dataset,
            variant=w.variant,
            shard=dataset_shards(w.dataset),
        ),
    output:
        "results/{dataset}/audit/{variant}.json",
    params:
        variant=variant_cfg,
    log:
        "results/logs/audit/{dataset}_{variant}.log",
    script:
        "../scripts/audit.py"
