# greenpath: the experiment grid (collection), then modeling, paths and the report.
# Data flows one way: config -> jobs -> Parquet -> models -> paths -> report.
# Every output of a study lives under results/<study>/ (the imported EAT-IT: results/eatit/).


from snakemake.utils import min_version

min_version("9.0")


# The default config, unless one is given with --configfile (Snakemake would otherwise
# merge the two, e.g. adding the default datasets to config/paper.yaml's).
if not config:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/report_functions.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/control.smk"


rule all:
    default_target: True
    input:
        f"{SDIR}/records.parquet",
        f"{SDIR}/trajectories.parquet",
        model_targets(),
        report_targets(),
        control_targets(),
        preflight_check,
