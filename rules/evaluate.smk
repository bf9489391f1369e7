# Every run is evaluated on the ORIGINAL validation set.


rule evaluate:
    input:
        checkpoint="results/{dataset}/runs/{variant}/{model}/seed{seed}/model.pt",
        val="results/{dataset}/prepared/val.json",
    output:
        metrics="results/{dataset}/metrics/{variant}/{model}/seed{seed}.json",
        predictions="results/{dataset}/runs/{variant}/{model}/seed{seed}/predictions_val.json",
        # the evaluator's per-image results (the tables' image bootstrap; anonbench.significance)
        perimage="results/{dataset}/metrics/{variant}/{model}/seed{seed}.perimage.npz",
    log:
        "results/logs/evaluate/{dataset}/{variant}/{model}/seed{seed}.log",
    conda:
        backend_env
    threads: model_threads
    params:
        model=model_cfg,
    script:
        "../scripts/evaluate.py"
