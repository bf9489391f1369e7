# anonbench: does image anonymization impact computer-vision training?
# Thin on purpose: the experiment matrix is config.yaml, the rules are rules/*.smk,
# the logic is the anonbench package (src/anonbench).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/annotate.smk"
include: "rules/anonymize.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/audit.smk"
include: "rules/report.smk"
include: "rules/figures.smk"
include: "rules/export.smk"


rule all:
    default_target: True
    input:
        expand("results/tables/{table}.md", table=config["tables"]),
        expand("results/figures/{figure}.png", figure=config.get("figures", {})),


# Named parts of the run (config `targets`): `snakemake --profile profiles/local street` builds
# the street world's table and figures only (what `make demo-street` runs; `make demo` runs all).
for _target in config["targets"]:
    if _target in {r.name for r in workflow.rules}:
        raise WorkflowError(
            f"invalid config: targets.{_target}: {_target!r} is the name of a rule "
            "of the workflow; name the target otherwise"
        )

    rule:
        name:
            _target
        input:
            anonbench_config.target_files(config, _target),


# Preflight: before the first job of a real run (not a dry run: Snakemake calls onstart only
# then, on the machine that submits the jobs, before any is submitted), stop when the jobs to run
# need model files that are missing or do not match their checksums, or (without --sdm conda)
# packages this environment lacks. The report names each file and `anonbench weights fetch`;
# `anonbench check --configfile ...` prints the same without running anything. --no-hooks skips it.
onstart:
    from anonbench.weights import preflight as _preflight

    _report = _preflight(workflow, config)
    if _report:
        raise WorkflowError(_report)
