from facexai.figures import pair_figure
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    shards = iter(snakemake.input.attributions)
    attributions = {method: [next(shards) for _ in range(p.n_shards)] for method in p.methods}
    pair_figure(snakemake.input.data, attributions, snakemake.output.png, regions=p.regions, per_kind=p.per_kind)
