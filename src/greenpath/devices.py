"""GPU discovery and the assignment of one GPU to one job (device access apart from metering).

A local run with ``training.device: cuda`` trains on every GPU it may see, one job per GPU:

* :func:`list_gpus` lists the GPUs this process may see, through NVML (``nvidia-ml-py``),
  in CUDA's logical order: all GPUs, or those named by ``CUDA_VISIBLE_DEVICES`` (indices,
  ``GPU-`` UUIDs or ``MIG-`` ids, parsed as the energy meter parses them,
  :func:`greenpath.energy.nvml.visible_devices`). NVML is never asked to start CUDA, and
  torch is never imported here.
* :func:`run_gpus` narrows them to the GPUs a run uses: ``cuda`` = all listed, or those in
  ``training.gpus`` (logical indices ``N`` as in ``cuda:N``, or UUIDs / unique prefixes);
  ``cuda:N`` = logical GPU ``N`` alone.
* :func:`claim_gpu` takes one free GPU of the run for the calling process before CUDA
  starts: an exclusive ``fcntl.flock`` on ``<lock dir>/<UUID>.lock``. The kernel drops the
  lock when the process ends, however it ends, so a killed job's GPU is free for the next
  job (and for Snakemake's retries) with no stale claim to clean up. With ``cuda`` the
  process then sees only that GPU (``CUDA_VISIBLE_DEVICES=<UUID>``, so ``cuda`` and
  ``cuda:0`` are it); with ``cuda:N`` the environment is left as it is and the lock only
  makes jobs pinned to one GPU take turns.
* :func:`claim_for_job` is the one call a training or closed-loop job makes. In a local
  run the workflow exports the run's GPUs (:data:`RUN_GPUS_ENV`, UUIDs) at start; a job
  under SLURM without that export leaves the GPU to SLURM (``sbatch --gpus=1``).

The lock folder is :data:`LOCK_DIR_ENV` if set, else ``<tmp>/greenpath-gpu-locks``: shared
by every greenpath run on the machine, so two runs never train on one GPU at once either.
"""

from __future__ import annotations

import errno
import fcntl
import importlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenpath.energy.nvml import GpuTarget, enumerate_gpus, parse_cuda_device, visible_devices

log = logging.getLogger("greenpath.devices")

#: Folder of the per-GPU lock files (default ``<tmp>/greenpath-gpu-locks``).
LOCK_DIR_ENV = "GREENPATH_GPU_LOCK_DIR"
#: Comma-separated UUIDs of the run's GPUs, exported by the workflow to its local jobs.
RUN_GPUS_ENV = "GREENPATH_RUN_GPUS"
#: Set by :func:`claim_gpu`: the claimed GPU's UUID and the logical CUDA index the
#: process reaches it by; the energy meter reads this UUID for that index.
ASSIGNED_UUID_ENV = "GREENPATH_GPU_UUID"
ASSIGNED_INDEX_ENV = "GREENPATH_GPU_INDEX"


class GpuError(RuntimeError):
    """The GPUs asked for cannot be found or claimed; the message says what to change."""


@dataclass(frozen=True)
class Gpu:
    """One GPU this process may use.

    Attributes:
        index: logical CUDA index (what ``cuda:N`` means in this process).
        uuid: NVML UUID (``GPU-…`` or ``MIG-…``).
        name: model name from NVML.
        memory_mib: total memory, MiB (``None`` when NVML cannot say).
        energy_counter: NVML total-energy counter readable (``None`` = unknown).
        note: why this GPU cannot be metered on its own (MIG), else ``None``.
    """

    index: int
    uuid: str
    name: str
    memory_mib: float | None
    energy_counter: bool | None
    note: str | None = None


@dataclass(frozen=True)
class Inventory:
    """The GPUs this process may see (:func:`list_gpus`).

    ``reason`` says why the list is empty or unusable (no NVML, no GPU, a
    ``CUDA_VISIBLE_DEVICES`` that cannot be mapped); ``how`` names the mapping.
    """

    gpus: tuple[Gpu, ...]
    reason: str | None
    how: str


def _load_nvml(nvml: Any) -> tuple[Any, str | None]:
    if nvml is not None:
        return nvml, None
    try:
        return importlib.import_module("pynvml"), None
    except ImportError as exc:
        return None, f"nvidia-ml-py (pynvml) not installed: {exc}"


