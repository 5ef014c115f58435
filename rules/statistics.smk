rule aggregate:
    input:
        tables=expand(
            L("metrics_csv"),
            subject=MODELS,
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
        model_metrics=expand(L("test_metrics"), model=MODELS),
    output:
        by_attribute=report(
            L.table("localisation_by_attribute"),
            caption="../report/localisation.rst",
            category="3 Metrics",
            subcategory="Tables",
        ),
        by_region=report(
            L.table("localisation_by_region"),
            caption="../report/localisation.rst",
            category="3 Metrics",
            subcategory="Tables",
        ),
        by_outcome=report(
            L.table("localisation_by_outcome"),
            caption="../report/localisation.rst",
            category="3 Metrics",
            subcategory="Tables",
        ),
    log:
        L.log("aggregate"),
    benchmark:
        L.benchmark("aggregate")
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


rule group_tables:
    input:
        tables=expand(
            L("metrics_csv"),
            subject=MODELS,
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
        # each model's dataset: the explained images' group membership (their attributes)
        data=[L("dataset_h5", dataset=model_dataset(m)) for m in MODELS],
    output:
        by_group=report(
            L.table("localisation_by_group"),
            caption="../report/groups.rst",
            category="4 Statistics",
            subcategory="Groups",
        ),
        differences=report(
            L.table("group_differences"),
            caption="../report/groups.rst",
            category="4 Statistics",
            subcategory="Groups",
        ),
    log:
        L.log("group_tables"),
    benchmark:
        L.benchmark("group_tables")
    conda:
        "../envs/facexai.yaml"
    resources:
        mem_mb=tables_mem_mb,
    params:
        models=MODELS,
        groups=config["groups"],
        resamples=config["aggregate"]["bootstrap_resamples"],
        alpha=config["aggregate"]["alpha"],
        seed=config["seed"],
    script:
        "../scripts/group_tables.py"


rule twin_shift:
    input:
        data=[L("dataset_h5", dataset=model_dataset(m)) for m in TWIN_MODELS],
        attributions=[
            L("maps", subject=m, method=method, shard=shard)
            for m in TWIN_MODELS
            for method in METHODS
            for shard in EXPLAIN_SHARDS
        ],
    output:
        report(
            L.table("twin_shift"),
            caption="../report/twin_table.rst",
            category="4 Statistics",
        ),
    log:
        L.log("twin_shift"),
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


rule twin_groups:
    input:
        data=[L("dataset_h5", dataset=model_dataset(m)) for m in TWIN_MODELS],
        attributions=[
            L("maps", subject=m, method=method, shard=shard)
            for m in TWIN_MODELS
            for method in METHODS
            for shard in EXPLAIN_SHARDS
        ],
    output:
        report(
            L.table("twin_shift_by_group"),
            caption="../report/twin_table.rst",
            category="4 Statistics",
            subcategory="Groups",
        ),
    log:
        L.log("twin_groups"),
    conda:
        "../envs/facexai.yaml"
    params:
        models=TWIN_MODELS,
        twins=TWINS,
        attribute=config["synthetic"]["shortcut"]["attribute"],
        groups=config["groups"],
        mode=config["metrics"]["mass"],
        resamples=config["aggregate"]["bootstrap_resamples"],
        seed=config["seed"],
    script:
        "../scripts/twin_shift.py"


rule group_twin:
    input:
        weights=[L("weights", model=m) for m in GROUP_TWIN_MODELS],
        meta=[L("model_meta", model=m) for m in GROUP_TWIN_MODELS],
        data=[L("dataset_h5", dataset=model_dataset(m)) for m in GROUP_TWIN_MODELS],
        split=[L("split_tsv", dataset=model_dataset(m)) for m in GROUP_TWIN_MODELS],
        attributions=[
            L("maps", subject=m, method=method, shard=shard)
            for m in GROUP_TWIN_MODELS
            for method in METHODS
            for shard in EXPLAIN_SHARDS
        ],
    output:
        accuracy=report(
            L.table("group_twin_accuracy"),
            caption="../report/group_twin.rst",
            category="4 Statistics",
        ),
        shift=report(
            L.table("group_twin_shift"),
            caption="../report/group_twin.rst",
            category="4 Statistics",
        ),
    log:
        L.log("group_twin"),
    benchmark:
        L.benchmark("group_twin")
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        mem_mb=2000,
        gpu=gpu_request(),
    params:
        models=GROUP_TWIN_MODELS,
        twins=GROUP_TWINS,
        attributes=PLAN.group_twin_attributes(),
        explained=config["explain"]["attributes"],
        mode=config["metrics"]["mass"],
        alpha=config["aggregate"]["alpha"],
        resamples=config["aggregate"]["bootstrap_resamples"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/group_twin.py"


rule statistics:
    input:
        tables=expand(
            L("metrics_csv"),
            subject=MODELS,
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
        twin=rules.twin_shift.output if TWINS else [],
        group_twin=(
            [rules.group_twin.output.accuracy, rules.group_twin.output.shift]
            if GROUP_TWINS
            else []
        ),
        group_differences=(
            rules.group_tables.output.differences if config["groups"] else []
        ),
        # each embedder's triplet game goes into summary.json too
        verification=expand(
            L.pair_table("localisation"),
            embedder=EMBEDDERS,
        ),
        eer=expand(L("eer"), embedder=EMBEDDERS),
    output:
        comparisons=report(
            L.table("method_comparison"),
            caption="../report/statistics.rst",
            category="4 Statistics",
        ),
        beats_random=report(
            L.table("beats_random"),
            caption="../report/statistics.rst",
            category="4 Statistics",
        ),
        fr_vs_rp=report(
            L.table("fr_vs_rp"),
            caption="../report/statistics.rst",
            category="4 Statistics",
        ),
        agreement=report(
            L.table("metric_agreement"),
            caption="../report/agreement.rst",
            category="4 Statistics",
        ),
        ranks=report(
            L.table("method_ranks"),
            caption="../report/agreement.rst",
            category="4 Statistics",
        ),
        summary=L("summary"),
    log:
        L.log("statistics"),
    benchmark:
        L.benchmark("statistics")
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
