"""Readable names of strategies and predictors, for every table and legend of the report.

One table per kind of name; add a row to name a new strategy. A name matched by no row
gets a readable fallback (underscores become spaces), never the raw key alone, so a
strategy added upstream shows up before anyone names it here.

Strategy roles order the rows of every table: the bound (oracle) first, then greenpath's
planners, the paper's method, patience early stopping, fixed stops, anything else, and the
reference (the full trunk) last.
"""

from __future__ import annotations

import re

#: Exact strategy keys of the paths output -> label.
STRATEGY_LABELS: dict[str, str] = {
    "oracle": "oracle (best measured path, in hindsight)",
    "oracle_any_epoch": "oracle, any end epoch (hindsight)",
    "full_trunk": "full trunk (reference)",
    "paper": "paper's method (AR(4) forecasts)",
    "planner": "planner (calibrated safety margin)",
    "planner_conformal": "planner (conformal margins)",
    "planner_per_epoch": "planner, deciding every epoch",
    "planner_every_epoch": "planner, deciding every epoch",
    "oracle_every_epoch": "oracle, stop at any epoch (hindsight)",
}

#: Parametrised strategy keys: (regular expression, label template with the groups).
STRATEGY_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"patience_(\d+)", "patience {0}, best epoch restored"),
    (r"patience_(\d+)_last", "patience {0}, accuracy at stop"),
    (r"stop_(\d+)", "fixed stop after epoch {0}"),
)

#: Role of a strategy key, by prefix (first match wins), in display order.
STRATEGY_ROLES: tuple[tuple[str, str], ...] = (
    ("oracle", "bound"),
    ("planner", "planner"),
    ("paper", "paper"),
    ("patience", "patience"),
    ("stop_", "fixed stop"),
    ("full_trunk", "reference"),
)

#: Display order of the roles; unknown roles ("other") come before the reference.
ROLE_ORDER: tuple[str, ...] = (
    "bound",
    "planner",
    "paper",
    "patience",
    "fixed stop",
    "other",
    "reference",
)

#: Predictor registry names -> label.
PREDICTOR_LABELS: dict[str, str] = {
    "persistence": "persistence (last epoch)",
    "carbontracker": "CarbonTracker (mean epoch energy)",
    "paper": "paper's AR(4)",
    "greenpath": "greenpath",
    "greenpath_lgbm": "greenpath, LightGBM",
    "greenpath_ols": "greenpath, OLS",
    "greenpath_shift": "greenpath, median shift",
}


def _fallback(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("_", " ")).strip() or "(unnamed)"


def strategy_label(name: str) -> str:
    """Readable label of a strategy key, e.g. ``patience_3_last`` -> "patience 3, accuracy
    at stop"; unknown keys get their words back (``foo_bar`` -> "foo bar")."""
    name = str(name)
    if name in STRATEGY_LABELS:
        return STRATEGY_LABELS[name]
    for pattern, template in STRATEGY_PATTERNS:
        m = re.fullmatch(pattern, name)
        if m:
            return template.format(*m.groups())
    return _fallback(name)


def strategy_role(name: str) -> str:
    """``bound``, ``planner``, ``paper``, ``patience``, ``fixed stop``, ``reference`` or
    ``other`` (see :data:`STRATEGY_ROLES`)."""
    for prefix, role in STRATEGY_ROLES:
        if str(name).startswith(prefix):
            return role
    return "other"


def strategy_sort_key(name: str, position: int = 0) -> tuple[int, int]:
    """Sort key: role order, then ``position`` (the order in the paths output)."""
    return ROLE_ORDER.index(strategy_role(name)), position


def predictor_label(name: str) -> str:
    """Readable label of a predictor registry name (fallback: its words)."""
    return PREDICTOR_LABELS.get(str(name), _fallback(str(name)))