def _probe(nvml: Any, t: GpuTarget) -> tuple[float | None, bool | None]:
    """(memory in MiB, energy counter readable) of one device; ``(None, False)`` for MIG."""
    if t.handle is None:
        return None, False
    try:
        memory_mib: float | None = float(nvml.nvmlDeviceGetMemoryInfo(t.handle).total) / 2**20
    except Exception:  # noqa: BLE001 - memory is informative only
        memory_mib = None
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(t.handle)
        counter: bool | None = True
    except Exception as exc:  # noqa: BLE001
        not_supported = getattr(nvml, "NVMLError_NotSupported", ())
        counter = False if isinstance(exc, not_supported) else None
    return memory_mib, counter


def _visible(nvml: Any, env: Mapping[str, str]) -> tuple[list[GpuTarget], dict[str, str], str]:
    """Visible devices in CUDA order, their model names, and the mapping's description.

    Raises:
        GpuError: a logical index cannot be mapped (mixed models in ``FASTEST_FIRST`` order).
    """
    physical = enumerate_gpus(nvml)
    names = {g.uuid: g.name for g in physical}
    for g in physical:
        names.update({mu: g.name for mu, _ in g.migs})
    entries, _ = visible_devices(physical, env)
    raw = env.get("CUDA_VISIBLE_DEVICES")
    how = "all GPUs (CUDA_VISIBLE_DEVICES unset)" if raw is None else f"CUDA_VISIBLE_DEVICES={raw}"
    problems = [e for e in entries if isinstance(e, str)]
    if problems:
        raise GpuError(problems[0])
    return [e for e in entries if isinstance(e, GpuTarget)], names, how


def list_gpus(env: Mapping[str, str] | None = None, nvml: Any = None) -> Inventory:
    """The GPUs this process may see, in CUDA's logical order (see module docstring).

    Args:
        env: environment with ``CUDA_VISIBLE_DEVICES``/``CUDA_DEVICE_ORDER`` (default
            ``os.environ``).
        nvml: the NVML module (default ``import pynvml``; tests pass a fake).

    Returns:
        An :class:`Inventory`; never raises (problems are in ``reason``).
    """
    env = os.environ if env is None else env
    nvml, reason = _load_nvml(nvml)
    if nvml is None:
        return Inventory((), reason, "")
    try:
        nvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - LibraryNotFound, DriverNotLoaded, ...
        return Inventory((), f"NVML unavailable ({type(exc).__name__}: {exc})", "")
    try:
        targets, names, how = _visible(nvml, env)
        gpus = []
        for i, t in enumerate(targets):
            memory_mib, counter = _probe(nvml, t)
            gpus.append(Gpu(i, t.uuid, names.get(t.uuid, "?"), memory_mib, counter, t.problem))
    except GpuError as exc:
        return Inventory((), str(exc), "")
    except Exception as exc:  # noqa: BLE001 - any NVML failure: no GPU list
        return Inventory((), f"NVML cannot list GPUs ({type(exc).__name__}: {exc})", "")
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass
    if not gpus:
        return Inventory((), f"no GPU visible ({how})" if how else "NVML reports no GPU", how)
    return Inventory(tuple(gpus), None, how)


def _pick(gpus: Sequence[Gpu], entry: int | str) -> Gpu:
    """The GPU named by a ``training.gpus`` entry: logical index or (prefix of) UUID."""
    listed = ", ".join(f"cuda:{g.index}={g.uuid}" for g in gpus) or "none"
    if isinstance(entry, int) or str(entry).isdigit():
        i = int(entry)
        if 0 <= i < len(gpus):
            return gpus[i]
        raise GpuError(f"training.gpus entry {entry!r}: no GPU cuda:{i}; visible: {listed}")
    body = str(entry).strip().lower()
    hits = [g for g in gpus if g.uuid.lower().startswith(body)]
    if len(hits) == 1:
        return hits[0]
    what = "matches no visible GPU" if not hits else "matches several GPUs"
    raise GpuError(f"training.gpus entry {entry!r} {what}; visible: {listed}")


