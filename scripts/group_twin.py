from pathlib import Path

from facexai.attributions.store import group_shards
from facexai.device import resolve_device
from facexai.group_twin import write_group_twin_tables
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    import torch

    p = snakemake.params
    torch.set_num_threads(max(1, snakemake.threads))
    inputs = snakemake.input
    model_dirs = {m: str(Path(w).parent) for m, w in zip(p.models, inputs.weights)}
    write_group_twin_tables(p.twins, model_dirs, dict(zip(p.models, inputs.data)), dict(zip(p.models, inputs.split)),
                            group_shards(inputs.attributions), p.explained, dict(snakemake.output.items()),
                            attributes=p.attributes, mode=p.mode, alpha=p.alpha, n_resamples=p.resamples, seed=p.seed,
                            device=resolve_device(p.device))
