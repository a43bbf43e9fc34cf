import json
import shlex

# A training job runs in its own lean process (greenpath.training.job): the Python of the
# conda env under --use-conda, else the one running Snakemake (its venv need not be on PATH).
TRAIN_PYTHON = (
    "python"
    if any(m.name == "CONDA" for m in workflow.deployment_settings.deployment_method)
    else shlex.quote(sys.executable)
)
#: The config sections a training job reads, passed as its settings (JSON).
TRAIN_SETTINGS = json.dumps(
    {
        k: config[k]
        for k in ("study", "data", "datasets", "model", "training", "methods", "energy")
        if k in config
    },
    sort_keys=True,
    separators=(",", ":"),
)


rule train_trunk:
    input:
        dataset=f"{RESULTS}/data/{{dataset}}.npz",
        checkpoint=trunk_start_checkpoint,
    output:
        checkpoint=f"{RESULTS}/checkpoints/{{dataset}}/seed{{seed}}/trunk_e{{end}}.pt",
        records=f"{RESULTS}/records/{{dataset}}/seed{{seed}}/base_e{{end}}.parquet",
    log:
        f"{RESULTS}/logs/train/{{dataset}}/seed{{seed}}/base_e{{end}}.log",
    conda:
        "../../envs/greenpath.yaml"
    threads: config["training"]["num_threads"]
    resources:
        **training_resources(),
    params:
        role="trunk",
        start=lambda wc: SEGMENT_START[int(wc.end)],
        settings=TRAIN_SETTINGS,
    shell:
        f"{TRAIN_PYTHON} -m greenpath.training.job trunk --settings {{params.settings:q}}"
        f" --dataset {{wildcards.dataset}} --seed {{wildcards.seed}} --dataset-path {{input.dataset:q}}"
        f" --start {{params.start}} --end {{wildcards.end}} --in-checkpoint={{input.checkpoint:q}}"
        f" --out-checkpoint {{output.checkpoint:q}} --out-records {{output.records:q}} --log {{log:q}}"


rule train_branch:
    input:
        dataset=f"{RESULTS}/data/{{dataset}}.npz",
        checkpoint=branch_start_checkpoint,
    output:
        records=f"{RESULTS}/records/{{dataset}}/seed{{seed}}/{{method}}_k{{k}}.parquet",
    log:
        f"{RESULTS}/logs/train/{{dataset}}/seed{{seed}}/{{method}}_k{{k}}.log",
    conda:
        "../../envs/greenpath.yaml"
    threads: config["training"]["num_threads"]
    resources:
        **training_resources(),
    params:
        role="branch",
        settings=TRAIN_SETTINGS,
    shell:
        f"{TRAIN_PYTHON} -m greenpath.training.job branch --settings {{params.settings:q}}"
        f" --dataset {{wildcards.dataset}} --seed {{wildcards.seed}} --dataset-path {{input.dataset:q}}"
        f" --method {{wildcards.method}} --intervention-epoch {{wildcards.k}}"
        f" --in-checkpoint={{input.checkpoint:q}} --out-records {{output.records:q}} --log {{log:q}}"
