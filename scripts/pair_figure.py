from facexai.attributions.store import group_shards
from facexai.map_figures import pair_figure
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    pair_figure(snakemake.input.data, group_shards(snakemake.input.attributions, by=("method",)),
                snakemake.output.png, regions=p.regions, per_kind=p.per_kind, pairs_h5=snakemake.input.store)
