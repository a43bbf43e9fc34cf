"""Report figures of one study, and a headless-Chromium screenshot of the built report.

From Snakemake: rule ``report_figures`` (workflow/rules/report.smk) runs this script.
Standalone:
    python scripts/figures.py build --records results/default/records.parquet \
        --trajectories results/default/trajectories.parquet \
        --out results/default/report [--paths PATHS.json] [--evaluation EVAL.json ...]
    python scripts/figures.py screenshot --report results/report.html \
        --out results/report_screenshot.png [--open energy_accuracy]
"""

import argparse
import logging
import sys
from pathlib import Path

from greenpath.interrupts import job_name, one_line_on_interrupt
from greenpath.modeling.workflow import read_trajectories
from greenpath.records import read_records
from greenpath.report.build import build_study_report
from greenpath.report.tables import load_json


def as_path_list(value) -> list[str]:
    """One path or several as a list of paths: Snakemake gives a named input of one file as
    a plain string, which ``list()`` would split into characters."""
    if value is None:
        return []
    if isinstance(value, str | Path):
        return [str(value)]
    return [str(v) for v in value]


def _load_evaluations(paths):
    docs = []
    for p in as_path_list(paths):
        doc = load_json(p)
        if doc:
            docs.append(doc)
        else:
            logging.warning("evaluation JSON %s is missing or empty; not in the report", p)
    return docs or None


def build(records, trajectories, out, paths=None, evaluations=(), datasets=None, log_file=None,
          title=None):  # fmt: skip
    logging.basicConfig(
        filename=log_file, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    rec = read_records(records)
    rep = build_study_report(
        rec,
        out,
        trajectories=read_trajectories(trajectories),
        title=title,
        datasets=datasets,
        paths_json=load_json(paths),
        evaluation=_load_evaluations(evaluations),
    )
    logging.info(
        "%d files for %d dataset(s) in %.1f s", len(rep.files), len(rep.datasets), rep.seconds
    )
    for n in rep.notes:
        logging.info("note: %s", n)


def screenshot(report, out, open_result=None, width=1400, height=1000) -> int:
    from greenpath.report.browser import nonblank_fraction, open_result_js, render

    res = render(
        report,
        out,
        window_size=(width, height),
        extra_js=open_result_js(open_result) if open_result else "",
    )
    frac = nonblank_fraction(out)
    print(f"screenshot {out}: {frac:.1%} non-white pixels; JS errors: {res.js_errors or 'none'}")
    return 1 if res.js_errors else 0


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with one_line_on_interrupt(job_name(sm)):
        build(
            sm.input.records,
            sm.input.trajectories,
            sm.params.out_dir,
            paths=sm.input.get("paths"),
            evaluations=as_path_list(sm.input.get("evaluation")),
            datasets=sm.params.datasets,
            log_file=sm.log[0] if sm.log else None,
            title=sm.params.get("title"),
        )
elif __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write every figure of one study")
    b.add_argument("--records", nargs="+", required=True, help="records Parquet file(s)")
    b.add_argument("--trajectories", nargs="+", required=True, help="trajectories Parquet file(s)")
    b.add_argument("--out", required=True, help="output folder of the study")
    b.add_argument("--paths", help="paths JSON (strategy outcomes and choices)")
    b.add_argument("--evaluation", nargs="*", default=[], help="evaluation JSON file(s)")
    b.add_argument("--datasets", nargs="*", help="datasets that must be drawn")
    s = sub.add_parser("screenshot", help="render a report in headless Chromium")
    s.add_argument("--report", default="results/report.html")
    s.add_argument("--out", default="results/report_screenshot.png")
    s.add_argument(
        "--open",
        dest="open_result",
        default="energy_accuracy",
        help="show the first result whose path contains this text ('' = start page)",
    )
    a = ap.parse_args()
    if a.cmd == "build":
        records = a.records[0] if len(a.records) == 1 else a.records
        build(records, a.trajectories, a.out, a.paths, a.evaluation, a.datasets)
    else:
        sys.exit(screenshot(a.report, a.out, a.open_result or None))
