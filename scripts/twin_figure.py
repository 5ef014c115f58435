from facexai.logutil import log_to
from facexai.metric_figures import twin_figure

with log_to(snakemake.log[0]):
    twin_figure(snakemake.input[0], snakemake.output.png)
