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
    log:
        "results/logs/figure/{figure}.log",
    wildcard_constraints:
        figure=_alternatives(config.get("figures", {})) or "(?!)",
    conda:
        BASE_ENV
    params:
        figure=lambda w: config["figures"][w.figure],
        context=lambda w: anonbench_config.figure_context(config, w.figure),
    script:
        "../scripts/figure.py"
