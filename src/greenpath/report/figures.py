"""Report figures built from records, trajectories, predictions and path choices.

Every function takes plain DataFrames (the record schema of ``docs/records.md``, the
study's ``trajectories.parquet``, the tidy predictions table of
:mod:`greenpath.report.tables`) and returns a :class:`matplotlib.figure.Figure`; write it
with :func:`greenpath.report.style.save_figure`. Nothing is shown on screen (Agg backend).

Artists that tests and readers care about carry a ``gid`` so they can be counted without
guessing at matplotlib internals:

- ``path:<method>@<k>``: one learning-curve line per (method, intervention epoch);
- ``intervention:<k>``: the vertical marker of an intervention epoch;
- ``end:<method>@<k>``: the end point of a path (cumulative energy, final accuracy);
- ``pareto``: the Pareto front; ``choice:<strategy>``: a strategy's chosen path;
- ``bar:<method>:<component>``: a stacked energy bar; ``epoch:<method>``: per-epoch energy;
- ``scatter:<predictor>:<target>``: predicted-vs-actual points.

Energy is stored in joules; every axis shows J, kJ or kWh, chosen from the largest value
drawn (:func:`greenpath.report.style.energy_scale`), never with an offset. Accuracies are
fractions in the data and % on the axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from greenpath.report.names import predictor_label, strategy_label
from greenpath.report.style import (
    COMPONENT_COLORS,
    ESTIMATE_HATCH,
    METHOD_LABELS,
    energy_scale,
    method_color,
    series_color,
    style,
)

#: Energy components of the record schema, in stacking order.
COMPONENTS: tuple[str, ...] = ("gpu", "cpu", "dram")

#: Linestyles cycled over intervention epochs of the same method.
_LINESTYLES: tuple[object, ...] = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))

#: Markers of highlighted strategy choices in the energy/accuracy figure.
CHOICE_MARKERS: dict[str, dict[str, object]] = {
    "oracle": {"marker": "D", "ms": 11, "mfc": "none", "mew": 2.0, "color": "#000000"},
    "planner": {"marker": "*", "ms": 15, "mfc": "#F0E442", "mew": 1.0, "color": "#000000"},
    "paper": {"marker": "P", "ms": 10, "mfc": "none", "mew": 1.5, "color": "#CC79A7"},
}


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; got {sorted(df.columns)[:20]}")


def _one_dataset(df: pd.DataFrame, dataset: str | None, what: str) -> tuple[pd.DataFrame, str]:
    """Rows of ``dataset`` (or of the only dataset present when ``None``)."""
    _require(df, ["dataset"], what)
    if dataset is None:
        names = sorted(df["dataset"].astype(str).unique())
        if len(names) != 1:
            raise ValueError(f"{what} holds datasets {names}; pass dataset=<one of them>")
        dataset = names[0]
    sub = df[df["dataset"].astype(str) == dataset]
    if sub.empty:
        names = sorted(df["dataset"].astype(str).unique())
        raise ValueError(f"{what} has no rows for dataset {dataset!r}; it holds {names}")
    return sub, dataset


def _study_name(df: pd.DataFrame) -> str:
    if "study" in df.columns and df["study"].notna().any():
        return ", ".join(sorted(df["study"].dropna().astype(str).unique()))
    return ""


def _ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    if "status" in df.columns:
        return df[df["status"].fillna("ok") == "ok"]
    return df


def placeholder_figure(title: str, message: str) -> Figure:
    """A small figure that says why a figure could not be drawn (e.g. no evaluation yet)."""
    with style():
        fig = Figure(figsize=(6.0, 2.0))
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.set_title(title)
        ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
    return fig


# --------------------------------------------------------------------------- learning curves


def learning_curves_figure(records: pd.DataFrame, dataset: str | None = None) -> Figure:
    """Validation accuracy vs epoch of the trunk and every branch of one dataset.

    One line per (method, intervention epoch): the trunk (``base``) over epochs 1..E and
    each branch over its own epochs k+1..E, drawn from the trunk's value at epoch k so that
    it visibly leaves the trunk there. Values are the mean over seeds; with more than one
    seed a band shows the min-max range over seeds. Intervention epochs are dotted vertical
    lines. Rows whose ``status`` is not ``ok`` (diverged, skipped) are left out and listed
    under the axes.

    Args:
        records: per-epoch rows (record schema; needs dataset, seed, method,
            intervention_epoch, epoch, val_accuracy).
        dataset: which dataset; ``None`` when ``records`` holds exactly one.

    Returns:
        The figure (one axes). Lines carry ``gid`` ``path:<method>@<k>``.

    Raises:
        ValueError: missing columns, or the dataset is absent / ambiguous.
    """
    cols = ["seed", "method", "intervention_epoch", "epoch", "val_accuracy"]
    _require(records, cols, "records")
    sub, dataset = _one_dataset(records, dataset, "records")
    ok = _ok_rows(sub).dropna(subset=["val_accuracy"])
    bad = sub.drop(ok.index)
    n_seeds = int(sub["seed"].nunique())
    study = _study_name(sub)

    with style():
        fig = Figure(figsize=(8.0, 4.6))
        ax = fig.add_subplot()
        trunk = ok[ok["method"] == "base"]
        trunk_mean = trunk.groupby("epoch")["val_accuracy"].mean()
        ks = sorted(int(k) for k in ok.loc[ok["method"] != "base", "intervention_epoch"].unique())
        style_of_k = {k: _LINESTYLES[i % len(_LINESTYLES)] for i, k in enumerate(ks)}
        band = n_seeds > 1
        if not trunk.empty:
            _draw_curve(
                ax, trunk, "base", 0, trunk_mean, band, METHOD_LABELS["base"], lw=2.4, zorder=5
            )
        branches = ok[ok["method"] != "base"]
        for (method, k), rows in branches.groupby(["method", "intervention_epoch"], sort=True):
            m, k = str(method), int(k)
            label = f"{METHOD_LABELS.get(m, m)}, k={k}"
            _draw_curve(ax, rows, m, k, trunk_mean, band, label, ls=style_of_k[k], alpha=0.9)
        for k in ks:
            if k >= 1:
                ax.axvline(k, color="#7F7F7F", ls=":", lw=1.0, gid=f"intervention:{k}")
        if ks:
            ax.plot([], [], color="#7F7F7F", ls=":", lw=1.0, label="intervention epoch k")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("validation accuracy (%)")
        band_note = ", band = min-max over seeds" if band else ""
        prefix = f"{study} / " if study else ""
        ax.set_title(
            f"{prefix}{dataset}: validation accuracy (mean of {n_seeds} seed(s){band_note})"
        )
        if not ok.empty:
            ax.set_xlim(left=0)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
        if not bad.empty:
            _note_not_shown(ax, bad)
    return fig


def _draw_curve(
    ax,
    rows: pd.DataFrame,
    method: str,
    k: int,
    trunk_mean: pd.Series,
    band: bool,
    label: str,
    **kw: object,
) -> None:
    """Mean validation accuracy of one path over seeds (gid ``path:<method>@<k>``), a
    branch starting from the trunk's mean at ``k``; with ``band``, the min-max range."""
    g = rows.groupby("epoch")["val_accuracy"].agg(["mean", "min", "max"]).sort_index()
    if method != "base" and k >= 1 and k in trunk_mean.index:
        start = trunk_mean.loc[k]
        g = pd.concat(
            [pd.DataFrame({"mean": [start], "min": [start], "max": [start]}, index=[k]), g]
        )
    x = g.index.to_numpy()
    color = method_color(method)
    ax.plot(x, g["mean"] * 100, color=color, label=label, gid=f"path:{method}@{k}", **kw)
    if band:
        ax.fill_between(x, g["min"] * 100, g["max"] * 100, color=color, alpha=0.12, lw=0)


