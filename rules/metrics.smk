rule localisation:
    input:
        attributions=f"{R}/attributions/{{model}}/{{method}}/{{shard}}.h5",
        data=dataset_h5,
    output:
        f"{R}/metrics/{{model}}/{{method}}/{{shard}}.csv",
    params:
        regions=config["regions"],
        attribute_regions=config["attribute_regions"],
        mass=config["metrics"]["mass"],
    log:
        f"{R}/logs/metrics/{{model}}/{{method}}/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/metrics/{{model}}/{{method}}/{{shard}}.tsv"
    resources:
        mem_mb=2000,
    script:
        "../scripts/localisation.py"


rule pair_localisation:
    input:
        attributions=f"{R}/attributions/verification/{{method}}/{{shard}}.h5",
        data=f"{R}/data/main/dataset.h5",
    output:
        f"{R}/metrics/verification/{{method}}/{{shard}}.csv",
    params:
        regions=config["regions"],
    log:
        f"{R}/logs/metrics/verification/{{method}}/{{shard}}.log",
    resources:
        mem_mb=2000,
    script:
        "../scripts/pair_localisation.py"


rule verification_localisation:
    input:
        expand(f"{R}/metrics/verification/{{method}}/{{shard}}.csv", method=PAIR_METHODS, shard=PAIR_SHARDS),
    output:
        report(
            f"{R}/tables/verification_localisation.csv",
            caption="../report/verification_localisation.rst",
            category="Metrics",
        ),
    params:
        resamples=config["aggregate"]["bootstrap_resamples"],
        seed=config["seed"],
    log:
        f"{R}/logs/verification_localisation.log",
    script:
        "../scripts/verification_localisation.py"
