"""The headline of a study: what each strategy would have saved, and what to conclude.

Every figure is read from the paths output (``greenpath paths``, the workflow's paths JSON;
shape in :mod:`greenpath.report.tables`): ``strategies.<key>.pooled.all`` gives energy saved
(``energy_saved_pct_mean``, % of the full trunk's energy, mean over trees), accuracy change
(``accuracy_change_pts_mean``, points), violations (trees losing more than the tolerance)
out of ``n_trees``, and regret against the oracle (``regret_mean``, unit in
``objective.regret_unit``). ``strategies.<key>.per_dataset`` gives the same per dataset.
Nothing here recomputes them; the conclusion only picks rows and subtracts two of them.

Whether the energy was measured or estimated comes from the records' ``energy_<c>_estimate``
flags (the paths output does not carry it).

The HTML written here is a fragment with inline styles and ASCII text (entities for the
rest), so that it can sit inside the Snakemake report's start page, an iframe, or the
standalone page of a study without styles leaking in or out.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from greenpath.report.names import strategy_label, strategy_role, strategy_sort_key
from greenpath.report.tables import strategy_items

#: The study name of the paper's EAT-IT data (``greenpath.modeling.eatit``).
EATIT_STUDY = "eatit"

#: The paper's published result (abstract of the Computer Standards & Interfaces 2024
#: paper): its method, score objective, its 12 datasets.
PUBLISHED = {"energy_saved_pct": 56.5, "accuracy_change": "+2.38"}

#: Figures recomputed with the authors' own analysis (analysis_rq2.Rmd) on the 9 datasets
#: of EAT-IT, constrained objective with a 1-point tolerance.
AUTHORS_PROTOCOL: tuple[dict[str, Any], ...] = (
    {"strategy": "oracle", "energy_saved_pct": 81.2, "violations": 0},
    {"strategy": "paper", "energy_saved_pct": 59.4, "violations": 1},
    {"strategy": "patience_5", "energy_saved_pct": 66.5, "violations": 1},
)

#: Plain-words objective, by objective name (``{tol}``: tolerance in points).
OBJECTIVE_WORDS: dict[str, str] = {
    "constrained": "least energy with a final accuracy at most {tol} below the full trunk's",
    "score": "highest accuracy per kWh (the paper's score)",
    "weighted": "highest accuracy minus a price per kWh",
}

#: Regret units by objective name, used when the paths output does not state one.
REGRET_UNITS: dict[str, str] = {
    "constrained": "points of the full trunk's energy",
    "score": "% of the oracle's score",
    "weighted": "accuracy points",
}

#: Energy sources of the records (``energy_<c>_source``) in words; others as they are.
SOURCE_WORDS: dict[str, str] = {
    "imported": "imported from the published data",
    "nvml_counter": "NVML energy counter",
    "nvml_power_integration": "NVML power readings",
    "rapl": "RAPL",
}

_TABLE = "border-collapse:collapse;margin:0.4em 0;font-size:0.9em"
_TH = "text-align:right;padding:0.2em 0.5em;border-bottom:1px solid #999;vertical-align:bottom"
_TD = "text-align:right;padding:0.2em 0.5em;border-bottom:1px solid #ddd"
_VIOLATION = "background:#FBE3D6"
_FONT = "font-family:system-ui,sans-serif"


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _count(x: Any, default: int = 0) -> int:
    f = _num(x)
    return int(f) if np.isfinite(f) else default


@dataclass(frozen=True)
class StrategyRow:
    """One strategy's pooled figures (``pooled.all`` of the paths output)."""

    key: str
    label: str
    role: str
    n_trees: int
    energy_saved_pct: float
    accuracy_change_pts: float
    violations: float
    regret: float


@dataclass
class Headline:
    """What the headline of one study says (see the module doc for where each comes from).

    Attributes:
        study: study name.
        objective: objective name; ``objective_words`` in plain words.
        tolerance_points: accuracy tolerance in points (NaN when the output lacks it).
        regret_unit: unit of the regret column.
        datasets, seeds: those of the trees, sorted.
        n_trees: trees (dataset x seed) per strategy.
        flagged: datasets at chance level (kept in the figures).
        energy: measured or estimated, in words.
        rows: strategies in display order (the reference left out).
        conclusion: one to three sentences.
    """

    study: str
    objective: str
    objective_words: str
    tolerance_points: float
    regret_unit: str
    datasets: list[str]
    seeds: list[int]
    n_trees: int
    flagged: list[str]
    energy: str
    rows: list[StrategyRow] = field(default_factory=list)
    conclusion: list[str] = field(default_factory=list)

    @property
    def published(self) -> bool:
        """Whether the paper's figures belong beside this study's (EAT-IT)."""
        return self.study == EATIT_STUDY


