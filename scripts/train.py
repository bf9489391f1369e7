import os, sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, os.pardir, "src"))  # noqa: E402

from anonbench import steps  # noqa: E402
from anonbench.config import with_run_settings  # noqa: E402

model = with_run_settings(snakemake.params.model, snakemake.config, snakemake.wildcards.model)
with steps.logged(snakemake.log[0]):
    steps.train(snakemake.input.manifest, model, int(snakemake.wildcards.seed),
                snakemake.params.out_dir, snakemake.threads,
                variant=(snakemake.wildcards.variant, snakemake.params.variant))
