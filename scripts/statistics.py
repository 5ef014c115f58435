from pathlib import Path

from facexai.logutil import log_to
from facexai.stats import write_statistics

with log_to(snakemake.log[0]):
    twin = list(snakemake.input.twin)  # the twin table, when a biased twin is explained
    write_statistics(snakemake.input.tables, dict(snakemake.output.items()),
                     n_resamples=snakemake.params.resamples, seed=snakemake.params.seed,
                     alpha=snakemake.params.alpha, twin_csv=twin[0] if twin else None,
                     group_twin_csvs=list(snakemake.input.group_twin) or None,  # accuracy, shift
                     group_differences_csv=snakemake.input.group_differences or None,
                     verification={Path(t).parent.name: (t, e) for t, e in zip(snakemake.input.verification,
                                                                                 snakemake.input.eer)})
