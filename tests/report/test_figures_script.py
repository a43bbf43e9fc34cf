"""scripts/figures.py as the report_figures rule runs it (found by a fresh-user trial).

Snakemake hands a named input of one file to the script as a plain string; the script
turned it into a list of characters, so the workflow's report never showed the run's own
evaluation ("No evaluation output for this study yet"). Here the script runs through its
Snakemake branch with Snakemake's own ``InputFiles``.
"""

from __future__ import annotations

import json
import re
import runpy
import types
from pathlib import Path

from report_data import make_paths_json, make_records
from snakemake.iocontainers import InputFiles, Log, Params
from test_tables_build import EVAL

from greenpath.records import build_trajectories, write_records
from greenpath.records.aggregate import write_trajectories

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "figures.py"


def test_as_path_list():
    as_path_list = runpy.run_path(str(SCRIPT))["as_path_list"]
    assert as_path_list("results/evaluation/default.json") == ["results/evaluation/default.json"]
    assert as_path_list(["a.json", Path("b.json")]) == ["a.json", "b.json"]
    assert as_path_list(None) == []


def test_rule_report_shows_the_runs_evaluation(tmp_path):
    rec = make_records()
    write_records(rec, tmp_path / "records.parquet")
    write_trajectories(build_trajectories(rec, stop_epochs=[2]), tmp_path / "trajectories.parquet")
    (tmp_path / "paths.json").write_text(json.dumps(make_paths_json(rec)))
    # as the evaluate rule writes it: {predictor name: evaluation document}
    (tmp_path / "eval.json").write_text(json.dumps({"persistence": EVAL}))
    out = tmp_path / "report" / "toy"
    sm = types.SimpleNamespace(
        input=InputFiles(
            fromdict={
                "records": str(tmp_path / "records.parquet"),
                "trajectories": str(tmp_path / "trajectories.parquet"),
                "paths": str(tmp_path / "paths.json"),
                "evaluation": str(tmp_path / "eval.json"),
            }
        ),
        params=Params(fromdict={"out_dir": str(out), "datasets": ["alpha", "beta"]}),
        log=Log(fromdict={"log": str(tmp_path / "figures.log")}),
    )
    runpy.run_path(str(SCRIPT), init_globals={"snakemake": sm})
    summary = (out / "summary.html").read_text()
    assert "No evaluation output" not in summary
    # the run's predictor row with EVAL's pooled one-step MAPEs (5.0, 10.0, 12.5 %, n 2)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", summary))
    assert "leave-one-dataset-out persistence (last epoch) 5.0 10.0 12.5 2 " in text
