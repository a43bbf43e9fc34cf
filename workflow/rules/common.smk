# Shared helpers: config validation and the grid's file lists.
import json
import os
import shlex
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from greenpath.config import (
    DATA_COMPUTE_KEYS,
    ConfigError,
    check_config,
    check_settings,
)
from greenpath.grid import branches, stop_points, trunk_segments
from greenpath.modeling.paper_savings import FIRST_EPOCH as PAPER_FIRST_EPOCH
from greenpath.modeling.paper_savings import NAME as PAPER_SAVINGS
from greenpath.modeling.workflow import eatit_datasets

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
STUDY = config["study"]
#: Every output of the config's study lives under results/<study>/ (EAT-IT: results/eatit/).
SDIR = f"{RESULTS}/{STUDY}"
if STUDY == "eatit":
    raise WorkflowError(
        "study: 'eatit' is the name of the imported EAT-IT study (results/eatit/); "
        "give this study another name"
    )


# ---- settings providers: each rule's params hold exactly the config values its job
# reads, in the config's nesting, so Snakemake's params trigger reruns a job (and what
# depends on it) when, and only when, one of them changes. Keys are sorted: the trigger
# compares repr(), which would otherwise change with the order of keys in a YAML file.
def canonical(value):
    """``value`` with every mapping's keys sorted, recursively."""
    if isinstance(value, dict):
        return {str(k): canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def prepare_settings(dataset):
    """Settings of the preparation of ``dataset``: ``data`` and its own options."""
    return canonical(
        {
            "data": dict(config["data"]),
            "datasets": {dataset: dict(config["datasets"][dataset] or {})},
        }
    )


def training_settings(dataset, method=None):
    """Settings of a training job of ``dataset`` (a trunk segment, or a branch of
    ``method``): the study name, what shapes the prepared data, the dataset's options,
    model, training, energy and, for a branch, its method's options."""
    data = config["data"]
    out = {
        "study": STUDY,
        "data": {k: data[k] for k in DATA_COMPUTE_KEYS if k in data},
        "datasets": {dataset: dict(config["datasets"][dataset] or {})},
        "model": dict(config["model"]),
        "training": dict(config["training"]),
        "energy": dict(config.get("energy") or {}),
    }
    # which GPUs a local run may use changes no result (the run hands each job its GPU)
    out["training"].pop("gpus", None)
    if method is not None:
        out["methods"] = {method: dict(config["methods"].get(method) or {})}
    # defaults filled, so that a key left out and its default written out are one setting
    out = check_settings(out)
    out["data"] = {k: out["data"][k] for k in DATA_COMPUTE_KEYS if k in out["data"]}
    return canonical(out)


def settings_json(settings):
    """A job's settings as the compact JSON its command line carries (keys sorted, so
    the same settings give the same params and Snakemake reruns only on a change)."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


# A training job runs in its own lean process (greenpath.training.job): the Python of the
# conda env under --use-conda, else the one running Snakemake (its venv need not be on PATH).
TRAIN_PYTHON = (
    "python"
    if any(m.name == "CONDA" for m in workflow.deployment_settings.deployment_method)
    else shlex.quote(sys.executable)
)


def control_settings():
    """Settings of the closed-loop jobs: the training settings of every dataset and
    trained method, the grid (seeds, intervention epochs) and the objective."""
    out = training_settings(DATASETS[0])
    out["datasets"] = {d: dict(config["datasets"][d] or {}) for d in DATASETS}
    out["methods"] = {
        m: dict(config["methods"].get(m) or {}) for m in ("freeze", "quant")
    }
    out["seeds"] = SEEDS
    out["interventions"] = {"epochs": INTERVENTIONS, "methods": METHODS}
    return canonical(check_settings(out))


def objective_settings():
    """Objective of the path choice and the controller (modeling.objective/tolerance/lam)."""
    m = config["modeling"]
    return canonical(
        {"objective": m["objective"], "tolerance": m["tolerance"], "lam": m["lam"]}
    )


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
    return (
        f"{SDIR}/checkpoints/{wildcards.dataset}/seed{wildcards.seed}/trunk_e{epoch}.pt"
    )


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
            base = f"{SDIR}/records/{d}/seed{s}"
            files += [f"{base}/base_e{seg.end}.parquet" for seg in SEGMENTS]
            files += [f"{base}/{m}_k{k}.parquet" for m, k in BRANCHES]
    return files


# SLURM (docs/slurm.md). Unset GREENPATH_SLURM_PARTITION/ACCOUNT mean the
# cluster's defaults; training rules ask for a GPU only when training.device is CUDA;
# under the slurm executor a pre-flight check runs before the first sbatch.
from greenpath.slurm import SlurmPreflightError, preflight, set_env_defaults
from greenpath.slurm import requires_gpu, training_gpu_resources

set_env_defaults()


def training_resources():
    """Resources of the training rules: {"gpu": 1} when training.device is CUDA, else {}."""
    return training_gpu_resources(config["training"]["device"])


#: Temporary folder of the training jobs (Snakemake's tmpdir resource, which sets TMPDIR):
#: beside the study's outputs, so that a job killed hard leaves nothing in the system's.
JOB_TMPDIR = os.path.abspath(f"{SDIR}/tmp")
os.makedirs(JOB_TMPDIR, exist_ok=True)


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


# Pre-flight (docs/config.md): data on disk or downloadable, pretrained weights in the
# torch cache, a CUDA device when training.device asks for one. Runs while the DAG is
# built (an input function of the `all` rule), so also in a dry run, where the problems are
# printed instead of stopping it. Under the SLURM executor the device is the compute
# node's business and is not checked on the submitting node.
from greenpath.preflight import format_problems, preflight_problems

_PREFLIGHT_DONE = []


def preflight_check(wildcards):
    """Input function of the `all` rule: the pre-flight, once per Snakemake run (no inputs)."""
    if _PREFLIGHT_DONE:
        return []
    _PREFLIGHT_DONE.append(True)
    executor = getattr(workflow.executor_plugin, "name", None)
    problems = preflight_problems(config, check_device=executor != "slurm")
    if problems:
        message = format_problems(problems)
        if not workflow.dryrun:
            raise WorkflowError(message)
        print(f"{message}\n(dry run: listed, not stopped)", file=sys.stderr)
    return []


onstart:
    try:
        preflight(workflow, device=config["training"]["device"])
    except SlurmPreflightError as exc:
        raise WorkflowError(f"SLURM pre-flight check failed: {exc}") from None
    export_local_gpus()


# ---- modeling studies (model.smk, report.smk)
def modeling_studies():
    """Study -> (records file, predictors evaluated, datasets)."""
    m = config["modeling"]
    studies = {STUDY: (f"{SDIR}/records.parquet", m["predictors"], DATASETS)}
    src = m["eatit"]["src"]
    if src and Path(src).is_dir():
        studies["eatit"] = (
            f"{RESULTS}/eatit/records.parquet",
            m["eatit"]["predictors"],
            eatit_datasets(src),
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
LODO_STUDIES = [s for s in MODEL_STUDIES if len(MODEL_STUDIES[s][2]) >= 2]
if STUDY not in LODO_STUDIES:
    print(
        f"greenpath: study {STUDY!r} has one dataset; leave-one-dataset-out "
        "modeling, paths and the closed loop need two or more and are skipped",
        file=sys.stderr,
    )


def study_dir(study):
    """Output folder of ``study``."""
    return f"{RESULTS}/{study}"


def model_folds(study):
    """Fold name -> held-out dataset (None: fitted on every dataset) of ``study``'s models."""
    folds = {"all": None}
    folds.update({f"without_{d}": d for d in sorted(MODEL_STUDIES[study][2])})
    return folds


def lodo_models(study, predictor):
    """Held-out dataset -> the ``predictor`` model fitted without it (fit rule outputs)."""
    return canonical(
        {
            d: f"{study_dir(study)}/models/{predictor}/without_{d}.json"
            for d in MODEL_STUDIES[study][2]
        }
    )


def controlled_run_models(wc):
    """The model a ``control_run`` job reads: the controller's predictor fitted without the
    run's dataset (controlled runs); none for the full run."""
    if wc.kind != "controlled":
        return {}
    return {wc.dataset: lodo_models(STUDY, CONTROL["predictor"])[wc.dataset]}


def controlled_run_inputs(wc):
    """Input files of a ``control_run`` job besides its dataset: its dataset's calibration
    and, for a controlled run, the trajectories (its grid tree) and its predictor.

    The full run is the live reference of the controlled runs of its dataset and seed: it
    records the calibration it was paired with (the table refuses mismatched pairs) and is
    measured again whenever they are, in the same phase of the workflow (not during the
    training grid, beside other jobs, while the controlled run comes after it)."""
    calibration = f"{CONTROL_DIR}/calibration/{wc.dataset}.json"
    if wc.kind != "controlled":
        return {"calibration": calibration}
    return {
        "trajectories": f"{SDIR}/trajectories.parquet",
        "models": list(controlled_run_models(wc).values()),
        "calibration": calibration,
    }


def paper_models(study):
    """Held-out dataset -> the model of the paper's savings simulation fitted without it
    (fit rule outputs, models/paper_savings/), read by the paths rule; none when the
    study's runs are shorter than the simulation's first epoch."""
    if study == STUDY and config["training"]["epochs"] < PAPER_FIRST_EPOCH:
        return {}
    return lodo_models(study, PAPER_SAVINGS)


def evaluate_models(wildcards):
    """Every leave-one-dataset-out model of every evaluated predictor of the study."""
    study = wildcards.study
    return [f for p in MODEL_STUDIES[study][1] for f in lodo_models(study, p).values()]


def model_targets():
    """Every modeling output of every study (add to `rule all`)."""
    out = []
    for s in LODO_STUDIES:
        planner = config["modeling"]["planner_predictor"]
        out += [
            f"{study_dir(s)}/evaluation.json",
            f"{study_dir(s)}/paths.json",
            f"{study_dir(s)}/models/{planner}/all.json",
        ]
    return out


# ---- closed-loop controller (control.smk)
CONTROL = config["control"]
CONTROL_DIR = f"{SDIR}/control"
#: Live runs of the closed loop: the controlled run and the plain full-length run.
RUN_KINDS = ["controlled", "full"]


def control_targets():
    """The closed loop's final table (add to `rule all`)."""
    if not CONTROL["enabled"] or STUDY not in LODO_STUDIES:
        return []
    return [f"{CONTROL_DIR}/control.csv"]


def planner_model(study, fold=None):
    """The planner's predictor of ``study``: the model fitted on every dataset
    (``fold="all"``) or, by default, held-out dataset -> model fitted without it."""
    predictor = config["modeling"]["planner_predictor"]
    if fold == "all":
        return f"{study_dir(study)}/models/{predictor}/all.json"
    return lodo_models(study, predictor)
