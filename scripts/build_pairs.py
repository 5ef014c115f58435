from facexai.logutil import log_to
from facexai.models.verification import build_pairs

with log_to(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    build_pairs(snakemake.input.split, out.pairs, n_genuine=p.pairs["genuine"], n_impostor=p.pairs["impostor"],
                seed=p.seed, region_pairs_file=p.region_pairs, dataset_h5=snakemake.input.data, out_h5=out.store,
                out_json=out.summary, swap=p.swap, triplets=p.triplets, regions=p.regions)
