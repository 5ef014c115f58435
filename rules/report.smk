rule metric_figures:
    input:
        tables=expand(
            L("metrics_csv"),
            subject=MODELS,
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
        fr_vs_rp=L.table("fr_vs_rp"),
        summary=L("summary"),
        agreement=L.table("metric_agreement"),
        ranks=L.table("method_ranks"),
    output:
        box=report(
            L.figure("box_rp_lift"),
            caption="../report/box.rst",
            category="3 Metrics",
            subcategory="Figures",
        ),
        fr_vs_rp=report(
            L.figure("fr_vs_rp"),
            caption="../report/fr_vs_rp.rst",
            category="4 Statistics",
        ),
        curves=report(
            L.figure("curves"),
            caption="../report/perturbation_curves.rst",
            category="3 Metrics",
            subcategory="Figures",
        ),
        lift_heatmap=report(
            L.figure("lift_heatmap"),
            caption="../report/lift_heatmap.rst",
            category="3 Metrics",
            subcategory="Figures",
        ),
        agreement=report(
            L.figure("metric_agreement"),
            caption="../report/agreement.rst",
            category="4 Statistics",
        ),
        pdfs=multiext(
            L("figures") + "/",
            "box_rp_lift.pdf",
            "fr_vs_rp.pdf",
            "curves.pdf",
            "lift_heatmap.pdf",
            "metric_agreement.pdf",
        ),
    log:
        L.log("figures/metric_figures"),
    benchmark:
        L.benchmark("metric_figures")
    conda:
        "../envs/facexai.yaml"
    resources:
        mem_mb=tables_mem_mb,
    params:
        resamples=config["aggregate"]["bootstrap_resamples"],
        seed=config["seed"],
    script:
        "../scripts/metric_figures.py"


rule twin_figure:
    input:
        rules.twin_shift.output,
    output:
        png=report(
            L.figure("twin_mass"),
            caption="../report/twin.rst",
            category="3 Metrics",
            subcategory="Figures",
        ),
        pdf=L.figure("twin_mass", "pdf"),
    log:
        L.log("figures/twin_mass"),
    conda:
        "../envs/facexai.yaml"
    script:
        "../scripts/twin_figure.py"


rule group_twin_figure:
    input:
        accuracy=rules.group_twin.output.accuracy,
        shift=rules.group_twin.output.shift,
    output:
        png=report(
            L.figure("group_twin"),
            caption="../report/group_twin.rst",
            category="3 Metrics",
            subcategory="Figures",
        ),
        pdf=L.figure("group_twin", "pdf"),
    log:
        L.log("figures/group_twin"),
    conda:
        "../envs/facexai.yaml"
    script:
        "../scripts/group_twin_figure.py"


rule overlay_figure:
    input:
        data=dataset_h5,
        attributions=expand(
            L("maps", subject="{{model}}"),
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
    output:
        png=report(
            L.figure("overlay_{model}"),
            caption="../report/overlay.rst",
            category="2 Attribution maps",
        ),
        pdf=L.figure("overlay_{model}", "pdf"),
    log:
        L.log("figures/overlay_{model}"),
    conda:
        "../envs/facexai.yaml"
    params:
        n_samples=config["figures"]["overlay_samples"],
        ids=config["figures"]["overlay_ids"],
        mode=config["metrics"]["mass"],
    script:
        "../scripts/overlay_figure.py"


rule mean_maps:
    input:
        data=dataset_h5,
        attributions=expand(
            L("maps", subject="{{model}}"),
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
        tables=expand(
            L("metrics_csv", subject="{{model}}"),
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
    output:
        h5=L("mean_maps"),
        table=report(
            L.table("mean_maps_{model}"),
            caption="../report/mean_maps.rst",
            category="2 Attribution maps",
        ),
        png=report(
            L.figure("mean_maps_{model}"),
            caption="../report/mean_maps.rst",
            category="2 Attribution maps",
        ),
        pdf=L.figure("mean_maps_{model}", "pdf"),
    log:
        L.log("figures/mean_maps_{model}"),
    benchmark:
        L.benchmark("mean_maps_{model}")
    conda:
        "../envs/facexai.yaml"
    params:
        regions=config["regions"],
        attribute_regions=config["attribute_regions"],
        mode=config["metrics"]["mass"],
        groups=config["groups"],
        resamples=config["aggregate"]["bootstrap_resamples"],
        seed=config["seed"],
    script:
        "../scripts/mean_maps.py"


rule pair_figure:
    input:
        data=L("dataset_h5", dataset="main"),
        store=L("pairs_h5"),
        attributions=expand(
            L("maps", subject=subject(embedder="{{embedder}}")),
            method=PAIR_METHODS,
            shard=PAIR_SHARDS,
        ),
    output:
        png=report(
            L.figure("verification_pairs_{embedder}"),
            caption="../report/pair_figure.rst",
            category="2 Attribution maps",
        ),
        pdf=L.figure("verification_pairs_{embedder}", "pdf"),
    log:
        L.log("figures/verification_pairs_{embedder}"),
    conda:
        "../envs/facexai.yaml"
    params:
        per_kind=config["figures"]["pairs_per_kind"],
        regions=config["regions"],
    script:
        "../scripts/pair_figure.py"


rule game_figure:
    input:
        localisation=L.pair_table("localisation"),
    output:
        png=report(
            L.figure("triplet_game_{embedder}"),
            caption="../report/game_figure.rst",
            category="3 Metrics",
        ),
        pdf=L.figure("triplet_game_{embedder}", "pdf"),
    log:
        L.log("figures/triplet_game_{embedder}"),
    conda:
        "../envs/facexai.yaml"
    script:
        "../scripts/game_figure.py"


rule pair_gallery:
    input:
        tables=expand(
            L("metrics_csv", subject=subject(embedder="{{embedder}}")),
            method=PAIR_METHODS,
            shard=PAIR_SHARDS,
        ),
        attributions=expand(
            L("maps", subject=subject(embedder="{{embedder}}")),
            method=PAIR_METHODS,
            shard=PAIR_SHARDS,
        ),
        data=L("dataset_h5", dataset="main"),
        store=L("pairs_h5"),
    output:
        report(
            L("pair_gallery"),
            caption="../report/pair_gallery.rst",
            category="2 Attribution maps",
        ),
    log:
        L.log("gallery_verification_{embedder}"),
    conda:
        "../envs/facexai.yaml"
    resources:
        mem_mb=2000,
    params:
        regions=config["regions"],
    script:
        "../scripts/pair_gallery.py"


rule gallery:
    input:
        tables=expand(
            L("metrics_csv"),
            subject=MODELS,
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
        attributions=expand(
            L("maps"),
            subject=MODELS,
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
        data=[L("dataset_h5", dataset=model_dataset(m)) for m in MODELS],
        # the aligned mean maps' view
        mean_maps=expand(L("mean_maps"), model=MODELS),
        mean_tables=[L.table(f"mean_maps_{m}") for m in MODELS],
    output:
        report(
            L("gallery"),
            caption="../report/gallery.rst",
            category="2 Attribution maps",
        ),
    log:
        L.log("gallery"),
    benchmark:
        L.benchmark("gallery")
    conda:
        "../envs/facexai.yaml"
    resources:
        mem_mb=tables_mem_mb,
    params:
        models=MODELS,
        regions=config["regions"],
        mode=config["metrics"]["mass"],
        max_per_model=config["figures"]["gallery_max_per_model"],
    script:
        "../scripts/gallery.py"
