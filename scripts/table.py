from anonbench import steps

with steps.logged(snakemake.log[0]):
    steps.table(snakemake.wildcards.table, snakemake.params.table, list(snakemake.input),
                snakemake.params.provenance, snakemake.output.md, snakemake.output.csv)
