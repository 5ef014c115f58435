from facexai.metrics.registry import summarised


rule metrics:
    input:
        attributions=f"{R}/attributions/{{model}}/{{method}}/{{shard}}.h5",
        data=dataset_h5,
        weights=f"{R}/models/{{model}}/weights.pt",
        meta=f"{R}/models/{{model}}/model.json",
    output:
        f"{R}/metrics/{{model}}/{{method}}/{{shard}}.csv",
    log:
        f"{R}/logs/metrics/{{model}}/{{method}}/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/metrics/{{model}}/{{method}}/{{shard}}.tsv"
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
        attributions=f"{R}/attributions/verification/{{embedder}}/{{method}}/{{shard}}.h5",
        data=f"{R}/data/main/dataset.h5",
        store=f"{R}/verification/pairs.h5",
        weights=f"{R}/verification/{{embedder}}/weights.pt",
        meta=f"{R}/verification/{{embedder}}/model.json",
        eer=f"{R}/verification/{{embedder}}/eer.json",
    output:
        f"{R}/metrics/verification/{{embedder}}/{{method}}/{{shard}}.csv",
    log:
        f"{R}/logs/metrics/verification/{{embedder}}/{{method}}/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/metrics/verification/{{embedder}}/{{method}}/{{shard}}.tsv"
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
            f"{R}/metrics/verification/{{{{embedder}}}}/{{method}}/{{shard}}.csv",
            method=PAIR_METHODS,
            shard=PAIR_SHARDS,
        ),
    output:
        localisation=report(
            f"{R}/tables/verification/{{embedder}}/localisation.csv",
            caption="../report/verification_localisation.rst",
            category="3 Metrics",
            subcategory="Verification: {embedder}",
        ),
        comparisons=report(
            f"{R}/tables/verification/{{embedder}}/method_comparison.csv",
            caption="../report/verification_statistics.rst",
            category="4 Statistics",
            subcategory="Verification: {embedder}",
        ),
        beats_random=report(
            f"{R}/tables/verification/{{embedder}}/beats_random.csv",
            caption="../report/verification_statistics.rst",
            category="4 Statistics",
            subcategory="Verification: {embedder}",
        ),
        agreement=report(
            f"{R}/tables/verification/{{embedder}}/metric_agreement.csv",
            caption="../report/agreement.rst",
            category="4 Statistics",
            subcategory="Verification: {embedder}",
        ),
        ranks=report(
            f"{R}/tables/verification/{{embedder}}/method_ranks.csv",
            caption="../report/agreement.rst",
            category="4 Statistics",
            subcategory="Verification: {embedder}",
        ),
    log:
        f"{R}/logs/verification/{{embedder}}/localisation.log",
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
