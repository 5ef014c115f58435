from facexai.logutil import log_to
from facexai.metrics.run import pair_localisation_table

with log_to(snakemake.log[0]):
    pair_localisation_table(snakemake.input.attributions, snakemake.input.data, snakemake.output[0],
                            regions=snakemake.params.regions)
