from facexai.logutil import log_to
from facexai.metric_figures import metric_figures

with log_to(snakemake.log[0]):
    metric_figures(snakemake.input.tables, snakemake.input.fr_vs_rp, snakemake.input.summary,
                   {"box": snakemake.output.box, "fr_vs_rp": snakemake.output.fr_vs_rp,
                    "curves": snakemake.output.curves, "lift_heatmap": snakemake.output.lift_heatmap},
                   n_resamples=snakemake.params.resamples, seed=snakemake.params.seed)
