"""One training job per GPU in local runs (docs/energy.md, "One job per GPU").

Seen on an H200: a local `snakemake --cores 16` with training.device: cuda ran 16 training
jobs at once on the one GPU, and each recorded the whole GPU's energy. The workflow now
gives a local run one `gpu` token per GPU it may use when training is on `cuda` (each job
claims its own GPU, tests/gpus), one for `cuda:N`, and one when NVML lists no GPU (this
machine), unless `--resources gpu=N` says otherwise; on CPU it adds none. Snakemake prints
the tokens it schedules with ("Provided resources") when it executes, so each case runs the
workflow up to prepare_dataset on digits (scikit-learn's, offline, seconds); the cases with
a box of four GPUs put the fake NVML of tests/gpus first on the path.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


FAKE_NVML = REPO / "tests" / "gpus" / "fake_nvml"


def four_gpu_box(tmp_path: Path, cuda_visible_devices: str | None) -> dict[str, str]:
    """Environment of a snakemake run on a fake box of four GPUs."""
    sys.path.insert(0, str(REPO / "tests" / "gpus"))
    from gpu_helpers import box_env, write_box

    extra = {} if cuda_visible_devices is None else {"CUDA_VISIBLE_DEVICES": cuda_visible_devices}
    return box_env(write_box(tmp_path), tmp_path / "locks", **extra)


def provided_gpu_tokens(
    tmp_path: Path, device: str, extra: list[str], env: dict[str, str] | None = None
) -> int | None:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["datasets"] = {"digits": {}}
    cfg["training"]["device"] = device
    cfg["modeling"]["eatit"]["src"] = str(tmp_path / "no_eatit")
    cfg["control"]["enabled"] = False
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(cfg))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "4", "--until", "prepare_dataset"]
        + ["--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path)]
        + ["--configfile", str(configfile), *extra],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env=env,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "Finished jobid" in out and "(Rule: prepare_dataset)" in out, out[-3000:]
    line = next((s for s in out.splitlines() if s.startswith("Provided resources")), "")
    m = re.search(r"gpu\D+(\d+)", line)
    return int(m.group(1)) if m else None


def one_gpu_box(tmp_path: Path) -> dict[str, str]:
    """Environment of a snakemake run on a fake box of one GPU."""
    sys.path.insert(0, str(REPO / "tests" / "gpus"))
    from gpu_helpers import FOUR_GPUS, box_env, write_box

    return box_env(write_box(tmp_path, FOUR_GPUS[:1]), tmp_path / "locks")


@pytest.mark.parametrize(
    "device, extra, box, tokens",
    [
        ("cuda", [], "one", 1),  # one GPU: one training job at a time on it
        ("cuda:0", ["--resources", "gpu=2"], "four", 2),  # the user's choice wins
        ("cpu", [], None, None),  # CPU training asks for no GPU token
    ],
)
def test_local_run_has_one_gpu_token_on_cuda(tmp_path, device, extra, box, tokens):
    env = {"one": one_gpu_box, "four": lambda p: four_gpu_box(p, None)}.get(box)
    assert provided_gpu_tokens(tmp_path, device, extra, env(tmp_path) if env else None) == tokens


def test_cuda_without_a_gpu_stops_before_any_job(tmp_path):
    """training.device: cuda on a machine without CUDA: the pre-flight names the setting
    and the fix, and no job runs."""
    from greenpath.preflight import cuda_device_count

    if cuda_device_count() > 0:
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(AssertionError, match="training.device = 'cuda'") as err:
        provided_gpu_tokens(tmp_path, "cuda", [])
    assert "Finished jobid" not in str(err.value)


@pytest.mark.parametrize(
    "device, visible, tokens",
    [
        ("cuda", None, 4),  # every GPU of the box, one job each
        ("cuda", "2,3", 2),  # only those CUDA_VISIBLE_DEVICES names
        ("cuda:1", None, 1),  # pinned: one job at a time on GPU 1
    ],
)
def test_local_run_has_one_gpu_token_per_gpu(tmp_path, device, visible, tokens):
    env = four_gpu_box(tmp_path, visible)
    assert provided_gpu_tokens(tmp_path, device, [], env) == tokens
