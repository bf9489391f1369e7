# One job per dataset x variant x shard; then the variant's training manifest.


def anonymize_input(wildcards):
    inputs = {"shards": f"results/{wildcards.dataset}/prepared/shards"}
    if variant_cfg(wildcards).get("region") == "face":
        inputs["faces"] = f"results/{wildcards.dataset}/faces/{wildcards.shard}.json"
    return inputs


_REALISTIC = [v for v, c in config["variants"].items() if c["method"] == "realistic"]


def _anonymize_gpu(wildcards):
    """1 for realistic variants with DeepPrivacy2's generators (cluster GPU), else 0."""
    return int(variant_cfg(wildcards).get("generator", "demo") == "dp2")


# Blur and mask-out: a few minutes of one CPU per shard (grouped on SLURM, profiles/slurm).
rule anonymize:
    input:
        unpack(anonymize_input),
    output:
        directory("results/{dataset}/anonymized/{variant}/{shard}"),
    wildcard_constraints:
        variant=_alternatives(v for v in config["variants"] if v not in _REALISTIC) or "(?!)",
    params:
        shard=lambda w: f"results/{w.dataset}/prepared/shards/{w.shard}.json",
        variant=variant_cfg,
    resources:
        gpu=0,
    log:
        "results/logs/anonymize/{dataset}_{variant}_{shard}.log",
    script:
        "../scripts/anonymize.py"


# Realistic variants: the same step with a generator (a GPU for DeepPrivacy2's), a rule of its
# own so that the cluster profile sends it to a GPU partition and leaves it out of the CPU group.
use rule anonymize as anonymize_realistic with:
    wildcard_constraints:
        variant=_alternatives(_REALISTIC) or "(?!)",
    resources:
        gpu=_anonymize_gpu,
    conda:
        anonymize_env
    log:
        "results/logs/anonymize/{dataset}_{variant}_{shard}.log",


def variant_train_input(wildcards):
    inputs = {
        "prepared": f"results/{wildcards.dataset}/prepared/train.json",
        "checked": expand(
            "results/{dataset}/prepared/checked/{shard}.json",
            dataset=wildcards.dataset,
            shard=dataset_shards(wildcards.dataset),
        ),
    }
    if variant_cfg(wildcards)["method"] != "none":
        inputs["shards"] = expand(
            "results/{dataset}/anonymized/{variant}/{shard}",
            dataset=wildcards.dataset,
            variant=wildcards.variant,
            shard=dataset_shards(wildcards.dataset),
        )
    return inputs


rule variant_manifest:
    input:
        unpack(variant_train_input),
    output:
        "results/{dataset}/anonymized/{variant}/train.json",
    params:
        variant=variant_cfg,
        n=lambda w: dataset_cfg(w)["shards"],
    log:
        "results/logs/variant_manifest/{dataset}_{variant}.log",
    script:
        "../scripts/variant_manifest.py"
