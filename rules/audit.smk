# Privacy audit: one job per dataset x variant x shard compares the anonymized images on disk
# with the originals, region by region; one merged audit per variant feeds the tables.


rule audit_shard:
    input:
        unpack(audit_shard_input),
    output:
        "results/{dataset}/audit/{variant}/{shard}.json",
    log:
        "results/logs/audit_shard/{dataset}/{variant}/{shard}.log",
    priority: DATA_PRIORITY
    conda:
        BASE_ENV
    params:
        shard=lambda w: f"results/{w.dataset}/prepared/shards/{w.shard}.json",
        variant=variant_cfg,
        audit=config.get("audit", {}),
    script:
        "../scripts/audit_shard.py"


rule audit:
    input:
        lambda w: variant_shard_files(
            "results/{dataset}/audit/{variant}/{shard}.json", w.dataset, w.variant
        ),
    output:
        "results/{dataset}/audit/{variant}.json",
    log:
        "results/logs/audit/{dataset}/{variant}.log",
    conda:
        BASE_ENV
    params:
        variant=variant_cfg,
    script:
        "../scripts/audit.py"
