"""Closed-loop evaluation: the controller trained live, leave-one-dataset-out.

For each dataset X of the config:

1. read the predictor fitted on the OTHER datasets' trajectories (the workflow's ``fit``
   rule writes it; the held-out dataset is checked absent);
2. choose the controller's settings leave-one-dataset-out (:func:`calibrate_controller`,
   one workflow job per dataset whose JSON the controlled runs read): every ``(Margin, allowed
   actions)`` of :func:`settings_grid` is replayed (:func:`~greenpath.control.run.replay_tree`)
   on the measured trees of the other datasets, each forecast by the predictor fitted
   without that tree's dataset; the setting with the fewest calibration violations (a loss
   of more than half the tolerance,
   :meth:`~greenpath.paths.objectives.Objective.calibration_violation`) wins,
   then the most energy saved (ties: the smaller margin) -- the planner's calibration rule
   (:mod:`greenpath.paths.planner`) extended to the allowed actions;
3. per seed, train live: the controlled run, and a plain full-length run measured in the
   same job (the live reference; patience-5 early stopping is read from its rows, with
   restore-best semantics);
4. compare with the grid: full trunk, oracle (``greenpath.paths.oracle`` on the measured
   tree) and patience-5 on the grid trunk.

Two energy bases are reported because energy on a shared CPU is noisy between runs:
``live`` (controlled run vs the live full run of the same job) and ``grid`` (the path the
controller took, read from the measured grid tree, vs the grid trunk -- the same
measurements as the oracle and the grid's patience-5). Training is deterministic per
(seed, epoch), so the live accuracies equal the grid's for the same path.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greenpath.control.controller import Controller
from greenpath.control.run import replay_tree, train_controlled
from greenpath.modeling.workflow import read_trajectories
from greenpath.paths import (
    Margin,
    build_trees,
    get_objective,
    oracle,
    patience_stop_epoch,
    patience_stopping,
)
from greenpath.records import atomic_path, finite_or_none

log = logging.getLogger(__name__)

#: Action sets the calibration may choose from.
ACTION_SETS: tuple[tuple[str, ...], ...] = (
    ("freeze", "quant", "stop"),
    ("freeze", "quant"),
    ("quant", "stop"),
    ("quant",),
    ("freeze", "stop"),
)

#: Default margins (sigma multiples, additive accuracy margins, cold start).
Z_GRID: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
DELTA_GRID: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02)


def settings_grid() -> list[tuple[Margin, tuple[str, ...]]]:
    """Every (margin, allowed actions) pair, small margins first."""
    margins = sorted(Margin(z, d, c) for z in Z_GRID for d in DELTA_GRID for c in (True, False))
    return [(m, a) for m in margins for a in ACTION_SETS]


class CachedPredictor:
    """Memoises ``forecast`` by (method, intervention epoch, history values) (replays)."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self._cache: dict[Any, Any] = {}

    def forecast(self, history, method, intervention_epoch, last_epoch, *, dataset_info=None):
        h = history
        key = (
            method,
            int(intervention_epoch),
            int(last_epoch),
            tuple(np.round(pd.to_numeric(h.get("val_accuracy", []), errors="coerce"), 12))
            if len(h)
            else (),
            tuple(np.round(pd.to_numeric(h.get("energy_total_j", []), errors="coerce"), 9))
            if len(h)
            else (),
            json.dumps(dict(dataset_info or {}), sort_keys=True, default=str),
        )
        if key not in self._cache:
            try:
                self._cache[key] = self.predictor.forecast(
                    history, method, intervention_epoch, last_epoch, dataset_info=dataset_info
                )
            except Exception as exc:  # noqa: BLE001 - re-raised on every hit
                self._cache[key] = exc
        val = self._cache[key]
        if isinstance(val, Exception):
            raise val
        return val


def load_lodo_model(models: Mapping[str, Path], dataset: str) -> Any:
    """The predictor fitted without ``dataset``, read from ``models[dataset]``.

    Raises:
        ValueError: no model for ``dataset``, or the model was fitted on it.
    """
    from greenpath.modeling.io import load

    if dataset not in models:
        raise ValueError(f"no leave-one-dataset-out model without {dataset!r}; fit it first")
    model = load(models[dataset])
    if dataset in model.trained_datasets:
        raise ValueError(
            f"{models[dataset]} was fitted on {dataset!r}, the dataset it must hold out"
        )
    return model


