"""Issue 7 fault injection: kill a training job (SIGKILL/SIGTERM, after an epoch or in the
middle of a checkpoint write), rerun it, and get the uninterrupted run's records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from training_helpers import FakeMeter, make_config, stable_columns

from greenpath.records import read_metadata, read_records
from greenpath.training import init_checkpoint, run_branch, run_trunk_segment
from greenpath.training.checkpoint import load_checkpoint
from greenpath.training.engine import default_state_path

pytestmark = pytest.mark.slow

DRIVER = r"""
import io, json, os, signal, sys
import torch
torch.set_num_threads(1)
from greenpath.training import engine, checkpoint as ck, Callback

args = json.loads(sys.argv[1])
fault = os.environ.get("GP_FAULT", "")
count = {"saves": 0, "trained": 0}

class Fault(Callback):  # counts trained epochs; kill:n / term:n dies once epoch n is saved
    def on_epoch_start(self, loop, epoch):
        if fault.startswith(("kill:", "term:")) and epoch - 1 == int(fault.split(":")[1]):
            os.kill(os.getpid(), signal.SIGKILL if fault.startswith("kill:") else signal.SIGTERM)
        count["trained"] += 1

if fault.startswith("write:"):
    n = int(fault.split(":")[1])
    real_save = torch.save
    def save(obj, f, *a, **kw):
        count["saves"] += 1
        if count["saves"] == n:  # half the bytes reach the temp file, then the job dies
            buf = io.BytesIO()
            real_save(obj, buf, *a, **kw)
            data = buf.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, f, *a, **kw)
    ck.torch.save = save
kind = args.pop("kind")
fn = engine.run_trunk_segment if kind == "trunk" else engine.run_branch
fn(args.pop("config"), callbacks=[Fault()], **{k: (v if k in ("dataset", "method") or not isinstance(v, str) else __import__("pathlib").Path(v)) for k, v in args.items()})
print("TRAINED", count["trained"])
"""


def _run(tmp: Path, args: dict, fault: str = "") -> subprocess.CompletedProcess:
    driver = tmp / "driver.py"
    driver.write_text(DRIVER)
    env = dict(os.environ, GP_FAULT=fault, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(driver), json.dumps(args, default=str)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _trained(proc: subprocess.CompletedProcess) -> int:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return int(proc.stdout.strip().split()[-1])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from training_helpers import digits_dataset

    from greenpath.data.prepared import save_prepared

    tmp = tmp_path_factory.mktemp("resume")
    npz = save_prepared(digits_dataset(), tmp / "digits.npz")
    cfg = make_config(epochs=4)
    cfg["energy"] = {"rapl": "off"}
    init_checkpoint(cfg, dataset_path=npz, seed=0, out_checkpoint=tmp / "c0.pt")

    run_trunk_segment(
        cfg, dataset="digits", dataset_path=npz, seed=0, start=0, end=1,
        in_checkpoint=tmp / "c0.pt", out_checkpoint=tmp / "c1.pt",
        out_records=tmp / "t01.parquet", meter=FakeMeter(),
    )  # fmt: skip
    jobs = {
        "trunk": dict(
            kind="trunk", config=cfg, dataset="digits", dataset_path=str(npz), seed=0,
            start=0, end=4, in_checkpoint=str(tmp / "c0.pt"),
            out_checkpoint="OUT/c4.pt", out_records="OUT/trunk.parquet",
        ),
        "branch": dict(
            kind="branch", config=cfg, dataset="digits", dataset_path=str(npz), seed=0,
            method="freeze", intervention_epoch=1, in_checkpoint=str(tmp / "c1.pt"),
            out_records="OUT/freeze.parquet",
        ),
    }  # fmt: skip
    refs = {}
    for name, job in jobs.items():  # uninterrupted references, in this process
        out = tmp / f"ref_{name}"
        args = _place(job, out)
        kind = args.pop("kind")
        fn = run_trunk_segment if kind == "trunk" else run_branch
        paths = {
            k: Path(v) for k, v in args.items() if k.endswith(("_path", "checkpoint", "records"))
        }
        args.update(paths)
        fn(**args, meter=FakeMeter())
        refs[name] = read_records(args["out_records"])
    return tmp, jobs, refs


def _place(job: dict, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    return {k: (v.replace("OUT", str(out)) if isinstance(v, str) else v) for k, v in job.items()}


def _check_state(records: Path, done: int, first: int) -> list[str]:
    state = load_checkpoint(default_state_path(records), kind="state")
    assert state["epoch"] == done
    assert [r["epoch"] for r in state["rows"]] == list(range(first, done + 1))
    return [r["epoch_start_utc"] for r in state["rows"]]


def _check_final(
    out: Path, records: Path, ref: pd.DataFrame, measured: list[str], expected: list[str]
):
    got = read_records(records)
    cols = stable_columns(ref)
    pd.testing.assert_frame_equal(got[cols], ref[cols])
    # rows measured before a kill are kept as measured (same start time), not re-measured
    assert [t.isoformat() for t in got["epoch_start_utc"][: len(measured)]] == [
        pd.Timestamp(m).isoformat() for m in measured
    ]
    assert sorted(p.name for p in out.iterdir()) == expected  # no state file, no temp file
    meta = read_metadata(records)  # the measuring attempt's meter is described
    assert any("energy.meter" in k for k in meta), sorted(meta)


def test_trunk_survives_a_chain_of_kills(setup):
    """SIGKILL after epoch 1; SIGKILL mid-write of epoch 3's state; SIGTERM after epoch 3;
    SIGKILL mid-write of the final checkpoint; then a clean rerun. Every rerun continues
    from the last complete epoch and trains only what is missing."""
    tmp, jobs, refs = setup
    out = tmp / "trunk_chain"
    args = _place(jobs["trunk"], out)
    records = Path(args["out_records"])
    steps = [
        # fault, epochs trained before dying, epochs complete on disk afterwards
        ("kill:1", 1),  # after epoch 1's state is saved
        ("write:2", 2),  # saves in this run: epoch 2 state, epoch 3 state <- dies mid-write
        ("term:3", 3),  # SIGTERM (SLURM time limit) after epoch 3
        ("write:2", 4),  # saves: epoch 4 state, final checkpoint <- dies mid-write
    ]
    measured: list[str] = []
    for fault, done in steps:
        proc = _run(tmp, args, fault)
        assert proc.returncode != 0, f"{fault} did not kill the job"
        assert not records.exists()
        measured = _check_state(records, done, 1)
    assert _trained(_run(tmp, args)) == 0  # everything was measured; only outputs written
    _check_final(out, records, refs["trunk"], measured, ["c4.pt", "trunk.parquet"])
    assert load_checkpoint(out / "c4.pt")["epoch"] == 4


def test_branch_killed_resumes_with_rebuilt_optimizer(setup):
    tmp, jobs, refs = setup
    out = tmp / "branch_kill"
    args = _place(jobs["branch"], out)
    records = Path(args["out_records"])
    assert _run(tmp, args, "kill:2").returncode != 0
    measured = _check_state(records, 2, 2)
    assert _trained(_run(tmp, args)) == 2  # epochs 3 and 4
    _check_final(out, records, refs["branch"], measured, ["freeze.parquet"])