def select_gpus(
    inventory: Inventory, device: str, wanted: Sequence[int | str] | None = None
) -> list[Gpu]:
    """The GPUs a run on ``device`` uses, from ``inventory`` (logical order).

    Args:
        device: ``training.device``: ``cpu`` (no GPU), ``cuda`` or ``cuda:N``.
        wanted: ``training.gpus`` (only with ``cuda``): logical indices or UUIDs.

    Returns:
        ``[]`` for ``cpu`` or when no GPU is listed; one GPU for ``cuda:N``.

    Raises:
        GpuError: ``wanted`` with ``cuda:N``, an entry that names no GPU or one GPU
            twice, or ``cuda:N`` beyond the listed GPUs.
    """
    if not str(device).strip().lower().startswith("cuda") or not inventory.gpus:
        return []
    n = parse_cuda_device(device)
    if n is not None:
        if wanted:
            raise GpuError(
                f"training.gpus = {list(wanted)} needs training.device: cuda (it is {device!r}, "
                "which pins every job to one GPU); drop one of the two"
            )
        if n >= len(inventory.gpus):
            raise GpuError(
                f"training.device = {device!r}, but only {len(inventory.gpus)} GPU(s) are "
                f"visible ({inventory.how}); `greenpath gpus` lists them"
            )
        return [inventory.gpus[n]]
    if not wanted:
        return list(inventory.gpus)
    picked = [_pick(inventory.gpus, e) for e in wanted]
    if len({g.uuid for g in picked}) < len(picked):
        raise GpuError(f"training.gpus = {list(wanted)} names one GPU twice")
    return picked


def run_gpus(
    training: Mapping[str, Any], env: Mapping[str, str] | None = None, nvml: Any = None
) -> tuple[list[Gpu], Inventory]:
    """(:func:`select_gpus` of the ``training:`` settings, the :class:`Inventory`).

    Raises:
        GpuError: as :func:`select_gpus`.
    """
    inventory = list_gpus(env, nvml)
    device = str(training.get("device", "cpu"))
    return select_gpus(inventory, device, training.get("gpus")), inventory


def gpu_tokens(training: Mapping[str, Any], env: Mapping[str, str] | None = None) -> int:
    """Number of ``gpu`` scheduling tokens of a local run: its GPUs, at least 1.

    ``cuda:N`` has 1 (jobs take turns on GPU N). Without a GPU listing (no NVML here, e.g.
    a SLURM login node) or with a selection error it is 1 and nothing is raised: the
    workflow's start check reports the error (:func:`export_run_gpus`).
    """
    if _pinned_index(str(training.get("device", "cpu"))) is not None:
        return 1
    try:
        gpus, _ = run_gpus(training, env)
    except GpuError:
        return 1
    return max(len(gpus), 1)


def _pinned_index(device: str) -> int | None:
    """Logical index of ``cuda:N``; ``None`` for ``cuda``, ``cpu`` or anything else."""
    try:
        return parse_cuda_device(device)
    except ValueError:
        return None


def export_run_gpus(
    training: Mapping[str, Any], environ: MutableMapping[str, str] | None = None
) -> list[Gpu]:
    """Export the run's GPUs to its local jobs (:data:`RUN_GPUS_ENV`, and the lock folder
    as :data:`LOCK_DIR_ENV`); call before any job.

    Returns:
        The run's GPUs (``[]`` on CPU or when none is listed: then nothing is exported and
        jobs train on ``training.device`` as written).

    Raises:
        GpuError: as :func:`select_gpus`, before any job starts.
    """
    environ = os.environ if environ is None else environ
    gpus, _ = run_gpus(training, environ)
    if gpus:
        environ[RUN_GPUS_ENV] = ",".join(g.uuid for g in gpus)
        # one lock folder for all jobs, whatever TMPDIR Snakemake gives each of them
        environ[LOCK_DIR_ENV] = str(lock_dir(environ))
    return gpus


