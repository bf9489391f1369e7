# Tables: mean +- standard error over seeds, difference to the baseline row with its 95 %
# interval and p-value over seeds (Welch) and over validation images (paired bootstrap on the
# evaluator's per-image results).


rule table:
    input:
        metrics=lambda w: anonbench_config.table_metrics_files(config, w.table),
        perimage=lambda w: anonbench_config.table_perimage_files(config, w.table),
        audits=lambda w: anonbench_config.table_audit_files(config, w.table),
        reference=lambda w: anonbench_config.table_reference_files(config, w.table),
    output:
        md="results/tables/{table}.md",
        csv=report(
            "results/tables/{table}.csv",
            caption="../report/table.rst",
            category="Tables",
        ),
    log:
        "results/logs/table/{table}.log",
    conda:
        BASE_ENV
    # the image bootstrap's worker processes (config significance.threads; Snakemake gives a
    # local run at most its --cores)
    threads: config.get("significance", {}).get("threads", 4)
    params:
        table=lambda w: config["tables"][w.table],
        provenance=lambda w: anonbench_config.provenance(
            config, config["tables"][w.table]["dataset"]
        ),
        significance=config.get("significance", {}),
    script:
        "../scripts/table.py"
