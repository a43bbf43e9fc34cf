rule prepare_dataset:
    output:
        f"{RESULTS}/data/{{dataset}}.npz",
    log:
        f"{RESULTS}/logs/prepare/{{dataset}}.log",
    localrule: True
    conda:
        "../../envs/greenpath.yaml"
    resources:
        mem_mb=4000,
    script:
        "../../scripts/prepare_dataset.py"
