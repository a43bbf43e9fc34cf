rule prepare_dataset:
    output:
        f"{SDIR}/data/{{dataset}}.npz",
    log:
        f"{SDIR}/logs/prepare/{{dataset}}.log",
    localrule: True
    conda:
        "../../envs/greenpath.yaml"
    resources:
        mem_mb=4000,
    params:
        settings=lambda wc: prepare_settings(wc.dataset),
    script:
        "../../scripts/prepare_dataset.py"
