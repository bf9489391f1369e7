from anonbench import steps

with steps.logged(snakemake.log[0]):
    steps.make_shards(snakemake.input[0], snakemake.params.n, snakemake.output[0])
