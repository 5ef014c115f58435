rule metric_figures:
    input:
        tables=expand(
            f"{R}/metrics/{{model}}/{{method}}/{{shard}}.csv",
            model=MODELS,
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
        fr_vs_rp=f"{R}/tables/fr_vs_rp.csv",
        summary=f"{R}/summary.json",
        agreement=f"{R}/tables/metric_agreement.csv",
        ranks=f"{R}/tables/method_ranks.csv",
    output:
        box=report(
            f"{R}/figures/box_rp_lift.png",
            caption="../report/box.rst",
            category="3 Metrics",
            subcategory="Figures",
        ),
        fr_vs_rp=report(
            f"{R}/figures/fr_vs_rp.png",
            caption="../report/fr_vs_rp.rst",
            category="4 Statistics",
        ),
        curves=report(
            f"{R}/figures/curves.png",
            caption="../report/perturbation_curves.rst",
            category="3 Metrics",
            subcategory="Figures",
        ),
        lift_heatmap=report(
            f"{R}/figures/lift_heatmap.png",
            caption="../report/lift_heatmap.rst",
            category="3 Metrics",
            subcategory="Figures",
        ),
        agreement=report(
            f"{R}/figures/metric_agreement.png",
            caption="../report/agreement.rst",
            category="4 Statistics",
        ),
        pdfs=multiext(
            f"{R}/figures/",
            "box_rp_lift.pdf",
            "fr_vs_rp.pdf",
            "curves.pdf",
            "lift_heatmap.pdf",
            "metric_agreement.pdf",
        ),
    log:
        f"{R}/logs/figures/metric_figures.log",
    benchmark:
        f"{R}/benchmarks/metric_figures.tsv"
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
            f"{R}/figures/twin_mass.png",
            caption="../report/twin.rst",
            category="3 Metrics",
            subcategory="Figures",
        ),
        pdf=f"{R}/figures/twin_mass.pdf",
    log:
        f"{R}/logs/figures/twin_mass.log",
    conda:
        "../envs/facexai.yaml"
    script:
        "../scripts/twin_figure.py"


rule overlay_figure:
    input:
        data=dataset_h5,
        attributions=expand(
            f"{R}/attributions/{{{{model}}}}/{{method}}/{{shard}}.h5",
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
    output:
        png=report(
            f"{R}/figures/overlay_{{model}}.png",
            caption="../report/overlay.rst",
            category="2 Attribution maps",
        ),
        pdf=f"{R}/figures/overlay_{{model}}.pdf",
    log:
        f"{R}/logs/figures/overlay_{{model}}.log",
    conda:
        "../envs/facexai.yaml"
    params:
        n_samples=config["figures"]["overlay_samples"],
        ids=config["figures"]["overlay_ids"],
        mode=config["metrics"]["mass"],
    script:
        "../scripts/overlay_figure.py"


rule pair_figure:
    input:
        data=f"{R}/data/main/dataset.h5",
        store=f"{R}/verification/pairs.h5",
        attributions=expand(
            f"{R}/attributions/verification/{{{{embedder}}}}/{{method}}/{{shard}}.h5",
            method=PAIR_METHODS,
            shard=PAIR_SHARDS,
        ),
    output:
        png=report(
            f"{R}/figures/verification_pairs_{{embedder}}.png",
            caption="../report/pair_figure.rst",
            category="2 Attribution maps",
        ),
        pdf=f"{R}/figures/verification_pairs_{{embedder}}.pdf",
    log:
        f"{R}/logs/figures/verification_pairs_{{embedder}}.log",
    conda:
        "../envs/facexai.yaml"
    params:
        per_kind=config["figures"]["pairs_per_kind"],
        regions=config["regions"],
    script:
        "../scripts/pair_figure.py"


rule game_figure:
    input:
        localisation=f"{R}/tables/verification/{{embedder}}/localisation.csv",
    output:
        png=report(
            f"{R}/figures/triplet_game_{{embedder}}.png",
            caption="../report/game_figure.rst",
            category="3 Metrics",
        ),
        pdf=f"{R}/figures/triplet_game_{{embedder}}.pdf",
    log:
        f"{R}/logs/figures/triplet_game_{{embedder}}.log",
    conda:
        "../envs/facexai.yaml"
    script:
        "../scripts/game_figure.py"


rule pair_gallery:
    input:
        tables=expand(
            f"{R}/metrics/verification/{{{{embedder}}}}/{{method}}/{{shard}}.csv",
            method=PAIR_METHODS,
            shard=PAIR_SHARDS,
        ),
        attributions=expand(
            f"{R}/attributions/verification/{{{{embedder}}}}/{{method}}/{{shard}}.h5",
            method=PAIR_METHODS,
            shard=PAIR_SHARDS,
        ),
        data=f"{R}/data/main/dataset.h5",
        store=f"{R}/verification/pairs.h5",
    output:
        report(
            f"{R}/gallery/verification_{{embedder}}.html",
            caption="../report/pair_gallery.rst",
            category="2 Attribution maps",
        ),
    log:
        f"{R}/logs/gallery_verification_{{embedder}}.log",
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
            f"{R}/metrics/{{model}}/{{method}}/{{shard}}.csv",
            model=MODELS,
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
        attributions=expand(
            f"{R}/attributions/{{model}}/{{method}}/{{shard}}.h5",
            model=MODELS,
            method=METHODS,
            shard=EXPLAIN_SHARDS,
        ),
        data=[f"{R}/data/{model_dataset(m)}/dataset.h5" for m in MODELS],
    output:
        report(
            f"{R}/gallery/index.html",
            caption="../report/gallery.rst",
            category="2 Attribution maps",
        ),
    log:
        f"{R}/logs/gallery.log",
    benchmark:
        f"{R}/benchmarks/gallery.tsv"
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
