from pathlib import Path

from facexai.logutil import log_to
from facexai.models.evaluate import evaluate_attribute_model
from facexai.models.user import import_user_model

with log_to(snakemake.log[0]):
    m = snakemake.params.model
    out_dir = Path(snakemake.output.weights).parent
    import_user_model(snakemake.input.user_weights, out_dir, fmt=m.get("format", "state_dict"),
                      attributes=m["attributes"], image_size=snakemake.params.image_size, arch=m["arch"],
                      width=m["width"], mean=m.get("mean"), std=m.get("std"), input_size=m.get("input_size"))
    evaluate_attribute_model(out_dir, snakemake.input.data, snakemake.input.split, snakemake.output.metrics,
                             model_name=snakemake.wildcards.model, dataset_name=m["dataset"],
                             device=snakemake.params.device)
