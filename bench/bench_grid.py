"""Workflow benchmarks: grid efficiency, per-job overhead, scaling.

* :func:`parse_snakemake_log` -- job start/end times (1 s resolution) and the total
  elapsed time from a Snakemake log (``.snakemake/log/*.snakemake.log``).
* :func:`grid_efficiency` -- rows of a real run's records per tree / ``epochs_needed``
  (exactly 1.0 when every epoch of the tree is trained once).
* :func:`job_overhead` -- share of the training jobs' wall time that is not inside an
  epoch window (process start, imports, checkpoint load/save, state saves, records write):
  ``1 - sum(duration_s) / sum(job wall)``, from the Snakemake log and the records.
* :func:`startup_costs` -- the parts of that overhead measured on their own.
* :func:`scaling_run` -- the workflow on a temporary copy of the config (own working
  directory, same Snakefile), wall time, peak memory of the whole process tree (psutil,
  sampled every 0.1 s), records bytes per 1000 epochs.
"""

from __future__ import annotations

import copy
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import bench_faststart
import pandas as pd
import psutil
import yaml

from greenpath.grid import epochs_needed

DATE_RE = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
RULE_RE = re.compile(r"^(?:local)?rule (\w+):$")
FIN_RE = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)")
ELAPSED_RE = re.compile(r"^Elapsed time: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


def parse_snakemake_log(path: Path) -> dict[str, Any]:
    """Jobs (rule, jobid, output, start, end, wall_s) and elapsed seconds of one Snakemake log.

    Snakemake stamps job starts and ends to the second, so one job's wall time is +-1 s;
    sums over many jobs are better.
    """
    jobs: dict[int, dict[str, Any]] = {}
    last_date: datetime | None = None
    pending: dict[str, Any] | None = None
    elapsed = None
    complete = False
    for line in Path(path).read_text(errors="replace").splitlines():
        if m := DATE_RE.match(line):
            last_date = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
            continue
        if m := RULE_RE.match(line):
            pending = {"rule": m.group(1), "start": last_date}
            continue
        s = line.strip()
        if pending is not None and s.startswith("output:"):
            pending["output"] = s.split(":", 1)[1].strip()
        if pending is not None and s.startswith("jobid:"):
            jid = int(s.split(":")[1])
            jobs[jid] = pending
            pending = None
            continue
        if m := FIN_RE.match(line):
            j = jobs.get(int(m.group(1)))
            if j is not None and last_date is not None:
                j["end"] = last_date
        if m := ELAPSED_RE.match(line):
            elapsed = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
        if "steps (100%) done" in line:
            complete = True
    rows = []
    for jid, j in jobs.items():
        if j.get("start") and j.get("end"):
            rows.append(
                {
                    "jobid": jid,
                    "rule": j["rule"],
                    "output": j.get("output", ""),
                    "wall_s": (j["end"] - j["start"]).total_seconds(),
                    "start": j["start"],
                    "end": j["end"],
                }
            )
    return {"log": str(path), "complete": complete, "elapsed_s": elapsed, "jobs": rows}


def latest_complete_log(workdir: Path) -> Path | None:
    """The newest ``.snakemake/log`` file of ``workdir`` that finished all its steps and
    ran training jobs (later runs that only redo modeling or the report are skipped)."""
    logs = sorted((Path(workdir) / ".snakemake" / "log").glob("*.snakemake.log"), reverse=True)
    for p in logs:
        parsed = parse_snakemake_log(p)
        if parsed["complete"] and any(j["rule"] == "train_branch" for j in parsed["jobs"]):
            return p
    return None


def grid_efficiency(records: pd.DataFrame, config: Mapping[str, Any]) -> dict[str, Any]:
    """Epochs trained (record rows) / epochs the tree needs, per tree and in total."""
    need = epochs_needed(
        int(config["training"]["epochs"]),
        config["interventions"]["epochs"],
        config["interventions"]["methods"],
    )
    per_tree = records.groupby(["dataset", "seed"]).size()
    trees = len(config["datasets"]) * len(config["seeds"])
    return {
        "epochs_needed_per_tree": need,
        "trees_expected": trees,
        "trees_found": int(len(per_tree)),
        "rows": int(len(records)),
        "status_counts": {str(k): int(v) for k, v in records["status"].value_counts().items()},
        "ratio": float(len(records)) / (need * trees),
        "per_tree_min": int(per_tree.min()) if len(per_tree) else 0,
        "per_tree_max": int(per_tree.max()) if len(per_tree) else 0,
    }


def job_overhead(parsed: Mapping[str, Any], records: pd.DataFrame, workdir: Path) -> dict[str, Any]:
    """Per-job overhead share of the training jobs, from the log's job walls and the records.

    ``epoch_s`` is the sum of the epochs' energy windows (``duration_s``) of the jobs whose
    records file is the job's output; everything else in a job's wall is overhead.
    """
    train = [j for j in parsed["jobs"] if j["rule"] in ("train_trunk", "train_branch")]
    init = [j for j in parsed["jobs"] if j["rule"] == "init_model"]
    prep = [j for j in parsed["jobs"] if j["rule"] == "prepare_dataset"]
    job_wall = sum(j["wall_s"] for j in train)
    epoch_s = float(records["duration_s"].fillna(0).sum())
    cores = None
    m = re.search(r"--cores (\d+)", Path(parsed["log"]).read_text(errors="replace")[:3000])
    if m:
        cores = int(m.group(1))
    out = {
        "train_jobs": len(train),
        "train_job_wall_s_sum": job_wall,
        "train_job_wall_s_median": statistics.median([j["wall_s"] for j in train])
        if train
        else None,
        "init_jobs": len(init),
        "init_job_wall_s_median": statistics.median([j["wall_s"] for j in init]) if init else None,
        "prepare_job_wall_s_sum": sum(j["wall_s"] for j in prep),
        "epoch_window_s_sum": epoch_s,
        "overhead_share_of_train_job_wall": 1 - epoch_s / job_wall if job_wall else None,
        "elapsed_s": parsed["elapsed_s"],
        "cores": cores,
    }
    if cores and parsed["elapsed_s"]:
        out["epoch_share_of_core_time"] = epoch_s / (cores * parsed["elapsed_s"])
    return out


def _timed_python(code: str, repeats: int = 2) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def startup_costs(config: dict[str, Any], npz: Path) -> dict[str, Any]:
    """Medians of the per-job costs that are not epochs: interpreter start, imports, checkpoint.

    Returns seconds: ``python_start``, ``import_torch`` (incl. start), ``import_engine``
    (torch + greenpath.training + energy + records + config, as ``scripts/train.py``),
    ``import_snakemake_script`` and checkpoint save/load of the epoch-0 ``small_cnn`` state.
    """
    from greenpath.training import checkpoint as ckpt_io
    from greenpath.training import init_checkpoint

    out: dict[str, Any] = {
        "python_start_s": _timed_python("pass"),
        "import_torch_s": _timed_python("import torch"),
        "import_engine_s": _timed_python(
            "import torch, greenpath.training, greenpath.energy, greenpath.records, greenpath.config"
        ),
        "import_snakemake_script_s": _timed_python("import snakemake.script"),
    }
    with tempfile.TemporaryDirectory(prefix="gp-bench-") as tmp:
        ck = Path(tmp) / "ck0.pt"
        t0 = time.perf_counter()
        init_checkpoint(config, dataset_path=npz, seed=0, out_checkpoint=ck)
        out["init_checkpoint_s"] = time.perf_counter() - t0
        obj = ckpt_io.load_checkpoint(ck, kind="checkpoint")
        loads, saves = [], []
        for i in range(5):
            t0 = time.perf_counter()
            ckpt_io.save_checkpoint(obj, Path(tmp) / f"c{i}.pt")
            saves.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ckpt_io.load_checkpoint(Path(tmp) / f"c{i}.pt", kind="checkpoint")
            loads.append(time.perf_counter() - t0)
        out["checkpoint_save_s"] = statistics.median(saves)
        out["checkpoint_load_s"] = statistics.median(loads)
        out["checkpoint_bytes"] = ck.stat().st_size
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            "import torch, resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    out["rss_after_import_torch_mib"] = int(p.stdout.strip()) / 1024
    return out


class _PeakRSS(threading.Thread):
    """Samples the summed RSS of a process and its descendants every ``period_s``."""

    def __init__(self, pid: int, period_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.period_s = period_s
        self.peak_total = 0
        self.peak_single = 0
        self.max_procs = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            total = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.peak_single = max(self.peak_single, rss)
            self.peak_total = max(self.peak_total, total)
            self.max_procs = max(self.max_procs, len(procs))
            self.stop.wait(self.period_s)


def scaling_run(
    repo: Path,
    base_config: Mapping[str, Any],
    *,
    datasets: Mapping[str, Any],
    seeds: list[int],
    interventions: list[int],
    epochs: int,
    cores: int = 2,
    keep: Path | None = None,
) -> dict[str, Any]:
    """Run the workflow on a small config in a temporary working directory.

    The config is a copy of ``base_config`` with the given datasets, seeds, intervention
    epochs and epochs. Snakemake runs ``repo/Snakefile`` with ``--directory`` set to the
    temporary folder, so the repository's ``results/`` is untouched.

    Raises:
        RuntimeError: Snakemake failed (the message holds the tail of its output).
    """
    cfg = copy.deepcopy(dict(base_config))
    cfg["datasets"] = dict(datasets)
    cfg["seeds"] = list(seeds)
    cfg["interventions"] = {**cfg["interventions"], "epochs": list(interventions)}
    cfg["training"] = {**cfg["training"], "epochs": epochs}
    study = str(cfg.get("study", "default"))
    with tempfile.TemporaryDirectory(prefix="gp-scale-") as tmp_s:
        tmp = Path(tmp_s)
        results = tmp / "results" / study
        (tmp / "config").mkdir()
        cfg_path = tmp / "config" / "config.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        cmd = [
            str(Path(sys.executable).parent / "snakemake"),
            "--snakefile",
            str(Path(repo).resolve() / "Snakefile"),
            "--directory",
            str(tmp),
            "--configfile",
            str(cfg_path),
            "--cores",
            str(cores),
            # the collection stage only: modeling/paths/report are benchmarked in-process
            f"results/{study}/records.parquet",
            f"results/{study}/trajectories.parquet",
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        mon = _PeakRSS(proc.pid)
        mon.start()
        output, _ = proc.communicate()
        wall = time.perf_counter() - t0
        mon.stop.set()
        mon.join()
        if proc.returncode != 0:
            raise RuntimeError(f"snakemake failed ({proc.returncode}): {output[-3000:]}")
        rec = pd.read_parquet(results / "records.parquet")
        files = list((results / "records").rglob("*.parquet"))
        job_bytes = sum(f.stat().st_size for f in files)
        agg_bytes = (results / "records.parquet").stat().st_size
        log = latest_complete_log(tmp)
        parsed = parse_snakemake_log(log) if log else None
        trees = len(datasets) * len(seeds)
        res = {
            "datasets": len(datasets),
            "seeds": len(seeds),
            "interventions": len(interventions),
            "epochs": epochs,
            "trees": trees,
            "jobs": len(parsed["jobs"]) if parsed else None,
            "wall_s": wall,
            "snakemake_elapsed_s": parsed["elapsed_s"] if parsed else None,
            "peak_rss_total_mib": mon.peak_total / 2**20,
            "peak_rss_single_mib": mon.peak_single / 2**20,
            "max_processes": mon.max_procs,
            "rows": int(len(rec)),
            "grid_efficiency": grid_efficiency(rec, cfg)["ratio"],
            "records_job_files_bytes_per_1000_epochs": 1000 * job_bytes / max(len(rec), 1),
            "records_aggregated_bytes_per_1000_epochs": 1000 * agg_bytes / max(len(rec), 1),
        }
        if parsed:
            res["overhead"] = job_overhead(parsed, rec, tmp)
            res["training_stage"] = bench_faststart.training_stage(parsed, rec, cores)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            if log:
                (keep / log.name).write_text(log.read_text())
        return res
