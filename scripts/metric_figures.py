from facexai.logutil import log_to
from facexai.metric_figures import metric_figures

with log_to(snakemake.log[0]):
    metric_figures(snakemake.input.tables, snakemake.input.fr_vs_rp, snakemake.input.summary,
                   {k: v for k, v in snakemake.output.items() if k != "pdfs"},
                   agreement_csv=snakemake.input.agreement, ranks_csv=snakemake.input.ranks,
                   n_resamples=snakemake.params.resamples, seed=snakemake.params.seed)
