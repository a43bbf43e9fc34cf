# Report: one job per study draws every figure of that study (scripts/figures.py ->
# greenpath.report.build). `snakemake --report results/report.html` then collects the
# outputs marked with report() below, with the captions in workflow/report/.
from greenpath.grid import stop_points


report: "../report/workflow.rst"


REPORT_DIR = f"{RESULTS}/report"

#: (rule name, file pattern) of the modeling/paths outputs the report shows. A file is an
#: input only when a rule of that name exists, so the report builds without those stages.
REPORT_OPTIONAL = {
    "paths": ("paths", f"{RESULTS}/paths/{{study}}.json"),
    "evaluation": ("evaluate", f"{RESULTS}/evaluation/{{study}}.json"),
}


def report_studies():
    """Study -> records file: the config's study and, when imported, EAT-IT."""
    studies = {config["study"]: f"{RESULTS}/records.parquet"}
    if config.get("eatit"):
        studies["eatit"] = f"{RESULTS}/eatit/records.parquet"
    return studies


def report_inputs(wildcards):
    """Records of the study plus the optional paths/evaluation JSON files."""
    studies = report_studies()
    if wildcards.study not in studies:
        raise WorkflowError(
            f"no records for study {wildcards.study!r}; known studies: {sorted(studies)}"
        )
    inputs = {"records": studies[wildcards.study]}
    for key, (rule_name, pattern) in REPORT_OPTIONAL.items():
        if rule_name in {r.name for r in workflow.rules}:
            inputs[key] = pattern.format(study=wildcards.study)
    return inputs


def report_targets():
    """Every report output of every study (add to `rule all`)."""
    return [f"{REPORT_DIR}/{s}/index.html" for s in report_studies()]


def _report_flag(path, caption, subcategory, figure, per_dataset):
    labels = {"figure": figure}
    if per_dataset:
        labels = {"dataset": "{dataset}", **labels}
        path = directory(path)
    return report(
        path,
        caption=f"../report/{caption}",
        category="{study}",
        subcategory=subcategory,
        labels=labels,
        **({"patterns": ["{dataset}.png"]} if per_dataset else {}),
    )


rule report_figures:
    input:
        unpack(report_inputs),
    output:
        curves=_report_flag(
            f"{REPORT_DIR}/{{study}}/learning_curves",
            "learning_curves.rst",
            "1. learning curves",
            "validation accuracy vs epoch",
            True,
        ),
        energy_accuracy=_report_flag(
            f"{REPORT_DIR}/{{study}}/energy_accuracy",
            "energy_accuracy.rst",
            "2. energy vs accuracy",
            "cumulative energy vs accuracy",
            True,
        ),
        energy_breakdown=_report_flag(
            f"{REPORT_DIR}/{{study}}/energy_breakdown",
            "energy_breakdown.rst",
            "3. energy breakdown",
            "energy by method and component",
            True,
        ),
        predictions=_report_flag(
            f"{REPORT_DIR}/{{study}}/predictions.png",
            "predictions.rst",
            "4. predictions",
            "predicted vs actual",
            False,
        ),
        summary=_report_flag(
            f"{REPORT_DIR}/{{study}}/summary.html",
            "summary.rst",
            "5. strategies vs the paper",
            "summary table",
            False,
        ),
        index=f"{REPORT_DIR}/{{study}}/index.html",
    log:
        f"{RESULTS}/logs/report/{{study}}.log",
    wildcard_constraints:
        study="[A-Za-z0-9_]+",
    localrule: True
    params:
        out_dir=lambda wc: f"{REPORT_DIR}/{wc.study}",
        datasets=lambda wc: DATASETS if wc.study == config["study"] else None,
        stop_epochs=lambda wc: (
            stop_points(INTERVENTIONS, METHODS)
            if wc.study == config["study"]
            else None
        ),
    script:
        "../../scripts/figures.py"
