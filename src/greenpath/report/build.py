"""Write every report figure of one study into a folder (what the Snakemake rule calls).

Layout under ``out_dir`` (one study):

- ``learning_curves/<dataset>.png``, ``energy_accuracy/<dataset>.png``,
  ``energy_breakdown/<dataset>.png``: one figure per dataset;
- ``predictions.png``: predicted vs actual with the error distribution per predictor;
- ``summary.html``: strategy outcomes and one-step MAPE next to the paper's figures;
- ``index.html``: a standalone page with every figure embedded (opens without Snakemake).

The same function serves the default study (records from the training grid) and imported
studies such as EAT-IT (``greenpath.modeling.eatit.import_eatit``).
"""

from __future__ import annotations

import base64
import html
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from greenpath.records import build_trajectories
from greenpath.report.figures import (
    energy_accuracy_figure,
    energy_breakdown_figure,
    learning_curves_figure,
    placeholder_figure,
    predictions_figure,
)
from greenpath.report.style import save_figure
from greenpath.report.tables import (
    mape_table,
    predictions_from_evaluation,
    strategy_choices,
    strategy_table,
    summary_html,
    write_text,
)

log = logging.getLogger(__name__)

#: Per-dataset figure folders, in display order.
PER_DATASET: tuple[str, ...] = ("learning_curves", "energy_accuracy", "energy_breakdown")


@dataclass
class StudyReport:
    """What :func:`build_study_report` wrote.

    Attributes:
        out_dir: the study's folder.
        datasets: datasets drawn, in order.
        files: every file written (figures, summary, index).
        notes: why a figure is a placeholder or computed in a fallback way.
        seconds: wall time.
    """

    out_dir: Path
    datasets: list[str]
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _timed(label: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    log.info("%s in %.2f s", label, time.perf_counter() - t0)
    return out


def build_study_report(
    records: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    trajectories: pd.DataFrame | None = None,
    stop_epochs: Iterable[int] | None = None,
    datasets: Sequence[str] | None = None,
    paths_json: Any = None,
    evaluation: Any = None,
    title: str | None = None,
) -> StudyReport:
    """Draw every figure of one study and write them under ``out_dir``.

    Args:
        records: per-epoch rows of the study (record schema).
        out_dir: output folder (created).
        trajectories: ``build_trajectories`` output; built from ``records`` (with
            ``stop_epochs``) when omitted.
        stop_epochs: intervention epochs with a ``stop`` path (``None``: every branch k >= 1).
        datasets: datasets that must be drawn (e.g. the config's); ``None``: every dataset
            in the records.
        paths_json: the paths document (strategy outcomes and choices), or ``None``.
        evaluation: evaluation document(s) of the predictors, or ``None``.
        title: name used in titles (default: the records' study).

    Returns:
        A :class:`StudyReport`.

    Raises:
        ValueError: a dataset in ``datasets`` has no records (names it and the ones present).
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    present = sorted(records["dataset"].astype(str).unique())
    wanted = list(datasets) if datasets is not None else present
    missing = [d for d in wanted if d not in present]
    if missing:
        raise ValueError(
            f"no records for dataset(s) {missing} (records hold {present}); "
            "run the training grid first or fix the dataset names"
        )
    study = title or ", ".join(sorted(records["study"].astype(str).unique()))
    if trajectories is None:
        trajectories = build_trajectories(records, stop_epochs=stop_epochs)
    rep = StudyReport(out_dir=out, datasets=wanted)
    choices = strategy_choices(paths_json)
    for d in wanted:
        rec_d = records[records["dataset"].astype(str) == d]
        tr_d = trajectories[trajectories["dataset"].astype(str) == d]
        figs = {
            "learning_curves": lambda r=rec_d: learning_curves_figure(r),
            "energy_accuracy": lambda t=tr_d: energy_accuracy_figure(
                t, choices=choices if not choices.empty else None
            ),
            "energy_breakdown": lambda r=rec_d: energy_breakdown_figure(r),
        }
        for kind, make in figs.items():
            fig = _timed(f"{kind}/{d}", make)
            rep.files.append(save_figure(fig, out / kind / f"{d}.png"))

    preds = predictions_from_evaluation(evaluation, study)
    source = "evaluation JSON"
    if preds.empty:
        fig = placeholder_figure(
            f"{study}: predicted vs actual",
            "No one-step predictions: run the evaluate rule with tables, or see the log.",
        )
    else:
        hist = "live" if (preds["history"] == "live").any() else str(preds["history"].iloc[0])
        p = preds[preds["history"] == hist]
        lodo = "leave-one-dataset-out" if "in-sample" not in hist else "in-sample"
        fig = predictions_figure(
            p, title=f"{study}: one-step predictions ({lodo}, {hist} history; {source})"
        )
        rep.notes.append(f"predictions: {source}, history {hist}, {len(p)} rows")
    rep.files.append(save_figure(fig, out / "predictions.png"))

    page = summary_html(
        strategy_table(paths_json),
        mape_table(evaluation),
        title=f"{study}: strategies and predictors vs the paper",
        strategies_without_flagged=strategy_table(paths_json, "without_flagged"),
        notes=rep.notes,
    )
    rep.files.append(write_text(out / "summary.html", page))
    rep.files.append(write_gallery(out, out / "index.html", title=f"greenpath report: {study}"))
    rep.seconds = time.perf_counter() - t0
    return rep


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def write_gallery(
    study_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    title: str = "greenpath report",
    sections: Mapping[str, str] | None = None,
) -> Path:
    """A standalone HTML page embedding every PNG of a study folder (base64) and its summary.

    Args:
        study_dir: folder written by :func:`build_study_report`.
        out: HTML path to write.
        title: page title.
        sections: folder name -> heading (default: the three per-dataset figures).
    """
    root = Path(study_dir)
    sections = dict(
        sections
        or {
            "learning_curves": "Validation accuracy vs epoch",
            "energy_accuracy": "Cumulative energy vs accuracy",
            "energy_breakdown": "Energy by method and component",
        }
    )
    body = [f"<h1>{html.escape(title)}</h1>"]
    for folder, heading in sections.items():
        pngs = sorted((root / folder).glob("*.png"))
        if pngs:
            body.append(f"<h2>{html.escape(heading)}</h2>")
            body += [
                f"<figure>{_img(p)}<figcaption>{html.escape(p.stem)}</figcaption></figure>"
                for p in pngs
            ]
    if (root / "predictions.png").is_file():
        body.append("<h2>Predicted vs actual</h2>" + _img(root / "predictions.png"))
    summary = root / "summary.html"
    if summary.is_file():
        text = summary.read_text(encoding="utf-8")
        inner = text.split("<body>", 1)[-1].rsplit("</body>", 1)[0]
        body.append(f"<section id='summary'>{inner}</section>")
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:1em;background:#fff}"
        "img{max-width:100%;border:1px solid #ddd}figure{margin:0.5em 0}"
        "table{border-collapse:collapse}td,th{border-bottom:1px solid #ccc;padding:2px 8px}"
        "</style></head><body>" + "\n".join(body) + "</body></html>"
    )
    return write_text(out, page)
