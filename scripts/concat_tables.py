from facexai.atomic import atomic_path
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    import pandas as pd

    table = pd.concat([pd.read_csv(p, sep="\t") for p in snakemake.input], ignore_index=True)
    with atomic_path(snakemake.output[0]) as tmp:
        table.to_csv(tmp, index=False)
