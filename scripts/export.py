import os, sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, os.pardir, "src"))  # noqa: E402

from anonbench import steps  # noqa: E402

with steps.logged(snakemake.log[0]):
    steps.export(snakemake.params.root, snakemake.input.train, snakemake.input.val,
                 snakemake.input.manifest, snakemake.input.get("audit"),
                 snakemake.wildcards.variant, snakemake.params.variant, snakemake.output[0])
