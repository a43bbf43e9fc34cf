"""Training engine: a trunk cut into segments, branches (freeze, quant), resumable jobs.

Public API (used by :mod:`greenpath.training.job`, ``scripts/train.py`` and the Snakemake
rules)::

    init_checkpoint(config, *, dataset_path, seed, out_checkpoint)
    run_trunk_segment(config, *, dataset, dataset_path, seed, start, end,
                      in_checkpoint, out_checkpoint, out_records, state_dir=None)
    run_branch(config, *, dataset, dataset_path, seed, method, intervention_epoch,
               in_checkpoint, out_records, state_dir=None)
    run_job(config, Job(...), *, meter=None, callbacks=(), evaluate_fn=None)

The fit loop and its callbacks: :mod:`greenpath.training.loop`,
:mod:`greenpath.training.callbacks`. The names below are imported on first use, so the
lean job client (``python -m greenpath.training.job``) starts without torch. See
``docs/training.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "CALLBACK_ACTIONS": "callbacks",
    "ActionCallback": "callbacks",
    "Callback": "callbacks",
    "EpochCallback": "callbacks",
    "Intervention": "callbacks",
    "LayerFreezing": "callbacks",
    "MixedPrecision": "callbacks",
    "EarlyStopping": "early_stopping",
    "OPTIMIZERS": "engine",
    "TRAINING_METHODS": "engine",
    "Job": "engine",
    "TrainingError": "engine",
    "default_state_path": "engine",
    "evaluate": "engine",
    "init_checkpoint": "engine",
    "make_optimizer": "engine",
    "model_for": "engine",
    "run_branch": "engine",
    "run_job": "engine",
    "run_trunk_segment": "engine",
    "train_epochs": "engine",
    "train_one_epoch": "engine",
    "versions_json": "engine",
    "Loop": "loop",
    "fit": "loop",
    "loss_function": "loop",
    "Precision": "precision",
    "resolve_precision": "precision",
    "ResumeState": "resume",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'greenpath.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"greenpath.training.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
