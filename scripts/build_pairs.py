from facexai.logutil import log_to
from facexai.models.verification import build_pairs

with log_to(snakemake.log[0]):
    p = snakemake.params.pairs
    build_pairs(snakemake.input.split, snakemake.output[0], n_genuine=p["genuine"], n_impostor=p["impostor"],
                seed=snakemake.params.seed, region_pairs_file=snakemake.params.region_pairs)
