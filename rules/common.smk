# Config validation (JSON schema + cross-reference checks, one-line reasons) and the helpers
# the rules share. Runs at parse time, before any job starts.
import os
import re
import sys

sys.path.insert(0, os.path.join(workflow.basedir, "src"))

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from anonbench import config as anonbench_config
from anonbench.shards import shard_names

_schema = os.path.join(workflow.basedir, "schemas", "config.schema.yaml")
try:
    for (
        _configfile
    ) in workflow.configfiles:  # Snakemake's YAML reader keeps the last of twins
        anonbench_config.check_unique_keys(_configfile)
except anonbench_config.ConfigError as e:
    raise WorkflowError(f"invalid config: {e}") from None
_schema_err = anonbench_config.schema_error(config, _schema)
if _schema_err:
    raise WorkflowError(f"invalid config: {_schema_err}")
validate(config, _schema)  # Snakemake's validation; fills the schema's defaults
try:
    # Dataset roots are checked for the datasets the targets use, when the DAG is built
    # (prepare's input function, anonbench.config.annotation_inputs): the targets are not known
    # while the Snakefile is parsed.
    anonbench_config.check_config(config, check_roots=False)
except anonbench_config.ConfigError as e:
    raise WorkflowError(f"invalid config: {e}") from None


# Snakemake runs ready jobs of higher priority first: annotation, anonymization, the shard
# audits and the variant manifests before any training, so that every variant's trainings are
# ready together and run side by side (make demo: a late realistic shard otherwise left its
# three trainings for the end, one core idle).
DATA_PRIORITY = 10
# ... and trainings before evaluations: the longest jobs first, so that the last trainings run
# side by side and the short evaluations fill the end (make demo on 2 cores: the last training
# otherwise started when the others were done and ran alone for 37 s, one core idle).
TRAIN_PRIORITY = 5


