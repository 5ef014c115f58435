from pathlib import Path

from facexai.attributions.run import explain_shard
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    e = snakemake.params.explain
    explain_shard(
        snakemake.input.data, snakemake.input.split, Path(snakemake.input.weights).parent, snakemake.output[0],
        model_name=snakemake.wildcards.model, method=snakemake.wildcards.method, params=snakemake.params.method,
        shard=int(snakemake.wildcards.shard), n_shards=e["shards"], explain=e["attributes"],
        only_positive=e["only_positive"], max_samples=e["max_samples"], batch_size=e["batch_size"],
        seed=snakemake.params.seed, device=snakemake.params.device, threads=snakemake.threads)
