"""One job per GPU on a fake box of four GPUs (fake NVML, CPU only): discovery, the run's
GPUs, claims held by real processes (concurrent, killed, narrowed, pinned) and the meter of
each job reading only its own GPU."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from gpu_helpers import FOUR_GPUS, Worker, box_env, load_fake_nvml, write_box

from greenpath import devices
from greenpath.devices import (
    RUN_GPUS_ENV,
    GpuError,
    Inventory,
    claim_for_job,
    claim_gpu,
    export_run_gpus,
    gpu_tokens,
    list_gpus,
    select_gpus,
)

UUIDS = [d["uuid"] for d in FOUR_GPUS]
WATTS = {d["uuid"]: d["watts"] for d in FOUR_GPUS}


@pytest.fixture
def box(tmp_path, monkeypatch):
    """The fake four-GPU box, in this process: ``pynvml`` is the fake."""
    path = write_box(tmp_path)
    monkeypatch.setenv("GREENPATH_FAKE_NVML", str(path))
    monkeypatch.setenv("GREENPATH_GPU_LOCK_DIR", str(tmp_path / "locks"))
    for name in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", RUN_GPUS_ENV, "SLURM_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", load_fake_nvml())
    return path


# ------------------------------------------------------------------- discovery (in-process)
def test_list_gpus_gives_index_uuid_name_memory_counter(box):
    inv = list_gpus()
    assert inv.reason is None
    assert [(g.index, g.uuid) for g in inv.gpus] == list(enumerate(UUIDS))
    g = inv.gpus[0]
    assert g.name == "NVIDIA H100 80GB HBM3"
    assert g.memory_mib == pytest.approx(81559.0)
    assert g.energy_counter is True and g.note is None


def test_cuda_visible_devices_2_3_lists_only_those_two(box):
    inv = list_gpus({"CUDA_VISIBLE_DEVICES": "2,3"})
    assert [(g.index, g.uuid) for g in inv.gpus] == [(0, UUIDS[2]), (1, UUIDS[3])]
    assert gpu_tokens({"device": "cuda"}, {"CUDA_VISIBLE_DEVICES": "2,3"}) == 2
    assert gpu_tokens({"device": "cuda"}, {}) == 4
    assert gpu_tokens({"device": "cuda:1"}, {}) == 1


def test_counter_support_and_mig_are_reported(tmp_path, box):
    old = dict(FOUR_GPUS[1], counter=False)
    mig = dict(FOUR_GPUS[2], migs=["MIG-ffff0000-0000-0000-0000-000000000001"])
    write_box(tmp_path, [FOUR_GPUS[0], old, mig])
    inv = list_gpus()
    assert [g.energy_counter for g in inv.gpus] == [True, False, False]
    assert "MIG" in (inv.gpus[2].note or "")


def test_no_nvml_means_no_gpu_with_the_reason(monkeypatch, box):
    monkeypatch.setenv("GREENPATH_FAKE_NVML", "missing")
    inv = list_gpus()
    assert inv.gpus == () and "NVML unavailable" in (inv.reason or "")
    assert gpu_tokens({"device": "cuda"}) == 1  # the job then says there is no GPU


def test_training_gpus_narrows_the_set(box):
    inv = list_gpus()
    picked = select_gpus(inv, "cuda", [3, UUIDS[1][:8]])
    assert [g.uuid for g in picked] == [UUIDS[3], UUIDS[1]]
    assert select_gpus(inv, "cpu") == []
    assert [g.uuid for g in select_gpus(inv, "cuda:2")] == [UUIDS[2]]


@pytest.mark.parametrize(
    "device, wanted, message",
    [
        ("cuda", [7], "no GPU cuda:7"),
        ("cuda", ["GPU-nope"], "matches no visible GPU"),
        ("cuda", ["GPU-"], "matches several GPUs"),
        ("cuda", [1, UUIDS[1]], "names one GPU twice"),
        ("cuda:1", [0], "needs training.device: cuda"),
        ("cuda:4", None, "only 4 GPU(s) are visible"),
    ],
)
def test_bad_gpu_selection_names_the_value(box, device, wanted, message):
    with pytest.raises(GpuError, match=message.replace("(", r"\(").replace(")", r"\)")):
        select_gpus(list_gpus(), device, wanted)


def test_export_run_gpus_for_the_local_jobs(box, tmp_path, monkeypatch):
    monkeypatch.setattr(devices.tempfile, "gettempdir", lambda: str(tmp_path))
    env: dict[str, str] = {"CUDA_VISIBLE_DEVICES": "2,3"}
    gpus = export_run_gpus({"device": "cuda"}, env)
    assert env[RUN_GPUS_ENV] == f"{UUIDS[2]},{UUIDS[3]}" and len(gpus) == 2
    # one lock folder for all jobs, whatever TMPDIR each job gets
    assert env["GREENPATH_GPU_LOCK_DIR"] == str(tmp_path / "greenpath-gpu-locks")
    cpu_env: dict[str, str] = {}
    assert export_run_gpus({"device": "cpu"}, cpu_env) == [] and RUN_GPUS_ENV not in cpu_env


# ------------------------------------------------------------------------ claims (in-process)
def test_claim_uses_the_workflows_gpus_and_sets_cuda_visible_devices(box, tmp_path):
    env = {RUN_GPUS_ENV: f"{UUIDS[3]},{UUIDS[2]}", "GREENPATH_GPU_LOCK_DIR": str(tmp_path / "l")}
    a = claim_for_job({"training": {"device": "cuda"}}, env)
    b_env = dict(env)
    b = claim_for_job({"training": {"device": "cuda"}}, b_env)
    try:
        assert (a.uuid, b.uuid) == (UUIDS[3], UUIDS[2])
        assert env["CUDA_VISIBLE_DEVICES"] == UUIDS[3] and b_env["CUDA_VISIBLE_DEVICES"] == UUIDS[2]
        assert a.device == "cuda:0"
        with pytest.raises(GpuError, match="no free GPU within"):
            claim_for_job({"training": {"device": "cuda"}}, dict(env), timeout_s=0.2)
    finally:
        a.release()
        b.release()


def test_no_claim_on_cpu_or_in_a_slurm_job(box):
    assert claim_for_job({"training": {"device": "cpu"}}, {}) is None
    # SLURM gives the job its GPU; without the workflow's local export nothing is claimed
    env = {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "0"}
    assert claim_for_job({"training": {"device": "cuda"}}, env) is None
    assert env["CUDA_VISIBLE_DEVICES"] == "0"


def test_claim_refused_once_cuda_has_started(box, monkeypatch):
    fake_torch = types.ModuleType("torch")
    fake_torch.cuda = types.SimpleNamespace(is_initialized=lambda: True)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    with pytest.raises(GpuError, match="before torch starts CUDA"):
        claim_gpu(UUIDS, environ={})


def test_no_gpu_listed_trains_as_written(box, monkeypatch, caplog):
    monkeypatch.setenv("GREENPATH_FAKE_NVML", "missing")
    assert claim_for_job({"training": {"device": "cuda"}}, {}) is None
    assert "no GPU to claim" in caplog.text


def test_inventory_without_gpus_selects_nothing():
    assert select_gpus(Inventory((), "NVML reports no GPU", ""), "cuda:3") == []


# ------------------------------------------------------------- claims held by real processes
def _workers(tmp_path: Path, box: Path, n: int, device: str = "cuda", **env: str) -> list[Worker]:
    e = box_env(box, tmp_path / "locks", **env)
    return [Worker(tmp_path / f"job{i}", device, e) for i in range(n)]


def test_four_jobs_at_once_each_on_its_own_gpu_and_metered_alone(tmp_path):
    box = write_box(tmp_path)
    jobs = _workers(tmp_path, box, 4)
    try:
        claimed = [j.event("claimed") for j in jobs]
        assert all(claimed), [j.stderr() for j in jobs]
        measured = [j.event("measured") for j in jobs]
        assert all(measured), [j.stderr() for j in jobs]
        # all four hold their GPU at the same time: none has been released yet
        assert all(j.proc.poll() is None for j in jobs)
        assert sorted(c["uuid"] for c in claimed) == sorted(UUIDS)  # 4 GPUs, 4 indices
        for c, m in zip(claimed, measured, strict=True):
            assert c["cuda_visible_devices"] == c["uuid"] and c["device"] == "cuda:0"
            assert m["gpu_uuids"] == [c["uuid"]] and list(m["domains"]) == [c["uuid"]]
            assert m["source"] == "nvml_counter"
            # its own GPU's draw (100, 200, 300 or 400 W), not another's, not the sum
            assert m["joules"] / m["wall_s"] == pytest.approx(WATTS[c["uuid"]], rel=0.2)
        fifth = Worker(tmp_path / "job4", "cuda", box_env(box, tmp_path / "locks"), timeout_s=1)
        err = fifth.event("error")
        assert err and "no free GPU" in err["error"], fifth.stderr()
    finally:
        for j in jobs:
            j.release()


def test_a_killed_jobs_gpu_is_claimed_again(tmp_path):
    box = write_box(tmp_path)
    jobs = _workers(tmp_path, box, 4)
    try:
        claimed = [j.event("claimed") for j in jobs]
        assert all(claimed), [j.stderr() for j in jobs]
        victim = next(j for j, c in zip(jobs, claimed, strict=True) if c["uuid"] == UUIDS[2])
        victim.kill()  # SIGKILL: no clean-up runs, the lock file stays behind
        assert (tmp_path / "locks" / f"{UUIDS[2]}.lock").exists()
        retry = Worker(tmp_path / "retry", "cuda", box_env(box, tmp_path / "locks"), timeout_s=30)
        got = retry.event("claimed")
        assert got and got["uuid"] == UUIDS[2], retry.stderr()
        retry.release()
    finally:
        for j in jobs:
            if j.proc.poll() is None:
                j.release()


def test_a_cuda_visible_devices_2_3_box_uses_only_those_two(tmp_path):
    box = write_box(tmp_path)
    jobs = _workers(tmp_path, box, 2, CUDA_VISIBLE_DEVICES="2,3")
    try:
        claimed = [j.event("claimed") for j in jobs]
        measured = [j.event("measured") for j in jobs]
        assert all(claimed) and all(measured), [j.stderr() for j in jobs]
        assert sorted(c["uuid"] for c in claimed) == [UUIDS[2], UUIDS[3]]
        for c, m in zip(claimed, measured, strict=True):
            assert list(m["domains"]) == [c["uuid"]]
        third_env = box_env(box, tmp_path / "locks", CUDA_VISIBLE_DEVICES="2,3")
        third = Worker(tmp_path / "job2", "cuda", third_env, timeout_s=1)
        err = third.event("error")
        assert err and UUIDS[0] not in err["error"] and UUIDS[2] in err["error"]
    finally:
        for j in jobs:
            j.release()


def test_cuda_1_pins_every_job_to_gpu_1_one_at_a_time(tmp_path):
    box = write_box(tmp_path)
    env = box_env(box, tmp_path / "locks")
    first = Worker(tmp_path / "job0", "cuda:1", env)
    a = first.event("claimed")
    second = Worker(tmp_path / "job1", "cuda:1", env)
    try:
        assert a, first.stderr()
        assert a["uuid"] == UUIDS[1] and a["device"] == "cuda:1"
        assert a["cuda_visible_devices"] is None  # the environment is left as it is
        m = first.event("measured")
        assert m and list(m["domains"]) == [UUIDS[1]], first.stderr()
        assert m["joules"] / m["wall_s"] == pytest.approx(WATTS[UUIDS[1]], rel=0.2)
        assert "claimed" in m["mapping"]  # by the claimed UUID, not by position
        assert second.event("claimed", timeout_s=1.0) is None  # waits for GPU 1
        first.release()
        b = second.event("claimed")
        assert b and b["uuid"] == UUIDS[1], second.stderr()
    finally:
        for j in (first, second):
            if j.proc.poll() is None:
                j.kill()


def test_lock_dir_default_is_shared_and_world_writable(tmp_path, monkeypatch):
    monkeypatch.delenv("GREENPATH_GPU_LOCK_DIR", raising=False)
    monkeypatch.setattr(devices.tempfile, "gettempdir", lambda: str(tmp_path))
    d = devices.lock_dir()
    assert d == tmp_path / "greenpath-gpu-locks" and (d.stat().st_mode & 0o1777) == 0o1777


def test_the_training_script_claims_a_gpu_first(tmp_path):
    """scripts/train.py claims before anything else: the claim is logged, then the job goes
    on (and fails here, on a missing dataset file, since this box's GPUs are fake)."""
    import subprocess

    import yaml
    from gpu_helpers import REPO

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["datasets"] = {"digits": {}}
    cfg["training"]["device"] = "cuda"
    cfg["modeling"]["eatit"]["src"] = None
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    env = box_env(write_box(tmp_path), tmp_path / "locks", CUDA_VISIBLE_DEVICES="2,3")
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train.py"), "trunk", "--config"]
        + [str(tmp_path / "c.yaml"), "--dataset", "digits", "--seed", "0", "--start", "0"]
        + ["--end", "1", "--dataset-path", str(tmp_path / "missing.npz")]
        + ["--out-checkpoint", str(tmp_path / "c.pt"), "--out-records", str(tmp_path / "r.pq")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert f"training on GPU {UUIDS[2]} (cuda:0 in this process" in run.stderr, run.stderr
    assert run.returncode != 0


# ------------------------------------------------------------------------ greenpath gpus
def test_greenpath_gpus_lists_the_runs_gpus(box, capsys, monkeypatch):
    from greenpath.cli import main

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert main(["gpus"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2 GPU(s) for training.device 'cuda'") and "3,1" in lines[0]
    assert UUIDS[3] in lines[1] and lines[1].split()[0] == "cuda:0" and UUIDS[1] in lines[2]
    assert "79.6 GiB" in lines[1] and "energy counter: yes" in lines[1]


def test_greenpath_gpus_says_no_gpu_in_one_line(box, capsys, monkeypatch, tmp_path):
    from greenpath.cli import main

    monkeypatch.setenv("GREENPATH_FAKE_NVML", "missing")  # no driver, as on a CPU machine
    assert main(["gpus"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("no GPU: NVML unavailable")
    from gpu_helpers import REPO

    assert main(["gpus", "--config", str(REPO / "config" / "config.yaml")]) == 0  # device cpu
    assert capsys.readouterr().out.splitlines() == ["no GPU: training.device is 'cpu'"]
