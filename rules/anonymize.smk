# One job per dataset x variant x shard; then the variant's training manifest.


# Blur and mask-out: a few minutes of one CPU per shard (grouped on SLURM, profiles/slurm).
rule anonymize:
    input:
        unpack(anonymize_input),
    output:
        directory("results/{dataset}/anonymized/{variant}/{shard}"),
    log:
        "results/logs/anonymize/{dataset}/{variant}/{shard}.log",
    wildcard_constraints:
        variant=_alternatives(v for v in config["variants"] if v not in _REALISTIC)
        or "(?!)",
    priority: DATA_PRIORITY
    conda:
        BASE_ENV
    resources:
        gpu=0,
    params:
        shard=lambda w: f"results/{w.dataset}/prepared/shards/{w.shard}.json",
        variant=variant_cfg,
    script:
        "../scripts/anonymize.py"


# Realistic variants: the same step with a generator (a GPU for DeepPrivacy2's), a rule of its
# own so that the cluster profile sends it to a GPU partition and leaves it out of the CPU group.
use rule anonymize as anonymize_realistic with:
    log:
        "results/logs/anonymize/{dataset}/{variant}/{shard}.log",
    wildcard_constraints:
        variant=_alternatives(_REALISTIC) or "(?!)",
    conda:
        anonymize_env
    resources:
        gpu=_anonymize_gpu,


rule variant_manifest:
    input:
        unpack(variant_train_input),
    output:
        "results/{dataset}/anonymized/{variant}/train.json",
    log:
        "results/logs/variant_manifest/{dataset}/{variant}.log",
    priority: DATA_PRIORITY
    conda:
        BASE_ENV
    params:
        variant=variant_cfg,
        n=lambda w: dataset_cfg(w)["shards"],
    script:
        "../scripts/variant_manifest.py"
