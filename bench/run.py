"""greenpath's own costs, side by side with the bare minimum. Run by ``make bench``.

Writes ``results/bench/<section>.json`` and ``results/bench/summary.md`` (the table copied
into ``BENCHMARKS.md``). Sections (``--only`` picks some):

==========  ==============================================================================
training    engine (``run_trunk_segment``, meter on) vs bare PyTorch loop, interleaved
datapath    time outside forward/backward per epoch, share of epoch time
meter       ``bench/bench_meter.py`` (window cost, poller CPU share, estimate beside a hog)
grid        epochs trained / epochs needed, default-config wall time and per-job overhead
            from the newest complete Snakemake log in the repository, startup costs
modeling    fit / leave-one-dataset-out / run_paths times on EAT-IT (skipped if absent)
scaling     the workflow on three small grids in temporary folders: wall, peak RSS,
            records bytes per 1000 epochs
faststart   a training job's fixed cost (job wall minus its epochs) vs bare ``import
            torch``, interleaved; its parts; the training stage of the newest complete
            Snakemake log vs its epochs / cores; ``make run`` in a fresh clone
            (``--fresh-clone`` only)
==========  ==============================================================================

Usage: ``python bench/run.py [--out results/bench] [--only training,meter] [--full]``
(``--full``: every LODO fold, more rounds; takes far more than 10 minutes here).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

SECTIONS = ("training", "datapath", "meter", "grid", "modeling", "scaling", "faststart")
DEFAULT_DATASETS = ("fashion_mnist", "digits", "lfw_faces", "font_digits")


def machine() -> dict[str, Any]:
    """Machine description stored with every result."""
    import psutil
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cuda": torch.cuda.is_available(),
        "load_avg": os.getloadavg(),
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def study_dir(config: dict[str, Any]) -> Path:
    """The config's study folder of the repository, ``results/<study>``."""
    return REPO / "results" / str(config.get("study", "default"))


def prepared(config: dict[str, Any], names: tuple[str, ...], cache: Path) -> dict[str, Path]:
    """Prepared ``.npz`` per dataset: the study's ``results/<study>/data`` if present, else
    prepared into ``cache`` from the config (datasets that cannot be prepared are left out
    with a warning)."""
    from greenpath.data import prepare_from_config

    out = {}
    for name in names:
        if name not in config["datasets"]:
            continue
        p = study_dir(config) / "data" / f"{name}.npz"
        if not p.is_file():
            p = cache / f"{name}.npz"
            try:
                prepare_from_config(name, config, p)
            except Exception as exc:  # noqa: BLE001 - a missing offline dataset is skipped
                logging.warning("bench: %s not prepared (%s); left out", name, exc)
                continue
        out[name] = p
    return out


def _load_config() -> dict[str, Any]:
    from greenpath.config import load_config

    return load_config(REPO / "config" / "config.yaml", check_datasets=False)


def sec_training(cfg: dict[str, Any], data: dict[str, Path], full: bool) -> dict[str, Any]:
    import bench_train

    big = {k: v for k, v in data.items() if k in ("fashion_mnist", "digits")}
    return bench_train.throughput(cfg, big, rounds=12 if full else 8, epochs=2)


def sec_datapath(cfg: dict[str, Any], data: dict[str, Path], full: bool) -> dict[str, Any]:
    import bench_train

    return bench_train.data_path(cfg, data, epochs=3)


def sec_meter(cfg: dict[str, Any], data: dict[str, Path], full: bool, out: Path) -> dict[str, Any]:
    import contextlib
    import io

    import bench_meter

    args = ["--out", str(out / "meter.json"), "--busy-s", "5" if full else "2", "--n", "1000"]
    if not full:
        args.append("--no-throughput")
    with contextlib.redirect_stdout(io.StringIO()):
        bench_meter.main(args)
    return json.loads((out / "meter.json").read_text())


