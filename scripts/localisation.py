from facexai.logutil import log_to
from facexai.metrics.run import localisation_table

with log_to(snakemake.log[0]):
    localisation_table(snakemake.input.attributions, snakemake.input.data, snakemake.output[0],
                       regions=snakemake.params.regions, attribute_regions=snakemake.params.attribute_regions,
                       mass=snakemake.params.mass)
