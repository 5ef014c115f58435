rule attribute:
    input:
        data=dataset_h5,
        split=split_tsv,
        weights=L("weights"),
        meta=L("model_meta"),
        # maps made elsewhere (methods.NAME.precomputed): their files, none for other methods
        precomputed=lambda wc: PLAN.precomputed_inputs(wc.model, wc.method),
    output:
        L("maps"),
    log:
        L.log("attribute/{model}/{method}/{shard}"),
    benchmark:
        L.benchmark("attribute/{model}/{method}/{shard}")
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
        data=L("dataset_h5", dataset="main"),
        # the pairs with this embedder's scores (triplets: which ones the swap matters to)
        pairs=L("scores"),
        store=L("pairs_h5"),
        weights=L("embedder_weights"),
        meta=L("embedder_meta"),
    output:
        L("pair_maps"),
    log:
        L.log("attribute/verification/{embedder}/{method}/{shard}"),
    benchmark:
        L.benchmark("attribute/verification/{embedder}/{method}/{shard}")
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
