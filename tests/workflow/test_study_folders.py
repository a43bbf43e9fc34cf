"""One folder per study: the default and the paper study plan disjoint outputs."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO, snakemake

pytestmark = pytest.mark.slow


def planned_outputs(workdir, configfile) -> set[str]:
    config = yaml.safe_load((REPO / configfile).read_text())
    config.setdefault("modeling", {}).setdefault("eatit", {})["src"] = (
        None  # the shared EAT-IT study is one folder of its own
    )
    proc = snakemake(workdir, config, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = set()
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("output:"):
            out |= {p.strip() for p in line[len("output:") :].split(",")}
    return out


def test_default_and_paper_studies_plan_disjoint_outputs(tmp_path):
    default = planned_outputs(tmp_path, "config/config.yaml")
    paper = planned_outputs(tmp_path, "config/paper.yaml")
    assert default and paper
    assert {p.split("/")[1] for p in default} == {"default"}
    assert {p.split("/")[1] for p in paper} == {"paper"}
    assert not default & paper
