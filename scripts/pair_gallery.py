from facexai.attributions.store import group_shards
from facexai.gallery import build_pair_gallery
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    build_pair_gallery(snakemake.input.tables, group_shards(snakemake.input.attributions, by=("method",)),
                       snakemake.input.data, snakemake.input.store, snakemake.output[0],
                       regions=snakemake.params.regions)
