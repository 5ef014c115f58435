from pathlib import Path

from snakemake.utils import min_version, validate

min_version("8.0")


# the embedded default; --configfile / --config override it key by key
configfile: Path(workflow.basedir) / "config/config.yaml"


validate(config, Path(workflow.basedir) / "config/schema/config.schema.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/attributions.smk"
include: "rules/metrics.smk"
include: "rules/report.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
