from pathlib import Path

from facexai.attributions.run import explain_pair_shard
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    e = snakemake.params.explain
    explain_pair_shard(
        snakemake.input.data, snakemake.input.pairs, Path(snakemake.input.meta).parent, snakemake.output[0],
        method=snakemake.wildcards.method, params=snakemake.params.method, shard=int(snakemake.wildcards.shard),
        n_shards=e["shards"], kinds=e["kinds"], max_pairs=e.get("max_pairs"), batch_size=e["batch_size"],
        seed=snakemake.params.seed, device=snakemake.params.device, threads=snakemake.threads,
        pairs_h5=snakemake.input.store, embedder_name=snakemake.wildcards.embedder)
