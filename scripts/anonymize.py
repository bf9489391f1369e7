from anonbench import steps

with steps.logged(snakemake.log[0]):
    steps.anonymize_shard(snakemake.params.shard, snakemake.input.get("faces"),
                          snakemake.params.variant, snakemake.output[0])
