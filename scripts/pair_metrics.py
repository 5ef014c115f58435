from pathlib import Path

from facexai.logutil import log_to
from facexai.metrics.run import pair_metric_table

with log_to(snakemake.log[0]):
    pair_metric_table(snakemake.input.attributions, snakemake.input.data, Path(snakemake.input.meta).parent,
                      snakemake.input.eer, snakemake.output[0], regions=snakemake.params.regions,
                      settings=snakemake.params.settings, seed=snakemake.params.seed,
                      device=snakemake.params.device, threads=snakemake.threads, pairs_h5=snakemake.input.store)
