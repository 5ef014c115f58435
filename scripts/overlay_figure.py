from facexai.figures import overlay_figure
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    overlay_figure(snakemake.input.data, dict(zip(snakemake.params.methods, snakemake.input.attributions)),
                   snakemake.output[0], n_samples=snakemake.params.n_samples)
