"""Helpers for the GPU discovery/claim tests: a fake NVML box and claiming worker processes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FAKE_NVML_DIR = Path(__file__).resolve().parent / "fake_nvml"
WORKER = Path(__file__).resolve().parent / "claim_worker.py"

#: A fake box of four H100s: NVML index i = PCI position i; each draws its own power.
FOUR_GPUS: list[dict[str, Any]] = [
    {
        "uuid": f"GPU-{i}{i}{i}{i}aaaa-0000-0000-0000-00000000000{i}",
        "name": "NVIDIA H100 80GB HBM3",
        "bus": f"00000000:{0x18 + 0x10 * i:02X}:00.0",
        "memory_mib": 81559,
        "watts": 100.0 * (i + 1),
    }
    for i in range(4)
]


def write_box(tmp: Path, devices: list[dict[str, Any]] | None = None) -> Path:
    """The fake NVML's JSON file for ``devices`` (default :data:`FOUR_GPUS`)."""
    path = tmp / "fake_nvml.json"
    path.write_text(json.dumps({"t0": time.time(), "devices": devices or FOUR_GPUS}))
    return path


def load_fake_nvml() -> ModuleType:
    """The fake ``pynvml`` module, loaded in-process (configured by ``GREENPATH_FAKE_NVML``)."""
    spec = importlib.util.spec_from_file_location("fake_pynvml", FAKE_NVML_DIR / "pynvml.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def box_env(box: Path, locks: Path, **extra: str) -> dict[str, str]:
    """Environment of a process on the fake box: the fake NVML first on the path, no SLURM,
    no CUDA_VISIBLE_DEVICES unless given in ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "GREENPATH_", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"))
    }
    env["PYTHONPATH"] = os.pathsep.join([str(FAKE_NVML_DIR), str(REPO / "src")])
    env["GREENPATH_FAKE_NVML"] = str(box)
    env["GREENPATH_GPU_LOCK_DIR"] = str(locks)
    env.update(extra)
    return env


class Worker:
    """A process that claims a GPU like a training job, meters a window, then holds the GPU
    until :meth:`release` (or until it is killed)."""

    def __init__(self, folder: Path, device: str, env: dict[str, str], timeout_s: float = 0):
        self.folder = folder
        folder.mkdir(parents=True)
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), device, str(folder), str(timeout_s)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(folder / "stderr.txt", "w"),  # noqa: SIM115 - closed with the process
        )

    def event(self, name: str, timeout_s: float = 60.0) -> dict[str, Any] | None:
        """The JSON the worker wrote at ``name`` (claimed, measured, error), or None if it
        has not written it within ``timeout_s``."""
        path = self.folder / f"{name}.json"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if path.exists():
                return json.loads(path.read_text())
            if self.proc.poll() is not None and not path.exists():
                time.sleep(0.05)
                if not path.exists():
                    return None
            time.sleep(0.05)
        return None

    def stderr(self) -> str:
        return (self.folder / "stderr.txt").read_text()

    def release(self) -> int:
        """Let the worker end (killed if it is still waiting for a GPU after 30 s)."""
        (self.folder / "release").touch()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=60)