def _note_not_shown(ax, bad: pd.DataFrame) -> None:
    """Name, under the axes, the paths with rows left out (``method@k (status)``)."""
    names = sorted(
        {
            f"{m}@{int(k)} ({s})"
            for m, k, s in zip(bad["method"], bad["intervention_epoch"], bad["status"], strict=True)
        }
    )
    ax.text(
        0.0,
        -0.16,
        "not shown: " + ", ".join(names[:8]) + (" ..." if len(names) > 8 else ""),
        transform=ax.transAxes,
        fontsize=7,
        va="top",
    )


# -------------------------------------------------------------------- energy vs accuracy


def path_endpoints(trajectories: pd.DataFrame) -> pd.DataFrame:
    """The last row of every path: final validation accuracy and cumulative energy.

    Args:
        trajectories: rows of the study's ``trajectories.parquet``.

    Returns:
        One row per (study, dataset, seed, method, intervention_epoch) with ``end_epoch``,
        ``val_accuracy`` (fraction) and ``energy_j`` (cumulative, J).
    """
    cols = ["dataset", "seed", "method", "intervention_epoch", "epoch", "val_accuracy"]
    _require(trajectories, [*cols, "energy_cum_j"], "trajectories")
    keys = [c for c in ("study", "dataset", "seed", "method", "intervention_epoch")]
    keys = [c for c in keys if c in trajectories.columns]
    last = trajectories.sort_values("epoch").groupby(keys, sort=True).tail(1)
    out = last[[*keys, "epoch", "val_accuracy", "energy_cum_j"]].rename(
        columns={"epoch": "end_epoch", "energy_cum_j": "energy_j"}
    )
    return out.sort_values(keys).reset_index(drop=True)


