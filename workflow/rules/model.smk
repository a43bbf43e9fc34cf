# Modeling: leave-one-dataset-out evaluation of the predictors, the planner's predictor
# fitted on every dataset, and the path strategies; for the config's study and, when its
# folder exists, the paper's EAT-IT data (study "eatit").


rule import_eatit:
    output:
        records=f"{RESULTS}/eatit/records.parquet",
    log:
        f"{RESULTS}/logs/model/import_eatit.log",
    localrule: True
    conda:
        "../../envs/greenpath.yaml"
    params:
        role="import-eatit",
        src=config["modeling"]["eatit"]["src"],
        energy=config["modeling"]["eatit"]["energy"],
    script:
        "../../scripts/modeling.py"


rule evaluate:
    input:
        records=lambda wc: MODEL_STUDIES[wc.study][0],
    output:
        json=f"{RESULTS}/evaluation/{{study}}.json",
        table=f"{RESULTS}/tables/{{study}}_evaluation.csv",
    log:
        f"{RESULTS}/logs/model/evaluate_{{study}}.log",
    wildcard_constraints:
        study="[A-Za-z0-9_]+",
    conda:
        "../../envs/greenpath.yaml"
    params:
        role="evaluate",
        predictors=lambda wc: MODEL_STUDIES[wc.study][1],
    script:
        "../../scripts/modeling.py"


rule fit:
    input:
        records=lambda wc: MODEL_STUDIES[wc.study][0],
    output:
        model=f"{RESULTS}/models/{{study}}/{{predictor}}.json",
    log:
        f"{RESULTS}/logs/model/fit_{{study}}_{{predictor}}.log",
    wildcard_constraints:
        study="[A-Za-z0-9_]+",
        predictor="[a-z_]+",
    conda:
        "../../envs/greenpath.yaml"
    params:
        role="fit",
        predictor=lambda wc: wc.predictor,
    script:
        "../../scripts/modeling.py"


rule paths:
    input:
        records=lambda wc: MODEL_STUDIES[wc.study][0],
        model=lambda wc: f"{RESULTS}/models/{wc.study}/{config['modeling']['planner_predictor']}.json",
    output:
        json=f"{RESULTS}/paths/{{study}}.json",
        table=f"{RESULTS}/tables/{{study}}_paths.csv",
    log:
        f"{RESULTS}/logs/model/paths_{{study}}.log",
    wildcard_constraints:
        study="[A-Za-z0-9_]+",
    conda:
        "../../envs/greenpath.yaml"
    params:
        role="paths",
    script:
        "../../scripts/modeling.py"
