from pathlib import Path

from facexai.logutil import log_to
from facexai.metrics.run import metric_table

with log_to(snakemake.log[0]):
    metric_table(snakemake.input.attributions, snakemake.input.data, Path(snakemake.input.weights).parent,
                 snakemake.output[0], regions=snakemake.params.regions,
                 attribute_regions=snakemake.params.attribute_regions, settings=snakemake.params.settings,
                 seed=snakemake.params.seed,
                 device=snakemake.params.device, threads=snakemake.threads)
