from functools import partial

from facexai.aggregate import summarise_tables
from facexai.logutil import log_to
from facexai.stats import pair_rows_at_chance, write_pair_statistics

with log_to(snakemake.log[0]):
    p = snakemake.params
    summarise_tables(snakemake.input, snakemake.output.localisation, by=["method", "kind", "region"],
                     metrics=p.metrics, n_resamples=p.resamples, seed=p.seed,
                     prepare=partial(pair_rows_at_chance, q=p.q))
    write_pair_statistics(snakemake.input, {k: v for k, v in snakemake.output.items() if k != "localisation"},
                          alpha=p.alpha, n_resamples=p.resamples, seed=p.seed, q=p.q)
