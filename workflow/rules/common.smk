# Shared helpers: config validation and the grid's file lists.
import os
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from greenpath.config import ConfigError, check_config
from greenpath.grid import branches, stop_points, trunk_segments

# Friendly messages first (key, bad value, what is allowed), then Snakemake's validate,
# which also fills the schema's defaults. Both run before any job is scheduled.
try:
    config.update(check_config(config))
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
validate(config, "../schemas/config.schema.yaml")

DATASETS = list(config["datasets"])
SEEDS = [int(s) for s in config["seeds"]]
EPOCHS = int(config["training"]["epochs"])
INTERVENTIONS = [int(k) for k in config["interventions"]["epochs"]]
METHODS = list(config["interventions"]["methods"])
SEGMENTS = trunk_segments(EPOCHS, INTERVENTIONS)
BRANCHES = branches(INTERVENTIONS, METHODS)
SEGMENT_START = {s.end: s.start for s in SEGMENTS}
RESULTS = "results"


wildcard_constraints:
    dataset="[a-z0-9_]+",
    seed=r"\d+",
    end=r"[1-9]\d*",  # a trunk segment ends after >= 1 epoch
    k=r"\d+",
    method="freeze|quant",


def _checkpoint(wildcards, epoch):
    """Trunk checkpoint after ``epoch`` epochs; none for epoch 0, which every job that
    starts there builds in-process from the seed (scripts/train.py)."""
    if epoch == 0:
        return []
    return f"{RESULTS}/checkpoints/{wildcards.dataset}/seed{wildcards.seed}/trunk_e{epoch}.pt"


def trunk_start_checkpoint(wildcards):
    """Checkpoint the trunk segment ending at ``end`` starts from."""
    end = int(wildcards.end)
    if end not in SEGMENT_START:
        raise WorkflowError(
            f"no trunk segment ends at epoch {end}; segments: {SEGMENTS}"
        )
    return _checkpoint(wildcards, SEGMENT_START[end])


def branch_start_checkpoint(wildcards):
    """Checkpoint a branch at intervention epoch ``k`` starts from."""
    return _checkpoint(wildcards, int(wildcards.k))


def record_files():
    """Every per-job records file of the grid."""
    files = []
    for d in DATASETS:
        for s in SEEDS:
            base = f"{RESULTS}/records/{d}/seed{s}"
            files += [f"{base}/base_e{seg.end}.parquet" for seg in SEGMENTS]
            files += [f"{base}/{m}_k{k}.parquet" for m, k in BRANCHES]
    return files


# SLURM (issue 6, docs/slurm.md). Unset GREENPATH_SLURM_PARTITION/ACCOUNT mean the
# cluster's defaults; training rules ask for a GPU only when training.device is CUDA;
# under the slurm executor a pre-flight check runs before the first sbatch (case W1).
from greenpath.slurm import SlurmPreflightError, preflight, set_env_defaults
from greenpath.slurm import requires_gpu, training_gpu_resources

set_env_defaults()


def training_resources():
    """Resources of the training rules: {"gpu": 1} when training.device is CUDA, else {}."""
    return training_gpu_resources(config["training"]["device"])


# One training job per GPU (docs/energy.md, "One job per GPU"): NVML measures the whole GPU,
# so two jobs on one GPU would each record both. With training.device: cuda a local run has
# one `gpu` token per GPU it may use (`greenpath gpus`: all, those in CUDA_VISIBLE_DEVICES,
# or training.gpus), and each job claims a free one before CUDA starts (greenpath.devices);
# cuda:N has one token. --resources gpu=N overrides. "local" scope: the SLURM executor does
# not tally it across submissions (each job gets its own GPU through sbatch --gpus=1), and
# there the jobs claim nothing.
from greenpath.devices import GpuError, export_run_gpus, gpu_tokens
from greenpath.slurm import is_local_executor


resource_scopes:
    gpu="local",


if (
    requires_gpu(config["training"]["device"])
    and "gpu" not in workflow.global_resources
):
    workflow.register_resource("gpu", gpu_tokens(config["training"]))


def export_local_gpus():
    """Local runs on CUDA: tell the jobs the run's GPUs (each job claims one of them)."""
    device = config["training"]["device"]
    if not requires_gpu(device) or not is_local_executor(workflow):
        return
    try:
        gpus = export_run_gpus(config["training"])
    except GpuError as exc:
        raise WorkflowError(f"training GPUs: {exc}") from None
    listed = ", ".join(f"cuda:{g.index}={g.uuid}" for g in gpus)
    msg = f"{len(gpus)} GPU(s) for training jobs, one job each: {listed}"
    if not gpus:
        msg = f"no GPU listed by NVML; jobs train on {device} as written"
    print(f"greenpath: {msg}", file=sys.stderr)


onstart:
    try:
        preflight(workflow, device=config["training"]["device"])
    except SlurmPreflightError as exc:
        raise WorkflowError(f"SLURM pre-flight check failed: {exc}") from None
    export_local_gpus()


# ---- moved from model.smk (functions and globals live in common.smk)
def modeling_studies():
    """Study -> (records file, predictors)."""
    m = config["modeling"]
    studies = {config["study"]: (f"{RESULTS}/records.parquet", m["predictors"])}
    src = m["eatit"]["src"]
    if src and Path(src).is_dir():
        studies["eatit"] = (
            f"{RESULTS}/eatit/records.parquet",
            m["eatit"]["predictors"],
        )
    elif src:
        print(
            f"greenpath: modeling.eatit.src = {src!r} is not a folder; "
            "the EAT-IT study is skipped",
            file=sys.stderr,
        )
    return studies


MODEL_STUDIES = modeling_studies()

#: Studies with the >= 2 datasets that leave-one-dataset-out needs (EAT-IT has 9).
LODO_STUDIES = [s for s in MODEL_STUDIES if s != config["study"] or len(DATASETS) >= 2]
if config["study"] not in LODO_STUDIES:
    print(
        f"greenpath: study {config['study']!r} has one dataset; leave-one-dataset-out "
        "modeling, paths and the closed loop need two or more and are skipped",
        file=sys.stderr,
    )


def model_targets():
    """Every modeling output of every study (add to `rule all`)."""
    out = []
    for s in LODO_STUDIES:
        out += [
            f"{RESULTS}/evaluation/{s}.json",
            f"{RESULTS}/paths/{s}.json",
        ]
    return out


# ---- closed-loop controller (control.smk)
CONTROL = config["control"]
CONTROL_DIR = f"{RESULTS}/control"


def control_targets():
    """The closed loop's final table (add to `rule all`)."""
    if not CONTROL["enabled"] or config["study"] not in LODO_STUDIES:
        return []
    return [f"{CONTROL_DIR}/control.csv"]
