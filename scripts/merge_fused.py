from facexai.data.fusion import merge_shards
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    merge_shards(snakemake.input.h5, snakemake.output.h5, [*snakemake.input.bad, *snakemake.params.extra_bad], snakemake.output.bad,
                 config_digest=snakemake.params.digest)
