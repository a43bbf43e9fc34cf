"""A stand-in training job: ``claim_worker.py DEVICE FOLDER TIMEOUT_S``.

Claims a GPU as ``scripts/train.py`` does (``greenpath.devices.claim_for_job``), writes
``claimed.json``, meters a 0.3 s window with the NVML meter (``measured.json``), then holds
the GPU until ``FOLDER/release`` exists. A failed claim writes ``error.json`` and exits 3.
"""

import json
import os
import sys
import time
from pathlib import Path

from greenpath.devices import GpuError, claim_for_job
from greenpath.energy.nvml import NvmlGpuMeter


def write(folder: Path, name: str, obj: dict) -> None:
    tmp = folder / f"{name}.tmp"
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, folder / f"{name}.json")


def main() -> int:
    device, folder, timeout_s = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
    try:
        claim = claim_for_job({"training": {"device": device}}, timeout_s=timeout_s or None)
    except GpuError as exc:
        write(folder, "error", {"error": str(exc)})
        return 3
    assert claim is not None
    write(
        folder,
        "claimed",
        {
            "uuid": claim.uuid,
            "device": claim.device,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "pid": os.getpid(),
        },
    )
    meter = NvmlGpuMeter(device)
    w = meter.begin()
    time.sleep(0.3)
    m = meter.end(w)
    meter.close()
    write(
        folder,
        "measured",
        {
            "gpu_uuids": list(m.gpu_uuids),
            "domains": dict(m.gpu.domains),
            "joules": m.gpu.joules,
            "wall_s": m.wall_s,
            "source": m.gpu.source,
            "mapping": json.loads(meter.metadata()["greenpath.energy.gpu"])["mapping"],
        },
    )
    while not (folder / "release").exists():
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
