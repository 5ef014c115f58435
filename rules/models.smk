rule train_attribute_model:
    input:
        data=dataset_h5,
        split=split_tsv,
    output:
        weights=f"{R}/models/{{model}}/weights.pt",
        meta=f"{R}/models/{{model}}/model.json",
        metrics=f"{R}/models/{{model}}/test_metrics.tsv",
        curves=f"{R}/models/{{model}}/curves.tsv",
    log:
        f"{R}/logs/train/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{model}}.tsv"
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
        model=lambda wc: model_config(wc.model),
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
        weights=f"{R}/models/{{model}}/weights.pt",
        meta=f"{R}/models/{{model}}/model.json",
        metrics=f"{R}/models/{{model}}/test_metrics.tsv",
    log:
        f"{R}/logs/import/{{model}}.log",
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
        weights=f"{R}/models/{{model}}/weights.pt",
        meta=f"{R}/models/{{model}}/model.json",
        data=f"{R}/data/{{dataset}}/dataset.h5",
        split=f"{R}/data/{{dataset}}/split.tsv",
    output:
        f"{R}/models/{{model}}/eval_{{dataset}}.tsv",
    log:
        f"{R}/logs/evaluate/{{model}}_{{dataset}}.log",
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_request(),
        mem_mb=2000,
    params:
        synthetic_meta=lambda wc: (
            f"{synthetic_root(wc.dataset)}/synthetic-meta.json"
            if is_synthetic()
            else None
        ),
        device=config["device"],
    script:
        "../scripts/evaluate_attribute_model.py"


rule model_accuracy:
    input:
        expand(
            f"{R}/models/{{model}}/eval_{{dataset}}.tsv",
            model=MODELS,
            dataset=DATASETS,
        ),
    output:
        report(
            f"{R}/tables/model_accuracy.csv",
            caption="../report/model_accuracy.rst",
            category="1 Models",
        ),
    log:
        f"{R}/logs/model_accuracy.log",
    conda:
        "../envs/facexai.yaml"
    script:
        "../scripts/concat_tables.py"


rule training_curves:
    input:
        f"{R}/models/{{model}}/curves.tsv",
    output:
        report(
            f"{R}/figures/training_curves_{{model}}.png",
            caption="../report/curves.rst",
            category="1 Models",
        ),
    log:
        f"{R}/logs/figures/training_curves_{{model}}.log",
    conda:
        "../envs/facexai.yaml"
    script:
        "../scripts/training_curves.py"


rule build_pairs:
    input:
        split=f"{R}/data/main/split.tsv",
        data=f"{R}/data/main/dataset.h5",
    output:
        pairs=f"{R}/verification/pairs.tsv",
        store=f"{R}/verification/pairs.h5",
        summary=f"{R}/verification/pairs.json",
    log:
        f"{R}/logs/verification/build_pairs.log",
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
        data=f"{R}/data/main/dataset.h5",
        split=f"{R}/data/main/split.tsv",
    output:
        weights=f"{R}/verification/{{embedder}}/weights.pt",
        meta=f"{R}/verification/{{embedder}}/model.json",
        curves=f"{R}/verification/{{embedder}}/curves.tsv",
    log:
        f"{R}/logs/verification/{{embedder}}/train.log",
    benchmark:
        f"{R}/benchmarks/verification/{{embedder}}/train.tsv"
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
        weights=f"{R}/verification/{{embedder}}/weights.pt",
        meta=f"{R}/verification/{{embedder}}/model.json",
    log:
        f"{R}/logs/verification/{{embedder}}/import.log",
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
        weights=f"{R}/verification/{{embedder}}/weights.pt",
        meta=f"{R}/verification/{{embedder}}/model.json",
        data=f"{R}/data/main/dataset.h5",
        pairs=rules.build_pairs.output.pairs,
        store=rules.build_pairs.output.store,
    output:
        scores=f"{R}/verification/{{embedder}}/scores.tsv",
        summary=report(
            f"{R}/verification/{{embedder}}/eer.json",
            caption="../report/verification.rst",
            category="1 Models",
            subcategory="{embedder}",
        ),
    log:
        f"{R}/logs/verification/{{embedder}}/evaluate.log",
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