def calibrate(
    trees: Sequence[Any],
    held_out: str,
    predictors: Mapping[str, Any],
    objective: Any,
    decision_epochs: Sequence[int],
    grid: Sequence[tuple[Margin, tuple[str, ...]]] | None = None,
    cache: dict | None = None,
) -> tuple[Margin, tuple[str, ...], dict[str, Any]]:
    """Choose (margin, actions) on the trees of datasets other than ``held_out``.

    Returns:
        ``(margin, actions, figures)``; with no other tree, the smallest margin and all
        actions.
    """
    grid = list(grid or settings_grid())
    rest = [t for t in trees if t.dataset != held_out]
    if not rest:
        return grid[0][0], grid[0][1], {"calibration_trees": 0}
    cache = {} if cache is None else cache
    scored = []
    for m, acts in grid:
        viol, saved = 0, []
        for t in rest:
            k = (m, acts, t.key)
            if k not in cache:
                c = Controller(
                    predictors[t.dataset],
                    last_epoch=t.last_epoch,
                    decision_epochs=decision_epochs,
                    objective=objective,
                    margin=m,
                    methods=acts,
                )
                key = replay_tree(c, t)
                acc, en = t.outcome(*key)
                cache[k] = (
                    objective.calibration_violation(acc, t.ref_accuracy),
                    (1 - en / t.ref_energy_j) * 100,
                )
            v, s = cache[k]
            viol += int(v)
            saved.append(s)
        scored.append(((viol, -float(np.mean(saved))), m, acts))
    scored.sort(key=lambda x: (x[0][0], round(x[0][1], 9)))
    (viol, neg), m, acts = scored[0]
    return m, acts, {"calibration_trees": len(rest), "calibration_violations": viol,
                     "calibration_saved_pct": -neg}  # fmt: skip


def _pct(e: float, ref: float) -> float:
    return (1.0 - e / ref) * 100.0 if ref > 0 and math.isfinite(e) else math.nan


def _setup(config, trajectories_path, models, objective, tolerance, lam):
    """(trees, decision epochs, objective, dataset -> cached leave-one-dataset-out model)."""
    dec = sorted({0, *[int(k) for k in config["interventions"]["epochs"]]})
    trees = build_trees(read_trajectories(trajectories_path), dec)
    obj = get_objective(objective, tolerance, lam)
    predictors = {
        ds: CachedPredictor(load_lodo_model(models, ds)) for ds in {t.dataset for t in trees}
    }
    return trees, dec, obj, predictors


def _tree(trees, dataset, seed, trajectories_path):
    for t in trees:
        if t.dataset == dataset and t.seed == int(seed):
            return t
    raise ValueError(f"no measured tree for {dataset} seed {seed} in {trajectories_path}")


def calibrate_controller(
    config: dict,
    *,
    trajectories_path: Path,
    models: Mapping[str, Path],
    dataset: str,
    objective: str = "constrained",
    tolerance: float = 0.01,
    lam: float | None = None,
) -> dict[str, Any]:
    """The controller's settings for ``dataset``, chosen by :func:`calibrate` on the measured
    trees of the other datasets (rule ``control_calibrate``; the controlled live runs read it).

    Returns:
        JSON-ready ``{"dataset", "margin" (Margin.as_dict), "actions", "calibration"}``.

    Raises:
        ValueError: no grid tree of ``dataset``, or a missing leave-one-dataset-out model.
    """
    trees, dec, obj, predictors = _setup(
        config, trajectories_path, models, objective, tolerance, lam
    )
    if not any(t.dataset == dataset for t in trees):
        raise ValueError(f"no measured tree of {dataset!r} in {trajectories_path}")
    margin, acts, calib = calibrate(trees, dataset, predictors, obj, dec)
    log.info("%s: margin %s, actions %s (%s)", dataset, margin, acts, calib)
    return {"dataset": dataset, "margin": margin.as_dict(), "actions": list(acts),
            "calibration": calib}  # fmt: skip


