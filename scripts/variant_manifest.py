from anonbench import steps

with steps.logged(snakemake.log[0]):
    steps.anonymized_train_manifest(snakemake.input.prepared, snakemake.wildcards.variant,
                                    snakemake.params.variant, snakemake.params.n,
                                    snakemake.output[0])
