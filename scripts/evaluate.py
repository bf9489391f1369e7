import os, sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, os.pardir, "src"))  # noqa: E402

from anonbench import steps  # noqa: E402
from anonbench.config import with_run_settings  # noqa: E402

w = snakemake.wildcards
model = with_run_settings(snakemake.params.model, snakemake.config, w.model)
with steps.logged(snakemake.log[0]):
    steps.evaluate(snakemake.input.checkpoint, snakemake.input.val, model,
                   {"dataset": w.dataset, "variant": w.variant, "model": w.model,
                    "seed": int(w.seed), "backend": snakemake.params.model["backend"]},
                   snakemake.threads, snakemake.output.predictions, snakemake.output.metrics,
                   snakemake.output.perimage)
