rule train_attribute_model:
    input:
        data=dataset_h5,
        split=split_tsv,
    output:
        weights=L("weights"),
        meta=L("model_meta"),
        metrics=L("test_metrics"),
        curves=L("curves"),
    log:
        L.log("train/{model}"),
    benchmark:
        L.benchmark("train/{model}")
    wildcard_constraints:
        model="|".join(TRAINED_MODELS) or "^$",
    # models first: every later job waits on one, and a model trained last leaves its explanations
    # as the run's tail on a few cores
    priority: 10
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        mem_mb=training_mem_mb(),
        gpu=gpu_request(),
    params:
        model=lambda wc: PLAN.training_config(wc.model),
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/train_attribute_model.py"


rule import_user_model:
    input:
        user_weights=lambda wc: model_config(wc.model)["weights"],
        data=dataset_h5,
        split=split_tsv,
    output:
        weights=L("weights"),
        meta=L("model_meta"),
        metrics=L("test_metrics"),
    log:
        L.log("import/{model}"),
    wildcard_constraints:
        model="|".join(USER_MODELS) or "^$",
    conda:
        "../envs/facexai.yaml"
    resources:
        mem_mb=2000,
    params:
        model=lambda wc: model_config(wc.model),
        image_size=config["dataset"]["image_size"],
        device=config["device"],
    script:
        "../scripts/import_user_model.py"


rule evaluate_attribute_model:
    input:
        weights=L("weights"),
        meta=L("model_meta"),
        data=L("dataset_h5"),
        split=L("split_tsv"),
    output:
        L("model_eval"),
    log:
        L.log("evaluate/{model}_{dataset}"),
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_request(),
        mem_mb=2000,
    params:
        synthetic_meta=lambda wc: (
            f"{synthetic_root(wc.dataset)}/{META_FILE}" if is_synthetic() else None
        ),
        device=config["device"],
    script:
        "../scripts/evaluate_attribute_model.py"


rule model_accuracy:
    input:
        expand(
            L("model_eval"),
            model=MODELS,
            dataset=DATASETS,
        ),
    output:
        report(
            L.table("model_accuracy"),
            caption="../report/model_accuracy.rst",
            category="1 Models",
        ),
    log:
        L.log("model_accuracy"),
    conda:
        "../envs/facexai.yaml"
    script:
        "../scripts/concat_tables.py"


rule training_curves:
    input:
        L("curves"),
    output:
        report(
            L.figure("training_curves_{model}"),
            caption="../report/curves.rst",
            category="1 Models",
        ),
    log:
        L.log("figures/training_curves_{model}"),
    conda:
        "../envs/facexai.yaml"
    script:
        "../scripts/training_curves.py"


rule build_pairs:
    input:
        split=L("split_tsv", dataset="main"),
        data=L("dataset_h5", dataset="main"),
    output:
        pairs=L("pairs_tsv"),
        store=L("pairs_h5"),
        summary=L("pairs_json"),
    log:
        L.log("verification/build_pairs"),
    conda:
        "../envs/facexai.yaml"
    resources:
        mem_mb=2000,
    params:
        pairs=config["verification"]["pairs"],
        swap=config["verification"].get("region_swap"),
        triplets=config["verification"].get("triplets"),
        regions=PLAN.pair_regions(),
        seed=config["seed"],
        region_pairs=(
            f"{synthetic_root('main')}/{PAIRS_FILE}" if is_synthetic() else None
        ),
    script:
        "../scripts/build_pairs.py"


rule train_embedder:
    input:
        data=L("dataset_h5", dataset="main"),
        split=L("split_tsv", dataset="main"),
    output:
        weights=L("embedder_weights"),
        meta=L("embedder_meta"),
        curves=L("embedder_curves"),
    log:
        L.log("verification/{embedder}/train"),
    benchmark:
        L.benchmark("verification/{embedder}/train")
    wildcard_constraints:
        embedder="|".join(TRAINED_EMBEDDERS) or "^$",
    # models first: every later job waits on one, and a model trained last leaves its explanations
    # as the run's tail on a few cores
    priority: 10
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=gpu_request(),
    params:
        embedder=lambda wc: embedder_config(wc.embedder),
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/train_embedder.py"


rule import_embedder:
    input:
        source=lambda wc: PLAN.embedder_source(wc.embedder),
    output:
        weights=L("embedder_weights"),
        meta=L("embedder_meta"),
    log:
        L.log("verification/{embedder}/import"),
    wildcard_constraints:
        embedder="|".join(IMPORTED_EMBEDDERS) or "^$",
    conda:
        "../envs/facexai.yaml"
    resources:
        mem_mb=2000,
    params:
        embedder=lambda wc: embedder_config(wc.embedder),
        image_size=config["dataset"]["image_size"],
    script:
        "../scripts/import_embedder.py"


rule evaluate_verification:
    input:
        weights=L("embedder_weights"),
        meta=L("embedder_meta"),
        data=L("dataset_h5", dataset="main"),
        pairs=rules.build_pairs.output.pairs,
        store=rules.build_pairs.output.store,
    output:
        scores=L("scores"),
        summary=report(
            L("eer"),
            caption="../report/verification.rst",
            category="1 Models",
            subcategory="{embedder}",
        ),
    log:
        L.log("verification/{embedder}/evaluate"),
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_request(),
        mem_mb=2000,
    params:
        device=config["device"],
        margin=(config["verification"].get("triplets") or {}).get("margin", 0.0),
    script:
        "../scripts/evaluate_verification.py"
