"""Path-choosing strategies that need no predictor: oracle, patience early stopping, fixed stops.

Each strategy maps a measured :class:`~greenpath.paths.tree.Tree` to a :class:`Choice`: the
path taken and its outcome read from the tree (the accuracy the strategy would report and
the cumulative energy it would have spent).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from greenpath.early_stopping import stop_epoch
from greenpath.paths.objectives import Objective
from greenpath.paths.tree import Tree


@dataclass(frozen=True)
class Choice:
    """The path a strategy took on one tree and its measured outcome.

    Attributes:
        method: ``base``, ``stop``, ``freeze`` or ``quant``.
        intervention_epoch: epoch the branch starts from (``stop``: the stop epoch; ``base``: 0).
        end_epoch: last epoch trained.
        val_accuracy: the accuracy the strategy reports (fraction); the value at
            ``end_epoch`` unless a restore-best rule applies (patience).
        energy_j: cumulative energy from epoch 1 to ``end_epoch`` (J).
        note: free text (e.g. why the planner stopped).
    """

    method: str
    intervention_epoch: int
    end_epoch: int
    val_accuracy: float
    energy_j: float
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def choice_from_tree(tree: Tree, method: str, k: int, end: int, note: str = "") -> Choice:
    """The :class:`Choice` for path ``(method, k, end)`` with the outcome read from ``tree``."""
    acc, en = tree.outcome(method, k, end)
    return Choice(method, int(k), int(end), acc, en, note)


def oracle(tree: Tree, objective: Objective, every_epoch: bool = False) -> Choice:
    """The best candidate path of the measured tree under ``objective`` (hindsight).

    With ``every_epoch`` a path may stop at any epoch of the trunk or of a branch
    (:meth:`Tree.candidates`); otherwise only at the decision epochs. Ties on the
    objective value go to the least energy, then the earliest end epoch. Under
    ``constrained`` the full trunk is always feasible, so a choice always exists.
    """
    cand = tree.candidates(every_epoch)
    ref = tree.ref_accuracy
    values = np.array(
        [
            objective.value(a, e, ref)
            for a, e in zip(cand["val_accuracy"], cand["energy_j"], strict=True)
        ]
    )
    values = np.where(np.isnan(values), -np.inf, values)
    order = np.lexsort((cand["end_epoch"].to_numpy(), cand["energy_j"].to_numpy(), -values))
    r = cand.iloc[int(order[0])]
    return Choice(
        str(r["method"]),
        int(r["intervention_epoch"]),
        int(r["end_epoch"]),
        float(r["val_accuracy"]),
        float(r["energy_j"]),
        "best measured candidate" + (" (stops at every epoch)" if every_epoch else ""),
    )


def patience_stop_epoch(
    val_accuracy: np.ndarray, patience: int, min_delta: float = 0.0
) -> tuple[int, int]:
    """Keras-style early stopping on validation accuracy (mode ``max``).

    An epoch improves when ``acc > best + min_delta``; otherwise a wait counter grows, and
    training stops after the epoch at which ``wait >= patience``
    (``keras.callbacks.EarlyStopping`` semantics). A thin wrapper over
    the one rule, :func:`greenpath.early_stopping.stop_epoch`; a non-finite value never
    improves.

    Args:
        val_accuracy: shape (E,), validation accuracy of epochs 1..E (fractions).
        patience: epochs without improvement before stopping (>= 1).
        min_delta: minimum improvement (fraction).

    Returns:
        ``(stop_epoch, best_epoch)``, both 1-based; ``stop_epoch == E`` when it never fires;
        ``best_epoch`` is 1 when no value was finite.

    Raises:
        ValueError: ``patience < 1`` or an empty curve.
    """
    stop, best = stop_epoch(np.asarray(val_accuracy, dtype=float).tolist(), patience, min_delta)
    return stop, best or 1


def patience_stopping(tree: Tree, patience: int, restore_best: bool = True) -> Choice:
    """Patience early stopping on the trunk.

    Energy is the trunk's cumulative energy up to the stop epoch. With ``restore_best``
    (default) the reported accuracy is the best epoch's (weights restored, also when the
    epoch limit ends training first); otherwise the stop epoch's.
    """
    trunk = tree.trunk
    acc = trunk["val_accuracy"].to_numpy(dtype=float)
    stop, best = patience_stop_epoch(acc, patience)
    E = tree.last_epoch
    energy = float(trunk["energy_cum_j"].to_numpy(dtype=float)[stop - 1])
    reported = float(acc[best - 1]) if restore_best else float(acc[stop - 1])
    method, k = ("base", 0) if stop >= E else ("stop", stop)
    note = f"stopped after epoch {stop}, best epoch {best}" + (
        " (restored)" if restore_best else ""
    )
    return Choice(method, k, stop, reported, energy, note)


def fixed_stop(tree: Tree, epoch: int) -> Choice:
    """Stop the trunk after ``epoch`` epochs (``epoch >= E`` is the full trunk).

    Raises:
        ValueError: ``epoch < 1``.
    """
    if epoch < 1:
        raise ValueError(f"stop epoch must be >= 1, got {epoch}")
    if epoch >= tree.last_epoch:
        return choice_from_tree(tree, "base", 0, tree.last_epoch, "full trunk")
    return choice_from_tree(tree, "stop", epoch, epoch, f"fixed stop at {epoch}")


def full_trunk(tree: Tree) -> Choice:
    """The reference itself: the trunk trained to its last epoch."""
    return choice_from_tree(tree, "base", 0, tree.last_epoch, "reference")
