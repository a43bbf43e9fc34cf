"""Figures of a strategy against the full-length trunk and the oracle.

Per tree (study, dataset, seed):

- ``energy_saved_pct = (1 - E_path / E_trunk) * 100``, with ``E_trunk`` the cumulative
  energy of the full-length trunk (J);
- ``accuracy_change_pts = (acc_path - acc_trunk) * 100`` (percentage points; the reported
  accuracy, i.e. the best epoch's for restore-best early stopping);
- ``violation``: ``acc_path < acc_trunk - tolerance``;
- ``regret`` against the oracle's path under the objective (see
  :meth:`~greenpath.paths.objectives.Objective.regret`).

Pooled figures: ``energy_saved_pct_mean`` is the mean of per-tree percentages (how the
paper pools its savings simulation: ``mean(results / baseline)``; the issue's reference
figures match it), ``energy_saved_pct_ratio`` is ``1 - sum(E_path) / sum(E_trunk)``
(dominated by the most energy-hungry datasets). Both are reported with and without the
flagged (chance-level) datasets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from greenpath.paths.objectives import Objective
from greenpath.paths.strategies import Choice
from greenpath.paths.tree import Tree, saved_pct
from greenpath.records import finite_or_none, json_ready

TreeKey = tuple[str, str, int]


def outcome_table(
    trees: Iterable[Tree],
    choices: Mapping[TreeKey, Choice],
    objective: Objective,
    oracle_choices: Mapping[TreeKey, Choice],
    flagged: Iterable[str] = (),
) -> pd.DataFrame:
    """One row per tree with the strategy's path, outcome and figures (see module doc).

    Trees absent from ``choices`` are skipped (e.g. the strategy could not run there).
    """
    flagged = set(flagged)
    rows = []
    for t in trees:
        c = choices.get(t.key)
        if c is None:
            continue
        o = oracle_choices[t.key]
        ref_a, ref_e = t.ref_accuracy, t.ref_energy_j
        rows.append(
            {
                "study": t.study,
                "dataset": t.dataset,
                "seed": t.seed,
                "flagged": t.dataset in flagged,
                "method": c.method,
                "intervention_epoch": c.intervention_epoch,
                "end_epoch": c.end_epoch,
                "val_accuracy": c.val_accuracy,
                "energy_j": c.energy_j,
                "ref_accuracy": ref_a,
                "ref_energy_j": ref_e,
                "energy_saved_pct": saved_pct(c.energy_j, ref_e),
                "accuracy_change_pts": (c.val_accuracy - ref_a) * 100.0,
                "violation": objective.violation(c.val_accuracy, ref_a),
                "objective_value": objective.value(c.val_accuracy, c.energy_j, ref_a),
                "regret": objective.regret(
                    c.val_accuracy, c.energy_j, o.val_accuracy, o.energy_j, ref_a, ref_e
                ),
                "note": c.note,
            }
        )
    return pd.DataFrame(rows)


def pooled(table: pd.DataFrame) -> dict[str, object]:
    """Pooled figures of an :func:`outcome_table` (or a subset of its rows)."""
    if table.empty:
        return {"n_trees": 0}
    return {
        "n_trees": int(len(table)),
        "energy_saved_pct_mean": finite_or_none(table["energy_saved_pct"].mean()),
        "energy_saved_pct_ratio": finite_or_none(
            (1.0 - table["energy_j"].sum() / table["ref_energy_j"].sum()) * 100.0
        ),
        "accuracy_change_pts_mean": finite_or_none(table["accuracy_change_pts"].mean()),
        "violations": int(table["violation"].sum()),
        "regret_mean": finite_or_none(table["regret"].mean()),
    }


def summarize(table: pd.DataFrame) -> dict[str, object]:
    """``{"pooled": {"all": ..., "without_flagged": ...}, "per_dataset": [...], "per_tree": [...]}``."""
    if table.empty:
        return {
            "pooled": {"all": {"n_trees": 0}, "without_flagged": {"n_trees": 0}},
            "per_dataset": [],
            "per_tree": [],
        }
    per_dataset = []
    for (study, dataset), g in table.groupby(["study", "dataset"], sort=True):
        row = {"study": study, "dataset": dataset, "flagged": bool(g["flagged"].any())}
        row.update(pooled(g))
        if len(g) == 1:
            r = g.iloc[0]
            row["path"] = f"{r['method']}@{int(r['intervention_epoch'])}->{int(r['end_epoch'])}"
        per_dataset.append(row)
    per_tree = [json_ready(rec) for rec in table.to_dict("records")]
    return {
        "pooled": {
            "all": pooled(table),
            "without_flagged": pooled(table[~table["flagged"]]),
        },
        "per_dataset": per_dataset,
        "per_tree": per_tree,
    }
