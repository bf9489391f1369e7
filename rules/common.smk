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
    return config["models"][wildcards.model]


def dataset_shards(dataset):
    return shard_names(config["datasets"][dataset]["shards"])


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
