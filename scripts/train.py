from anonbench import steps

with steps.logged(snakemake.log[0]):
    steps.train(snakemake.input[0], snakemake.params.model, int(snakemake.wildcards.seed),
                snakemake.params.out_dir, snakemake.threads)
