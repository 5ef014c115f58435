from pathlib import Path

from facexai.logutil import log_to
from facexai.models.verification import evaluate_pairs

with log_to(snakemake.log[0]):
    evaluate_pairs(Path(snakemake.input.meta).parent, snakemake.input.data, snakemake.input.pairs,
                   snakemake.output.scores, snakemake.output.summary, pairs_h5=snakemake.input.store,
                   device=snakemake.params.device, triplet_margin=snakemake.params.margin)
