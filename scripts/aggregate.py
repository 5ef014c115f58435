from facexai.aggregate import aggregate
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    aggregate(snakemake.input.tables, dict(zip(snakemake.params.models, snakemake.input.model_metrics)),
              {"by_attribute": snakemake.output.by_attribute, "by_region": snakemake.output.by_region},
              n_resamples=snakemake.params.resamples, seed=snakemake.params.seed)
