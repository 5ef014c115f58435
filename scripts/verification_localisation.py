from facexai.aggregate import summarise_tables
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    summarise_tables(snakemake.input, snakemake.output[0], by=["method", "kind", "region"],
                     metrics=snakemake.params.metrics, n_resamples=snakemake.params.resamples,
                     seed=snakemake.params.seed)
