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