def pareto_front(energy: Sequence[float], accuracy: Sequence[float]) -> np.ndarray:
    """Indices of the Pareto-optimal points (least energy, most accuracy), by energy.

    A point is on the front when no other point has less-or-equal energy and strictly more
    accuracy, or strictly less energy and equal accuracy. NaN points are never on it.

    >>> pareto_front([3.0, 1.0, 2.0, 4.0], [0.9, 0.5, 0.4, 0.95]).tolist()
    [1, 0, 3]
    """
    e = np.asarray(energy, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    idx = np.flatnonzero(np.isfinite(e) & np.isfinite(a))
    order = idx[np.lexsort((-a[idx], e[idx]))]  # energy ascending, ties: best accuracy first
    front: list[int] = []
    best = -np.inf
    for i in order:
        if a[i] > best:
            front.append(int(i))
            best = a[i]
    return np.array(front, dtype=np.int64)


def energy_accuracy_figure(
    trajectories: pd.DataFrame,
    dataset: str | None = None,
    choices: pd.DataFrame | None = None,
    highlight: Sequence[str] = ("oracle", "planner", "paper"),
) -> Figure:
    """Cumulative energy vs validation accuracy of every path, one panel per seed.

    Each path (trunk, each branch, each early stop) is a faint line through its epochs
    (cumulative energy, accuracy) ending in a marker at its last epoch. The Pareto front of
    those end points (least energy for the accuracy) is a black step line. When ``choices``
    is given, the paths the strategies in ``highlight`` chose on that tree are marked.

    Args:
        trajectories: rows of the study's ``trajectories.parquet``.
        dataset: which dataset; ``None`` when there is exactly one.
        choices: one row per (strategy, dataset, seed) with ``strategy``, ``dataset``,
            ``seed``, ``val_accuracy`` (fraction) and ``energy_j`` (cumulative, J), e.g.
            :func:`greenpath.report.tables.strategy_choices`.
        highlight: strategies to mark (others are ignored).

    Returns:
        The figure. End points carry ``gid`` ``end:<method>@<k>``, the front ``pareto``,
        choices ``choice:<strategy>``.
    """
    sub, dataset = _one_dataset(trajectories, dataset, "trajectories")
    ends = path_endpoints(sub)
    seeds = sorted(int(s) for s in ends["seed"].unique())
    study = _study_name(sub)
    div, unit = energy_scale(float(np.nanmax(sub["energy_cum_j"].to_numpy(float), initial=0.0)))
    if choices is not None and not choices.empty:
        _require(choices, ["strategy", "dataset", "seed", "val_accuracy", "energy_j"], "choices")
        choices = choices[choices["dataset"].astype(str) == dataset]
        choices = choices[choices["strategy"].isin(highlight)]
    else:
        choices = None
    with style():
        fig = Figure(figsize=(min(4.6 * len(seeds), 14.0) + 2.2, 4.4))
        axes = fig.subplots(1, len(seeds), sharey=True, squeeze=False)[0]
        for ax, seed in zip(axes, seeds, strict=True):
            en = ends[ends["seed"] == seed].reset_index(drop=True)
            _draw_paths(ax, sub[sub["seed"] == seed], div)
            _draw_ends_and_front(ax, en, div)
            if choices is not None:
                _draw_choices(ax, choices[choices["seed"] == seed], div)
            ax.set_title(f"seed {seed}")
            ax.set_xlabel(f"cumulative energy ({unit})")
        axes[0].set_ylabel("validation accuracy at the path's last epoch (%)")
        handles = _energy_accuracy_legend(ends, choices, highlight)
        axes[-1].legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5))
        prefix = f"{study} / " if study else ""
        fig.suptitle(f"{prefix}{dataset}: energy vs accuracy of every path")
    return fig


