rule generate_synthetic:
    output:
        directory(L("synthetic_root")),
    log:
        L.log("generate_synthetic/{dataset}"),
    benchmark:
        L.benchmark("generate_synthetic/{dataset}")
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
        directory(L("photo_shard")),
    log:
        L.log("align_photos/{dataset}/{shard}"),
    benchmark:
        L.benchmark("align_photos/{dataset}/{shard}")
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
        expand(L("photo_shard", dataset="{{dataset}}"), shard=FUSE_SHARDS),
    output:
        root=directory(L("photos_root")),
        summary=L("photo_summary"),
    log:
        L.log("assemble_photos/{dataset}"),
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
        h5=L("fused_shard"),
        bad=L("bad_shard"),
    log:
        L.log("fuse/{dataset}/{shard}"),
    benchmark:
        L.benchmark("fuse/{dataset}/{shard}")
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
        h5=expand(L("fused_shard", dataset="{{dataset}}"), shard=FUSE_SHARDS),
        bad=expand(L("bad_shard", dataset="{{dataset}}"), shard=FUSE_SHARDS),
    output:
        h5=L("dataset_h5"),
        bad=L("bad_samples"),
    log:
        L.log("merge_fused/{dataset}"),
    benchmark:
        L.benchmark("merge_fused/{dataset}")
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
            [f"{PLAN.photos_root(wc.dataset)}/{BAD_PHOTOS}"] if PLAN.is_photos else []
        ),
    script:
        "../scripts/merge_fused.py"


rule split:
    input:
        L("dataset_h5"),
    output:
        L("split_tsv"),
    log:
        L.log("split/{dataset}"),
    # the data first: every model's training waits on them (rules/models.smk)
    priority: 10
    conda:
        "../envs/facexai.yaml"
    params:
        split=config["split"],
    script:
        "../scripts/split.py"
