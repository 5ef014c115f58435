rule train_attribute_model:
    input:
        data=rules.merge_fused.output.h5,
        split=rules.split.output[0],
    output:
        weights=f"{R}/models/{{model}}/weights.pt",
        meta=f"{R}/models/{{model}}/model.json",
        metrics=f"{R}/models/{{model}}/test_metrics.tsv",
        curves=f"{R}/models/{{model}}/curves.tsv",
    params:
        model=lambda wc: config["models"][wc.model],
        seed=config["seed"],
        device=config["device"],
    log:
        f"{R}/logs/train/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{model}}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=gpu_request(),
    script:
        "../scripts/train_attribute_model.py"