def _draw_paths(ax, trajectories: pd.DataFrame, div: float) -> None:
    """One faint line per (method, intervention epoch): cumulative energy vs accuracy."""
    for (method, _k), rows in trajectories.groupby(["method", "intervention_epoch"], sort=True):
        rows = rows.sort_values("epoch")
        c = method_color(str(method))
        ax.plot(rows["energy_cum_j"] / div, rows["val_accuracy"] * 100, color=c, alpha=0.25, lw=0.8)


def _draw_ends_and_front(ax, ends: pd.DataFrame, div: float) -> None:
    """The paths' end points (gid ``end:<method>@<k>``) and their Pareto front (``pareto``)."""
    for r in ends.itertuples():
        ax.plot(
            r.energy_j / div,
            r.val_accuracy * 100,
            ls="none",
            marker="o",
            ms=5,
            color=method_color(str(r.method)),
            gid=f"end:{r.method}@{int(r.intervention_epoch)}",
            zorder=4,
        )
    front = pareto_front(ends["energy_j"], ends["val_accuracy"])
    if len(front):
        f = ends.iloc[front]
        ax.step(
            f["energy_j"] / div,
            f["val_accuracy"] * 100,
            where="post",
            color="#000000",
            lw=1.2,
            gid="pareto",
            zorder=3,
        )


def _draw_choices(ax, choices: pd.DataFrame, div: float) -> None:
    """A marker (gid ``choice:<strategy>``) at each strategy's chosen path on this tree."""
    for r in choices.itertuples():
        kw = CHOICE_MARKERS.get(str(r.strategy), CHOICE_MARKERS["paper"])
        ax.plot(
            r.energy_j / div,
            r.val_accuracy * 100,
            ls="none",
            zorder=6,
            gid=f"choice:{r.strategy}",
            **kw,
        )


def _energy_accuracy_legend(
    ends: pd.DataFrame, choices: pd.DataFrame | None, highlight: Sequence[str]
) -> list[object]:
    """Legend handles: the methods present, the Pareto front, the strategies marked."""
    handles: list[object] = [
        Patch(color=method_color(m), label=METHOD_LABELS.get(m, m))
        for m in ("base", "freeze", "quant", "stop")
        if (ends["method"] == m).any()
    ]
    handles.append(Line2D([], [], color="#000000", lw=1.2, label="Pareto front"))
    present = set() if choices is None else set(choices["strategy"].astype(str))
    for s in highlight:
        if s in present:
            kw = CHOICE_MARKERS.get(s, CHOICE_MARKERS["paper"])
            label = f"chosen by: {strategy_label(s)}"
            handles.append(Line2D([], [], ls="none", label=label, **kw))
    return handles


