"""Fast start of a training job: its fixed cost next to a bare ``import torch``.

* :func:`fixed_cost` -- real training jobs started the way the workflow starts them
  (``python -m greenpath.training.job``, settings as JSON; through the warm fork server,
  or each in its own process as under SLURM), alternated with bare
  ``python -c "import torch"`` runs in the same loop. A job's fixed cost is its wall time
  minus the sum of its epochs' ``duration_s``; the target compares the medians.
* :func:`breakdown` -- the parts of that fixed cost timed in one process: interpreter and
  torch import, the engine's imports, data load and normalisation, model build, a
  continuing job's warm-up; plus ``import snakemake.script`` (what a ``script:`` rule paid).
* :func:`training_stage` -- from a Snakemake log: the training stage's wall (first training
  job start to last training job end) against the sum of epoch durations / cores.
* :func:`fresh_clone_run` -- ``make run`` in a fresh ``git clone`` (opt-in: it installs the
  environment, so it needs the package registries and takes minutes).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
JOB_SECTIONS = ("study", "data", "datasets", "model", "training", "methods", "energy")


def _env(forkserver: bool = True) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", GREENPATH_FORKSERVER="1" if forkserver else "0")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    return env


def _timed(cmd: list[str], forkserver: bool = True) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(forkserver), timeout=600)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return dt


def _job(role: str, settings: str, npz: Path, out: Path, **kw: Any) -> list[str]:
    cmd = [sys.executable, "-m", "greenpath.training.job", role, "--settings", settings,
           "--dataset", npz.stem, "--seed", "0", "--dataset-path", str(npz)]  # fmt: skip
    for k, v in kw.items():
        cmd.append(f"--{k.replace('_', '-')}={v}")
    return cmd


def fixed_cost(
    config: Mapping[str, Any],
    npz: Path,
    rounds: int = 5,
    epochs: int = 2,
    forkserver: bool = True,
) -> dict[str, Any]:
    """Medians over ``rounds`` of: bare ``import torch``, and two kinds of training job --
    a trunk segment from epoch 0 (epoch-0 state built in-process) and a freeze branch from
    the trunk's checkpoint (warm-up included); ``epochs`` epochs each. ``forkserver``:
    jobs go through the warm fork server (the workflow's default; the first job starts it)
    or each runs in its own process (as under SLURM)."""
    cfg = {k: config[k] for k in JOB_SECTIONS if k in config}
    cfg = {**cfg, "training": {**cfg["training"], "epochs": 2 * epochs}}
    settings = json.dumps(cfg)
    bare, fixed, walls, epoch_s = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="gp-bench-start-") as tmp:
        for r in range(rounds):
            out = Path(tmp) / f"r{r}"
            bare.append(_timed([sys.executable, "-c", "import torch"]))
            jobs = {
                "trunk": _job("trunk", settings, npz, out, start=0, end=epochs, in_checkpoint="",
                              out_checkpoint=out / "c.pt", out_records=out / "t.parquet"),
                "branch": _job("branch", settings, npz, out, method="freeze",
                               intervention_epoch=epochs, in_checkpoint=out / "c.pt",
                               out_records=out / "f.parquet"),
            }  # fmt: skip
            for name, cmd in jobs.items():
                wall = _timed(cmd, forkserver)
                rec = pd.read_parquet(out / ("t.parquet" if name == "trunk" else "f.parquet"))
                ep = float(rec["duration_s"].sum())
                walls.append(wall)
                epoch_s.append(ep)
                fixed.append(wall - ep)
    med_bare, med_fixed = statistics.median(bare), statistics.median(fixed)
    return {
        "rounds": rounds,
        "forkserver": forkserver,
        "epochs_per_job": epochs,
        "dataset": npz.stem,
        "import_torch_s": bare,
        "job_wall_s": walls,
        "job_epochs_s": epoch_s,
        "job_fixed_s": fixed,
        "import_torch_s_median": med_bare,
        "job_fixed_s_median": med_fixed,
        "fixed_minus_import_s": med_fixed - med_bare,
        "target_met": med_fixed <= med_bare + 0.5,
    }


BREAKDOWN = r"""
import json, sys, time
t = {"start": time.perf_counter()}
import torch
t["import_torch"] = time.perf_counter()
import greenpath.training.job, greenpath.training, greenpath.energy, greenpath.records
t["import_engine"] = time.perf_counter()
from pathlib import Path
from greenpath.data.prepared import load_prepared
from greenpath.training.data import tensor_data
from greenpath.training import model_for, make_optimizer, loss_function
from greenpath.training.warmup import warm_up
from greenpath.training.precision import full_precision
cfg = json.loads(sys.argv[2])
torch.set_num_threads(1)
ds = load_prepared(Path(sys.argv[1])); data = tensor_data(ds)
t["load_data"] = time.perf_counter()
model = model_for(cfg, ds); opt = make_optimizer(cfg, list(model.parameters()))
t["build_model"] = time.perf_counter()
warm_up(model, data, batch_size=cfg["training"]["batch_size"], precision=full_precision("cpu"),
        loss_fn=loss_function(data.multilabel))
t["warm_up"] = time.perf_counter()
keys = list(t)
print(json.dumps({k: t[k] - t[p] for p, k in zip(keys, keys[1:])}))
"""


def breakdown(config: Mapping[str, Any], npz: Path, repeats: int = 3) -> dict[str, Any]:
    """Medians (seconds) of the fixed cost's parts, each after the previous one, in a fresh
    process; ``python_start_s`` is ``python -c pass``; ``import_snakemake_script_s`` is
    ``python -c "import snakemake.script"`` on its own."""
    settings = json.dumps({k: config[k] for k in JOB_SECTIONS if k in config})
    runs = []
    for _ in range(repeats):
        proc = subprocess.run(
            [sys.executable, "-c", BREAKDOWN, str(npz), settings],
            capture_output=True, text=True, env=_env(), timeout=600, check=True,
        )  # fmt: skip
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    out = {f"{k}_s": statistics.median(r[k] for r in runs) for k in runs[0]}
    out["python_start_s"] = statistics.median(
        _timed([sys.executable, "-c", "pass"]) for _ in range(repeats)
    )
    out["import_snakemake_script_s"] = statistics.median(
        _timed([sys.executable, "-c", "import snakemake.script"]) for _ in range(repeats)
    )
    return out


def training_stage(parsed: Mapping[str, Any], records: pd.DataFrame, cores: int) -> dict:
    """The training stage of a logged run against perfect packing of its epochs.

    Args:
        parsed: :func:`bench_grid.parse_snakemake_log` output (jobs with ``start``/``end``).
        records: the run's aggregated records (``duration_s`` per epoch).
        cores: the run's ``--cores``.

    Returns:
        ``stage_s`` (first training job start to last training job end, 1 s resolution),
        ``epochs_s_sum``, ``ideal_s`` (``epochs_s_sum / cores``) and ``ratio``
        (``stage_s / ideal_s``; target <= 4).
    """
    train = [j for j in parsed["jobs"] if j["rule"] in ("train_trunk", "train_branch")]
    if not train:
        return {"skipped": "no training jobs in the log"}
    stage = (max(j["end"] for j in train) - min(j["start"] for j in train)).total_seconds()
    epochs_s = float(pd.to_numeric(records["duration_s"], errors="coerce").fillna(0).sum())
    ideal = epochs_s / cores
    return {
        "train_jobs": len(train),
        "cores": cores,
        "stage_s": stage,
        "epochs_s_sum": epochs_s,
        "ideal_s": ideal,
        "ratio": stage / ideal if ideal > 0 else None,
        "target_met": ideal > 0 and stage / ideal <= 4.0,
    }


def fresh_clone_run(repo: Path = REPO, cores: int = 2) -> dict[str, Any]:
    """Wall time of ``make run`` (set-up included) in a fresh clone of ``repo``'s HEAD.

    Needs the package registries (it creates the clone's own ``.venv``) and the offline
    data the config names. Target: at most 300 s.
    """
    with tempfile.TemporaryDirectory(prefix="gp-fresh-") as tmp:
        clone = Path(tmp) / "greenpath"
        subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
        t0 = time.perf_counter()
        proc = subprocess.run(
            ["make", "run", f"CORES={cores}"], cwd=clone, capture_output=True, text=True,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )  # fmt: skip
        wall = time.perf_counter() - t0
    return {
        "cores": cores,
        "wall_s": wall,
        "returncode": proc.returncode,
        "tail": proc.stdout[-1500:] + proc.stderr[-1500:],
        "target_met": proc.returncode == 0 and wall <= 300,
    }
