import os, sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, os.pardir, "src"))  # noqa: E402

from anonbench import steps  # noqa: E402

with steps.logged(snakemake.log[0]):
    steps.faces(snakemake.params.shard, snakemake.params.faces, snakemake.output[0],
                keypoints_json=snakemake.input.get("keypoints"), threads=snakemake.threads)
