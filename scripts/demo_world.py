from anonbench import steps

with steps.logged(snakemake.log[0]):
    steps.demo_world(snakemake.output[0], snakemake.params.generate)
