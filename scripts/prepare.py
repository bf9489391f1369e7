from anonbench import steps

with steps.logged(snakemake.log[0]):
    steps.prepare(snakemake.params.format, snakemake.params.root, snakemake.wildcards.split,
                  snakemake.wildcards.dataset, snakemake.output[0])
