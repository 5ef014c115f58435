from facexai.data.celebamask import read_annotations
from facexai.data.fusion import fuse_shard
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    annotations = read_annotations(p.root, p.identity_file, unannotated_ok=p.dataset["source"] == "photos")
    size = p.dataset["shard_size"]
    shard = int(snakemake.wildcards.shard)
    positions = range(shard * size, min((shard + 1) * size, len(annotations.ids)))
    fuse_shard(p.root, annotations, positions, snakemake.output.h5, snakemake.output.bad,
               image_size=p.dataset["image_size"], mask_size=p.dataset["mask_size"],
               on_bad_sample=p.dataset["on_bad_sample"], workers=snakemake.threads, config_digest=p.digest)
