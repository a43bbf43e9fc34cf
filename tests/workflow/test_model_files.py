"""The DAG carries the fitted models: the paths rule reads the fit rule's files (the
planner's predictor and the paper's savings model, one per held-out dataset) and the
study's trajectories, never the records."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import REPO, TINY, snakemake

from greenpath.control.closed_loop import tabulate

pytestmark = pytest.mark.slow


def planned(workdir, config) -> list[dict[str, str]]:
    """Every job of a dry run: rule name and its input/output/wildcards lines."""
    proc = snakemake(workdir, config, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs: list[dict[str, str]] = []
    for line in proc.stdout.splitlines():
        s = line.strip()
        if s.startswith(("rule ", "localrule ")) and s.endswith(":"):
            jobs.append({"rule": s.split()[1][:-1]})
        elif jobs and ":" in s and s.split(":", 1)[0] in ("input", "output", "wildcards"):
            key, value = s.split(":", 1)
            jobs[-1][key] = value.strip()
    return jobs


def files(value: str) -> set[str]:
    return {p.strip() for p in value.split(",") if p.strip()}


def test_paths_reads_the_fit_rule_files(tmp_path):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["modeling"]["eatit"]["src"] = None
    jobs = planned(tmp_path, config)
    models = "results/default/models"
    paper = {f"{models}/paper_savings/without_{d}.json" for d in config["datasets"]}
    planner = config["modeling"]["planner_predictor"]
    lodo = {f"{models}/{planner}/without_{d}.json" for d in config["datasets"]}
    (paths,) = [j for j in jobs if j["rule"] == "paths"]
    assert files(paths["input"]) == {
        "results/default/trajectories.parquet",
        f"{models}/{planner}/all.json",
        *lodo,
        *paper,
    }
    (fit,) = [j for j in jobs if j.get("wildcards") == "predictor=paper_savings"]
    assert fit["rule"] == "fit_default" and paper <= files(fit["output"])
    assert files(fit["input"]) == {"results/default/trajectories.parquet"}
    report = [j for j in jobs if j["rule"] == "report_figures"]
    assert all("results/default/trajectories.parquet" in files(j["input"]) for j in report)


def test_runs_too_short_for_the_papers_simulation_fit_no_paper_model(tmp_path):
    jobs = planned(tmp_path, TINY)  # 3 epochs: the simulation starts at epoch 6
    (paths,) = [j for j in jobs if j["rule"] == "paths"]
    assert "paper_savings" not in paths["input"]
    assert not [j for j in jobs if j.get("wildcards") == "predictor=paper_savings"]


def test_live_runs_follow_their_datasets_calibration(tmp_path):
    """The controlled run reads it; the full run, its live reference, records it."""
    jobs = planned(tmp_path, TINY)
    control = "results/tiny/control"
    calib = {j["wildcards"]: j for j in jobs if j["rule"] == "control_calibrate"}
    assert set(calib) == {f"dataset={d}" for d in TINY["datasets"]}
    for d in TINY["datasets"]:
        assert files(calib[f"dataset={d}"]["output"]) == {f"{control}/calibration/{d}.json"}
    for j in (j for j in jobs if j["rule"] == "control_run"):
        d = j["wildcards"].split(",")[0].split("=")[1]
        reads = {p for p in files(j["input"]) if "/calibration/" in p}
        assert reads == {f"{control}/calibration/{d}.json"}, j
        if "kind=full" in j["wildcards"]:
            assert files(j["input"]) == {f"results/tiny/data/{d}.npz", *reads}, j


def test_the_table_refuses_a_pair_of_live_runs_of_different_calibrations(finished_run):
    control = finished_run / "results/tiny/control"
    runs = [json.loads(p.read_text()) for p in sorted(control.glob("runs/*/seed*/*.json"))]
    models = {
        d: finished_run / f"results/tiny/models/persistence/without_{d}.json"
        for d in TINY["datasets"]
    }
    common = dict(
        trajectories_path=finished_run / "results/tiny/trajectories.parquet", models=models
    )
    table = tabulate(TINY, runs=runs, **common)
    assert len(table) == 2
    (full,) = [r for r in runs if r["dataset"] == "digits" and r["kind"] == "full"]
    margin = full["margin"]
    full["margin"] = {**margin, "delta": margin["delta"] + 0.01}
    with pytest.raises(ValueError, match="digits seed 0.*--forcerun control_run"):
        tabulate(TINY, runs=runs, **common)
    del full["margin"]  # a full run that records no calibration is no reference either
    with pytest.raises(ValueError, match="digits seed 0.*none recorded"):
        tabulate(TINY, runs=runs, **common)
