rule aggregate:
    input:
        record_files(),
    output:
        records=f"{SDIR}/records.parquet",
        trajectories=f"{SDIR}/trajectories.parquet",
    log:
        f"{SDIR}/logs/aggregate.log",
    localrule: True
    conda:
        "../../envs/greenpath.yaml"
    params:
        stop_epochs=stop_points(INTERVENTIONS, METHODS),
        epochs=EPOCHS,
    script:
        "../../scripts/aggregate.py"
