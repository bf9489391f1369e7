import os, sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, os.pardir, "src"))  # noqa: E402

from anonbench import steps  # noqa: E402

with steps.logged(snakemake.log[0]):
    steps.anonymize_shard(snakemake.params.shard, snakemake.input.get("faces"),
                          snakemake.params.variant, snakemake.output[0],
                          keypoints_json=snakemake.input.get("keypoints"))
