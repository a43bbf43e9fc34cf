"""Tables of the report: strategy outcomes and predictor errors next to the paper's figures.

Inputs are the JSON documents of the modeling and paths stages, read leniently so that a
missing section yields an empty table instead of an error:

- *paths JSON* (``greenpath paths``): ``{"strategies": {name: summary}}`` (or a list of
  ``{"name": ..., **summary}``), each summary as written by
  :func:`greenpath.paths.report.summarize`: ``pooled.all`` / ``pooled.without_flagged``
  with ``energy_saved_pct_mean``, ``accuracy_change_pts_mean``, ``violations``,
  ``regret_mean``, ``n_trees``, and ``per_tree`` rows (the chosen path of each tree);
- *evaluation JSON* (``greenpath evaluate``, :func:`greenpath.modeling.evaluate.evaluate_lodo`):
  one document per predictor, or ``{name: document}``, or a list of documents; pooled
  one-step MAPE under ``pooled.<all|without_flagged>.one_step.<paper|live>`` and, when
  evaluated with ``tables=True``, the per-row one-step table under ``tables.one_step``.

The paper's published figures and the figures recomputed with the authors' analysis on the
9 EAT-IT datasets are constants here, each with its source, so that the report always shows
them side by side. Strategy and predictor names are shown as
:mod:`greenpath.report.names` labels them.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Columns of the tidy predictions table used by :func:`greenpath.report.figures.predictions_figure`.
#: One row per (predictor, target, path epoch); ``target`` is ``val_accuracy`` (fraction) or
#: ``energy_j`` (J per epoch); ``history`` is ``live`` or ``paper`` (see modeling.evaluate).
PREDICTION_COLUMNS: tuple[str, ...] = (
    "study",
    "dataset",
    "seed",
    "method",
    "intervention_epoch",
    "epoch",
    "predictor",
    "history",
    "target",
    "actual",
    "predicted",
)

#: Published and recomputed figures, side by side with ours in the summary table.
#: ``energy_saved_pct``: % of the full-length trunk's energy; ``accuracy_change``: as
#: published (the paper writes "+2.38%", not saying whether relative or in points).
PAPER_STRATEGY_FIGURES: tuple[dict[str, Any], ...] = (
    {
        "source": "paper (published, EAT-IT)",
        "strategy": "paper's method",
        "energy_saved_pct": 56.5,
        "accuracy_change": "+2.38*",
        "violations": None,
        "regret": None,
        "note": "Computer Standards & Interfaces 2024, abstract: score maximisation",
    },
    {
        "source": "authors' analysis on the 9 EAT-IT datasets (constrained, 1 point)",
        "strategy": "oracle",
        "energy_saved_pct": 81.2,
        "accuracy_change": None,
        "violations": 0,
        "regret": 0.0,
        "note": "best measured path per dataset",
    },
    {
        "source": "authors' analysis on the 9 EAT-IT datasets (constrained, 1 point)",
        "strategy": "paper's method",
        "energy_saved_pct": 59.4,
        "accuracy_change": None,
        "violations": 1,
        "regret": None,
        "note": "authors' savings simulation, epochs 6 to 50",
    },
    {
        "source": "authors' analysis on the 9 EAT-IT datasets (constrained, 1 point)",
        "strategy": "patience 5, best epoch restored",
        "energy_saved_pct": 66.5,
        "accuracy_change": None,
        "violations": 1,
        "regret": None,
        "note": "Keras-style early stopping",
    },
)

#: One-step MAPE (%) published by the paper and recomputed with the authors' analysis.
PAPER_MAPE_FIGURES: tuple[dict[str, Any], ...] = (
    {
        "source": "paper (published, EAT-IT)",
        "predictor": "paper",
        "acc_mape_pct": 8.4,
        "energy_mape_pct": 14.3,
        "score_mape_pct": 8.9,
    },
    {
        "source": "authors' analysis on the 9 EAT-IT datasets (zero accuracies as 0.01)",
        "predictor": "paper",
        "acc_mape_pct": None,
        "energy_mape_pct": 13.3,
        "score_mape_pct": 11.2,
    },
)


def load_json(path: str | os.PathLike[str] | None) -> Any:
    """Read a JSON file; ``None`` or a missing file gives ``None``.

    Raises:
        ValueError: the file exists but is not valid JSON (names it).
    """
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p} is not valid JSON ({exc}); rerun the rule that writes it") from exc


def strategy_items(paths_json: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """``(key, summary)`` pairs of a paths output: a ``strategies`` map, or a list of
    summaries named by ``name`` (or ``strategy``). Fixed stops (``stop_<k>``) are kept only
    at the trees' decision epochs when the output lists them (``decision_epochs``): the
    paths output has a fixed stop at every epoch, the report shows those a grid branches at.
    """
    if not paths_json:
        return []
    s = paths_json.get("strategies", paths_json) if isinstance(paths_json, Mapping) else paths_json
    if isinstance(s, Mapping):
        out = [(str(k), v) for k, v in s.items() if isinstance(v, Mapping)]
    else:
        out = []
        for item in s or []:
            if isinstance(item, Mapping):
                name = item.get("name") or item.get("strategy")
                if name is not None:
                    out.append((str(name), item))
    shown = paths_json.get("decision_epochs") if isinstance(paths_json, Mapping) else None
    if shown:
        keep = {f"stop_{int(k)}" for k in shown}
        out = [(k, v) for k, v in out if not re.fullmatch(r"stop_\d+", k) or k in keep]
    return out


def _num(x: Any) -> float:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return math.nan
    return f


def strategy_table(paths_json: Any, subset: str = "all") -> pd.DataFrame:
    """One row per strategy with greenpath's pooled figures.

    Args:
        paths_json: the paths document (see module doc); ``None`` gives an empty table.
        subset: ``all`` or ``without_flagged`` (chance-level datasets left out).

    Returns:
        Columns ``strategy``, ``energy_saved_pct`` (% of the full trunk's cumulative
        energy, mean over trees), ``accuracy_change_pts`` (points), ``violations`` (trees
        losing more than the tolerance), ``regret`` (mean, objective's unit), ``n_trees``.
    """
    rows = []
    for name, s in strategy_items(paths_json):
        pooled = s.get("pooled", {})
        p = pooled.get(subset) or {}
        rows.append(
            {
                "strategy": name,
                "energy_saved_pct": _num(p.get("energy_saved_pct_mean")),
                "accuracy_change_pts": _num(p.get("accuracy_change_pts_mean")),
                "violations": _num(p.get("violations")),
                "regret": _num(p.get("regret_mean")),
                "n_trees": _num(p.get("n_trees")),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "strategy",
            "energy_saved_pct",
            "accuracy_change_pts",
            "violations",
            "regret",
            "n_trees",
        ],
    )


def strategy_choices(paths_json: Any) -> pd.DataFrame:
    """The path each strategy chose on each tree (``per_tree`` rows of the paths JSON).

    Returns:
        Columns ``strategy``, ``study``, ``dataset``, ``seed``, ``method``,
        ``intervention_epoch``, ``end_epoch``, ``val_accuracy`` (fraction), ``energy_j``
        (cumulative, J). Empty when the document has no per-tree rows.
    """
    cols = [
        "strategy",
        "study",
        "dataset",
        "seed",
        "method",
        "intervention_epoch",
        "end_epoch",
        "val_accuracy",
        "energy_j",
    ]
    rows = []
    for name, s in strategy_items(paths_json):
        for r in s.get("per_tree") or []:
            rows.append({"strategy": name, **{c: r.get(c) for c in cols[1:]}})
    df = pd.DataFrame(rows, columns=cols)
    if not df.empty:
        df["seed"] = df["seed"].astype("int64")
        df["val_accuracy"] = df["val_accuracy"].astype(float)
        df["energy_j"] = df["energy_j"].astype(float)
    return df


def _evaluations(evaluation: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """``(predictor, document)`` pairs from one document, a ``{name: document}`` map (the
    workflow's ``results/<study>/evaluation.json``) or a list of either."""
    if not evaluation:
        return []
    if isinstance(evaluation, Mapping) and "predictor" in evaluation:
        return [(str(evaluation["predictor"]), evaluation)]
    if isinstance(evaluation, Mapping):
        return [
            (str(v.get("predictor", k)), v) for k, v in evaluation.items() if isinstance(v, Mapping)
        ]
    return [pair for item in evaluation for pair in _evaluations(item)]


def mape_table(evaluation: Any, history: str = "live", subset: str = "all") -> pd.DataFrame:
    """Pooled one-step MAPE (%) per predictor from evaluation JSON document(s).

    Args:
        evaluation: one document, ``{name: document}`` or a list (see module doc).
        history: ``live`` (the path's own history) or ``paper`` (the authors' history).
        subset: ``all`` or ``without_flagged``.

    Returns:
        Columns ``predictor``, ``acc_mape_pct``, ``energy_mape_pct``, ``score_mape_pct``,
        ``n``.
    """
    rows = []
    for name, d in _evaluations(evaluation):
        one = (d.get("pooled", {}).get(subset) or {}).get("one_step") or {}
        h = one.get(history) or {}
        rows.append(
            {
                "predictor": name,
                "acc_mape_pct": _num(h.get("acc_mape_pct")),
                "energy_mape_pct": _num(h.get("energy_mape_pct")),
                "score_mape_pct": _num(h.get("score_mape_pct")),
                "n": _num(one.get("n")),
            }
        )
    return pd.DataFrame(
        rows, columns=["predictor", "acc_mape_pct", "energy_mape_pct", "score_mape_pct", "n"]
    )


def predictions_from_evaluation(evaluation: Any, study: str = "") -> pd.DataFrame:
    """Tidy predictions (:data:`PREDICTION_COLUMNS`) from evaluations run with ``tables=True``.

    Each row of ``tables.one_step`` (``acc``, ``energy`` true; ``acc_<h>``, ``energy_<h>``
    predicted for history ``h`` in ``live``/``paper``) becomes two rows per history, one
    per target. Documents without tables contribute nothing.
    """
    out = []
    for name, d in _evaluations(evaluation):
        t = pd.DataFrame((d.get("tables") or {}).get("one_step") or [])
        if t.empty:
            continue
        for h in ("live", "paper"):
            for target, true_col in (("val_accuracy", "acc"), ("energy_j", "energy")):
                col = f"{true_col}_{h}"
                if col not in t.columns or true_col not in t.columns:
                    continue
                out.append(
                    pd.DataFrame(
                        {
                            "study": t["study"] if "study" in t.columns else study,
                            "dataset": t["dataset"],
                            "seed": t["seed"],
                            "method": t["method"],
                            "intervention_epoch": t["intervention_epoch"],
                            "epoch": t["epoch"],
                            "predictor": name,
                            "history": h,
                            "target": target,
                            "actual": t[true_col].astype(float),
                            "predicted": t[col].astype(float),
                        }
                    )
                )
    if not out:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    return pd.concat(out, ignore_index=True)[list(PREDICTION_COLUMNS)]


def _fmt(x: Any, digits: int = 1, signed: bool = False) -> str:
    if x is None:
        return "&ndash;"
    if isinstance(x, str):
        return html.escape(x)
    f = _num(x)
    if not np.isfinite(f):
        return "&ndash;"
    if float(f).is_integer() and digits == 0:
        return f"{int(f):d}"
    return f"{f:+.{digits}f}" if signed else f"{f:.{digits}f}"


def _html_table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.2em; color: #222; }
table { border-collapse: collapse; margin: 0.6em 0 1.4em 0; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child,
td:nth-child(2), th:nth-child(2) { text-align: left; }
tr.ours td { background: #E8F4FB; }
caption { caption-side: top; text-align: left; font-weight: bold; }
p.note { font-size: 0.85em; color: #555; max-width: 60em; }
"""


def _strategy_rows(df: pd.DataFrame, source: str) -> list[list[str]]:
    from greenpath.report.names import strategy_label, strategy_sort_key

    order = sorted(range(len(df)), key=lambda i: strategy_sort_key(str(df["strategy"].iloc[i]), i))
    return [
        [
            html.escape(source),
            html.escape(strategy_label(str(r.strategy))),
            _fmt(r.energy_saved_pct),
            _fmt(r.accuracy_change_pts, 2, signed=True),
            _fmt(r.violations, 0),
            _fmt(r.regret, 1),
            _fmt(r.n_trees, 0),
        ]
        for r in (df.iloc[i] for i in order)
    ]


def _same_pool(a: pd.DataFrame, b: pd.DataFrame | None) -> bool:
    """Whether two strategy tables hold the same figures (no dataset was flagged)."""
    if b is None or b.empty:
        return True
    cols = ["energy_saved_pct", "accuracy_change_pts", "violations", "regret", "n_trees"]
    if len(a) != len(b) or list(a["strategy"]) != list(b["strategy"]):
        return False
    return bool(np.allclose(a[cols].to_numpy(float), b[cols].to_numpy(float), equal_nan=True))


#: Definitions under the summary's tables (HTML).
_SUMMARY_NOTE = (
    "<p class='note'>Energy saved = (1 - E<sub>path</sub> / E<sub>full trunk</sub>) x 100, "
    "mean over trees; accuracy change in points against the full trunk; a violation "
    "is a tree whose chosen path loses more accuracy than the tolerance; regret is "
    "measured against the oracle, and is negative where a strategy breaks the tolerance "
    "(e.g. a fixed early stop): it then spends less than the oracle, which must keep the "
    "accuracy. MAPE = mean(|pred - true| / true) x 100 over epochs &gt; 6 (the paper's "
    "row selection). The paper's figures come from its abstract and section 4 (* it "
    "writes &ldquo;+2.38%&rdquo; without saying whether relative or in points); the "
    "authors' analysis rows were recomputed with the authors' own scripts on the 9 "
    "published EAT-IT datasets.</p>"
)


def summary_html(
    strategies: pd.DataFrame,
    mape: pd.DataFrame,
    *,
    title: str = "greenpath: strategies and predictors",
    strategies_without_flagged: pd.DataFrame | None = None,
    flagged: Sequence[str] = (),
    regret_unit: str = "points of the full trunk's energy",
    notes: Sequence[str] = (),
) -> str:
    """A standalone HTML page: our strategy and MAPE figures next to the published ones.

    Args:
        strategies: :func:`strategy_table` output (may be empty).
        mape: :func:`mape_table` output (may be empty).
        title: page title.
        strategies_without_flagged: optional second strategy table (chance-level
            datasets left out); shown only when it differs from ``strategies``.
        flagged: the chance-level datasets (named in that pool's rows).
        regret_unit: unit of the regret column (the paths output's ``regret_unit``).
        notes: extra paragraphs (plain text, escaped).

    Returns:
        The HTML document as a string (no external resources).
    """
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h2>{html.escape(title)}</h2>",
        *_strategies_section(strategies, strategies_without_flagged, flagged, regret_unit),
        *_mape_section(mape),
        _SUMMARY_NOTE,
        *(f"<p class='note'>{html.escape(n)}</p>" for n in notes),
        "</body></html>",
    ]
    return "\n".join(parts)


def _ours_highlighted(table: str) -> str:
    """Mark this run's rows (their source starts with "greenpath") with class ``ours``."""
    return table.replace("<tr><td>greenpath", '<tr class="ours"><td>greenpath')


def _strategies_section(
    strategies: pd.DataFrame,
    without_flagged: pd.DataFrame | None,
    flagged: Sequence[str],
    regret_unit: str,
) -> list[str]:
    """Heading and table of this run's strategies (both pools) beside the paper's."""
    headers = [
        "source",
        "strategy",
        "energy saved (% of the full trunk's energy)",
        "accuracy change (points)",
        "tolerance violations (trees)",
        f"regret vs the oracle ({regret_unit})",
        "trees",
    ]
    rows = _strategy_rows(strategies, "greenpath, this run")
    if not _same_pool(strategies, without_flagged):
        left_out = ", ".join(flagged) if flagged else "chance-level datasets"
        rows += _strategy_rows(without_flagged, f"greenpath, this run, without {left_out}")
    rows += [
        [
            html.escape(r["source"]),
            html.escape(r["strategy"]),
            _fmt(r["energy_saved_pct"]),
            _fmt(r["accuracy_change"]),
            _fmt(r["violations"], 0),
            _fmt(r["regret"], 1),
            "&ndash;",
        ]
        for r in PAPER_STRATEGY_FIGURES
    ]
    section = ["<h3>Strategies: energy saved against the full-length trunk</h3>"]
    if strategies.empty:
        section.append(
            "<p class='note'>No paths output for this study yet: only the published "
            "figures are shown.</p>"
        )
    section.append(_ours_highlighted(_html_table(headers, rows, "strategies")))
    return section


def _mape_section(mape: pd.DataFrame) -> list[str]:
    """Heading and table of this run's leave-one-dataset-out MAPE beside the paper's."""
    from greenpath.report.names import predictor_label

    headers = [
        "source",
        "predictor",
        "accuracy MAPE (%)",
        "energy MAPE (%)",
        "score MAPE (%)",
        "rows",
    ]
    rows = [
        [
            "greenpath, this run, leave-one-dataset-out",
            html.escape(predictor_label(str(r.predictor))),
            _fmt(r.acc_mape_pct),
            _fmt(r.energy_mape_pct),
            _fmt(r.score_mape_pct),
            _fmt(r.n, 0),
        ]
        for r in mape.itertuples()
    ]
    rows += [
        [
            html.escape(r["source"]),
            html.escape(predictor_label(r["predictor"])),
            _fmt(r["acc_mape_pct"]),
            _fmt(r["energy_mape_pct"]),
            _fmt(r["score_mape_pct"]),
            "&ndash;",
        ]
        for r in PAPER_MAPE_FIGURES
    ]
    section = ["<h3>One-step prediction error (MAPE)</h3>"]
    if mape.empty:
        section.append(
            "<p class='note'>No evaluation output for this study yet: only the "
            "published figures are shown.</p>"
        )
    section.append(_ours_highlighted(_html_table(headers, rows, "mape")))
    return section


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file + rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)
    return p
