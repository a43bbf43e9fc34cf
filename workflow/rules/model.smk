# Modeling: every predictor, and the model of the paper's savings simulation
# ("paper_savings"), fitted leave-one-dataset-out (one model file per held-out dataset) and
# on every dataset; the leave-one-dataset-out evaluation and the path strategies, which
# read those files; for the config's study and, when its folder exists, the paper's
# EAT-IT data (study "eatit", results/eatit/).


rule import_eatit:
    output:
        records=f"{RESULTS}/eatit/records.parquet",
        trajectories=f"{RESULTS}/eatit/trajectories.parquet",
    log:
        f"{RESULTS}/eatit/logs/import_eatit.log",
    localrule: True
    conda:
        "../../envs/greenpath.yaml"
    params:
        role="import-eatit",
        src=config["modeling"]["eatit"]["src"],
        energy=config["modeling"]["eatit"]["energy"],
    script:
        "../../scripts/modeling.py"


# One fit job per (study, predictor): the model without each dataset of the study
# (leave-one-dataset-out) and the model on every dataset, each its own file.
for _study, _entry in MODEL_STUDIES.items():

    rule:
        name:
            f"fit_{_study}"
        input:
            trajectories=f"{RESULTS}/{_study}/trajectories.parquet",
        output:
            **{
                fold: f"{RESULTS}/{_study}/models/{{predictor}}/{fold}.json"
                for fold in model_folds(_study)
            },
        log:
            f"{RESULTS}/{_study}/logs/model/fit_{{predictor}}.log",
        wildcard_constraints:
            predictor="[a-z_]+",
        conda:
            "../../envs/greenpath.yaml"
        params:
            role="fit",
            predictor=lambda wc: wc.predictor,
            folds=model_folds(_study),
        script:
            "../../scripts/modeling.py"


rule evaluate:
    input:
        trajectories=f"{RESULTS}/{{study}}/trajectories.parquet",
        models=evaluate_models,
    output:
        json=f"{RESULTS}/{{study}}/evaluation.json",
        table=f"{RESULTS}/{{study}}/tables/evaluation.csv",
    log:
        f"{RESULTS}/{{study}}/logs/model/evaluate.log",
    wildcard_constraints:
        study="[A-Za-z0-9_.-]+",
    conda:
        "../../envs/greenpath.yaml"
    params:
        role="evaluate",
        models=lambda wc: canonical(
            {p: lodo_models(wc.study, p) for p in MODEL_STUDIES[wc.study][1]}
        ),
    script:
        "../../scripts/modeling.py"


rule paths:
    input:
        trajectories=f"{RESULTS}/{{study}}/trajectories.parquet",
        model=lambda wc: planner_model(wc.study, "all"),
        lodo=lambda wc: list(planner_model(wc.study).values()),
        paper=lambda wc: list(paper_models(wc.study).values()),
    output:
        json=f"{RESULTS}/{{study}}/paths.json",
        table=f"{RESULTS}/{{study}}/tables/paths.csv",
    log:
        f"{RESULTS}/{{study}}/logs/model/paths.log",
    wildcard_constraints:
        study="[A-Za-z0-9_.-]+",
    conda:
        "../../envs/greenpath.yaml"
    params:
        role="paths",
        models=lambda wc: planner_model(wc.study),
        paper_models=lambda wc: paper_models(wc.study),
        objective=objective_settings(),
    script:
        "../../scripts/modeling.py"
