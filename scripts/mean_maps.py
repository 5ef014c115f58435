from facexai.attributions.store import group_shards
from facexai.logutil import log_to
from facexai.mean_maps import write_model_mean_maps

with log_to(snakemake.log[0]):
    p = snakemake.params
    write_model_mean_maps(snakemake.input.data, group_shards(snakemake.input.attributions, by=("method",)),
                          snakemake.input.tables, dict(snakemake.output.items()), model=snakemake.wildcards.model,
                          regions=p.regions, attribute_regions=p.attribute_regions, mode=p.mode, groups=p.groups,
                          n_resamples=p.resamples, seed=p.seed)
