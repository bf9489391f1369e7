import os, sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, os.pardir, "src"))  # noqa: E402

from anonbench import steps  # noqa: E402

with steps.logged(snakemake.log[0]):
    steps.check_images(snakemake.params.shard, snakemake.output[0],
                       train_json=getattr(snakemake.input, "train", None))
