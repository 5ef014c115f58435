from pathlib import Path

from facexai.logutil import log_to
from facexai.models.verification import train_embedder

with log_to(snakemake.log[0]):
    e = snakemake.params.embedder
    train_embedder(snakemake.input.data, snakemake.input.split, Path(snakemake.output.weights).parent,
                   arch=e["arch"], width=e["width"], dim=e["dim"], epochs=e["epochs"], batch_size=e["batch_size"],
                   lr=e["lr"], margin=e["margin"], scale=e["scale"], seed=snakemake.params.seed,
                   device=snakemake.params.device, threads=snakemake.threads, name=e["name"])
