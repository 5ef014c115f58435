from facexai.attributions.run import explain_shard
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    explain_shard(
        p.kind, dict(snakemake.input.items()), snakemake.output[0], name=p.name, method=snakemake.wildcards.method,
        params=p.method, shard=int(snakemake.wildcards.shard), n_shards=p.explain["shards"], selection=p.explain,
        batch_size=p.explain["batch_size"], seed=p.seed, device=p.device, threads=snakemake.threads)