# ----------------------------------------------------------------------- energy breakdown


def energy_by_method(records: pd.DataFrame) -> pd.DataFrame:
    """Mean per-epoch energy (J) by method and component, with the estimate share.

    Args:
        records: per-epoch rows (record schema) of ``ok`` status.

    Returns:
        One row per (method, component) with ``energy_j`` (mean over the method's epochs;
        NaN when the component was never read), ``estimate_share`` (fraction of those rows
        whose value is modelled), ``n_epochs`` and ``measured`` (any non-NaN value).
    """
    rows = []
    ok = _ok_rows(records)
    for method, g in ok.groupby("method", sort=False):
        for comp in COMPONENTS:
            col = f"energy_{comp}_j"
            vals = g[col].astype(float) if col in g.columns else pd.Series(np.nan, index=g.index)
            est_col = f"energy_{comp}_estimate"
            est = (
                g.loc[vals.notna(), est_col].fillna(False).astype(bool)
                if est_col in g.columns
                else pd.Series(False, index=vals.index[vals.notna()])
            )
            rows.append(
                {
                    "method": str(method),
                    "component": comp,
                    "energy_j": float(vals.mean()) if vals.notna().any() else np.nan,
                    "estimate_share": float(est.mean()) if len(est) else 0.0,
                    "n_epochs": int(vals.notna().sum()),
                    "measured": bool(vals.notna().any()),
                }
            )
    order = {m: i for i, m in enumerate(("base", "freeze", "quant", "stop"))}
    out = pd.DataFrame(
        rows,
        columns=["method", "component", "energy_j", "estimate_share", "n_epochs", "measured"],
    )
    return out.sort_values(
        ["method", "component"], key=lambda s: s.map(order) if s.name == "method" else s
    ).reset_index(drop=True)


def energy_breakdown_figure(records: pd.DataFrame, dataset: str | None = None) -> Figure:
    """Per-epoch energy of one dataset by method and component (GPU / CPU / DRAM).

    Left: stacked bars of the mean per-epoch energy of each method (over its epochs, seeds
    and intervention epochs), one segment per component; segments whose values are
    modelled (``energy_<c>_estimate``) are hatched and labelled "estimate"; components never
    read (NaN) are named in the legend as "not measured". Right: total per-epoch energy vs
    epoch per method (mean over seeds and intervention epochs), showing warm-up and the
    drop after an intervention.

    Args:
        records: per-epoch rows (record schema).
        dataset: which dataset; ``None`` when there is exactly one.

    Returns:
        The figure. Bars carry ``gid`` ``bar:<method>:<component>``; lines ``epoch:<method>``.
    """
    _require(records, ["method", "epoch"], "records")
    sub, dataset = _one_dataset(records, dataset, "records")
    table = energy_by_method(sub)
    methods = list(dict.fromkeys(table["method"]))
    ok = _ok_rows(sub)
    total = ok["energy_total_j"].astype(float) if "energy_total_j" in ok.columns else None
    max_j = float(np.nanmax(table["energy_j"].groupby(table["method"]).sum().to_numpy(), initial=0))
    if total is not None and total.notna().any():
        max_j = max(max_j, float(total.max()))
    div, unit = energy_scale(max_j)
    study = _study_name(sub)
    with style():
        fig = Figure(figsize=(10.0, 4.2))
        ax, ax2 = fig.subplots(1, 2, width_ratios=[1.0, 1.4])
        _draw_component_bars(ax, table, methods, div, unit)
        if total is not None:
            per_epoch = ok.assign(_t=total).groupby(["method", "epoch"])["_t"].mean()
            _draw_energy_per_epoch(ax2, per_epoch, methods, div)
        ax2.set_xlabel("epoch")
        ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.set_ylabel(f"total energy per epoch ({unit})")
        ax2.set_title("per epoch (mean over seeds and intervention epochs)")
        ax2.legend(loc="best")
        prefix = f"{study} / " if study else ""
        fig.suptitle(f"{prefix}{dataset}: where the energy went")
    return fig


