from facexai.metrics.registry import summarised


rule metrics:
    input:
        attributions=L("maps"),
        data=dataset_h5,
        weights=L("weights"),
        meta=L("model_meta"),
    output:
        L("metrics_csv"),
    log:
        L.log("metrics/{model}/{method}/{shard}"),
    benchmark:
        L.benchmark("metrics/{model}/{method}/{shard}")
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=gpu_request(),
    params:
        regions=config["regions"],
        attribute_regions=config["attribute_regions"],
        # without the pair-only settings (metrics.game): changing them reruns no attribute job
        settings=PLAN.class_metric_settings(),
        # read by no script (the job reads the parameters stored with the maps): a changed parameter
        # reruns the metrics too, whose sanity checks recompute maps with it
        method=lambda wc: config["methods"][wc.method],
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/metrics.py"


rule pair_metrics:
    input:
        attributions=L("pair_maps"),
        data=L("dataset_h5", dataset="main"),
        store=L("pairs_h5"),
        weights=L("embedder_weights"),
        meta=L("embedder_meta"),
        eer=L("eer"),
    output:
        L("pair_metrics_csv"),
    log:
        L.log("metrics/verification/{embedder}/{method}/{shard}"),
    benchmark:
        L.benchmark("metrics/verification/{embedder}/{method}/{shard}")
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=gpu_request(),
    params:
        regions=config["regions"],
        settings=config["metrics"],
        # read by no script (the job reads the parameters stored with the maps): a changed parameter
        # reruns the metrics too, whose sanity checks recompute maps with it
        method=lambda wc: config["methods"][wc.method],
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/pair_metrics.py"


rule verification_localisation:
    input:
        expand(
            L("pair_metrics_csv", embedder="{{embedder}}"),
            method=PAIR_METHODS,
            shard=PAIR_SHARDS,
        ),
    output:
        localisation=report(
            L.pair_table("localisation"),
            caption="../report/verification_localisation.rst",
            category="3 Metrics",
            subcategory="Verification: {embedder}",
        ),
        comparisons=report(
            L.pair_table("method_comparison"),
            caption="../report/verification_statistics.rst",
            category="4 Statistics",
            subcategory="Verification: {embedder}",
        ),
        beats_random=report(
            L.pair_table("beats_random"),
            caption="../report/verification_statistics.rst",
            category="4 Statistics",
            subcategory="Verification: {embedder}",
        ),
        agreement=report(
            L.pair_table("metric_agreement"),
            caption="../report/agreement.rst",
            category="4 Statistics",
            subcategory="Verification: {embedder}",
        ),
        ranks=report(
            L.pair_table("method_ranks"),
            caption="../report/agreement.rst",
            category="4 Statistics",
            subcategory="Verification: {embedder}",
        ),
    log:
        L.log("verification/{embedder}/localisation"),
    conda:
        "../envs/facexai.yaml"
    params:
        metrics=summarised(pairs=True),
        resamples=config["aggregate"]["bootstrap_resamples"],
        seed=config["seed"],
        alpha=config["aggregate"]["alpha"],
        q=config["metrics"]["q"],  # a map without mass scores recall q / 100, as a uniform map
    script:
        "../scripts/verification_localisation.py"
