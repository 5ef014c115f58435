from facexai.gallery import build_gallery
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    shards = iter(snakemake.input.attributions)
    attributions = {(model, method): [next(shards) for _ in range(p.n_shards)] for model, method in p.model_methods}
    build_gallery(snakemake.input.tables, attributions, dict(zip(p.models, snakemake.input.data)),
                  snakemake.output[0], regions=p.regions, mode=p.mode,
                  max_per_model=p.max_per_model)
