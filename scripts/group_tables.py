from facexai.groups import write_group_tables
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    write_group_tables(snakemake.input.tables, dict(zip(p.models, snakemake.input.data)), p.groups,
                       dict(snakemake.output.items()), alpha=p.alpha, n_resamples=p.resamples, seed=p.seed)
