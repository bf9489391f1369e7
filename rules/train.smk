# One training run per dataset x variant x model x seed.


rule train:
    input:
        unpack(train_input),
    output:
        checkpoint="results/{dataset}/runs/{variant}/{model}/seed{seed}/model.pt",
    log:
        "results/logs/train/{dataset}/{variant}/{model}/seed{seed}.log",
    priority: TRAIN_PRIORITY
    conda:
        backend_env
    threads: model_threads
    resources:
        mem_mb=4000,
    params:
        model=model_cfg,
        variant=variant_cfg,
        out_dir=lambda w: f"results/{w.dataset}/runs/{w.variant}/{w.model}/seed{w.seed}",
    script:
        "../scripts/train.py"