def strategy_rows(paths_json: Any, subset: str = "all") -> list[StrategyRow]:
    """Every strategy's pooled figures, in display order (:func:`strategy_sort_key`)."""
    rows = []
    for i, (key, s) in enumerate(strategy_items(paths_json)):
        p = (s.get("pooled") or {}).get(subset) or {}
        rows.append(
            (
                strategy_sort_key(key, i),
                StrategyRow(
                    key=key,
                    label=strategy_label(key),
                    role=strategy_role(key),
                    n_trees=_count(p.get("n_trees")),
                    energy_saved_pct=_num(p.get("energy_saved_pct_mean")),
                    accuracy_change_pts=_num(p.get("accuracy_change_pts_mean")),
                    violations=_num(p.get("violations")),
                    regret=_num(p.get("regret_mean")),
                ),
            )
        )
    return [r for _, r in sorted(rows, key=lambda x: x[0])]


def _trees(paths_json: Any) -> tuple[list[str], list[int]]:
    datasets: set[str] = set()
    seeds: set[int] = set()
    for _, s in strategy_items(paths_json):
        for t in s.get("per_tree") or []:
            if t.get("dataset") is not None:
                datasets.add(str(t["dataset"]))
            if t.get("seed") is not None:
                seeds.add(int(t["seed"]))
        for d in s.get("per_dataset") or []:
            if d.get("dataset") is not None:
                datasets.add(str(d["dataset"]))
    return sorted(datasets), sorted(seeds)


def energy_provenance(records: pd.DataFrame | None) -> str:
    """Whether the joules of ``records`` were measured or modelled, in words.

    Share = joules whose ``energy_<c>_estimate`` flag is set / all joules read (null
    components are not measured and count in neither).
    """
    if records is None or records.empty:
        return "unknown (no records)"
    est_j, all_j, measured, modelled = 0.0, 0.0, set(), set()
    for c in ("gpu", "cpu", "dram"):
        col = f"energy_{c}_j"
        if col not in records.columns:
            continue
        vals = pd.to_numeric(records[col], errors="coerce")
        ok = vals.notna()
        flag_col = f"energy_{c}_estimate"
        flags = (
            records[flag_col].astype("boolean").fillna(False).astype(bool)
            if flag_col in records.columns
            else pd.Series(False, index=records.index)
        )
        src_col = f"energy_{c}_source"
        src = (
            records[src_col].astype(str)
            if src_col in records.columns
            else pd.Series("unknown source", index=records.index)
        )
        est_j += float(vals[ok & flags].sum())
        all_j += float(vals[ok].sum())
        measured |= {f"{c.upper()}: {SOURCE_WORDS.get(s, s)}" for s in src[ok & ~flags].unique()}
        if (ok & flags).any():
            modelled.add(c.upper())
    if all_j <= 0:
        return "not measured (no energy in the records)"
    share = est_j / all_j * 100.0
    if share >= 99.95:
        return (
            "estimated: every joule is a modelled estimate ("
            + ", ".join(sorted(modelled))
            + "; no energy counter was readable), so compare strategies within this run"
        )
    if share <= 0.05:
        return "measured (" + ", ".join(sorted(measured)) + ")"
    return (
        f"mixed: {share:.0f} % of the joules are modelled estimates ("
        + ", ".join(sorted(modelled))
        + "), the rest measured ("
        + ", ".join(sorted(measured))
        + ")"
    )


def _points(x: float) -> str:
    return f"{x:g} point" + ("" if x == 1 else "s")


def _violations(r: StrategyRow) -> str:
    v = int(r.violations) if np.isfinite(r.violations) else None
    if v is None:
        return "violations not reported"
    if v == 0:
        return f"no violation in {r.n_trees} trees"
    return f"{v} violation{'s' if v != 1 else ''} in {r.n_trees} trees"


def _rank(r: StrategyRow) -> tuple[float, float]:
    v = r.violations if np.isfinite(r.violations) else math.inf
    return v, -r.energy_saved_pct


