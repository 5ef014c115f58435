from facexai.aggregate import aggregate
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    aggregate(snakemake.input.tables, dict(zip(snakemake.params.models, snakemake.input.model_metrics)),
              dict(snakemake.output.items()),
              n_resamples=snakemake.params.resamples, seed=snakemake.params.seed)
