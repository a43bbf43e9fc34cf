# Functions of the report rules (report.smk): which studies have a report and what each
# report job reads. Needs RESULTS (results/<study>/report/ per study), DATASETS and
# MODEL_STUDIES (common.smk). Kept apart from the rules (Snakemake's lint) and from
# common.smk so the report rules can be tested in a tiny workflow of their own
# (tests/report).


report: "../report/workflow.rst"


#: Report of a study: results/<study>/report/.
REPORT_DIR = f"{RESULTS}/{{study}}/report"

#: (rule names, file pattern) of the outputs the report shows besides the records and
#: trajectories. A file is an input only when a rule of one of those names exists, so the
#: report builds without those stages.
REPORT_OPTIONAL = {
    "paths": (("paths",), f"{RESULTS}/{{study}}/paths.json"),
    "evaluation": (("evaluate",), f"{RESULTS}/{{study}}/evaluation.json"),
}


def report_studies():
    """Study -> records file: the config's study and, when imported, EAT-IT."""
    return {study: entry[0] for study, entry in MODEL_STUDIES.items()}


def report_inputs(wildcards):
    """Records and trajectories of the study plus the optional paths/evaluation JSON files."""
    studies = report_studies()
    if wildcards.study not in studies:
        raise WorkflowError(
            f"no records for study {wildcards.study!r}; known studies: {sorted(studies)}"
        )
    inputs = {
        "records": studies[wildcards.study],
        "trajectories": f"{RESULTS}/{wildcards.study}/trajectories.parquet",
    }
    rules = {r.name for r in workflow.rules}
    lodo = wildcards.study in globals().get("LODO_STUDIES", [wildcards.study])
    for key, (rule_names, pattern) in REPORT_OPTIONAL.items():
        if lodo and rules.intersection(rule_names):
            inputs[key] = pattern.format(study=wildcards.study)
    return inputs


def report_targets():
    """Every report output of every study (add to `rule all`)."""
    return [f"{REPORT_DIR}/index.html".format(study=s) for s in report_studies()]


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
