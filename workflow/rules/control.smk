# Closed-loop evaluation of the energy-aware controller (docs/control.md): per dataset,
# the predictor fitted leave-one-dataset-out by the fit rule (models/<predictor>/) drives a
# live controlled run per seed; compared with the full run, the grid's oracle and
# patience-5 early stopping. Include this file and add control_targets() to `rule all`.
# Settings: config key `control` (docs/config.md).


rule control_closed_loop:
    input:
        records=f"{SDIR}/records.parquet",
        datasets=expand(f"{SDIR}/data/{{dataset}}.npz", dataset=DATASETS),
        models=list(lodo_models(STUDY, CONTROL["predictor"]).values()),
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
    threads: config["training"]["num_threads"]
    # the live runs train on training.device: on CUDA one GPU, as the training rules
    resources:
        **training_resources(),
    params:
        out_dir=lambda wc, output: os.path.dirname(output.table),
        settings=control_settings(),
        models=lodo_models(STUDY, CONTROL["predictor"]),
        objective=objective_settings(),
        patience=CONTROL["patience"],
    script:
        "../../scripts/control.py"
