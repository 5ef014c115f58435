from pathlib import Path

from facexai.logutil import log_to
from facexai.models.embedders import import_embedder

with log_to(snakemake.log[0]):
    import_embedder(snakemake.params.embedder, Path(snakemake.output.meta).parent,
                    image_size=snakemake.params.image_size)
