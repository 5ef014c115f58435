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
