from pathlib import Path

from facexai.logutil import log_to
from facexai.models.evaluate import evaluate_attribute_model

with log_to(snakemake.log[0]):
    meta = snakemake.params.synthetic_meta
    evaluate_attribute_model(Path(snakemake.input.weights).parent, snakemake.input.data, snakemake.input.split,
                             snakemake.output[0], model_name=snakemake.wildcards.model,
                             dataset_name=snakemake.wildcards.dataset,
                             synthetic_meta=meta if meta and Path(meta).is_file() else None,
                             device=snakemake.params.device)
