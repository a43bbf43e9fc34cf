"""Unit tests of greenpath.slurm: parsing, the status-command decision, probes (W1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from slurm_helpers import write_fake_slurm

from greenpath.slurm import (
    ClusterProbe,
    CommandResult,
    SlurmPreflightError,
    check_partition,
    choose_status_command,
    parse_min_job_age,
    parse_partitions,
    preflight,
    probe_cluster,
    set_env_defaults,
    training_gpu_resources,
)

OK = CommandResult(True, 0, "")
DISABLED = CommandResult(True, 1, "Slurm accounting storage is disabled")
MISSING = CommandResult(False, None, "sacct: command not found")
SQUEUE_FAIL = CommandResult(True, 1, "slurm_load_jobs error: Unable to contact slurm controller")


def probe(sacct=OK, squeue=OK, sbatch=OK, mja=300, partitions=None) -> ClusterProbe:
    return ClusterProbe(sacct, squeue, sbatch, mja, partitions or {"debug": "(null)"})


# --- parsing ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AuthType = auth/munge\nMinJobAge               = 300 sec\n", 300),
        ("MinJobAge = 2\n", 2),
        ("MinJobAge = 1h\n", 3600),
        ("MinJobAge = 5 min\n", 300),
        ("MinJobAge = 7 fortnights\n", None),
        ("MaxJobCount = 10000\n", None),
        ("", None),
    ],
)
def test_parse_min_job_age(text, expected):
    assert parse_min_job_age(text) == expected


def test_parse_partitions_marks_default_and_keeps_gpu_gres():
    out = "debug*|(null)\ngpu|gpu:a100:4\ngpu|(null)\n\nbroken line\n"
    assert parse_partitions(out) == {"debug": "(null)", "gpu": "gpu:a100:4"}


# --- the decision ---------------------------------------------------------------------
def test_working_sacct_is_kept():
    d = choose_status_command("sacct", probe())
    assert d.command == "sacct"


def test_w1_accounting_disabled_switches_to_squeue():
    # sacct says disabled; squeue works; MinJobAge 300 >= max(3*40, 180).
    d = choose_status_command("sacct", probe(sacct=DISABLED), init_seconds=40)
    assert d.command == "squeue"
    assert any("accounting storage is disabled" in n for n in d.notes)
    assert any("switching slurm-status-command from sacct to squeue" in n for n in d.notes)


def test_w1_default_setting_with_sacct_missing_uses_squeue():
    d = choose_status_command(None, probe(sacct=MISSING, mja=None))
    assert d.command == "squeue"
    assert any("MinJobAge unknown" in n for n in d.notes)


def test_w1_plugin_would_swap_back_to_broken_sacct_stops():
    # MinJobAge 100 < 3 x 40 = 120 and the sacct binary exists: the plugin would query
    # the disabled sacct and lose the jobs. Suggested interval: 100 // 3 = 33 s.
    with pytest.raises(SlurmPreflightError) as exc:
        choose_status_command("squeue", probe(sacct=DISABLED, mja=100), init_seconds=40)
    msg = str(exc.value)
    assert "slurm-init-seconds-before-status-checks: 33" in msg
    assert "Nothing was submitted" in msg


def test_w1_unknown_min_job_age_with_disabled_sacct_stops():
    with pytest.raises(SlurmPreflightError, match="MinJobAge .*unknown"):
        choose_status_command("squeue", probe(sacct=DISABLED, mja=None))


def test_w1_min_job_age_below_longest_poll_stops():
    # 150 >= 3 x 40 (plugin keeps squeue) but < 180 s between polls: could hang.
    with pytest.raises(SlurmPreflightError, match="MinJobAge >= 180"):
        choose_status_command("squeue", probe(sacct=DISABLED, mja=150), init_seconds=40)


def test_short_min_job_age_with_working_sacct_uses_sacct():
    d = choose_status_command("squeue", probe(mja=60), init_seconds=40)
    assert d.command == "sacct"


def test_neither_status_command_works_stops():
    with pytest.raises(SlurmPreflightError, match="neither status command"):
        choose_status_command("squeue", probe(sacct=DISABLED, squeue=SQUEUE_FAIL))


def test_broken_sbatch_stops():
    with pytest.raises(SlurmPreflightError, match="sbatch --version"):
        choose_status_command("squeue", probe(sbatch=MISSING))


def test_unknown_status_command_rejected():
    with pytest.raises(SlurmPreflightError, match="'qstat'"):
        choose_status_command("qstat", probe())


# --- partitions and GPUs --------------------------------------------------------------
def test_check_partition():
    p = probe(partitions={"debug": "(null)", "gpu": "gpu:a100:4"})
    assert check_partition(p, "", needs_gpu=True) == ("partition (cluster default)",)
    assert check_partition(p, "gpu", needs_gpu=True) == ("partition gpu",)
    with pytest.raises(SlurmPreflightError, match=r"'nope' is not a partition.*\['debug', 'gpu'\]"):
        check_partition(p, "nope", needs_gpu=False)
    with pytest.raises(SlurmPreflightError, match="lists no GPU"):
        check_partition(p, "debug", needs_gpu=True)


def test_training_gpu_resources():
    assert training_gpu_resources("cuda") == {"gpu": 1}
    assert training_gpu_resources("cuda:1") == {"gpu": 1}
    assert training_gpu_resources("cpu") == {}


def test_set_env_defaults_fills_only_unset():
    env = {"GREENPATH_SLURM_ACCOUNT": "proj42"}
    set_env_defaults(env)
    assert env == {"GREENPATH_SLURM_ACCOUNT": "proj42", "GREENPATH_SLURM_PARTITION": ""}


# --- probes with fake commands ----------------------------------------------------------
def fake_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    bin_dir = write_fake_slurm(tmp_path / "bin")
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "FAKE_SLURM_DIR": str(state)}
    env.update(extra)
    return env


def test_probe_sees_disabled_accounting(tmp_path):
    p = probe_cluster(env=fake_env(tmp_path, FAKE_MIN_JOB_AGE="300"))
    assert p.sacct.found and p.sacct.returncode == 1
    assert not p.sacct_usable
    assert p.squeue.ok and p.squeue.output == ""
    assert p.sbatch.ok
    assert p.min_job_age_s == 300
    assert p.partitions == {"debug": "(null)"}
    assert choose_status_command("sacct", p).command == "squeue"


def test_probe_without_scontrol_answer_stops(tmp_path):
    p = probe_cluster(env=fake_env(tmp_path))  # FAKE_MIN_JOB_AGE unset: scontrol fails
    assert p.min_job_age_s is None
    with pytest.raises(SlurmPreflightError):
        choose_status_command("squeue", p)


def test_probe_hanging_command_times_out(tmp_path):
    env = fake_env(tmp_path, FAKE_MIN_JOB_AGE="300")
    hang = Path(env["PATH"].split(os.pathsep)[0]) / "sacct"
    hang.write_text("#!/bin/sh\nsleep 30 &\nsleep 30\n")
    p = probe_cluster(timeout_s=0.5, env=env)
    assert p.sacct.found and p.sacct.returncode is None
    assert "did not answer within 0.5 s" in p.sacct.output
    assert choose_status_command("sacct", p).command == "squeue"


def test_probe_without_slurm(tmp_path):
    p = probe_cluster(env={"PATH": str(tmp_path)})
    assert not p.sacct.found and not p.squeue.found and not p.sbatch.found
    with pytest.raises(SlurmPreflightError, match="sbatch"):
        choose_status_command(None, p)


# --- preflight() on a workflow-like object -------------------------------------------------
class _Plugin:
    def __init__(self, name):
        self.name = name


class _Settings:
    status_command = "sacct"
    init_seconds_before_status_checks = 40


class _Workflow:
    def __init__(self, executor):
        self.executor_plugin = _Plugin(executor)
        self.executor_settings = _Settings()


def test_preflight_ignores_other_executors():
    assert preflight(_Workflow("local")) is None
    assert preflight(_Workflow("slurm-jobstep")) is None


def test_preflight_switches_plugin_setting(tmp_path, monkeypatch):
    env = fake_env(tmp_path, FAKE_MIN_JOB_AGE="300")
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setenv("FAKE_SLURM_DIR", env["FAKE_SLURM_DIR"])
    monkeypatch.setenv("FAKE_MIN_JOB_AGE", "300")
    monkeypatch.delenv("GREENPATH_SLURM_PREFLIGHT", raising=False)
    wf = _Workflow("slurm")
    lines: list[str] = []
    d = preflight(wf, device="cpu", log=lines.append)
    assert d is not None and d.command == "squeue"
    assert wf.executor_settings.status_command == "squeue"
    assert lines and "status via squeue" in lines[0]
    monkeypatch.setenv("GREENPATH_SLURM_PREFLIGHT", "off")
    assert preflight(_Workflow("slurm")) is None
