from facexai.metrics.registry import summarised


rule metrics:
    input:
        # the maps and, by subject, what its metrics read (plan.metric_inputs)
        unpack(metric_inputs),
    output:
        L("metrics_csv"),
    log:
        L.log("metrics/{subject}/{method}/{shard}"),
    benchmark:
        L.benchmark("metrics/{subject}/{method}/{shard}")
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=gpu_request(),
    params:
        regions=config["regions"],
        attribute_regions=lambda wc: PLAN.attribute_regions(wc.subject),
        # attribute jobs without the pair-only settings (metrics.game): changing them reruns none
        settings=lambda wc: PLAN.metric_settings(wc.subject),
        # read by no script (the job reads the parameters stored with the maps): a changed parameter
        # reruns the metrics too, whose sanity checks recompute maps with it
        method=lambda wc: config["methods"][wc.method],
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/metrics.py"


rule verification_localisation:
    input:
        expand(
            L("metrics_csv", subject=subject(embedder="{{embedder}}")),
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


rule pair_group_tables:
    input:
        tables=expand(
            L("metrics_csv", subject=subject(embedder="{{embedder}}")),
            method=PAIR_METHODS,
            shard=PAIR_SHARDS,
        ),
        # the explained images' group membership (their attributes)
        data=L("dataset_h5", dataset="main"),
    output:
        by_group=report(
            L.pair_table("localisation_by_group"),
            caption="../report/groups.rst",
            category="4 Statistics",
            subcategory="Verification: {embedder}",
        ),
        differences=report(
            L.pair_table("group_differences"),
            caption="../report/groups.rst",
            category="4 Statistics",
            subcategory="Verification: {embedder}",
        ),
    log:
        L.log("verification/{embedder}/group_tables"),
    conda:
        "../envs/facexai.yaml"
    params:
        groups=config["groups"],
        metrics=summarised(pairs=True),
        resamples=config["aggregate"]["bootstrap_resamples"],
        alpha=config["aggregate"]["alpha"],
        seed=config["seed"],
        q=config["metrics"]["q"],  # a map without mass scores recall q / 100, as a uniform map
    script:
        "../scripts/pair_group_tables.py"
