from facexai.metric_figures import training_curves_figure
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    training_curves_figure(snakemake.input[0], snakemake.output[0], title=snakemake.wildcards.model)
