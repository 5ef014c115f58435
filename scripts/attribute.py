from facexai.attributions.run import explain_shard
from facexai.layout import subject_of
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    kind, name = subject_of(snakemake.wildcards.subject)  # a model's decisions, or an embedder's pairs
    explain_shard(
        kind, dict(snakemake.input.items()), snakemake.output[0], name=name, method=snakemake.wildcards.method,
        params=p.method, shard=int(snakemake.wildcards.shard), n_shards=p.explain["shards"], selection=p.explain,
        batch_size=p.explain["batch_size"], seed=p.seed, device=p.device, threads=snakemake.threads)
