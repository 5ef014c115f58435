from facexai.logutil import log_to
from facexai.stats import write_statistics

with log_to(snakemake.log[0]):
    write_statistics(snakemake.input.tables, {"comparisons": snakemake.output.comparisons,
                                              "beats_random": snakemake.output.beats_random,
                                              "fr_vs_rp": snakemake.output.fr_vs_rp,
                                              "summary": snakemake.output.summary},
                     n_resamples=snakemake.params.resamples, seed=snakemake.params.seed,
                     alpha=snakemake.params.alpha)
