# Closed-loop evaluation of the energy-aware controller (docs/control.md): per dataset,
# control_calibrate chooses the controller's margin and actions on the other datasets'
# grid trees, and the predictor fitted leave-one-dataset-out by the fit rule
# (models/<predictor>/) drives a live controlled run per seed, next to a plain full run
# (one job per dataset, seed and run kind: parallel, resumable, a log each);
# control_closed_loop tabulates them against the full run, the grid's oracle and patience
# early stopping. Settings: config key `control` (docs/config.md).


rule control_calibrate:
    input:
        trajectories=f"{SDIR}/trajectories.parquet",
        models=list(lodo_models(STUDY, CONTROL["predictor"]).values()),
    output:
        calibration=f"{CONTROL_DIR}/calibration/{{dataset}}.json",
    log:
        f"{SDIR}/logs/control/calibration/{{dataset}}.log",
    conda:
        "../../envs/greenpath.yaml"
    params:
        role="calibrate",
        settings=control_settings(),
        models=lodo_models(STUDY, CONTROL["predictor"]),
        objective=objective_settings(),
    script:
        "../../scripts/control.py"


rule control_run:
    input:
        # the controlled run reads its dataset's calibration, tree and predictor; the full
        # run trains only, and records the calibration it is the reference for
        unpack(controlled_run_inputs),
        dataset=f"{SDIR}/data/{{dataset}}.npz",
    output:
        summary=f"{CONTROL_DIR}/runs/{{dataset}}/seed{{seed}}/{{kind}}.json",
    log:
        f"{SDIR}/logs/control/{{dataset}}/seed{{seed}}/{{kind}}.log",
    wildcard_constraints:
        kind="controlled|full",
    conda:
        "../../envs/greenpath.yaml"
    threads: config["training"]["num_threads"]
    # the live runs train on training.device: on CUDA one GPU, as the training rules
    resources:
        **training_resources(),
        tmpdir=JOB_TMPDIR,
    params:
        role="run",
        settings=control_settings(),
        # only the controlled run decides; the full run reads no model and no objective
        models=lambda wc: controlled_run_models(wc),
        objective=lambda wc: (objective_settings() if wc.kind == "controlled" else {}),
    script:
        "../../scripts/control.py"


rule control_closed_loop:
    input:
        trajectories=f"{SDIR}/trajectories.parquet",
        models=list(lodo_models(STUDY, CONTROL["predictor"]).values()),
        runs=expand(
            f"{CONTROL_DIR}/runs/{{dataset}}/seed{{seed}}/{{kind}}.json",
            dataset=DATASETS,
            seed=SEEDS,
            kind=RUN_KINDS,
        ),
    output:
        table=f"{CONTROL_DIR}/control.csv",
        markdown=f"{CONTROL_DIR}/control.md",
        runs=f"{CONTROL_DIR}/runs.csv",
        figure=report(
            f"{CONTROL_DIR}/control.png",
            caption="../report/control.rst",
            category="control",
            labels={"figure": "closed-loop energy saved"},
        ),
    log:
        f"{SDIR}/logs/control/closed_loop.log",
    conda:
        "../../envs/greenpath.yaml"
    params:
        role="table",
        settings=control_settings(),
        models=lodo_models(STUDY, CONTROL["predictor"]),
        objective=objective_settings(),
        patience=CONTROL["patience"],
    script:
        "../../scripts/control.py"