def _draw_component_bars(
    ax, table: pd.DataFrame, methods: Sequence[str], div: float, unit: str
) -> None:
    """Stacked bars of :func:`energy_by_method`'s ``table``, one per method (gid
    ``bar:<method>:<component>``); estimated segments hatched and labelled, with a legend."""
    x = np.arange(len(methods))
    bottom = np.zeros(len(methods))
    any_estimate = False
    legend: list[object] = []
    for comp in COMPONENTS:
        t = table[table["component"] == comp].set_index("method").reindex(methods)
        vals = t["energy_j"].fillna(0.0).to_numpy() / div
        measured = bool(t["measured"].fillna(False).any())
        for i, m in enumerate(methods):
            share = float(t["estimate_share"].iloc[i]) if measured else 0.0
            hatch = ESTIMATE_HATCH if share > 0 else None
            any_estimate |= hatch is not None
            _draw_bar_segment(ax, x[i], bottom[i], vals[i], comp, hatch, gid=f"bar:{m}:{comp}")
        bottom += vals
        label = comp.upper() + ("" if measured else " (not measured)")
        legend.append(Patch(facecolor=COMPONENT_COLORS[comp], edgecolor="#333333", label=label))
    if any_estimate:
        legend.append(
            Patch(
                facecolor="white",
                edgecolor="#333333",
                hatch=ESTIMATE_HATCH,
                label="hatched: estimate (modelled)",
            )
        )
    ax.set_xticks(x, [METHOD_LABELS.get(m, m) for m in methods], rotation=15)
    ax.set_ylabel(f"mean energy per epoch ({unit})")
    ax.set_title("by method and component")
    ax.legend(handles=legend, loc="upper right", fontsize=7)


def _draw_bar_segment(
    ax, x: float, bottom: float, value: float, comp: str, hatch: str | None, gid: str
) -> None:
    """One component's segment of a method's bar; an estimate is hatched and labelled."""
    bar = ax.bar(
        x,
        value,
        bottom=bottom,
        color=COMPONENT_COLORS[comp],
        edgecolor="#333333",
        linewidth=0.5,
        hatch=hatch,
        width=0.6,
    )
    bar.patches[0].set_gid(gid)
    if hatch and value > 0:
        ax.text(
            x,
            bottom + value / 2,
            "estimate",
            ha="center",
            va="center",
            fontsize=7,
            bbox={"fc": "white", "ec": "none", "alpha": 0.7, "pad": 0.5},
        )


def _draw_energy_per_epoch(ax, per_epoch: pd.Series, methods: Sequence[str], div: float) -> None:
    """Total energy per epoch of each method (``per_epoch``: mean J by (method, epoch));
    one line per method (gid ``epoch:<method>``)."""
    for m in methods:
        if m in per_epoch.index.get_level_values(0):
            s = per_epoch.loc[m].dropna()
            ax.plot(
                s.index,
                s.to_numpy() / div,
                marker="o",
                ms=3,
                color=method_color(m),
                label=METHOD_LABELS.get(m, m),
                gid=f"epoch:{m}",
            )


# ------------------------------------------------------------------ predicted vs actual


