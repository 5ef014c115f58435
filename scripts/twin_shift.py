from facexai.attributions.store import group_shards
from facexai.logutil import log_to
from facexai.twins import write_twin_shift

with log_to(snakemake.log[0]):
    p = snakemake.params
    # the twin_groups rule: the same table per group and membership
    write_twin_shift(dict(zip(p.models, snakemake.input.data)), group_shards(snakemake.input.attributions),
                     p.twins, p.attribute, snakemake.output[0], groups=p.get("groups"), mode=p.mode,
                     n_resamples=p.resamples, seed=p.seed)
