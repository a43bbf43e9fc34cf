rule aggregate:
    input:
        record_files(),
    output:
        records=f"{RESULTS}/records.parquet",
        trajectories=f"{RESULTS}/trajectories.parquet",
    log:
        f"{RESULTS}/logs/aggregate.log",
    localrule: True
    conda:
        "../../envs/greenpath.yaml"
    script:
        "../../scripts/aggregate.py"
