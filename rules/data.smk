rule generate_synthetic:
    output:
        directory(SYNTHETIC_ROOT),
    params:
        synthetic=config["synthetic"],
        split=config["split"],
        seed=config["seed"],
    log:
        f"{R}/logs/generate_synthetic.log",
    benchmark:
        f"{R}/benchmarks/generate_synthetic.tsv"
    threads: config["threads"]
    resources:
        mem_mb=2000,
    script:
        "../scripts/generate_synthetic.py"


rule fuse_shard:
    input:
        unpack(dataset_inputs),
    output:
        h5=f"{R}/data/shards/fused_{{shard}}.h5",
        bad=f"{R}/data/shards/bad_{{shard}}.tsv",
    params:
        root=dataset_root(),
        identity_file=identity_file(),
        dataset=config["dataset"],
        digest=dataset_digest(),
    log:
        f"{R}/logs/fuse/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/fuse/{{shard}}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=2000,
    script:
        "../scripts/fuse_shard.py"


rule merge_fused:
    input:
        h5=expand(f"{R}/data/shards/fused_{{shard}}.h5", shard=FUSE_SHARDS),
        bad=expand(f"{R}/data/shards/bad_{{shard}}.tsv", shard=FUSE_SHARDS),
    output:
        h5=f"{R}/data/dataset.h5",
        bad=f"{R}/data/bad_samples.tsv",
    params:
        digest=dataset_digest(),
    log:
        f"{R}/logs/merge_fused.log",
    benchmark:
        f"{R}/benchmarks/merge_fused.tsv"
    resources:
        mem_mb=1000,
    script:
        "../scripts/merge_fused.py"


rule split:
    input:
        rules.merge_fused.output.h5,
    output:
        f"{R}/data/split.tsv",
    params:
        split=config["split"],
    log:
        f"{R}/logs/split.log",
    script:
        "../scripts/split.py"