def sec_grid(cfg: dict[str, Any], data: dict[str, Path], full: bool) -> dict[str, Any]:
    import bench_grid
    import pandas as pd

    res: dict[str, Any] = {}
    rec_path = study_dir(cfg) / "records.parquet"
    log = bench_grid.latest_complete_log(REPO)
    if rec_path.is_file():
        rec = pd.read_parquet(rec_path)
        res["default_run"] = {"records": str(rec_path), **bench_grid.grid_efficiency(rec, cfg)}
        files = list((study_dir(cfg) / "records").rglob("*.parquet"))
        res["default_run"]["records_job_files_bytes_per_1000_epochs"] = (
            1000 * sum(f.stat().st_size for f in files) / max(len(rec), 1)
        )
        res["default_run"]["records_aggregated_bytes_per_1000_epochs"] = (
            1000 * rec_path.stat().st_size / max(len(rec), 1)
        )
        if log is not None:
            parsed = bench_grid.parse_snakemake_log(log)
            res["default_run"]["snakemake_log"] = str(log.relative_to(REPO))
            res["default_run"]["overhead"] = bench_grid.job_overhead(parsed, rec, REPO)
    else:
        res["default_run"] = {"skipped": f"{rec_path} absent; run `make run` first"}
    if data:
        res["startup"] = bench_grid.startup_costs(cfg, next(iter(data.values())))
    return res


def sec_modeling(cfg: dict[str, Any], data: dict[str, Path], full: bool) -> dict[str, Any]:
    import bench_model

    return bench_model.modeling(REPO.parent / "shared" / "eatit", folds=None if full else 1)


#: (datasets, seeds, interventions, epochs) of the three scaling grids.
SCALING_GRIDS = (
    (("digits",), [0], [0], 3),
    (("digits",), [0, 1], [0, 2], 3),
    (("digits", "font_digits"), [0, 1], [0], 3),
)


def sec_scaling(
    cfg: dict[str, Any], data: dict[str, Path], full: bool, out: Path
) -> dict[str, Any]:
    import bench_grid

    runs = []
    for names, seeds, ks, epochs in SCALING_GRIDS:
        ds = {n: cfg["datasets"].get(n, {}) for n in names}
        tag = f"{len(names)}x{len(seeds)}x{len(ks)}"
        t0 = time.perf_counter()
        r = bench_grid.scaling_run(
            REPO,
            cfg,
            datasets=ds,
            seeds=seeds,
            interventions=ks,
            epochs=epochs,
            keep=out / "scaling_logs" / tag,
        )
        r["grid"] = tag
        runs.append(r)
        logging.info("bench: scaling %s done in %.0f s", tag, time.perf_counter() - t0)
    return {"runs": runs}


def sec_faststart(
    cfg: dict[str, Any], data: dict[str, Path], full: bool, fresh_clone: bool
) -> dict[str, Any]:
    import bench_faststart
    import bench_grid
    import pandas as pd

    name = "fashion_mnist" if "fashion_mnist" in data else next(iter(data), None)
    res: dict[str, Any] = {}
    if name is None:
        return {"skipped": "no prepared dataset"}
    res["jobs"] = bench_faststart.fixed_cost(cfg, data[name], rounds=9 if full else 5)
    res["jobs_own_process"] = bench_faststart.fixed_cost(
        cfg, data[name], rounds=5 if full else 3, forkserver=False
    )
    res["breakdown"] = bench_faststart.breakdown(cfg, data[name])
    log = bench_grid.latest_complete_log(REPO)
    rec_path = study_dir(cfg) / "records.parquet"
    if log is not None and rec_path.is_file():
        parsed = bench_grid.parse_snakemake_log(log)
        cores = bench_grid.job_overhead(parsed, pd.read_parquet(rec_path), REPO)["cores"]
        stage = bench_faststart.training_stage(parsed, pd.read_parquet(rec_path), cores or 2)
        res["training_stage"] = {"snakemake_log": str(log.relative_to(REPO)), **stage}
    else:
        res["training_stage"] = {"skipped": "no complete Snakemake log; run `make run` first"}
    if fresh_clone:
        res["fresh_clone"] = bench_faststart.fresh_clone_run(REPO)
    return res


