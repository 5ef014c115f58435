from facexai.attributions.store import group_shards
from facexai.gallery import build_gallery
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    build_gallery(snakemake.input.tables, group_shards(snakemake.input.attributions),
                  dict(zip(p.models, snakemake.input.data)), snakemake.output[0], regions=p.regions, mode=p.mode,
                  max_per_model=p.max_per_model,
                  mean_maps=(dict(zip(p.models, snakemake.input.mean_maps)),
                             dict(zip(p.models, snakemake.input.mean_tables))))
