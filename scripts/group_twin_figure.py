from facexai.logutil import log_to
from facexai.metric_figures import group_twin_figure

with log_to(snakemake.log[0]):
    group_twin_figure(snakemake.input.accuracy, snakemake.input.shift, snakemake.output.png)
