# Functions of the report rules (report.smk): which studies have a report and what each
# report job reads. Needs RESULTS, DATASETS, INTERVENTIONS, METHODS and MODEL_STUDIES
# (common.smk). Kept apart from the rules (Snakemake's lint) and from common.smk so the
# report rules can be tested in a tiny workflow of their own (tests/report).


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
    return {study: records for study, (records, _) in MODEL_STUDIES.items()}


def report_inputs(wildcards):
    """Records of the study plus the optional paths/evaluation JSON files."""
    studies = report_studies()
    if wildcards.study not in studies:
        raise WorkflowError(
            f"no records for study {wildcards.study!r}; known studies: {sorted(studies)}"
        )
    inputs = {"records": studies[wildcards.study]}
    for key, (rule_name, pattern) in REPORT_OPTIONAL.items():
        lodo = wildcards.study in globals().get("LODO_STUDIES", [wildcards.study])
        if lodo and rule_name in {r.name for r in workflow.rules}:
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
