"""Training engine: a trunk cut into segments, branches (freeze, quant), resumable jobs.

Public API (used by ``scripts/train.py`` and the Snakemake rules)::

    init_checkpoint(config, *, dataset_path, seed, out_checkpoint)
    run_trunk_segment(config, *, dataset, dataset_path, seed, start, end,
                      in_checkpoint, out_checkpoint, out_records, state_dir=None)
    run_branch(config, *, dataset, dataset_path, seed, method, intervention_epoch,
               in_checkpoint, out_records, state_dir=None)

See ``docs/training.md``.
"""

from greenpath.training.early_stopping import EarlyStopping
from greenpath.training.engine import (
    TRAINING_METHODS,
    TrainingError,
    default_state_path,
    evaluate,
    init_checkpoint,
    make_optimizer,
    run_branch,
    run_trunk_segment,
    train_epochs,
    train_one_epoch,
    versions_json,
)
from greenpath.training.precision import Precision, resolve_precision

__all__ = [
    "TRAINING_METHODS",
    "EarlyStopping",
    "Precision",
    "TrainingError",
    "default_state_path",
    "evaluate",
    "init_checkpoint",
    "make_optimizer",
    "resolve_precision",
    "run_branch",
    "run_trunk_segment",
    "train_epochs",
    "train_one_epoch",
    "versions_json",
]