def _controller(config, trajectories_path, models, dataset, seed, calibration, goal):
    """(controller for the live run, the calibration's summary fields)."""
    if calibration is None or calibration.get("dataset") != dataset:
        got = None if calibration is None else calibration.get("dataset")
        raise ValueError(
            f"the controlled run of {dataset!r} needs its calibration "
            f"(calibrate_controller(..., dataset={dataset!r})), got one for {got!r}"
        )
    dec = sorted({0, *[int(k) for k in config["interventions"]["epochs"]]})
    tree = _tree(build_trees(read_trajectories(trajectories_path), dec), dataset, seed,
                 trajectories_path)  # fmt: skip
    margin, acts = Margin.from_dict(calibration["margin"]), tuple(calibration["actions"])
    ctl = Controller(load_lodo_model(models, dataset), last_epoch=int(config["training"]["epochs"]),
                     decision_epochs=dec, objective=get_objective(**goal), margin=margin,
                     methods=acts, dataset_info=tree.dataset_info)  # fmt: skip
    return ctl, _pair_fields(calibration)


#: Summary keys that name the calibration of a live pair (both runs carry them).
PAIR_KEYS: tuple[str, ...] = ("margin", "actions", "calibration")


def _pair_fields(calibration: Mapping[str, Any]) -> dict[str, Any]:
    """The calibration's margin, actions and figures as a live run's summary records them."""
    return {"margin": Margin.from_dict(calibration["margin"]).as_dict(),
            "actions": list(calibration["actions"]),
            "calibration": dict(calibration.get("calibration", {}))}  # fmt: skip


def live_run(
    config: dict,
    *,
    trajectories_path: Path | None,
    models: Mapping[str, Path],
    dataset: str,
    dataset_path: Path,
    seed: int,
    kind: str,
    run_dir: Path,
    calibration: Mapping[str, Any] | None = None,
    objective: str = "constrained",
    tolerance: float = 0.01,
    lam: float | None = None,
    meter: Any = None,
) -> dict[str, Any]:
    """One live run of the closed loop: ``kind`` ``controlled`` (the controller with the
    margin and actions of ``calibration``, the output of :func:`calibrate_controller` for
    ``dataset``) or ``full`` (a plain full-length run, the live reference of the controlled
    run with that ``calibration``; ``trajectories_path`` and ``models`` unused). Both
    summaries carry ``calibration`` so that :func:`tabulate` can refuse a mismatched pair.

    Trains under ``run_dir`` (resumable: the engine's per-epoch state) after an untimed
    one-epoch warm-up, so the measured run does not pay the process's start-up costs.

    Returns:
        JSON-ready summary: dataset, seed, kind, margin/actions/calibration (controlled),
        decisions, epochs_run, energy_j, val_accuracy, estimated_full_energy_j and the
        per-epoch ``val_accuracy_per_epoch`` / ``energy_per_epoch_j`` (null: not measured).

    Raises:
        ValueError: unknown ``kind``; for ``controlled``: no calibration of ``dataset``, no
            grid tree or no model for it.
    """
    if kind not in ("controlled", "full"):
        raise ValueError(f"kind={kind!r}: use 'controlled' or 'full'")
    run_dir = Path(run_dir)
    out: dict[str, Any] = {"dataset": dataset, "seed": int(seed), "kind": kind}
    ctl = None
    if kind == "controlled":
        goal = {"name": objective, "tolerance": tolerance, "lam": lam}
        ctl, fields = _controller(config, trajectories_path, models, dataset, seed,
                                  calibration, goal)  # fmt: skip
        out.update(fields)
    elif calibration is not None:
        out.update(_pair_fields(calibration))
    run_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".warmup-", dir=run_dir) as tmp:
        train_controlled(config, dataset=dataset, dataset_path=dataset_path, seed=seed,
                         out_dir=Path(tmp), epochs=1)  # fmt: skip
    res = train_controlled(config, dataset=dataset, dataset_path=dataset_path, seed=seed,
                           out_dir=run_dir / kind, controller=ctl, meter=meter)  # fmt: skip
    energy = pd.to_numeric(res.records["energy_total_j"]).astype(float)
    out.update(
        decisions=[[int(e), str(a), str(r)] for e, a, r in res.decisions],
        epochs_run=int(res.epochs_run),
        energy_j=finite_or_none(res.energy_j),
        val_accuracy=float(res.val_accuracy),
        estimated_full_energy_j=finite_or_none(res.estimated_full_energy_j),
        val_accuracy_per_epoch=[float(v) for v in res.records["val_accuracy"]],
        energy_per_epoch_j=[finite_or_none(v) for v in energy],
    )
    return out