def conclude(rows: Sequence[StrategyRow], tolerance_points: float) -> list[str]:
    """One to three sentences: which strategy saved the most within the tolerance, by how
    much over patience early stopping, and the oracle's bound (figures as read)."""
    usable = [r for r in rows if r.n_trees > 0 and np.isfinite(r.energy_saved_pct)]
    cands = [r for r in usable if r.role not in ("bound", "reference")]
    tol = _points(tolerance_points) if np.isfinite(tolerance_points) else "the tolerance"
    out: list[str] = []
    if not cands:
        return ["The paths output holds no strategy to compare yet."]
    within = [r for r in cands if r.violations == 0]
    best = max(within, key=lambda r: r.energy_saved_pct) if within else min(cands, key=_rank)
    if within:
        out.append(
            f"Within the tolerance of {tol}, {best.label} saved the most energy: "
            f"{best.energy_saved_pct:.1f} % of the full trunk's, {_violations(best)}, "
            f"accuracy change {best.accuracy_change_pts:+.2f} points."
        )
    else:
        out.append(
            f"No strategy kept every tree within the tolerance of {tol}; the fewest "
            f"violations: {best.label}, {_violations(best)}, "
            f"{best.energy_saved_pct:.1f} % of the full trunk's energy saved."
        )
    patience = [r for r in cands if r.role == "patience"]
    if patience and best.role != "patience":
        p = min(patience, key=_rank)
        # the difference of the figures as shown, so that the reader's arithmetic agrees
        d = round(best.energy_saved_pct, 1) - round(p.energy_saved_pct, 1)
        more = "more" if d >= 0 else "less"
        out.append(
            f"That is {abs(d):.1f} points {more} than the best patience early stopping, "
            f"{p.label} ({p.energy_saved_pct:.1f} % saved, {_violations(p)})."
        )
    elif best.role == "patience":
        planners = [r for r in cands if r.role == "planner"]
        if planners:
            q = min(planners, key=_rank)
            out.append(
                f"Patience early stopping did best here; the best planner, {q.label}, "
                f"saved {q.energy_saved_pct:.1f} % ({_violations(q)})."
            )
    bound = [r for r in usable if r.role == "bound"]
    if bound:
        o = bound[0]
        out.append(
            f"The oracle, choosing with hindsight, bounds what any strategy could save: "
            f"{o.energy_saved_pct:.1f} %."
        )
    return out


def read_headline(paths_json: Any, study: str, records: pd.DataFrame | None = None) -> Headline:
    """The :class:`Headline` of one study from its paths output (and records for the
    energy's provenance)."""
    doc = paths_json if isinstance(paths_json, Mapping) else {}
    obj = doc.get("objective") or {}
    name = str(obj.get("name") or "constrained")
    tol_pts = _num(obj.get("tolerance_points"))
    if not np.isfinite(tol_pts):
        tol_pts = _num(obj.get("tolerance")) * 100.0
    words = OBJECTIVE_WORDS.get(name, name).format(
        tol=_points(tol_pts) if np.isfinite(tol_pts) else "the tolerance"
    )
    unit = str(obj.get("regret_unit") or REGRET_UNITS.get(name, "objective's unit"))
    unit = unit.replace("percentage points", "points")
    rows = [r for r in strategy_rows(paths_json) if r.role != "reference"]
    datasets, seeds = _trees(paths_json)
    n_trees = _count(doc.get("n_trees"), max((r.n_trees for r in rows), default=0))
    flagged = list(doc.get("flagged_datasets") or [])
    return Headline(
        study=study,
        objective=name,
        objective_words=words,
        tolerance_points=tol_pts,
        regret_unit=unit,
        datasets=datasets,
        seeds=seeds,
        n_trees=n_trees,
        flagged=[str(f) for f in flagged],
        energy=energy_provenance(records),
        rows=rows,
        conclusion=conclude(rows, tol_pts),
    )


# ----------------------------------------------------------------------------- HTML


def _fmt(x: float, spec: str) -> str:
    return format(x, spec) if np.isfinite(x) else "&ndash;"


def _cell(value: float, text: str, name: str, extra: str = "") -> str:
    data = f' data-field="{name}"' + (f' data-value="{value!r}"' if np.isfinite(value) else "")
    return f'<td style="{_TD}{extra}"{data}>{text}</td>'