# --------------------------------------------------------------------------- claiming
@dataclass
class Claim:
    """A GPU held by this process until it ends (or :meth:`release`).

    Attributes:
        uuid: the claimed GPU's UUID.
        device: the device string that reaches it in this process (``cuda:0`` after a
            ``cuda`` claim, ``cuda:N`` for a pinned one).
        lock_path: its lock file.
    """

    uuid: str
    device: str
    lock_path: Path
    fd: int

    def release(self) -> None:
        """Drop the lock (the process keeps its ``CUDA_VISIBLE_DEVICES``)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def lock_dir(env: Mapping[str, str] | None = None) -> Path:
    """The lock folder (:data:`LOCK_DIR_ENV`, else ``<tmp>/greenpath-gpu-locks``), created
    world-writable with the sticky bit so that every user of the machine can lock in it."""
    env = os.environ if env is None else env
    d = Path(env.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "greenpath-gpu-locks")
    if not d.is_dir():
        d.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(d, 0o1777)
        except OSError:
            pass
    return d


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path``, or ``None`` when another process has it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # another user's lock file: a read-only fd can be locked too
        fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    try:  # who holds it, for the waiting message of others
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass
    return fd


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return "?"
    return f"pid {pid}" if pid else "?"


def _cuda_started() -> bool:
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except Exception:  # noqa: BLE001 - a torch without CUDA support
        return False


def claim_gpu(
    uuids: Sequence[str],
    *,
    pinned_index: int | None = None,
    environ: MutableMapping[str, str] | None = None,
    poll_s: float = 0.5,
    timeout_s: float | None = None,
) -> Claim:
    """Wait for a free GPU among ``uuids`` (in order), lock it, and point CUDA at it.

    Args:
        uuids: candidate GPUs (the run's GPUs; one for a pinned device).
        pinned_index: ``N`` of ``cuda:N``: the environment is left unchanged; ``None``:
            ``CUDA_VISIBLE_DEVICES`` becomes the claimed UUID (the process sees one GPU).
        environ: the environment to change (default ``os.environ``).
        poll_s: seconds between two tries while every candidate is held.
        timeout_s: give up after this long (``None``: wait as long as it takes).

    Returns:
        The :class:`Claim`; the lock lasts as long as the process (or its ``release()``).

    Raises:
        GpuError: no candidate, CUDA already started in this process, or the timeout.
    """
    environ = os.environ if environ is None else environ
    if not uuids:
        raise GpuError("no GPU to claim")
    if _cuda_started():
        raise GpuError(
            "CUDA is already initialised in this process; a GPU must be claimed before "
            "torch starts CUDA (CUDA_VISIBLE_DEVICES is read once, at that moment)"
        )
    folder = lock_dir(environ)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    waiting_logged = False
    while True:
        for uuid in uuids:
            path = folder / f"{uuid}.lock"
            fd = _try_lock(path)
            if fd is not None:
                return _assign(uuid, path, fd, pinned_index, environ)
        held = ", ".join(f"{u} ({_holder(folder / f'{u}.lock')})" for u in uuids)
        if deadline is not None and time.monotonic() >= deadline:
            raise GpuError(f"no free GPU within {timeout_s:g} s; all held: {held}")
        if not waiting_logged:
            log.info("waiting for a free GPU; all held: %s (locks in %s)", held, folder)
            waiting_logged = True
        time.sleep(poll_s)


def _assign(
    uuid: str, path: Path, fd: int, pinned_index: int | None, environ: MutableMapping[str, str]
) -> Claim:
    if pinned_index is None:
        environ["CUDA_VISIBLE_DEVICES"] = uuid
        index = 0
    else:
        index = pinned_index
    environ[ASSIGNED_UUID_ENV] = uuid
    environ[ASSIGNED_INDEX_ENV] = str(index)
    claim = Claim(uuid, f"cuda:{index}", path, fd)
    _HELD.append(claim)
    log.info("training on GPU %s (%s in this process; lock %s)", uuid, claim.device, path)
    return claim


#: Claims of this process, kept so their lock fds stay open until the process ends.
_HELD: list[Claim] = []


def claim_for_job(
    settings: Mapping[str, Any],
    environ: MutableMapping[str, str] | None = None,
    *,
    timeout_s: float | None = None,
) -> Claim | None:
    """Claim this job's GPU before CUDA starts; the one call of a training job's script.

    Args:
        settings: config-shaped mapping; reads ``training.device`` and ``training.gpus``.
        environ: the environment (default ``os.environ``).
        timeout_s: as :func:`claim_gpu`.

    Returns:
        The claim, or ``None`` when nothing is claimed: a CPU device, a SLURM job that the
        workflow did not start locally (SLURM gives it its GPU), or no GPU listed by NVML
        (a warning; the job trains on ``training.device`` as written).

    Raises:
        GpuError: ``training.gpus``/``training.device`` name no visible GPU, or CUDA has
            already started.
    """
    environ = os.environ if environ is None else environ
    training = settings.get("training") or {}
    device = str(training.get("device", "cpu"))
    if not device.strip().lower().startswith("cuda"):
        return None
    pinned = parse_cuda_device(device)
    run = [u for u in environ.get(RUN_GPUS_ENV, "").split(",") if u]
    if not run:
        if environ.get("SLURM_JOB_ID"):
            log.info("SLURM job: training on the GPU SLURM allocated (no greenpath claim)")
            return None
        gpus, inventory = run_gpus(training, environ)
        if not gpus:
            log.warning("no GPU to claim (%s); training on %s as written", inventory.reason, device)
            return None
        run = [g.uuid for g in gpus]
    elif pinned is not None:
        run = run[:1]  # the workflow exported GPU N alone
    return claim_gpu(run, pinned_index=pinned, environ=environ, timeout_s=timeout_s)
