import os
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("8.0")

from facexai.config import check_schema


# the embedded default; --configfile / --config override it key by key
configfile: Path(workflow.basedir) / "config/config.yaml"


# one line per problem (key, what is wrong, what is allowed); then Snakemake's own validation (the
# schema sets no defaults: config/config.yaml holds every value)
check_schema(config, Path(workflow.basedir) / "config/schema/config.schema.yaml")
validate(config, Path(workflow.basedir) / "config/schema/config.schema.yaml")


# scripts import the facexai package from this checkout, in any software environment (conda: too)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p
    )
)


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/attributions.smk"
include: "rules/metrics.smk"
include: "rules/statistics.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
