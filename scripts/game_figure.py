import pandas as pd

from facexai.logutil import log_to
from facexai.metric_figures import game_figure

with log_to(snakemake.log[0]):
    game_figure(pd.read_csv(snakemake.input.localisation), snakemake.output.png,
                embedder=snakemake.wildcards.embedder)
