# Shared helpers: config validation and the grid's file lists.
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from greenpath.config import ConfigError, check_config
from greenpath.grid import branches, trunk_segments

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
    end=r"\d+",
    k=r"\d+",
    method="freeze|quant",


def trunk_start_checkpoint(wildcards):
    """Checkpoint the trunk segment ending at ``end`` starts from."""
    end = int(wildcards.end)
    if end not in SEGMENT_START:
        raise WorkflowError(f"no trunk segment ends at epoch {end}; segments: {SEGMENTS}")
    start = SEGMENT_START[end]
    return f"{RESULTS}/checkpoints/{wildcards.dataset}/seed{wildcards.seed}/trunk_e{start}.pt"


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
from greenpath.slurm import training_gpu_resources

set_env_defaults()


def training_resources():
    """Resources of the training rules: {"gpu": 1} when training.device is CUDA, else {}."""
    return training_gpu_resources(config["training"]["device"])


onstart:
    try:
        preflight(workflow, device=config["training"]["device"])
    except SlurmPreflightError as exc:
        raise WorkflowError(f"SLURM pre-flight check failed: {exc}") from None