def predictions_figure(predictions: pd.DataFrame, title: str = "") -> Figure:
    """Predicted vs actual validation accuracy and per-epoch energy, per predictor.

    Rows: validation accuracy (%), per-epoch energy. Left column: predicted vs actual,
    one colour per predictor, with the identity line. Right column: distribution
    (box plot) of the absolute percentage error ``|predicted - actual| / |actual| x 100``
    per predictor, with its mean (the MAPE) written above each box.

    Args:
        predictions: tidy table (:data:`greenpath.report.tables.PREDICTION_COLUMNS`):
            ``predictor``, ``target`` (``val_accuracy`` or ``energy_j``), ``actual``,
            ``predicted``. Rows with NaN or zero ``actual`` are dropped from the errors.
        title: figure title.

    Returns:
        The figure. Point clouds carry ``gid`` ``scatter:<predictor>:<target>``.
    """
    _require(predictions, ["predictor", "target", "actual", "predicted"], "predictions")
    preds = sorted(predictions["predictor"].astype(str).unique())
    targets = [t for t in ("val_accuracy", "energy_j") if (predictions["target"] == t).any()]
    if not targets:
        raise ValueError("predictions hold no 'val_accuracy' or 'energy_j' target rows")
    with style():
        fig = Figure(figsize=(10.0, 3.8 * len(targets)))
        axes = fig.subplots(len(targets), 2, squeeze=False)
        for row, target in enumerate(targets):
            d = predictions[predictions["target"] == target].dropna(subset=["actual", "predicted"])
            if target == "val_accuracy":
                scale, unit, name = 100.0, "%", "validation accuracy"
            else:
                div, u = energy_scale(float(d["actual"].abs().max()) if len(d) else 0.0)
                scale, unit, name = 1.0 / div, u, "energy per epoch"
            ax, axe = axes[row]
            errors = _draw_predicted_vs_actual(ax, d, preds, target, scale)
            ax.set_xlabel(f"actual {name} ({unit})")
            ax.set_ylabel(f"predicted {name} ({unit})")
            ax.set_title(f"{name}: predicted vs actual")
            ax.legend(loc="upper left")
            if errors:
                _draw_error_boxes(axe, errors)
            axe.set_ylabel("absolute percentage error (%)")
            axe.set_title(f"{name}: error per predictor (whiskers 1.5 IQR)", pad=14)
        if title:
            fig.suptitle(title)
    return fig


def _draw_predicted_vs_actual(
    ax, d: pd.DataFrame, preds: Sequence[str], target: str, scale: float
) -> list[tuple[str, str, np.ndarray]]:
    """One point cloud per predictor (gid ``scatter:<predictor>:<target>``, values x
    ``scale``) and the identity line; returns (label, colour, absolute % errors) of each
    predictor drawn, the errors over rows with a non-zero actual."""
    errors = []
    for i, p in enumerate(preds):
        g = d[d["predictor"].astype(str) == p]
        if g.empty:
            continue
        c = series_color(i)
        ax.plot(
            g["actual"] * scale,
            g["predicted"] * scale,
            ls="none",
            marker="o",
            ms=3,
            alpha=0.55,
            color=c,
            label=predictor_label(p),
            gid=f"scatter:{p}:{target}",
        )
        nz = g[g["actual"].abs() > 0]
        ape = (nz["predicted"] - nz["actual"]).abs() / nz["actual"].abs() * 100
        errors.append((predictor_label(p), c, ape.to_numpy()))
    if len(d):
        lo = float(min(d["actual"].min(), d["predicted"].min())) * scale
        hi = float(max(d["actual"].max(), d["predicted"].max())) * scale
        ax.plot([lo, hi], [lo, hi], color="#000000", lw=0.8, ls="--", label="y = x")
    return errors


def _draw_error_boxes(ax, errors: Sequence[tuple[str, str, np.ndarray]]) -> None:
    """A box of each predictor's absolute % errors, its MAPE written above it."""
    bp = ax.boxplot(
        [e for _, _, e in errors],
        showfliers=False,
        patch_artist=True,
        medianprops={"color": "#000000"},
    )
    ax.set_xticks(range(1, len(errors) + 1), [label for label, _, _ in errors], rotation=15)
    for patch, (_, c, _) in zip(bp["boxes"], errors, strict=True):
        patch.set_facecolor(c)
        patch.set_alpha(0.5)
    for j, (_, _, e) in enumerate(errors, start=1):
        if len(e):
            ax.annotate(
                f"MAPE {np.mean(e):.1f}%",
                (j, 1.0),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="bottom",
                fontsize=7,
            )
