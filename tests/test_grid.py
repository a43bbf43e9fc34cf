"""Grid arithmetic (issue 2: job counts and the minimum number of trained epochs)."""

from greenpath.grid import branches, epochs_needed, stop_points, trunk_segments


def test_segments_cover_the_trunk_once():
    segs = trunk_segments(10, [0, 3, 5, 7])
    assert [(s.start, s.end) for s in segs] == [(0, 3), (3, 5), (5, 7), (7, 10)]
    assert sum(s.end - s.start for s in segs) == 10


def test_segments_without_zero():
    assert [(s.start, s.end) for s in trunk_segments(50, [10, 20])] == [(0, 10), (10, 20), (20, 50)]


def test_minimum_epochs_by_hand():
    # trunk 10 + freeze (10+7+5+3) + quant (10+7+5+3) = 60; stop trains nothing
    assert epochs_needed(10, [0, 3, 5, 7], ["freeze", "quant", "stop"]) == 60
    assert epochs_needed(50, [0, 10, 20, 30, 40], ["freeze"]) == 50 + 150
    assert branches([0, 3], ["stop"]) == []
    assert stop_points([0, 3, 5], ["stop"]) == [3, 5]


def test_snakemake_dry_run_job_counts_match_the_grid(tmp_path):
    """`snakemake -n` on the default config schedules exactly the grid's jobs (issue 2)."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    from greenpath.config import load_config
    from greenpath.grid import grid_summary

    repo = Path(__file__).resolve().parents[1]
    cfg = load_config(repo / "config" / "config.yaml")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "results/default/records.parquet",
            "--snakefile",
            str(repo / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(repo / "config" / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-2000:]
    counts = dict(
        (m.group(1), int(m.group(2))) for m in re.finditer(r"^(\w+)\s+(\d+)$", run.stdout, re.M)
    )
    g = grid_summary(cfg)
    assert g == {"trees": 8, "trunk_jobs": 32, "branch_jobs": 64, "epochs": 480, "paths": 96}
    assert counts["train_trunk"] == g["trunk_jobs"]
    assert counts["train_branch"] == g["branch_jobs"]
    assert counts["prepare_dataset"] == 4
    assert counts["aggregate"] == 1
