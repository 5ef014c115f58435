from facexai.figures import overlay_figure
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    shards = iter(snakemake.input.attributions)
    attributions = {method: [next(shards) for _ in range(p.n_shards)] for method in p.methods}
    overlay_figure(snakemake.input.data, attributions, snakemake.output.png, n_samples=p.n_samples, ids=p.ids,
                   mode=p.mode)
