from facexai.layout import subject_of
from facexai.logutil import log_to
from facexai.metrics.run import metric_table

with log_to(snakemake.log[0]):
    p = snakemake.params
    kind, _ = subject_of(snakemake.wildcards.subject)  # a model's decisions, or an embedder's pairs
    metric_table(kind, dict(snakemake.input.items()), snakemake.output[0], regions=p.regions,
                 attribute_regions=p.attribute_regions, settings=p.settings, seed=p.seed, device=p.device,
                 threads=snakemake.threads)
