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
