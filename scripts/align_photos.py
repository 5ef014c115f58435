from facexai.data.photos.align import AlignSettings
from facexai.data.photos.folder import list_photos, shard_photos
from facexai.data.photos.shards import align_shard
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    photos = shard_photos(list_photos(p.root), int(snakemake.wildcards.shard), p.dataset["shard_size"])
    align_shard(p.root, photos, snakemake.output[0], AlignSettings.from_config(p.photos, p.mask_size),
                on_bad_sample=p.dataset["on_bad_sample"], workers=snakemake.threads)