def tabulate(
    config: dict,
    *,
    trajectories_path: Path,
    models: Mapping[str, Path],
    runs: Sequence[Mapping[str, Any]],
    objective: str = "constrained",
    tolerance: float = 0.01,
    lam: float | None = None,
    patience: int = 5,
) -> pd.DataFrame:
    """One row per (dataset, seed) from the :func:`live_run` summaries of both kinds,
    compared with the grid: the path the controller takes on the measured tree, the
    oracle, patience early stopping (live full run and grid trunk).

    Raises:
        ValueError: a (dataset, seed) lacks one of the two kinds, or has no grid tree.
    """
    trees, dec, obj, predictors = _setup(
        config, trajectories_path, models, objective, tolerance, lam
    )
    E = int(config["training"]["epochs"])
    pairs: dict[tuple[str, int], dict[str, Mapping[str, Any]]] = {}
    for r in runs:
        pairs.setdefault((str(r["dataset"]), int(r["seed"])), {})[str(r["kind"])] = r
    rows = []
    for (ds, seed), kinds in sorted(pairs.items()):
        if set(kinds) != {"controlled", "full"}:
            raise ValueError(
                f"{ds} seed {seed}: live runs {sorted(kinds)}; need controlled and full"
            )
        live, full = kinds["controlled"], kinds["full"]
        if any(full.get(k) != live.get(k) for k in PAIR_KEYS):
            raise ValueError(
                f"{ds} seed {seed}: the full run is not the reference of the controlled run's "
                "calibration (another one, or none recorded); rerun both "
                "(snakemake --forcerun control_run)"
            )
        tree = _tree(trees, ds, seed, trajectories_path)
        margin = Margin.from_dict(live["margin"])
        acts = tuple(live["actions"])
        twin = Controller(predictors[ds], last_epoch=E, decision_epochs=dec, objective=obj,
                          margin=margin, methods=acts, dataset_info=tree.dataset_info)  # fmt: skip
        key = replay_tree(twin, tree)
        rows.append(_row(obj, tree, key, live, full, patience, margin, acts))
    return pd.DataFrame(rows)


