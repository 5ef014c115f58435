from facexai.logutil import log_to
from facexai.plots import twin_figure

with log_to(snakemake.log[0]):
    p = snakemake.params
    paths = iter(snakemake.input.attributions)
    attributions = {tuple(key): [next(paths) for _ in range(p.n_shards)] for key in p.model_methods}
    twin_figure(dict(zip(p.models, snakemake.input.data)), attributions, p.twins, p.attribute, snakemake.output.png)