def _alternatives(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    dataset=_alternatives(config["datasets"]),
    variant=_alternatives(config["variants"]),
    model=_alternatives(config["models"]),
    seed=r"\d+",
    shard=r"\d+",
    split="train|val",
    table=_alternatives(config["tables"]),


def dataset_cfg(wildcards):
    return config["datasets"][wildcards.dataset]


def variant_cfg(wildcards):
    return config["variants"][wildcards.variant]


def model_cfg(wildcards):
    """The model's settings that decide what it learns (a change reruns train and evaluate);
    the jobs add the run settings (checkpointing, data loading) from the config."""
    return anonbench_config.model_params(config, wildcards.model)


def dataset_shards(dataset):
    return shard_names(config["datasets"][dataset]["shards"])


def variant_shard_files(pattern, dataset, variant):
    """``pattern`` (with {dataset}, {variant}, {shard}) for every shard of a variant."""
    return expand(
        pattern, dataset=dataset, variant=variant, shard=dataset_shards(dataset)
    )


def model_threads(wildcards):
    return config["models"][wildcards.model].get("threads", 1)


# Conda environments for cluster runs (snakemake --sdm conda); ignored without --sdm conda.
_BACKEND_ENVS = {"detectron2": "envs/detectron2.yaml", "mmdet": "envs/mmdet.yaml"}
BASE_ENV = os.path.join(workflow.basedir, "envs", "base.yaml")


def backend_env(wildcards):
    """The environment of the model's training backend (train, evaluate)."""
    backend = config["models"][wildcards.model].get("backend", "torchvision")
    return os.path.join(workflow.basedir, _BACKEND_ENVS.get(backend, "envs/base.yaml"))


def anonymize_env(wildcards):
    """DeepPrivacy2's environment for its generators, else the base one."""
    if config["variants"][wildcards.variant].get("generator", "demo") == "dp2":
        return os.path.join(workflow.basedir, "envs", "deep_privacy2.yaml")
    return BASE_ENV


# --- input functions and settings of rules/data.smk ----------------------------------------------


def demo_world_settings(wildcards):
    """The generate settings, plus the layout to write when the format is not coco."""
    d = dataset_cfg(wildcards)
    return {
        **d["generate"],
        **({} if d["format"] == "coco" else {"layout": d["format"]}),
    }


def prepare_input(wildcards):
    d = dataset_cfg(wildcards)
    if "generate" in d:
        return [anonbench_config.dataset_root(config, wildcards.dataset)]
    return anonbench_config.annotation_inputs(
        config, wildcards.dataset, wildcards.split
    )


# --- input functions and settings of rules/annotate.smk ------------------------------------------


from anonbench.annotate import uses_gpu as _annotator_uses_gpu


def _estimated_keypoints(dataset):
    return (
        config["datasets"][dataset]["keypoints"].get("estimator", "groundtruth")
        != "groundtruth"
    )


_KEYPOINT_DATASETS = [d for d in config["datasets"] if _estimated_keypoints(d)]


def keypoints_input(wildcards):
    """The shard's keypoints file when the dataset's keypoints are estimated, else nothing
    (for rules that need keypoints, e.g. keypoint-conditioned anonymizers)."""
    if _estimated_keypoints(wildcards.dataset):
        return f"results/{wildcards.dataset}/keypoints/{wildcards.shard}.json"
    return []


def shard_checked(wildcards):
    """The shard's image check: the annotators and anonymizers (DSFD, ViTPose and DeepPrivacy2
    run on GPUs) start on a shard only after every image of it has been decoded in full.
    """
    return f"results/{wildcards.dataset}/prepared/checked/{wildcards.shard}.json"


def faces_input(wildcards):
    inputs = {
        "shards": f"results/{wildcards.dataset}/prepared/shards",
        "checked": shard_checked(wildcards),
    }
    if dataset_cfg(wildcards)["faces"].get("detector", "keypoints") == "keypoints":
        kp = keypoints_input(wildcards)
        if kp:
            inputs["keypoints"] = kp
    return inputs


def _faces_gpu(wildcards):
    detector = dataset_cfg(wildcards)["faces"].get("detector", "keypoints")
    return int(_annotator_uses_gpu("faces", detector))


def _keypoints_gpu(wildcards):
    return int(
        _annotator_uses_gpu(
            "keypoints", dataset_cfg(wildcards)["keypoints"]["estimator"]
        )
    )


# --- input functions and settings of rules/anonymize.smk -----------------------------------------


def anonymize_input(wildcards):
    inputs = {
        "shards": f"results/{wildcards.dataset}/prepared/shards",
        "checked": shard_checked(wildcards),
    }
    if variant_cfg(wildcards).get("region") == "face":
        inputs["faces"] = f"results/{wildcards.dataset}/faces/{wildcards.shard}.json"
    if (
        variant_cfg(wildcards)["method"] == "realistic"
    ):  # keypoint-conditioned generators
        kp = keypoints_input(wildcards)
        if kp:
            inputs["keypoints"] = kp
    return inputs


_REALISTIC = [v for v, c in config["variants"].items() if c["method"] == "realistic"]


def _anonymize_gpu(wildcards):
    """1 for realistic variants with DeepPrivacy2's generators (cluster GPU), else 0."""
    return int(variant_cfg(wildcards).get("generator", "demo") == "dp2")


def variant_train_input(wildcards):
    inputs = {
        "prepared": f"results/{wildcards.dataset}/prepared/train.json",
        "checked": expand(
            "results/{dataset}/prepared/checked/{shard}.json",
            dataset=wildcards.dataset,
            shard=[*dataset_shards(wildcards.dataset), "val"],
        ),
    }
    if variant_cfg(wildcards)["method"] != "none":
        d, v = wildcards.dataset, wildcards.variant
        inputs["shards"] = variant_shard_files(
            "results/{dataset}/anonymized/{variant}/{shard}", d, v
        )
        # no training on a shard that failed its privacy audit (the audit job fails on an
        # untouched region, a leaked metadata block or a coverage that does not add up)
        inputs["audits"] = variant_shard_files(
            "results/{dataset}/audit/{variant}/{shard}.json", d, v
        )
    return inputs


def variant_images_input(wildcards):
    """The variant's training manifest first, and its anonymized shards (the images it points
    at), so that a job that must run gets a deleted shard made again."""
    inputs = {
        "manifest": f"results/{wildcards.dataset}/anonymized/{wildcards.variant}/train.json"
    }
    if variant_cfg(wildcards)["method"] != "none":
        inputs["shards"] = variant_shard_files(
            "results/{dataset}/anonymized/{variant}/{shard}",
            wildcards.dataset,
            wildcards.variant,
        )
    return inputs


def train_input(wildcards):
    """The variant's images (:func:`variant_images_input`) and the checkpoint whose backbone the
    model starts from (``backbone_weights``: a run of this workflow is made first)."""
    inputs = variant_images_input(wildcards)
    try:
        anonbench_config.check_backbone(
            config, wildcards.model, wildcards.dataset, f"train {wildcards.dataset}"
        )
    except anonbench_config.ConfigError as e:
        raise anonbench_config.ConfigError(f"invalid config: {e}") from None
    weights = anonbench_config.backbone_weights_file(config, wildcards.model)
    if weights is not None:
        inputs["backbone"] = weights
    return inputs


# --- input functions and settings of rules/audit.smk ---------------------------------------------


def audit_shard_input(wildcards):
    inputs = {
        "shards": f"results/{wildcards.dataset}/prepared/shards",
        "anonymized": f"results/{wildcards.dataset}/anonymized/{wildcards.variant}/{wildcards.shard}",
    }
    if variant_cfg(wildcards).get("region") == "face":
        inputs["faces"] = f"results/{wildcards.dataset}/faces/{wildcards.shard}.json"
    return inputs
