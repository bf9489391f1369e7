import os, sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, os.pardir, "src"))  # noqa: E402

from anonbench import steps  # noqa: E402

with steps.logged(snakemake.log[0]):
    steps.train(snakemake.input.manifest, snakemake.params.model, int(snakemake.wildcards.seed),
                snakemake.params.out_dir, snakemake.threads,
                variant=(snakemake.wildcards.variant, snakemake.params.variant))
