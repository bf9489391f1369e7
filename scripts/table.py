import os, sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, os.pardir, "src"))  # noqa: E402

from anonbench import steps  # noqa: E402

with steps.logged(snakemake.log[0]):
    steps.table(snakemake.wildcards.table, snakemake.params.table, list(snakemake.input.metrics),
                list(snakemake.input.audits),
                snakemake.params.provenance, snakemake.output.md, snakemake.output.csv,
                list(snakemake.input.perimage), snakemake.params.significance,
                snakemake.threads, (list(snakemake.input.reference) or [None])[0])
