from facexai.attributions.store import group_shards
from facexai.logutil import log_to
from facexai.metric_figures import twin_figure

with log_to(snakemake.log[0]):
    p = snakemake.params
    twin_figure(dict(zip(p.models, snakemake.input.data)), group_shards(snakemake.input.attributions), p.twins,
                p.attribute, snakemake.output.png)
