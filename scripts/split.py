import logging

from facexai.data.splits import make_split
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    counts = make_split(snakemake.input[0], snakemake.output[0], snakemake.params.split["test_fraction"],
                        snakemake.params.split["seed"])
    logging.info("split: %s", counts)
