from facexai.attributions.store import group_shards
from facexai.map_figures import overlay_figure
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    overlay_figure(snakemake.input.data, group_shards(snakemake.input.attributions, by=("method",)),
                   snakemake.output.png, n_samples=p.n_samples, ids=p.ids, mode=p.mode)
