"""Training engine: a trunk cut into segments, branches (freeze, quant), resumable jobs.

Public API (used by ``scripts/train.py``, :mod:`greenpath.training.job` and the Snakemake
rules)::

    init_checkpoint(config, *, dataset_path, seed, out_checkpoint)
    run_trunk_segment(config, *, dataset, dataset_path, seed, start, end,
                      in_checkpoint, out_checkpoint, out_records, state_dir=None)
    run_branch(config, *, dataset, dataset_path, seed, method, intervention_epoch,
               in_checkpoint, out_records, state_dir=None)
    run_job(config, Job(...), *, meter=None, callbacks=(), evaluate_fn=None)

The fit loop and its callbacks: :mod:`greenpath.training.loop`,
:mod:`greenpath.training.callbacks`. See ``docs/training.md``.
"""

from greenpath.training.callbacks import (
    CALLBACK_ACTIONS,
    ActionCallback,
    Callback,
    EpochCallback,
    Intervention,
    LayerFreezing,
    MixedPrecision,
)
from greenpath.training.early_stopping import EarlyStopping
from greenpath.training.engine import (
    OPTIMIZERS,
    TRAINING_METHODS,
    Job,
    TrainingError,
    default_state_path,
    evaluate,
    init_checkpoint,
    make_optimizer,
    model_for,
    run_branch,
    run_job,
    run_trunk_segment,
    train_epochs,
    train_one_epoch,
    versions_json,
)
from greenpath.training.loop import Loop, fit, loss_function
from greenpath.training.precision import Precision, resolve_precision
from greenpath.training.resume import ResumeState

__all__ = [
    "CALLBACK_ACTIONS",
    "OPTIMIZERS",
    "TRAINING_METHODS",
    "ActionCallback",
    "Callback",
    "EarlyStopping",
    "EpochCallback",
    "Intervention",
    "Job",
    "LayerFreezing",
    "Loop",
    "MixedPrecision",
    "Precision",
    "ResumeState",
    "TrainingError",
    "default_state_path",
    "evaluate",
    "fit",
    "init_checkpoint",
    "loss_function",
    "make_optimizer",
    "model_for",
    "resolve_precision",
    "run_branch",
    "run_job",
    "run_trunk_segment",
    "train_epochs",
    "train_one_epoch",
    "versions_json",
]
