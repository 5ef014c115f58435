rule generate_synthetic:
    output:
        directory(f"{R}/synthetic/{{dataset}}/CelebAMask-HQ"),
    log:
        f"{R}/logs/generate_synthetic/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/generate_synthetic/{{dataset}}.tsv"
    # the data first: every model's training waits on them (rules/models.smk)
    priority: 10
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        mem_mb=2000,
    params:
        synthetic=lambda wc: synthetic_params(wc.dataset),
        split=config["split"],
        seed=config["seed"],
    script:
        "../scripts/generate_synthetic.py"


rule align_photos:
    output:
        directory(f"{R}/photos/{{dataset}}/shards/{{shard}}"),
    log:
        f"{R}/logs/align_photos/{{dataset}}/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/align_photos/{{dataset}}/{{shard}}.tsv"
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        mem_mb=2000,
    params:
        root=config["dataset_root"],
        photos=PLAN.photo_alignment(),
        mask_size=config["dataset"]["mask_size"],
        dataset=config["dataset"],
        files=lambda wc: PLAN.photo_shard_digest(int(wc.shard)),
    script:
        "../scripts/align_photos.py"


rule assemble_photos:
    input:
        expand(f"{R}/photos/{{{{dataset}}}}/shards/{{shard}}", shard=FUSE_SHARDS),
    output:
        root=directory(f"{R}/photos/{{dataset}}/CelebAMask-HQ"),
        summary=f"{R}/photos/{{dataset}}/summary.json",
    log:
        f"{R}/logs/assemble_photos/{{dataset}}.log",
    conda:
        "../envs/facexai.yaml"
    resources:
        mem_mb=1000,
    params:
        root=config["dataset_root"],
        tables=lambda wc: PLAN.photo_tables_digest(),
        min_face_size=config["photos"].get("min_face_size", 64),
    script:
        "../scripts/assemble_photos.py"


rule fuse_shard:
    input:
        unpack(dataset_inputs),
    output:
        h5=f"{R}/data/{{dataset}}/shards/fused_{{shard}}.h5",
        bad=f"{R}/data/{{dataset}}/shards/bad_{{shard}}.tsv",
    log:
        f"{R}/logs/fuse/{{dataset}}/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/fuse/{{dataset}}/{{shard}}.tsv"
    # the data first: every model's training waits on them (rules/models.smk)
    priority: 10
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        mem_mb=2000,
    params:
        root=lambda wc: dataset_root(wc.dataset),
        identity_file=lambda wc: identity_file(wc.dataset),
        dataset=config["dataset"],
        digest=lambda wc: dataset_digest(wc.dataset),
        files=shard_files_digest,
    script:
        "../scripts/fuse_shard.py"


rule merge_fused:
    input:
        h5=expand(
            f"{R}/data/{{{{dataset}}}}/shards/fused_{{shard}}.h5", shard=FUSE_SHARDS
        ),
        bad=expand(
            f"{R}/data/{{{{dataset}}}}/shards/bad_{{shard}}.tsv", shard=FUSE_SHARDS
        ),
    output:
        h5=f"{R}/data/{{dataset}}/dataset.h5",
        bad=f"{R}/data/{{dataset}}/bad_samples.tsv",
    log:
        f"{R}/logs/merge_fused/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/merge_fused/{{dataset}}.tsv"
    # the data first: every model's training waits on them (rules/models.smk)
    priority: 10
    conda:
        "../envs/facexai.yaml"
    resources:
        mem_mb=1000,
    params:
        digest=lambda wc: dataset_digest(wc.dataset),
        # photos without a usable face, listed by the photo stage
        extra_bad=lambda wc: (
            [f"{PLAN.photos_root(wc.dataset)}/bad_photos.tsv"]
            if PLAN.is_photos
            else []
        ),
    script:
        "../scripts/merge_fused.py"


rule split:
    input:
        f"{R}/data/{{dataset}}/dataset.h5",
    output:
        f"{R}/data/{{dataset}}/split.tsv",
    log:
        f"{R}/logs/split/{{dataset}}.log",
    # the data first: every model's training waits on them (rules/models.smk)
    priority: 10
    conda:
        "../envs/facexai.yaml"
    params:
        split=config["split"],
    script:
        "../scripts/split.py"
