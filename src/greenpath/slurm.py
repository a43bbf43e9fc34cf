"""Pre-flight check for runs on SLURM through ``snakemake-executor-plugin-slurm``.

The plugin learns that a job ended from one of two status commands:

* ``sacct`` reads the accounting database (slurmdbd). On a cluster without it
  (``AccountingStorageType=accounting_storage/none``) sacct prints
  "Slurm accounting storage is disabled" and exits 1; the plugin (2.x) then drops the
  jobs from its watch list without reporting them, and Snakemake waits forever
  (snakemake-executor-plugin-slurm#38; ``check_active_jobs`` in its
  ``__init__.py``). It also picks ``sacct`` by default whenever the binary exists.
* ``squeue --states=all`` asks slurmctld, which forgets a finished job ``MinJobAge``
  seconds after it ended (slurm.conf, default 300). The plugin silently replaces
  ``squeue`` by ``sacct`` when sacct exists and MinJobAge is unknown or below
  3 x ``init_seconds_before_status_checks``; and it polls at most every
  :data:`PLUGIN_MAX_POLL_S` seconds, so a job purged sooner than that after it ended
  is never seen again and is waited for forever.

:func:`preflight` runs from the workflow's ``onstart`` handler (``workflow/rules/common.smk``),
after the DAG is built and before the first ``sbatch``, only under the ``slurm`` executor.
It probes the cluster (:func:`probe_cluster`, every command with a timeout), then
:func:`choose_status_command` either keeps the configured status command, switches the
plugin to ``squeue`` when ``sacct`` cannot work, or raises :class:`SlurmPreflightError`
whose message says what to set. Nothing is submitted in that case.

Set ``GREENPATH_SLURM_PREFLIGHT=off`` to skip the check (at your own risk).

Command line: ``python -m greenpath.slurm [--status-command sacct|squeue]
[--init-seconds N] [--device cuda]`` prints the probe and the decision (exit 1 on error).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

#: Longest interval between two status queries of snakemake-executor-plugin-slurm 2.x
#: (``max_sleep_time`` in ``Executor.check_active_jobs``), in seconds.
PLUGIN_MAX_POLL_S = 180
#: The plugin keeps ``squeue`` only if MinJobAge >= this factor x the initial status
#: interval (``dynamic_check_threshold`` in ``check_active_jobs``); otherwise it uses sacct.
PLUGIN_SQUEUE_FACTOR = 3
#: Seconds any probe command may take before it counts as failed.
PROBE_TIMEOUT_S = 15.0
#: Environment variables the SLURM profile reads for sbatch -p / -A (profiles/slurm).
PARTITION_ENV = "GREENPATH_SLURM_PARTITION"
ACCOUNT_ENV = "GREENPATH_SLURM_ACCOUNT"
#: Set to "off" to skip :func:`preflight`.
SWITCH_ENV = "GREENPATH_SLURM_PREFLIGHT"

_ACCOUNTING_DISABLED = "accounting storage is disabled"


class SlurmPreflightError(RuntimeError):
    """The cluster cannot run the workflow as configured; the message says what to set."""


@dataclass(frozen=True)
class CommandResult:
    """Outcome of one probe command.

    ``found`` is False when the binary is not on PATH; ``returncode`` is None when it was
    not run or timed out; ``output`` is stdout and stderr joined, stripped.
    """

    found: bool
    returncode: int | None
    output: str

    @property
    def ok(self) -> bool:
        """True when the command ran and exited 0."""
        return self.found and self.returncode == 0


@dataclass(frozen=True)
class ClusterProbe:
    """What the SLURM client commands on this machine report.

    Attributes:
        sacct, squeue, sbatch: results of the probe commands (see :func:`probe_cluster`).
        min_job_age_s: ``MinJobAge`` from ``scontrol show config`` in seconds, or None
            when scontrol is missing, fails, or does not report it.
        partitions: partition name -> GRES string from ``sinfo`` (e.g. ``"gpu:a100:4"``
            or ``"(null)"``); empty when sinfo is missing or fails.
    """

    sacct: CommandResult
    squeue: CommandResult
    sbatch: CommandResult
    min_job_age_s: int | None
    partitions: Mapping[str, str] = field(default_factory=dict)

    @property
    def sacct_usable(self) -> bool:
        """sacct exits 0 and does not say that accounting is disabled."""
        return self.sacct.ok and _ACCOUNTING_DISABLED not in self.sacct.output.lower()


@dataclass(frozen=True)
class StatusDecision:
    """The status command the run will use and what led there (one line per note)."""

    command: str
    notes: tuple[str, ...] = ()


def _run(argv: Sequence[str], timeout_s: float, env: Mapping[str, str] | None) -> CommandResult:
    """Run ``argv`` with a timeout; never raises for a missing binary, failure or timeout."""
    path = env.get("PATH") if env is not None else None
    if shutil.which(argv[0], path=path) is None:
        return CommandResult(False, None, f"{argv[0]}: command not found")
    try:
        # Own process group, so a timeout also ends children that hold the pipes.
        proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    except OSError as exc:
        return CommandResult(False, None, f"{argv[0]}: {exc}")
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        return CommandResult(True, None, f"{argv[0]} did not answer within {timeout_s:g} s")
    out = "\n".join(s.strip() for s in (stdout, stderr) if s and s.strip())
    return CommandResult(True, proc.returncode, out)


def parse_min_job_age(scontrol_config: str) -> int | None:
    """``MinJobAge`` in seconds from ``scontrol show config`` output, or None.

    Accepts ``MinJobAge = 300 sec``, ``MinJobAge = 300`` and ``MinJobAge = 1h``
    (hours are converted); any other unit or a missing line gives None.
    """
    for line in scontrol_config.splitlines():
        m = re.match(r"\s*MinJobAge\s*=\s*(\d+)\s*([A-Za-z]*)", line)
        if not m:
            continue
        value, unit = int(m.group(1)), m.group(2).lower()
        if unit in ("", "s", "sec", "secs", "second", "seconds"):
            return value
        if unit in ("h", "hour", "hours"):
            return value * 3600
        if unit in ("m", "min", "mins", "minute", "minutes"):
            return value * 60
        return None
    return None


def parse_partitions(sinfo_output: str) -> dict[str, str]:
    """Partition -> GRES from ``sinfo --noheader --format=%P|%G`` (default marked ``*``)."""
    parts: dict[str, str] = {}
    for line in sinfo_output.splitlines():
        if "|" not in line:
            continue
        name, gres = line.split("|", 1)
        name = name.strip().rstrip("*")
        if name:
            old = parts.get(name)
            gres = gres.strip()
            parts[name] = gres if old in (None, "(null)") else old
    return parts


def probe_cluster(
    timeout_s: float = PROBE_TIMEOUT_S, env: Mapping[str, str] | None = None
) -> ClusterProbe:
    """Ask the SLURM client commands what this cluster supports.

    Runs the same kinds of queries the plugin will run (``sacct -X --parsable2 ...`` and
    ``squeue --states=all ...`` filtered to a job name nobody uses, so both print nothing
    on success), ``sbatch --version``, ``scontrol show config`` and ``sinfo``. Each
    command gets ``timeout_s`` seconds; a missing, failing or hanging command is
    recorded, never raised.
    """
    start = f"{datetime.now() - timedelta(hours=1):%Y-%m-%dT%H:00}"
    name = "greenpath-preflight-probe"
    sacct = _run(
        [
            "sacct",
            "-X",
            "--parsable2",
            "--noheader",
            "--format=JobIdRaw,State",
            "--starttime",
            start,
            "--endtime",
            "now",
            "--name",
            name,
        ],
        timeout_s,
        env,
    )
    squeue = _run(
        ["squeue", "--format=%i|%T", "--states=all", "--noheader", "--name", name],
        timeout_s,
        env,
    )
    sbatch = _run(["sbatch", "--version"], timeout_s, env)
    scontrol = _run(["scontrol", "show", "config"], timeout_s, env)
    sinfo = _run(["sinfo", "--noheader", "--format=%P|%G"], timeout_s, env)
    return ClusterProbe(
        sacct=sacct,
        squeue=squeue,
        sbatch=sbatch,
        min_job_age_s=parse_min_job_age(scontrol.output) if scontrol.ok else None,
        partitions=parse_partitions(sinfo.output) if sinfo.ok else {},
    )


def choose_status_command(
    requested: str | None, probe: ClusterProbe, init_seconds: int = 40
) -> StatusDecision:
    """Pick the status command that will see every job end, or raise.

    Args:
        requested: the plugin's ``status_command`` setting (``"sacct"``, ``"squeue"`` or
            None for the plugin's default, which is sacct when the binary exists).
        probe: result of :func:`probe_cluster`.
        init_seconds: the plugin's ``init_seconds_before_status_checks`` (s).

    Returns:
        The command to use. ``"sacct"`` only when sacct works; ``"squeue"`` when sacct
        does not work, squeue does, and the plugin will not swap squeue back to sacct
        (sacct absent, or MinJobAge >= 3 x init_seconds) and finished jobs stay visible
        longer than the plugin's longest poll interval (MinJobAge >= 180 s).

    Raises:
        SlurmPreflightError: sbatch is missing or broken; or neither status command can
            follow jobs; the message names the setting to change.
    """
    if requested not in (None, "sacct", "squeue"):
        raise SlurmPreflightError(
            f"slurm-status-command = {requested!r} is not supported; set it to 'squeue' "
            "or 'sacct' in profiles/slurm/config.yaml"
        )
    if not probe.sbatch.ok:
        raise SlurmPreflightError(
            "cannot submit to SLURM: `sbatch --version` failed "
            f"({probe.sbatch.output or 'no output'}). Run Snakemake on a login node "
            "where the SLURM client commands work, or drop --profile profiles/slurm "
            "to run locally."
        )
    mja = probe.min_job_age_s
    threshold = PLUGIN_SQUEUE_FACTOR * init_seconds
    sacct_why = probe.sacct.output or f"exit status {probe.sacct.returncode}"
    # The plugin really uses squeue only if sacct is absent or MinJobAge >= threshold.
    squeue_kept = probe.squeue.ok and (
        not probe.sacct.found or (mja is not None and mja >= threshold)
    )
    # ... and squeue sees every end only if jobs outlive the longest poll interval.
    squeue_safe = squeue_kept and (mja is None or mja >= PLUGIN_MAX_POLL_S)

    if probe.sacct_usable and (requested in (None, "sacct") or not squeue_safe):
        notes = ["sacct answers; job states come from the accounting database"]
        if requested == "squeue":
            notes.append(
                f"switching slurm-status-command from squeue to sacct (MinJobAge {mja} s "
                f"is below max({threshold}, {PLUGIN_MAX_POLL_S}) s, or squeue failed)"
            )
        return StatusDecision("sacct", tuple(notes))
    if squeue_safe:
        notes = []
        if not probe.sacct_usable:
            notes.append(f"sacct cannot report job states ({sacct_why})")
        if requested != "squeue":
            notes.append(f"switching slurm-status-command from {requested or 'default'} to squeue")
        notes.append(
            "squeue --states=all follows the jobs"
            + (
                f" (MinJobAge {mja} s)"
                if mja is not None
                else f" (MinJobAge unknown: finished jobs must stay listed >= {PLUGIN_MAX_POLL_S} s)"
            )
        )
        return StatusDecision("squeue", tuple(notes))

    # Neither command can follow the jobs: stop before anything is submitted.
    if not probe.squeue.ok:
        raise SlurmPreflightError(
            f"neither status command can follow SLURM jobs: sacct says {sacct_why!r} and "
            f"squeue says {probe.squeue.output!r}. Fix the SLURM client setup on this "
            "node (SLURM_CONF, munge) before submitting. Nothing was submitted."
        )
    if not squeue_kept:
        shown = "unknown (scontrol show config did not report it)" if mja is None else f"{mja} s"
        hint = (
            f"set `slurm-init-seconds-before-status-checks: {max(1, mja // PLUGIN_SQUEUE_FACTOR)}`"
            if mja
            else "make `scontrol show config` work on this node"
        )
        raise SlurmPreflightError(
            f"sacct cannot report job states ({sacct_why}), and the SLURM plugin would "
            f"still poll it: it keeps squeue only when MinJobAge ({shown}) >= "
            f"{PLUGIN_SQUEUE_FACTOR} x slurm-init-seconds-before-status-checks "
            f"({threshold} s). Either {hint} in profiles/slurm/config.yaml, or ask the "
            "admins to enable slurmdbd accounting. Nothing was submitted."
        )
    raise SlurmPreflightError(
        f"sacct cannot report job states ({sacct_why}) and MinJobAge is {mja} s: the "
        f"plugin polls squeue up to {PLUGIN_MAX_POLL_S} s apart, so a job that ends and "
        "is purged in between is never seen and Snakemake would wait forever. Ask the "
        f"admins for MinJobAge >= {PLUGIN_MAX_POLL_S} in slurm.conf, or for slurmdbd "
        "accounting (then slurm-status-command: sacct). Nothing was submitted."
    )


def requires_gpu(device: str) -> bool:
    """True when ``training.device`` is CUDA (``cuda`` or ``cuda:N``)."""
    return str(device).strip().lower().startswith("cuda")


def training_gpu_resources(device: str) -> dict[str, int]:
    """Snakemake resources of a training rule: ``{"gpu": 1}`` on CUDA, else ``{}``.

    The slurm plugin turns ``gpu: 1`` into ``sbatch --gpus=1`` (``--gpus=<model>:1``
    with the ``gpu_model`` resource); locally it is a scheduling token, one per GPU of the
    run, and each job claims its own GPU (:mod:`greenpath.devices`).
    """
    return {"gpu": 1} if requires_gpu(device) else {}


def check_partition(probe: ClusterProbe, partition: str | None, needs_gpu: bool) -> tuple[str, ...]:
    """Check the partition from ``GREENPATH_SLURM_PARTITION`` against ``sinfo``.

    Returns notes; raises :class:`SlurmPreflightError` when the partition does not exist,
    or when GPU training is configured but the partition lists no GPU GRES. Skipped (a
    note) when sinfo gave nothing.
    """
    if not probe.partitions:
        return ("sinfo listed no partitions; partition not checked",)
    name = (partition or "").strip()
    if name and name not in probe.partitions:
        raise SlurmPreflightError(
            f"{PARTITION_ENV}={name!r} is not a partition of this cluster; known "
            f"partitions: {sorted(probe.partitions)}. Export {PARTITION_ENV}=<one of "
            "them> (empty = the cluster's default partition)."
        )
    if needs_gpu and name:
        gres = probe.partitions[name]
        if "gpu" not in gres.lower():
            raise SlurmPreflightError(
                f"training.device is CUDA, so training jobs ask for a GPU, but partition "
                f"{name!r} lists no GPU (sinfo GRES {gres!r}). Export {PARTITION_ENV}=<a "
                "GPU partition>, or set training.device: cpu in the config."
            )
    return (f"partition {name or '(cluster default)'}",)


def set_env_defaults(environ: dict[str, str] | None = None) -> None:
    """Make unset ``GREENPATH_SLURM_PARTITION``/``..._ACCOUNT`` empty (= cluster default).

    The profile passes them as ``'$NAME'``; Snakemake expands environment variables when
    it evaluates the resource, and an unset variable would stay as the literal text.
    """
    env = os.environ if environ is None else environ
    for name in (PARTITION_ENV, ACCOUNT_ENV):
        env.setdefault(name, "")


def _executor_name(workflow: Any) -> str | None:
    plugin = getattr(workflow, "executor_plugin", None)
    return getattr(plugin, "name", None) if plugin is not None else None


def is_local_executor(workflow: Any) -> bool:
    """True when the run's jobs execute on this machine (Snakemake's ``local`` executor)."""
    return _executor_name(workflow) == "local"


def preflight(workflow: Any, device: str = "cpu", log: Any = None) -> StatusDecision | None:
    """Run the pre-flight check for a Snakemake ``workflow`` object (from ``onstart``).

    Does nothing (returns None) unless the executor is ``slurm`` or when
    ``GREENPATH_SLURM_PREFLIGHT=off``. Otherwise probes the cluster, sets the plugin's
    ``executor_settings.status_command`` to the chosen command, logs the notes and
    returns the decision.

    Raises:
        SlurmPreflightError: with the setting to change; raised before any submission.
    """
    if _executor_name(workflow) != "slurm":
        return None
    if os.environ.get(SWITCH_ENV, "").strip().lower() in ("off", "0", "false", "no"):
        return None
    settings = workflow.executor_settings
    requested = getattr(settings, "status_command", None)
    init_seconds = int(getattr(settings, "init_seconds_before_status_checks", None) or 40)
    probe = probe_cluster()
    decision = choose_status_command(requested, probe, init_seconds)
    notes = decision.notes + check_partition(
        probe, os.environ.get(PARTITION_ENV), requires_gpu(device)
    )
    if settings is not None and hasattr(settings, "status_command"):
        settings.status_command = decision.command
    emit = log or (lambda msg: print(msg, file=sys.stderr))
    emit(f"greenpath SLURM pre-flight: status via {decision.command}; " + "; ".join(notes))
    return decision


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print the probe and the decision; exit 1 with the message on error."""
    ap = argparse.ArgumentParser(prog="python -m greenpath.slurm", description=__doc__)
    ap.add_argument("--status-command", choices=["sacct", "squeue"], default="squeue")
    ap.add_argument("--init-seconds", type=int, default=40)
    ap.add_argument("--device", default="cpu", help="training.device of the config")
    args = ap.parse_args(argv)
    probe = probe_cluster()
    print(f"sacct:  {'usable' if probe.sacct_usable else 'unusable'} ({probe.sacct.output})")
    print(f"squeue: {'ok' if probe.squeue.ok else 'failed'} ({probe.squeue.output})")
    print(f"MinJobAge: {probe.min_job_age_s}")
    print(f"partitions: {dict(probe.partitions)}")
    try:
        decision = choose_status_command(args.status_command, probe, args.init_seconds)
        notes = check_partition(probe, os.environ.get(PARTITION_ENV), requires_gpu(args.device))
    except SlurmPreflightError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"status command: {decision.command}; " + "; ".join(decision.notes + notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
