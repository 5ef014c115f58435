rule aggregate:
    input:
        tables=expand(
            f"{R}/metrics/{{model}}/{{method}}/{{shard}}.csv",
            model=MODELS,
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
        model_metrics=expand(f"{R}/models/{{model}}/test_metrics.tsv", model=MODELS),
    output:
        by_attribute=report(
            f"{R}/tables/localisation_by_attribute.csv",
            caption="../report/localisation.rst",
            category="3 Metrics",
            subcategory="Tables",
        ),
        by_region=report(
            f"{R}/tables/localisation_by_region.csv",
            caption="../report/localisation.rst",
            category="3 Metrics",
            subcategory="Tables",
        ),
        by_outcome=report(
            f"{R}/tables/localisation_by_outcome.csv",
            caption="../report/localisation.rst",
            category="3 Metrics",
            subcategory="Tables",
        ),
    log:
        f"{R}/logs/aggregate.log",
    benchmark:
        f"{R}/benchmarks/aggregate.tsv"
    conda:
        "../envs/facexai.yaml"
    resources:
        mem_mb=tables_mem_mb,
    params:
        models=MODELS,
        resamples=config["aggregate"]["bootstrap_resamples"],
        seed=config["seed"],
    script:
        "../scripts/aggregate.py"


rule twin_shift:
    input:
        data=[f"{R}/data/{model_dataset(m)}/dataset.h5" for m in TWIN_MODELS],
        attributions=[
            f"{R}/attributions/{m}/{method}/{shard}.h5"
            for m in TWIN_MODELS
            for method in METHODS
            for shard in EXPLAIN_SHARDS
        ],
    output:
        report(
            f"{R}/tables/twin_shift.csv",
            caption="../report/twin_table.rst",
            category="4 Statistics",
        ),
    log:
        f"{R}/logs/twin_shift.log",
    conda:
        "../envs/facexai.yaml"
    params:
        models=TWIN_MODELS,
        twins=TWINS,
        attribute=config["synthetic"]["shortcut"]["attribute"],
        mode=config["metrics"]["mass"],
        resamples=config["aggregate"]["bootstrap_resamples"],
        seed=config["seed"],
    script:
        "../scripts/twin_shift.py"


rule statistics:
    input:
        tables=expand(
            f"{R}/metrics/{{model}}/{{method}}/{{shard}}.csv",
            model=MODELS,
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
        twin=rules.twin_shift.output if TWINS else [],
        # each embedder's triplet game goes into summary.json too
        verification=expand(
            f"{R}/tables/verification/{{embedder}}/localisation.csv",
            embedder=EMBEDDERS,
        ),
        eer=expand(f"{R}/verification/{{embedder}}/eer.json", embedder=EMBEDDERS),
    output:
        comparisons=report(
            f"{R}/tables/method_comparison.csv",
            caption="../report/statistics.rst",
            category="4 Statistics",
        ),
        beats_random=report(
            f"{R}/tables/beats_random.csv",
            caption="../report/statistics.rst",
            category="4 Statistics",
        ),
        fr_vs_rp=report(
            f"{R}/tables/fr_vs_rp.csv",
            caption="../report/statistics.rst",
            category="4 Statistics",
        ),
        agreement=report(
            f"{R}/tables/metric_agreement.csv",
            caption="../report/agreement.rst",
            category="4 Statistics",
        ),
        ranks=report(
            f"{R}/tables/method_ranks.csv",
            caption="../report/agreement.rst",
            category="4 Statistics",
        ),
        summary=f"{R}/summary.json",
    log:
        f"{R}/logs/statistics.log",
    benchmark:
        f"{R}/benchmarks/statistics.tsv"
    conda:
        "../envs/facexai.yaml"
    resources:
        mem_mb=tables_mem_mb,
    params:
        resamples=config["aggregate"]["bootstrap_resamples"],
        alpha=config["aggregate"]["alpha"],
        seed=config["seed"],
    script:
        "../scripts/statistics.py"
