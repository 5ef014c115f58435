from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config/config.yaml"


validate(config, "config/schema/config.schema.yaml")


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
