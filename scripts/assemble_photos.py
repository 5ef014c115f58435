import json

from facexai.atomic import atomic_path
from facexai.data.photos.layout import assemble_layout
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    summary = assemble_layout(snakemake.params.root, snakemake.input, snakemake.output.root,
                              min_face_size=snakemake.params.min_face_size)
    with atomic_path(snakemake.output.summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
