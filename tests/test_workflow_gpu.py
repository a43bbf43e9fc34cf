"""One training job per GPU in local runs (docs/energy.md, "One job per GPU").

Seen on an H200: a local `snakemake --cores 16` with training.device: cuda ran 16 training
jobs at once on the one GPU, and each recorded the whole GPU's energy. The workflow now
gives a local run one `gpu` token when training is on CUDA (the training rules each take
one), unless `--resources gpu=N` says otherwise; on CPU it adds none. Snakemake prints the
tokens it schedules with ("Provided resources") when it executes, so each case runs the
workflow up to prepare_dataset on digits (scikit-learn's, offline, seconds).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def provided_gpu_tokens(tmp_path: Path, device: str, extra: list[str]) -> int | None:
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
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "Finished jobid" in out and "(Rule: prepare_dataset)" in out, out[-3000:]
    line = next((s for s in out.splitlines() if s.startswith("Provided resources")), "")
    m = re.search(r"gpu\D+(\d+)", line)
    return int(m.group(1)) if m else None


@pytest.mark.parametrize(
    "device, extra, tokens",
    [
        ("cuda", [], 1),  # default: one training job at a time on the GPU
        ("cuda:0", ["--resources", "gpu=2"], 2),  # the user's choice wins
        ("cpu", [], None),  # CPU training asks for no GPU token
    ],
)
def test_local_run_has_one_gpu_token_on_cuda(tmp_path, device, extra, tokens):
    assert provided_gpu_tokens(tmp_path, device, extra) == tokens