def _headline_table(h: Headline) -> str:
    heads = [
        "strategy",
        "energy saved (% of the full trunk's energy)",
        "accuracy change (points)",
        f"tolerance violations (trees, of {h.n_trees})",
        f"regret vs the oracle ({h.regret_unit})",
    ]
    th = "".join(
        f'<th style="{_TH}{";text-align:left" if i == 0 else ""}">{html.escape(t)}</th>'
        for i, t in enumerate(heads)
    )
    body = []
    for r in h.rows:
        bad = np.isfinite(r.violations) and r.violations > 0
        bold = ";font-weight:bold" if r.role == "bound" else ""
        body.append(
            f'<tr data-strategy="{html.escape(r.key)}">'
            f'<td style="{_TD};text-align:left;white-space:nowrap{bold}">'
            f"{html.escape(r.label)}</td>"
            + _cell(r.energy_saved_pct, _fmt(r.energy_saved_pct, ".1f"), "energy_saved_pct")
            + _cell(
                r.accuracy_change_pts, _fmt(r.accuracy_change_pts, "+.2f"), "accuracy_change_pts"
            )
            + _cell(
                r.violations,
                f"{int(r.violations)} / {r.n_trees}" if np.isfinite(r.violations) else "&ndash;",
                "violations",
                ";" + _VIOLATION if bad else "",
            )
            + _cell(r.regret, _fmt(r.regret, ".1f"), "regret")
            + "</tr>"
        )
    return (
        f'<table class="greenpath-headline-table" style="{_TABLE}"><thead><tr>{th}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _published_table(h: Headline) -> str:
    th = "".join(
        f'<th style="{_TH}{";text-align:left" if i < 2 else ""}">{t}</th>'
        for i, t in enumerate(
            [
                "source",
                "strategy",
                "energy saved (% of the full trunk's energy)",
                "accuracy change (points)",
                "tolerance violations (datasets)",
            ]
        )
    )
    left = f"{_TD};text-align:left"
    rows = [
        f'<tr><td style="{left}">paper, published (12 datasets, score)</td>'
        f'<td style="{left}">{html.escape(strategy_label("paper"))}</td>'
        f'<td style="{_TD}">{PUBLISHED["energy_saved_pct"]:.1f}</td>'
        f'<td style="{_TD}">{PUBLISHED["accuracy_change"]}*</td>'
        f'<td style="{_TD}">&ndash;</td></tr>'
    ]
    for r in AUTHORS_PROTOCOL:
        rows.append(
            f'<tr><td style="{left}">authors\' analysis, these 9 datasets '
            f"(constrained, 1 point)</td>"
            f'<td style="{left}">{html.escape(strategy_label(r["strategy"]))}</td>'
            f'<td style="{_TD}">{r["energy_saved_pct"]:.1f}</td>'
            f'<td style="{_TD}">&ndash;</td><td style="{_TD}">{r["violations"]} / 9</td></tr>'
        )
    return (
        f'<p style="margin:0.6em 0 0.1em 0"><b>The paper&#39;s figures</b></p>'
        f'<table class="greenpath-published" style="{_TABLE}"><thead><tr>{th}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        '<p style="font-size:0.8em;color:#555;margin:0">* the paper writes '
        "&ldquo;+2.38%&rdquo; without saying whether relative or in points.</p>"
    )


def headline_html(h: Headline) -> str:
    """The headline as an HTML fragment (``<section id="headline-<study>">``)."""
    n_ds, n_seeds = len(h.datasets), len(h.seeds)
    tol = _points(h.tolerance_points) if np.isfinite(h.tolerance_points) else "not stated"
    facts = [
        f"<b>Objective:</b> {html.escape(h.objective_words)} ({html.escape(h.objective)})",
        f"<b>tolerance:</b> {tol} of accuracy",
        f"<b>trees:</b> {n_ds} dataset{'s' if n_ds != 1 else ''} &times; {n_seeds} "
        f"seed{'s' if n_seeds != 1 else ''} = {h.n_trees}",
        f"<b>energy:</b> {html.escape(h.energy)}",
    ]
    flagged = ""
    if h.flagged:
        flagged = (
            '<p style="font-size:0.85em;margin:0.2em 0">At chance level (kept in these '
            f"figures; the strategy table also shows them left out): "
            f"{html.escape(', '.join(h.flagged))}.</p>"
        )
    if not h.rows:
        body = (
            "<p>No paths output for this study yet: run the paths stage "
            "(<code>greenpath paths</code> or the workflow's paths rule).</p>"
        )
    else:
        body = _headline_table(h) + flagged + (_published_table(h) if h.published else "")
    conclusion = "".join(f"{html.escape(s)} " for s in h.conclusion).strip()
    return (
        f'<section class="greenpath-headline" id="headline-{html.escape(h.study)}" '
        f'data-study="{html.escape(h.study)}" style="margin:0 0 1.2em 0;{_FONT}">'
        f'<h2 style="margin:0.2em 0">{html.escape(h.study)}: what each strategy would '
        "have saved</h2>"
        f'<p class="greenpath-conclusion" style="font-size:1.05em;margin:0.3em 0">'
        f"{conclusion}</p>"
        f'<p style="font-size:0.85em;margin:0.3em 0">{"; ".join(facts)}.</p>'
        f"{body}</section>"
    )


# ------------------------------------------------------------------------ per dataset


def per_dataset_table(paths_json: Any) -> pd.DataFrame:
    """One row per (strategy, dataset) from ``strategies.<key>.per_dataset``.

    Returns:
        Columns ``strategy`` (key), ``label``, ``dataset``, ``flagged``, ``n_trees``,
        ``energy_saved_pct``, ``accuracy_change_pts``, ``violations``; strategies in display
        order, the reference left out.
    """
    order = {r.key: i for i, r in enumerate(strategy_rows(paths_json))}
    rows = []
    for key, s in strategy_items(paths_json):
        if strategy_role(key) == "reference":
            continue
        for d in s.get("per_dataset") or []:
            rows.append(
                {
                    "strategy": key,
                    "label": strategy_label(key),
                    "dataset": str(d.get("dataset")),
                    "flagged": bool(d.get("flagged", False)),
                    "n_trees": _num(d.get("n_trees")),
                    "energy_saved_pct": _num(d.get("energy_saved_pct_mean")),
                    "accuracy_change_pts": _num(d.get("accuracy_change_pts_mean")),
                    "violations": _num(d.get("violations")),
                }
            )
    cols = [
        "strategy",
        "label",
        "dataset",
        "flagged",
        "n_trees",
        "energy_saved_pct",
        "accuracy_change_pts",
        "violations",
    ]
    df = pd.DataFrame(rows, columns=cols)
    if df.empty:
        return df
    df["_o"] = df["strategy"].map(order)
    return (
        df.sort_values(["_o", "dataset"], kind="stable").drop(columns="_o").reset_index(drop=True)
    )


def per_dataset_html(table: pd.DataFrame, study: str = "") -> str:
    """Strategies x datasets: energy saved (%) and accuracy change (points) per dataset,
    cells of a dataset where a tree broke the tolerance shaded and marked with the count."""
    title = (
        f"{html.escape(study)}: each strategy on each dataset"
        if study
        else "Each strategy on each dataset"
    )
    if table.empty:
        return (
            f'<section class="greenpath-per-dataset"><h3>{title}</h3>'
            "<p>No per-dataset figures in the paths output yet.</p></section>"
        )
    datasets = list(dict.fromkeys(table.sort_values("dataset")["dataset"]))
    flagged = set(table.loc[table["flagged"], "dataset"])
    top = "".join(
        f'<th colspan="2" style="{_TH};text-align:center">{html.escape(d)}'
        + (" (chance level)" if d in flagged else "")
        + "</th>"
        for d in datasets
    )
    sub = "".join(
        f'<th style="{_TH}">energy saved (%)</th><th style="{_TH}">accuracy change (points)</th>'
        for _ in datasets
    )
    body = []
    for key, g in table.groupby("strategy", sort=False):
        g = g.set_index("dataset")
        label = html.escape(g["label"].iloc[0])
        cells = [f'<td style="{_TD};text-align:left;white-space:nowrap">{label}</td>']
        for d in datasets:
            if d not in g.index:
                cells.append(f'<td style="{_TD}">&ndash;</td><td style="{_TD}">&ndash;</td>')
                continue
            r = g.loc[d]
            v = r["violations"]
            bad = np.isfinite(v) and v > 0
            mark = f" &#10007;{int(v)}/{int(r['n_trees'])}" if bad else ""
            shade = (";white-space:nowrap;" + _VIOLATION) if bad else ""
            cells.append(
                f'<td style="{_TD}{shade}">{_fmt(r["energy_saved_pct"], ".1f")}</td>'
                f'<td style="{_TD}{shade}" data-violations="{int(v) if np.isfinite(v) else ""}">'
                f"{_fmt(r['accuracy_change_pts'], '+.2f')}{mark}</td>"
            )
        body.append(f'<tr data-strategy="{html.escape(str(key))}">{"".join(cells)}</tr>')
    return (
        f'<section class="greenpath-per-dataset" style="{_FONT}">'
        f'<h3 style="margin:0.3em 0">{title}</h3>'
        f'<div style="overflow-x:auto"><table style="{_TABLE}"><thead><tr>'
        f'<th style="{_TH};text-align:left" rowspan="2">strategy</th>{top}</tr><tr>{sub}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table></div>"
        '<p style="font-size:0.8em;color:#555;margin:0">Energy saved: % of the full '
        "trunk&#39;s energy, mean over the dataset&#39;s seeds; accuracy change: points against "
        "the full trunk. Shaded, with &#10007; trees/seeds: the dataset&#39;s trees where the "
        "strategy lost more accuracy than the tolerance.</p></section>"
    )