def _row(obj, tree, key, live, full, patience, margin, acts) -> dict[str, Any]:
    g_acc, g_en = tree.outcome(*key)
    o = oracle(tree, obj)
    p_grid = patience_stopping(tree, patience, restore_best=True)
    f_acc = np.asarray(full["val_accuracy_per_epoch"], dtype=float)
    f_en = np.cumsum(np.asarray([np.nan if v is None else v for v in full["energy_per_epoch_j"]]))
    p_stop, p_best = patience_stop_epoch(f_acc, patience)
    ref_acc, ref_en = tree.ref_accuracy, tree.ref_energy_j
    live_ref_acc, live_ref_en = float(f_acc[-1]), float(f_en[-1])
    l_acc = float(live["val_accuracy"])
    l_en = math.nan if live["energy_j"] is None else float(live["energy_j"])
    return {
        "dataset": tree.dataset,
        "seed": tree.seed,
        "margin_z": margin.z,
        "margin_delta": margin.delta,
        "cold_start": margin.cold_start,
        "actions_allowed": ",".join(acts),
        "decisions": "; ".join(f"{e}:{a}" for e, a, _ in live["decisions"] if a != "continue")
        or "none",
        "path": f"{key[0]}@{key[1]}->{key[2]}",
        "epochs_run": live["epochs_run"],
        "ctl_energy_j": l_en,
        "ctl_accuracy": l_acc,
        "full_energy_j": live_ref_en,
        "full_accuracy": live_ref_acc,
        "estimated_full_energy_j": live["estimated_full_energy_j"],
        "energy_saved_pct": _pct(l_en, live_ref_en),
        "accuracy_change_pts": (l_acc - live_ref_acc) * 100,
        "violation": obj.violation(l_acc, live_ref_acc),
        "grid_energy_saved_pct": _pct(g_en, ref_en),
        "grid_accuracy_change_pts": (g_acc - ref_acc) * 100,
        "grid_violation": obj.violation(g_acc, ref_acc),
        "regret_vs_oracle": obj.regret(g_acc, g_en, o.val_accuracy, o.energy_j, ref_acc, ref_en),
        "oracle_path": f"{o.method}@{o.intervention_epoch}->{o.end_epoch}",
        "oracle_energy_saved_pct": _pct(o.energy_j, ref_en),
        "oracle_every_epoch_energy_saved_pct": _pct(
            oracle(tree, obj, every_epoch=True).energy_j, ref_en
        ),
        "patience_energy_saved_pct": _pct(float(f_en[p_stop - 1]), live_ref_en),
        "patience_accuracy_change_pts": (f_acc[p_best - 1] - live_ref_acc) * 100,
        "patience_violation": obj.violation(float(f_acc[p_best - 1]), live_ref_acc),
        "patience_grid_energy_saved_pct": _pct(p_grid.energy_j, ref_en),
        "patience_grid_violation": obj.violation(p_grid.val_accuracy, ref_acc),
        "live_matches_grid_accuracy": bool(
            abs(l_acc - g_acc) < 1e-9 and abs(live_ref_acc - ref_acc) < 1e-9
        ),
    }


def closed_loop(
    config: dict,
    *,
    trajectories_path: Path,
    dataset_paths: Mapping[str, Path],
    out_dir: Path,
    models: Mapping[str, Path],
    objective: str = "constrained",
    tolerance: float = 0.01,
    lam: float | None = None,
    patience: int = 5,
    seeds: Sequence[int] | None = None,
    meter_factory: Any = None,
) -> pd.DataFrame:
    """The whole closed loop in one process (the workflow runs :func:`calibrate_controller`
    as one job per dataset, :func:`live_run` as one job per (dataset, seed, kind) and
    :func:`tabulate` as one job): every calibration, then every live run under
    ``out_dir/runs/<dataset>/seed<seed>/``, then the table.

    Args:
        config: checked config (datasets, seeds, epochs, interventions).
        trajectories_path: the grid's ``trajectories.parquet``.
        dataset_paths: dataset -> prepared ``.npz``.
        models: dataset -> JSON of the predictor fitted without it (``greenpath fit``).
        objective, tolerance, lam: the controller's objective.
        patience: patience of the early-stopping baseline.
        seeds: default ``config["seeds"]``.
        meter_factory: ``() -> meter`` for the live runs (default: the config's meter).

    Raises:
        ValueError: see :func:`live_run` and :func:`tabulate`.
    """
    seeds = [int(s) for s in (seeds if seeds is not None else config["seeds"])]
    goal = {"objective": objective, "tolerance": tolerance, "lam": lam}
    calibrations = {
        ds: calibrate_controller(
            config, trajectories_path=trajectories_path, models=models, dataset=ds, **goal
        )  # fmt: skip
        for ds in dataset_paths
    }
    runs = [
        live_run(
            config,
            trajectories_path=trajectories_path,
            models=models,
            dataset=ds,
            dataset_path=dataset_paths[ds],
            seed=seed,
            kind=kind,
            run_dir=Path(out_dir) / "runs" / ds / f"seed{seed}",
            calibration=calibrations[ds],
            meter=meter_factory() if meter_factory else None,
            **goal,
        )  # fmt: skip
        for ds in dataset_paths
        for seed in seeds
        for kind in ("controlled", "full")
    ]
    return tabulate(config, trajectories_path=trajectories_path, models=models, runs=runs,
                    patience=patience, **goal)  # fmt: skip