def _fmt(x: Any, nd: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def summary_md(res: dict[str, Any]) -> str:
    """The Markdown table of the headline figures (missing sections are left out)."""
    lines = [
        "| area | figure | value | target | met |",
        "|---|---|---|---|---|",
    ]

    def row(area: str, fig: str, val: str, target: str = "", met: bool | None = None) -> None:
        m = "" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {area} | {fig} | {val} | {target} | {m} |")

    tr = res.get("training")
    if tr:
        for name, d in tr.items():
            if not isinstance(d, dict) or "median_ratio" not in d:
                continue
            mr, ips = d["median_ratio"], d["images_per_s_median"]
            row(
                "training loop",
                f"{name}: engine/bare images/s, epoch (train+val, meter on), median of {tr['rounds']}",
                f"{mr['epoch']:.3f} ({ips['engine_epoch']:.0f} vs {ips['bare_epoch']:.0f} img/s)",
                ">= 0.95",
                mr["epoch"] >= 0.95,
            )
            row(
                "training loop",
                f"{name}: same, process CPU time instead of wall",
                f"{mr['epoch_cpu']:.3f}",
                ">= 0.95",
                mr["epoch_cpu"] >= 0.95,
            )
            row("training loop", f"{name}: training pass only", f"{mr['train']:.3f}")
            row(
                "training loop",
                f"{name}: whole job call ({tr['epochs_per_call']} epochs) vs bare epochs",
                f"{mr['job']:.3f} (+{d['engine_job_overhead_s_median']:.2f} s per job)",
            )
    dp = res.get("datapath")
    if dp:
        for name, d in dp.items():
            if isinstance(d, dict) and "share_per_epoch_pct" in d:
                row(
                    "data path",
                    f"{name}: outside fwd/bwd per epoch (with per-job load+normalise / {dp['mean_epochs_per_job']:.0f} epochs)",
                    f"{d['share_per_epoch_pct']:.2f} % ({d['share_with_job_setup_pct']:.2f} %)",
                    "<= 5 %",
                    d["share_with_job_setup_pct"] <= 5.0,
                )
    me = res.get("meter")
    if me:
        wc = me["window_cost_us"]
        row(
            "meter",
            "begin/end window, estimate meter (median)",
            f"{wc['estimate']['median_us']:.1f} µs",
            "< 100 µs",
            wc["estimate"]["median_us"] < 100,
        )
        row(
            "meter",
            "begin/end window, RAPL on fake 4-domain tree",
            f"{wc['rapl_fake_tree']['median_us']:.1f} µs",
            "< 100 µs",
            wc["rapl_fake_tree"]["median_us"] < 100,
        )
        for k, v in me["poller_cpu_share"].items():
            row(
                "meter",
                f"poller CPU share, {k}",
                f"{v['cpu_share_pct']:.3f} %",
                "< 0.5 %",
                v["cpu_share_pct"] < 0.5,
            )
        ct = me.get("contention")
        if ct:
            r = ct["ratio_hog_over_alone"]
            row(
                "meter",
                "estimate of one epoch, beside a CPU hog / alone (cpu_load: process; "
                f"wall x{r['wall_s']:.2f}, load avg {ct['load_avg']['before'][0]:.1f})",
                f"{r['process_j']:.3f}",
                "within 15 % of 1",
                abs(r["process_j"] - 1) <= 0.15,
            )
    gr = res.get("grid")
    if gr:
        dr = gr.get("default_run", {})
        if "ratio" in dr:
            row(
                "grid",
                f"epochs trained / needed (default run, {dr['rows']} rows, {dr['trees_found']} trees)",
                f"{dr['ratio']:.4f}",
                "= 1",
                dr["ratio"] == 1.0,
            )
            ov = dr.get("overhead")
            if ov:
                row(
                    "grid",
                    f"default config wall time (Snakemake log, --cores {ov['cores']})",
                    f"{ov['elapsed_s']:.0f} s",
                )
                row(
                    "grid",
                    "epoch windows / train-job wall (sum)",
                    f"{ov['epoch_window_s_sum']:.0f} s / {ov['train_job_wall_s_sum']:.0f} s",
                )
                row(
                    "grid",
                    "per-job overhead share of train-job wall",
                    _fmt(
                        None
                        if ov["overhead_share_of_train_job_wall"] is None
                        else 100 * ov["overhead_share_of_train_job_wall"],
                        0,
                    )
                    + " %",
                )
                row(
                    "grid",
                    "median train-job wall / init-job wall",
                    f"{ov['train_job_wall_s_median']:.0f} s / {ov['init_job_wall_s_median']:.0f} s",
                )
            row(
                "records",
                "bytes per 1000 epochs: per-job files / aggregated",
                f"{dr['records_job_files_bytes_per_1000_epochs'] / 1e6:.2f} MB / {dr['records_aggregated_bytes_per_1000_epochs'] / 1e6:.2f} MB",
            )
        su = gr.get("startup")
        if su:
            row(
                "per job",
                "python start / +import torch / +greenpath engine",
                f"{su['python_start_s']:.2f} / {su['import_torch_s']:.2f} / {su['import_engine_s']:.2f} s",
            )
            row(
                "per job",
                "checkpoint save / load (small_cnn)",
                f"{1e3 * su['checkpoint_save_s']:.1f} / {1e3 * su['checkpoint_load_s']:.1f} ms",
            )
            row(
                "per job", "RSS after `import torch`", f"{su['rss_after_import_torch_mib']:.0f} MiB"
            )
    mo = res.get("modeling")
    if mo:
        if "skipped" in mo:
            row("modeling", "EAT-IT", mo["skipped"])
        else:
            est = "est. from 1 fold" if mo.get("folds_timed") else "all folds"
            for name, d in mo["predictors"].items():
                row(
                    "modeling",
                    f"{name}: fit (9 datasets) / LODO ({est})",
                    f"{d['fit_all_s']:.2f} s / {d['lodo_s']:.1f} s",
                )
            row(
                "paths",
                f"run_paths (every strategy, {mo['paths']['predictor']} predictor)",
                f"{mo['paths']['run_paths_s']:.1f} s",
            )
    sc = res.get("scaling")
    if sc:
        for r in sc["runs"]:
            row(
                "scaling",
                f"{r['grid']} (datasets x seeds x interventions, {r['epochs']} epochs): {r['jobs']} jobs, {r['rows']} epochs",
                f"{r['wall_s']:.0f} s, peak RSS {r['peak_rss_total_mib']:.0f} MiB (largest process {r['peak_rss_single_mib']:.0f}), efficiency {r['grid_efficiency']:.2f}",
            )
    _faststart_rows(res.get("faststart"), row)
    return "\n".join(lines) + "\n"


def _faststart_rows(fs: dict[str, Any] | None, row: Callable[..., None]) -> None:
    if not fs or "jobs" not in fs:
        return
    j = fs["jobs"]
    row(
        "fast start",
        f"training job fixed cost via the fork server (wall - epochs, median of "
        f"{2 * j['rounds']} jobs, "
        f"{j['dataset']}) vs bare `import torch` (median of {j['rounds']})",
        f"{j['job_fixed_s_median']:.2f} s vs {j['import_torch_s_median']:.2f} s "
        f"(+{j['fixed_minus_import_s']:.2f} s)",
        "<= import + 0.5 s",
        j["target_met"],
    )
    o = fs.get("jobs_own_process")
    if o:
        row(
            "fast start",
            f"same, each job in its own process (no fork server, as under SLURM; "
            f"median of {2 * o['rounds']} jobs)",
            f"{o['job_fixed_s_median']:.2f} s vs {o['import_torch_s_median']:.2f} s "
            f"(+{o['fixed_minus_import_s']:.2f} s)",
        )
    b = fs.get("breakdown") or {}
    if b:
        row(
            "fast start",
            "parts, own process: import torch / + engine / data load / model + optimizer "
            "(imports torch._dynamo) / warm-up (script: wrapper's `import snakemake.script`)",
            f"{b['import_torch_s']:.2f} / {b['import_engine_s']:.2f} / {b['load_data_s']:.2f}"
            f" / {b['build_model_s']:.2f} / {b['warm_up_s']:.2f} s "
            f"({b['import_snakemake_script_s']:.2f} s)",
        )
    st = fs.get("training_stage") or {}
    if "ratio" in st:
        row(
            "fast start",
            f"training stage / (epochs / cores) ({st['train_jobs']} jobs, --cores {st['cores']})",
            f"{st['ratio']:.2f} ({st['stage_s']:.0f} s vs {st['epochs_s_sum']:.0f} s / "
            f"{st['cores']})",
            "<= 4",
            st["target_met"],
        )
    fc = fs.get("fresh_clone")
    if fc:
        row("fast start", "`make run` in a fresh clone", f"{fc['wall_s']:.0f} s", "<= 300 s",
            fc["target_met"])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "results" / "bench"), help="output folder")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated of {SECTIONS}")
    ap.add_argument("--full", action="store_true", help="every LODO fold, more rounds (slow)")
    ap.add_argument(
        "--fresh-clone", action="store_true", help="faststart: also time `make run` in a clone"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("greenpath", "greenpath.training", "greenpath.energy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = sorted(set(only) - set(SECTIONS))
    if bad:
        ap.error(f"unknown section(s) {bad}; choose from {list(SECTIONS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    from greenpath.records import json_ready, write_json

    cfg = _load_config()
    torch.set_num_threads(int(cfg["training"].get("num_threads", 1)))
    results: dict[str, Any] = {}
    for p in out.glob("*.json"):  # keep earlier sections for the summary
        if p.stem in SECTIONS:
            results[p.stem] = json.loads(p.read_text()).get("result")
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gp-bench-data-") as cache:
        data = prepared(cfg, DEFAULT_DATASETS, Path(cache))
        funcs: dict[str, Callable[[], dict[str, Any]]] = {
            "training": lambda: sec_training(cfg, data, args.full),
            "datapath": lambda: sec_datapath(cfg, data, args.full),
            "meter": lambda: sec_meter(cfg, data, args.full, out),
            "grid": lambda: sec_grid(cfg, data, args.full),
            "modeling": lambda: sec_modeling(cfg, data, args.full),
            "scaling": lambda: sec_scaling(cfg, data, args.full, out),
            "faststart": lambda: sec_faststart(cfg, data, args.full, args.fresh_clone),
        }
        for name in SECTIONS:
            if name not in only:
                continue
            t0 = time.perf_counter()
            logging.info("bench: %s ...", name)
            res = funcs[name]()
            dt = time.perf_counter() - t0
            results[name] = res
            doc = {"section": name, "seconds": dt, "machine": machine(), "result": res}
            write_json(json_ready(doc), out / f"{name}.json")
            logging.info("bench: %s done in %.0f s", name, dt)
    md = summary_md(results)
    head = (
        f"Machine: {machine()['logical_cpus']} logical CPUs, {machine()['memory_gib']} GiB, "
        f"CUDA {'yes' if machine()['cuda'] else 'no'}; bench run {time.perf_counter() - t_all:.0f} s.\n\n"
    )
    (out / "summary.md").write_text(head + md)
    print(head + md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
