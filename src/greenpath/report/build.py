"""Write every report figure of one study into a folder (what the Snakemake rule calls).

Layout under ``out_dir`` (one study):

- ``learning_curves/<dataset>.png``, ``energy_accuracy/<dataset>.png``,
  ``energy_breakdown/<dataset>.png``: one figure per dataset;
- ``headline.html``: what each strategy would have saved and what to conclude
  (:mod:`greenpath.report.headline`; an HTML fragment);
- ``per_dataset.html``: each strategy on each dataset (fragment);
- ``predictions.png``: predicted vs actual with the error distribution per predictor;
- ``summary.html``: strategy outcomes and one-step MAPE next to the paper's figures;
- ``index.html``: a standalone page, the headline first, then every figure embedded with
  its caption (opens without Snakemake).

The same function serves the default study (records from the training grid) and imported
studies such as EAT-IT (``greenpath.modeling.eatit.import_eatit``).
"""

from __future__ import annotations

import base64
import html
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from greenpath.report.figures import (
    energy_accuracy_figure,
    energy_breakdown_figure,
    learning_curves_figure,
    placeholder_figure,
    predictions_figure,
)
from greenpath.report.headline import (
    headline_html,
    per_dataset_html,
    per_dataset_table,
    read_headline,
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
    trajectories: pd.DataFrame,
    datasets: Sequence[str] | None = None,
    paths_json: Any = None,
    evaluation: Any = None,
    title: str | None = None,
) -> StudyReport:
    """Draw every figure of one study and write them under ``out_dir``.

    Args:
        records: per-epoch rows of the study (record schema).
        out_dir: output folder (created).
        trajectories: the study's ``trajectories.parquet`` (the aggregate or import_eatit
            rule's output; the report reads it and builds no trajectory).
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
    wanted = _datasets_to_draw(records, datasets)
    study = title or ", ".join(sorted(records["study"].astype(str).unique()))
    rep = StudyReport(out_dir=out, datasets=wanted)
    choices = strategy_choices(paths_json)
    for d in wanted:
        rec_d = records[records["dataset"].astype(str) == d]
        tr_d = trajectories[trajectories["dataset"].astype(str) == d]
        rep.files.extend(_dataset_figures(out, d, rec_d, tr_d, choices))
    rep.files.append(_predictions_page(rep, out, evaluation, study))
    head = read_headline(paths_json, study, records)
    rep.files.append(write_text(out / "headline.html", headline_html(head)))
    rep.files.append(
        write_text(out / "per_dataset.html", per_dataset_html(per_dataset_table(paths_json), study))
    )
    page = summary_html(
        strategy_table(paths_json),
        mape_table(evaluation),
        title=f"{study}: strategies and predictors next to the paper",
        strategies_without_flagged=strategy_table(paths_json, "without_flagged"),
        flagged=head.flagged,
        regret_unit=head.regret_unit,
        notes=[f"Energy of this run: {head.energy}.", *rep.notes],
    )
    rep.files.append(write_text(out / "summary.html", page))
    rep.files.append(
        write_gallery(
            out,
            out / "index.html",
            title=f"greenpath report: {study}",
            run=run_words(records, study),
        )
    )
    rep.seconds = time.perf_counter() - t0
    return rep


def _datasets_to_draw(records: pd.DataFrame, datasets: Sequence[str] | None) -> list[str]:
    """``datasets``, or every dataset of ``records`` when ``None``.

    Raises:
        ValueError: a dataset without records (names it and the ones present).
    """
    present = sorted(records["dataset"].astype(str).unique())
    wanted = list(datasets) if datasets is not None else present
    missing = [d for d in wanted if d not in present]
    if missing:
        raise ValueError(
            f"no records for dataset(s) {missing} (records hold {present}); "
            "run the training grid first or fix the dataset names"
        )
    return wanted


def _dataset_figures(
    out: Path,
    dataset: str,
    records: pd.DataFrame,
    trajectories: pd.DataFrame,
    choices: pd.DataFrame,
) -> list[Path]:
    """The learning curves, energy vs accuracy and energy breakdown of one dataset, written
    as ``<kind>/<dataset>.png`` under ``out``."""
    figs = {
        "learning_curves": lambda: learning_curves_figure(records),
        "energy_accuracy": lambda: energy_accuracy_figure(
            trajectories, choices=choices if not choices.empty else None
        ),
        "energy_breakdown": lambda: energy_breakdown_figure(records),
    }
    return [
        save_figure(_timed(f"{kind}/{dataset}", make), out / kind / f"{dataset}.png")
        for kind, make in figs.items()
    ]


def _predictions_page(rep: StudyReport, out: Path, evaluation: Any, study: str) -> Path:
    """``predictions.png``: one-step predictions vs actual from the evaluation document (live
    history when present), or a placeholder saying there are none; notes the rows used."""
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
    return save_figure(fig, out / "predictions.png")


def run_words(records: pd.DataFrame, study: str) -> str:
    """Which run the figures come from, in words: study, datasets, seeds, epochs."""
    n_ds = records["dataset"].nunique()
    seeds = sorted(int(x) for x in records["seed"].dropna().unique())
    epochs = int(records["epoch"].max()) if len(records) else 0
    return (
        f"study {study}: {n_ds} dataset{'s' if n_ds != 1 else ''}, "
        f"seed{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds))}, {epochs} epochs"
    )


#: Folder -> (heading, caption template); ``{dataset}`` and ``{run}`` are filled in.
FIGURE_CAPTIONS: dict[str, tuple[str, str]] = {
    "learning_curves": (
        "Validation accuracy vs epoch",
        "Validation accuracy (%) of {dataset} against epoch ({run}): the trunk (thick "
        "black) and every branch from its intervention epoch k (layer freezing blue, mixed "
        "precision vermillion; one line style per k, dotted verticals at k). Mean over "
        "seeds, band = min-max over seeds. A branch that stays close to the trunk lost "
        "little accuracy by switching.",
    ),
    "energy_accuracy": (
        "Cumulative energy vs accuracy of every path",
        "Each path of {dataset} ({run}), one panel per seed: faint line = its epochs, dot "
        "= its last epoch (cumulative energy in the axis unit, final validation accuracy "
        "in %). The black step line is the Pareto front: no path reaches more accuracy "
        "with less energy. Diamond, star and plus mark the paths the oracle, the planner "
        "and the paper's method chose. Up and to the left is better.",
    ),
    "energy_breakdown": (
        "Where the energy went",
        "Energy per epoch of {dataset} ({run}). Left: mean per epoch of each method, "
        "stacked GPU / CPU / DRAM; hatched segments labelled 'estimate' are modelled, not "
        "measured. Right: total energy per epoch against epoch, per method (mean over seeds "
        "and intervention epochs). Lower bars mean a cheaper epoch.",
    ),
}

PREDICTIONS_CAPTION = (
    "One-step predictions ({run}): each epoch's validation accuracy and energy predicted "
    "from the epochs before it, leave-one-dataset-out, against the measured value. Left: "
    "predicted vs actual per predictor, dashed line y = x (points on it are exact). Right: "
    "absolute percentage error per predictor (box: quartiles, whiskers 1.5 IQR) with its "
    "mean, the MAPE, above each box; lower is better."
)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _fragment(path: Path) -> str:
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    return text.split("<body>", 1)[-1].rsplit("</body>", 1)[0]


def _figure(path: Path, caption: str) -> str:
    return f"<figure>{_img(path)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def write_gallery(
    study_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    title: str = "greenpath report",
    sections: Mapping[str, tuple[str, str]] | None = None,
    run: str = "this run",
) -> Path:
    """A standalone HTML page of a study folder: the headline first, then the per-dataset
    table, every PNG embedded (base64) with its caption, and the summary.

    Args:
        study_dir: folder written by :func:`build_study_report`.
        out: HTML path to write.
        title: page title.
        sections: folder name -> (heading, caption template with ``{dataset}`` and
            ``{run}``); default :data:`FIGURE_CAPTIONS`.
        run: which run the figures come from, in words (:func:`run_words`).
    """
    root = Path(study_dir)
    sections = dict(sections or FIGURE_CAPTIONS)
    body = [f"<h1>{html.escape(title)}</h1>", _fragment(root / "headline.html")]
    body.append(_fragment(root / "per_dataset.html"))
    for folder, (heading, caption) in sections.items():
        pngs = sorted((root / folder).glob("*.png"))
        if pngs:
            body.append(f"<h2>{html.escape(heading)}</h2>")
            body += [_figure(p, caption.format(dataset=p.stem, run=run)) for p in pngs]
    if (root / "predictions.png").is_file():
        body.append("<h2>Predicted vs actual</h2>")
        body.append(_figure(root / "predictions.png", PREDICTIONS_CAPTION.format(run=run)))
    if (root / "summary.html").is_file():
        body.append(f"<section id='summary'>{_fragment(root / 'summary.html')}</section>")
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:1em;background:#fff;color:#222}"
        "img{max-width:100%;border:1px solid #ddd}figure{margin:0.5em 0 1.5em 0}"
        "figcaption{font-size:0.9em;color:#333;max-width:70em}"
        "table{border-collapse:collapse}td,th{border-bottom:1px solid #ccc;padding:2px 8px}"
        "</style></head><body>" + "\n".join(b for b in body if b) + "</body></html>"
    )
    return write_text(out, page)
