# Figures (config `figures:`): results/figures/{figure}.png, drawn by anonbench.figures,
# and {figure}.csv with the data it plots.


rule figure:
    input:
        unpack(lambda w: anonbench_config.figure_inputs(config, w.figure)),
    output:
        png=report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
        ),
        csv="results/figures/{figure}.csv",
    params:
        figure=lambda w: config["figures"][w.figure],
        context=lambda w: anonbench_config.figure_context(config, w.figure),
    wildcard_constraints:
        figure=_alternatives(config.get("figures", {})) or "(?!)",
    log:
        "results/logs/figure/{figure}.log",
    conda:
        BASE_ENV
    script:
        "../scripts/figure.py"
