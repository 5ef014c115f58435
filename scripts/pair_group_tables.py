from functools import partial

from facexai.groups import write_group_tables
from facexai.logutil import log_to
from facexai.metrics.registry import tested
from facexai.stats import pair_rows_at_chance

with log_to(snakemake.log[0]):
    p = snakemake.params
    # the group of a pair is its explained image's (image a); a method that could not run tests nothing
    write_group_tables(snakemake.input.tables, {None: snakemake.input.data}, p.groups, dict(snakemake.output.items()),
                       metrics=tested(pairs=True), summarised=p.metrics, by=("model", "method", "kind", "region"),
                       prepare=partial(pair_rows_at_chance, q=p.q), alpha=p.alpha, n_resamples=p.resamples,
                       seed=p.seed)
