from facexai.data.fusion import merge_shards
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    bad_lists = [*snakemake.input.bad, *snakemake.params.extra_bad]
    merge_shards(snakemake.input.h5, snakemake.output.h5, bad_lists, snakemake.output.bad,
                 config_digest=snakemake.params.digest)
