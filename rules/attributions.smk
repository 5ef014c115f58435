rule attribute:
    input:
        data=dataset_h5,
        split=split_tsv,
        weights=f"{R}/models/{{model}}/weights.pt",
        meta=f"{R}/models/{{model}}/model.json",
        # maps made elsewhere (methods.NAME.precomputed): their files, none for other methods
        precomputed=lambda wc: PLAN.precomputed_inputs(wc.model, wc.method),
    output:
        f"{R}/attributions/{{model}}/{{method}}/{{shard}}.h5",
    log:
        f"{R}/logs/attribute/{{model}}/{{method}}/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/attribute/{{model}}/{{method}}/{{shard}}.tsv"
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=gpu_request(),
    params:
        method=lambda wc: config["methods"][wc.method],  # a change here reruns only this method
        explain=EXPLAIN_PARAMS,
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/attribute.py"


rule attribute_pairs:
    input:
        data=f"{R}/data/main/dataset.h5",
        # the pairs with this embedder's scores (triplets: which ones the swap matters to)
        pairs=f"{R}/verification/{{embedder}}/scores.tsv",
        store=f"{R}/verification/pairs.h5",
        weights=f"{R}/verification/{{embedder}}/weights.pt",
        meta=f"{R}/verification/{{embedder}}/model.json",
    output:
        f"{R}/attributions/verification/{{embedder}}/{{method}}/{{shard}}.h5",
    log:
        f"{R}/logs/attribute/verification/{{embedder}}/{{method}}/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/attribute/verification/{{embedder}}/{{method}}/{{shard}}.tsv"
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=gpu_request(),
    params:
        method=lambda wc: config["methods"][wc.method],  # a change here reruns only this method
        explain=PAIR_EXPLAIN_PARAMS,
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/attribute_pairs.py"
