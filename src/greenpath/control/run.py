"""One controlled training run with greenpath's engine, and replay on a measured tree.

- :func:`train_controlled`: train one (dataset, seed) from fresh initial weights for up to
  ``training.epochs`` epochs with a :class:`~greenpath.control.controller.Controller` (and
  optionally patience early stopping) deciding at epoch end; writes the records, the
  decisions log next to them and the final checkpoint; resumable like every engine job.
- :func:`replay_tree`: feed a measured tree (``greenpath.paths.Tree``) to a controller as if
  it were live; returns the path it takes on the tree. Training is deterministic per
  (seed, epoch), so a live run takes the same path when the same rows come back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greenpath.control.controller import Controller
from greenpath.control.log import decisions_path

#: File names inside a run's folder.
RECORDS_NAME = "records.parquet"
CHECKPOINT_NAME = "final.pt"
INIT_NAME = "init.pt"


@dataclass
class RunResult:
    """Outcome of :func:`train_controlled`.

    Attributes:
        records: the run's per-epoch rows (record schema), epochs that ran only.
        records_path, decisions_path, checkpoint_path: files written.
        energy_j: measured energy of the run (sum of ``energy_total_j``, J).
        val_accuracy: final validation accuracy reported (fraction): the last epoch's, or
            the best epoch's when patience early stopping restored it.
        epochs_run: number of epochs trained.
        decisions: ``(epoch, action, reason)`` of every controller decision.
        estimated_full_energy_j: the predictor's forecast of the full run's energy (J).
        best_epoch: best epoch of patience early stopping (None without it).
    """

    records: pd.DataFrame
    records_path: Path
    decisions_path: Path | None
    checkpoint_path: Path
    energy_j: float
    val_accuracy: float
    epochs_run: int
    decisions: list[tuple[int, str, str]] = field(default_factory=list)
    estimated_full_energy_j: float | None = None
    best_epoch: int | None = None

    @property
    def estimated_saved_pct(self) -> float | None:
        """``(1 - energy / estimated full-run energy) * 100``, None without an estimate."""
        e = self.estimated_full_energy_j
        if e is None or not e > 0:
            return None
        return (1.0 - self.energy_j / e) * 100.0

    def summary(self) -> str:
        """Human-readable final summary (energy in J and kWh, accuracy, decisions)."""
        lines = [
            f"epochs run: {self.epochs_run}",
            f"energy used: {self.energy_j:.1f} J ({self.energy_j / 3.6e6:.3g} kWh)",
            f"final validation accuracy: {self.val_accuracy:.4f}"
            + (f" (best epoch {self.best_epoch}, restored)" if self.best_epoch else ""),
        ]
        if self.decisions:
            lines.append("decisions:")
            lines += [f"  epoch {e}: {a} - {r}" for e, a, r in self.decisions]
        if self.estimated_full_energy_j is not None:
            lines.append(
                f"estimated full run (predictor): {self.estimated_full_energy_j:.1f} J; "
                f"estimated energy saved: {self.estimated_saved_pct:.1f} %"
            )
        return "\n".join(lines)


def train_controlled(
    config: dict,
    *,
    dataset: str,
    dataset_path: Path,
    seed: int,
    out_dir: Path,
    controller: Controller | None = None,
    patience: int | None = None,
    epochs: int | None = None,
    meter: Any = None,
    evaluate_fn: Any = None,
) -> RunResult:
    """Train one controlled run from the seed's initial weights.

    Args:
        config: checked config; ``training.epochs`` is the full run's length (``epochs``
            overrides it).
        dataset, dataset_path: name and prepared ``.npz``.
        seed: the seed (initial weights and data order as in the grid's trees).
        out_dir: folder for ``init.pt``, ``records.parquet``,
            ``records.decisions.parquet``, ``final.pt`` and the resume state.
        controller: the deciding callback (None: a plain run, e.g. patience only).
        patience: patience early stopping on validation accuracy (restore best),
            via ``train_epochs(early_stopping=...)``.
        meter, evaluate_fn: passed to :func:`greenpath.training.engine.train_epochs`.

    Returns:
        :class:`RunResult`.

    Raises:
        greenpath.training.TrainingError and the engine's other errors.
    """
    from greenpath.training import EarlyStopping, init_checkpoint
    from greenpath.training.engine import train_epochs

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if epochs is not None:
        config = {**config, "training": {**config["training"], "epochs": int(epochs)}}
    E = int(config["training"]["epochs"])
    init = out_dir / INIT_NAME
    if not init.is_file():
        init_checkpoint(config, dataset_path=dataset_path, seed=seed, out_checkpoint=init)
    rec_path = out_dir / RECORDS_NAME
    dec_path = decisions_path(rec_path) if controller is not None else None
    if controller is not None and controller.log_path is None:
        controller.log_path = dec_path
    es = EarlyStopping(int(patience)) if patience else None
    df = train_epochs(
        config,
        dataset=dataset,
        dataset_path=dataset_path,
        seed=seed,
        method="base",
        intervention_epoch=0,
        start=0,
        end=E,
        in_checkpoint=init,
        out_records=rec_path,
        out_checkpoint=out_dir / CHECKPOINT_NAME,
        meter=meter,
        early_stopping=es,
        evaluate_fn=evaluate_fn,
        callbacks=[controller] if controller is not None else None,
    )
    if controller is not None and dec_path is not None:
        controller.write_decisions(
            dec_path, study=str(config["study"]), dataset=dataset, seed=int(seed)
        )
    # null = not measured: a run with an unmeasured epoch has no total (NaN), never a sum
    # that silently leaves that epoch out
    energy = float(pd.to_numeric(df["energy_total_j"], errors="coerce").sum(skipna=False))
    acc = float(df["val_accuracy"].iloc[-1]) if len(df) else math.nan
    best_epoch = None
    if es is not None and es.best is not None:
        acc, best_epoch = float(es.best), es.best_epoch
    return RunResult(
        records=df,
        records_path=rec_path,
        decisions_path=dec_path,
        checkpoint_path=out_dir / CHECKPOINT_NAME,
        energy_j=energy,
        val_accuracy=acc,
        epochs_run=len(df),
        decisions=[
            (d.epoch, d.action, d.reason) for d in (controller.decisions if controller else [])
        ],
        estimated_full_energy_j=controller.estimated_full_energy_j() if controller else None,
        best_epoch=best_epoch,
    )


def replay_tree(controller: Controller, tree: Any) -> tuple[str, int, int]:
    """Run ``controller`` on a measured tree's rows as if live; return its path key.

    Args:
        controller: a fresh controller with ``last_epoch == tree.last_epoch``.
        tree: :class:`greenpath.paths.tree.Tree`.

    Returns:
        ``(method, intervention_epoch, end_epoch)`` as in ``Tree.outcome``: ``("base", 0,
        E)``, ``("stop", d, d)`` or ``(m, k, end)``.

    Raises:
        KeyError: the controller switched to a branch the tree has not measured.
    """
    E = tree.last_epoch
    method, k = "base", 0
    rows = tree.trunk

    by_epoch: dict[int, dict[str, Any]] = {}

    def row_at(epoch: int) -> dict[str, Any]:
        if not by_epoch:  # one conversion per path followed, not one filter per epoch
            for r in rows.to_dict("records"):
                by_epoch[int(r["epoch"])] = {
                    kk: (v.item() if isinstance(v, np.generic) else v) for kk, v in r.items()
                }
        return by_epoch[epoch]

    action = controller.on_train_begin(0)
    if action in ("freeze", "quant"):
        method, k = action, 0
        rows = tree.paths[(method, 0)]
        by_epoch.clear()
    for epoch in range(1, E + 1):
        action = controller.on_epoch_end(epoch, row_at(epoch))
        if action == "stop":
            return ("stop", epoch, epoch) if method == "base" else (method, k, epoch)
        if action in ("freeze", "quant"):
            if method != "base":
                raise KeyError(f"tree {tree.key}: no measured path {method}@{k} then {action}")
            method, k = action, epoch
            if (method, k) not in tree.paths:
                raise KeyError(f"tree {tree.key}: no measured path {method}@{k}")
            rows = tree.paths[(method, k)]
            by_epoch.clear()
    return ("base", 0, E) if method == "base" else (method, k, E)


__all__ = ["RunResult", "replay_tree", "train_controlled"]
