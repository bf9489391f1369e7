import os, sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, os.pardir, "src"))  # noqa: E402

from anonbench import steps  # noqa: E402

with steps.logged(snakemake.log[0]):
    steps.prepare(snakemake.params.format, snakemake.params.root, snakemake.wildcards.split,
                  snakemake.wildcards.dataset, snakemake.output[0],
                  persons=snakemake.params.persons, options=snakemake.params.options)