#: Columns of the per-dataset table (name -> how runs are pooled).
SUMMARY_COLUMNS: dict[str, str] = {
    "energy_saved_pct": "mean",
    "accuracy_change_pts": "mean",
    "violation": "sum",
    "grid_energy_saved_pct": "mean",
    "grid_violation": "sum",
    "regret_vs_oracle": "mean",
    "oracle_energy_saved_pct": "mean",
    "oracle_every_epoch_energy_saved_pct": "mean",
    "patience_energy_saved_pct": "mean",
    "patience_violation": "sum",
    "patience_grid_energy_saved_pct": "mean",
    "patience_grid_violation": "sum",
}


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per-dataset table (means over seeds, violation counts) plus a ``mean`` row.

    ``worst_accuracy_change_pts`` (the lowest over seeds) sits next to the mean, since a
    mean within the tolerance can hide a seed that broke it."""
    g = runs.groupby("dataset", sort=False)
    table = g.agg(SUMMARY_COLUMNS)
    table.insert(0, "seeds", g.size())
    pos = table.columns.get_loc("accuracy_change_pts") + 1
    table.insert(pos, "worst_accuracy_change_pts", g["accuracy_change_pts"].min())
    table.insert(pos + 1, "tolerance_held", table["violation"] == 0)
    table["paths"] = g["path"].agg(", ".join)
    table = table.reset_index()
    mean = {
        c: (runs[c].mean() if how == "mean" else runs[c].sum())
        for c, how in SUMMARY_COLUMNS.items()
    }
    mean.update(dataset="mean", seeds=len(runs), tolerance_held=bool(runs["violation"].sum() == 0),
                worst_accuracy_change_pts=runs["accuracy_change_pts"].min(), paths="")  # fmt: skip
    return pd.concat([table, pd.DataFrame([mean])], ignore_index=True)


def to_markdown(table: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""

    def fmt(v: Any) -> str:
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else "no"
        if isinstance(v, (float, np.floating)):
            return "" if not math.isfinite(float(v)) else f"{float(v):.{digits}f}"
        return str(v)

    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.iterrows():
        lines.append("| " + " | ".join(fmt(r[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(
    runs: pd.DataFrame, csv: Path, md: Path, figure: Path, runs_csv: Path
) -> pd.DataFrame:
    """Write the per-dataset table (CSV, Markdown), the per-run CSV and the figure."""
    table = summarize(runs)
    for path, text in (
        (csv, table.to_csv(index=False)),
        (runs_csv, runs.to_csv(index=False)),
        (md, "# Closed-loop control: energy saved vs the full run\n\n" + to_markdown(table)),
    ):
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)
    plot(table, figure)
    return table


def plot(table: pd.DataFrame, path: Path) -> Path:
    """Grouped bars: energy saved % per dataset (controller live/grid, patience-5, oracle);
    a cross marks a dataset with a tolerance violation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [
        ("energy_saved_pct", "violation", "controller (live)"),
        ("grid_energy_saved_pct", "grid_violation", "controller (grid path)"),
        ("patience_energy_saved_pct", "patience_violation", "patience-5 (live)"),
        ("oracle_energy_saved_pct", None, "oracle (grid)"),
    ]
    x = np.arange(len(table))
    w = 0.2
    fig, ax = plt.subplots(figsize=(1.8 * len(table) + 2, 3.6))
    for i, (col, vcol, label) in enumerate(series):
        vals = table[col].to_numpy(dtype=float)
        ax.bar(x + (i - 1.5) * w, vals, w, label=label)
        if vcol is not None:
            for j, v in enumerate(table[vcol].to_numpy(dtype=float)):
                if v > 0:
                    ax.plot(x[j] + (i - 1.5) * w, vals[j], "kx")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x, table["dataset"].tolist())
    ax.set_ylabel("energy saved vs full run (%)")
    ax.set_title("closed-loop control (x: tolerance violated)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(path)


__all__ = [
    "ACTION_SETS",
    "CachedPredictor",
    "calibrate",
    "calibrate_controller",
    "closed_loop",
    "live_run",
    "load_lodo_model",
    "plot",
    "settings_grid",
    "summarize",
    "tabulate",
    "to_markdown",
    "write_outputs",
]
