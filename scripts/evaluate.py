from anonbench import steps

w = snakemake.wildcards
with steps.logged(snakemake.log[0]):
    steps.evaluate(snakemake.input.checkpoint, snakemake.input.val, snakemake.params.model,
                   {"dataset": w.dataset, "variant": w.variant, "model": w.model,
                    "seed": int(w.seed), "backend": snakemake.params.model["backend"]},
                   snakemake.threads, snakemake.output.predictions, snakemake.output.metrics)
