from pathlib import Path

from facexai.logutil import log_to
from facexai.models.train import train_attribute_classifier

with log_to(snakemake.log[0]):
    m = snakemake.params.model
    train_attribute_classifier(
        snakemake.input.data, snakemake.input.split, Path(snakemake.output.weights).parent,
        arch=m["arch"], attributes=m["attributes"], epochs=m["epochs"], batch_size=m["batch_size"],
        lr=m["lr"], weight_decay=m["weight_decay"], seed=snakemake.params.seed, min_auroc=m["min_auroc"],
        device=snakemake.params.device, threads=snakemake.threads, width=m["width"],
        group_share=m.get("group_share"))
