"""scripts/train.py: standalone command line and Snakemake ``script:`` mode."""

from __future__ import annotations

import logging
import runpy
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from training_helpers import REPO, make_config

from greenpath.records import read_records

SCRIPT = REPO / "scripts" / "train.py"


class _Named(SimpleNamespace):
    """Stands in for Snakemake's Namedlist (attribute access, len, indexing)."""

    def __init__(self, *items, **kw):
        super().__init__(**kw)
        self._items = list(items) or list(kw.values())

    def __len__(self):
        return len(self._items)

    def __getitem__(self, i):
        return self._items[i]


@pytest.fixture
def restore_sigterm():
    old = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, old)
    logging.getLogger().handlers.clear()


def test_standalone_and_snakemake_modes(tmp_path, digits_npz, restore_sigterm):
    cfg = make_config(epochs=3)
    cfg["energy"] = {"rapl": "off"}
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    mod = runpy.run_path(str(SCRIPT), run_name="train_script")
    common = ["--config", str(cfg_file), "--dataset", "digits", "--seed", "1",
              "--dataset-path", str(digits_npz)]  # fmt: skip
    assert mod["main"](["init", *common, "--out-checkpoint", str(tmp_path / "c0.pt")]) == 0
    assert mod["main"](
        ["trunk", *common, "--start", "0", "--end", "2", "--in-checkpoint", str(tmp_path / "c0.pt"),
         "--out-checkpoint", str(tmp_path / "c2.pt"), "--out-records", str(tmp_path / "t.parquet")]
    ) == 0  # fmt: skip
    trunk = read_records(tmp_path / "t.parquet")
    assert trunk["epoch"].tolist() == [1, 2] and set(trunk["seed"]) == {1}

    log = tmp_path / "logs" / "branch.log"
    fake = SimpleNamespace(
        params=_Named(role="branch", settings=cfg),
        wildcards=_Named(dataset="digits", seed="1", method="freeze", k="2"),
        input=_Named(dataset=str(digits_npz), checkpoint=str(tmp_path / "c2.pt")),
        output=_Named(records=str(tmp_path / "freeze.parquet")),
        config=cfg,
        log=_Named(str(log)),
    )
    runpy.run_path(str(SCRIPT), init_globals={"snakemake": fake}, run_name="snakemake_job")
    br = read_records(tmp_path / "freeze.parquet")
    assert br["epoch"].tolist() == [3]
    assert (br["method"].iloc[0], br["intervention_epoch"].iloc[0]) == ("freeze", 2)
    text = log.read_text()
    assert "freeze@2 epoch 3/3" in text and " J" in text  # one line per epoch with joules
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL


def test_missing_value_is_named(tmp_path, digits_npz, restore_sigterm):
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(make_config(epochs=3)))
    mod = runpy.run_path(str(SCRIPT), run_name="train_script")
    with pytest.raises(SystemExit, match="out_checkpoint"):
        mod["main"](["init", "--config", str(cfg_file), "--dataset", "digits", "--seed", "0",
                     "--dataset-path", str(digits_npz)])  # fmt: skip


def test_script_has_no_top_level_side_effects():
    # importing the module (not as __main__, no snakemake global) must not run anything
    mod = runpy.run_path(str(SCRIPT), run_name="not_main")
    assert callable(mod["main"]) and Path(SCRIPT).is_file()
