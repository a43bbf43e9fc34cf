rule train_trunk:
    input:
        dataset=f"{SDIR}/data/{{dataset}}.npz",
        checkpoint=trunk_start_checkpoint,
    output:
        checkpoint=f"{SDIR}/checkpoints/{{dataset}}/seed{{seed}}/trunk_e{{end}}.pt",
        records=f"{SDIR}/records/{{dataset}}/seed{{seed}}/base_e{{end}}.parquet",
    log:
        f"{SDIR}/logs/train/{{dataset}}/seed{{seed}}/base_e{{end}}.log",
    conda:
        "../../envs/greenpath.yaml"
    threads: config["training"]["num_threads"]
    resources:
        **training_resources(),
        tmpdir=JOB_TMPDIR,
    params:
        role="trunk",
        start=lambda wc: SEGMENT_START[int(wc.end)],
        settings=lambda wc: settings_json(training_settings(wc.dataset)),
    shell:
        f"{TRAIN_PYTHON} -m greenpath.training.job trunk --settings {{params.settings:q}}"
        f" --dataset {{wildcards.dataset}} --seed {{wildcards.seed}} --dataset-path {{input.dataset:q}}"
        f" --start {{params.start}} --end {{wildcards.end}} --in-checkpoint={{input.checkpoint:q}}"
        f" --out-checkpoint {{output.checkpoint:q}} --out-records {{output.records:q}} --log {{log:q}}"


rule train_branch:
    input:
        dataset=f"{SDIR}/data/{{dataset}}.npz",
        checkpoint=branch_start_checkpoint,
    output:
        records=f"{SDIR}/records/{{dataset}}/seed{{seed}}/{{method}}_k{{k}}.parquet",
    log:
        f"{SDIR}/logs/train/{{dataset}}/seed{{seed}}/{{method}}_k{{k}}.log",
    conda:
        "../../envs/greenpath.yaml"
    threads: config["training"]["num_threads"]
    resources:
        **training_resources(),
        tmpdir=JOB_TMPDIR,
    params:
        role="branch",
        settings=lambda wc: settings_json(training_settings(wc.dataset, wc.method)),
    shell:
        f"{TRAIN_PYTHON} -m greenpath.training.job branch --settings {{params.settings:q}}"
        f" --dataset {{wildcards.dataset}} --seed {{wildcards.seed}} --dataset-path {{input.dataset:q}}"
        f" --method {{wildcards.method}} --intervention-epoch {{wildcards.k}}"
        f" --in-checkpoint={{input.checkpoint:q}} --out-records {{output.records:q}} --log {{log:q}}"
