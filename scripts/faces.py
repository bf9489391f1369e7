from anonbench import steps

with steps.logged(snakemake.log[0]):
    steps.faces(snakemake.params.shard, snakemake.params.faces, snakemake.output[0])
