"""One training job in its own process: the lean entry point of the training rules.

::

    python -m greenpath.training.job init   --settings JSON --dataset digits --seed 0 \\
        --dataset-path NPZ --out-checkpoint CKPT0
    python -m greenpath.training.job trunk  --settings JSON --dataset digits --seed 0 \\
        --dataset-path NPZ --start 0 --end 3 [--in-checkpoint CKPT0] \\
        --out-checkpoint CKPT3 --out-records RECORDS.parquet [--state-dir DIR] [--log FILE]
    python -m greenpath.training.job branch --settings JSON --dataset digits --seed 0 \\
        --dataset-path NPZ --method freeze --intervention-epoch 3 --in-checkpoint CKPT3 \\
        --out-records RECORDS.parquet [--state-dir DIR] [--log FILE]

``--settings`` is the job's settings, config-shaped (the nesting of ``config/config.yaml``,
the sections the job reads: ``study``, ``data``, ``datasets``, ``model``, ``training``,
``methods``, ``energy``), as a JSON object or a Python dict literal, taken from a config
the workflow has already checked; ``--config FILE`` instead reads and checks a YAML config
(:func:`greenpath.config.check_config`). A trunk segment or branch that starts at epoch 0
without ``--in-checkpoint`` builds the epoch-0 state in-process.

The process starts lean: no Snakemake import (a ``script:`` rule imports it and unpickles
the job's namespace), and torch and the engine are imported only once the arguments are
read. Torch uses ``training.num_threads`` intra-op threads. SIGTERM (e.g. a SLURM time
limit) ends the job cleanly: temporary files are removed and the per-epoch resume state
stays, so a rerun continues from the last complete epoch (``docs/training.md``).
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ROLES: tuple[str, ...] = ("init", "trunk", "branch")


def on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM handler: leave through ``SystemExit`` so ``finally`` blocks clean up."""
    raise SystemExit(128 + signum)


def setup_logging(log_file: str | None) -> None:
    """Log lines to stderr and, when given, appended to ``log_file``."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="a", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, handlers=handlers, force=True)


def _need(role: str, values: Mapping[str, Any], key: str) -> Any:
    if values.get(key) is None:
        raise SystemExit(f"training job {role}: missing value {key!r}")
    return values[key]


def _epoch0_checkpoint(role: str, settings: dict, values: dict, common: dict, tmp: str) -> dict:
    """``values`` with an in-process epoch-0 checkpoint when a job starting at 0 has none.

    The epoch-0 state is a pure function of (settings, dataset, seed), so a job that
    starts at epoch 0 builds it instead of waiting for an ``init`` job.
    """
    if role not in ("trunk", "branch") or values.get("in_checkpoint"):
        return values
    start_key = "start" if role == "trunk" else "intervention_epoch"
    if int(_need(role, values, start_key)) != 0:
        raise SystemExit(
            f"training job {role}: missing value 'in_checkpoint' (start {values[start_key]})"
        )
    from greenpath.training import init_checkpoint

    path = Path(tmp) / "trunk_e0.pt"
    init_checkpoint(settings, out_checkpoint=path, **common)
    return {**values, "in_checkpoint": str(path)}


def run(role: str, settings: Mapping[str, Any], values: Mapping[str, Any], *, check: bool) -> None:
    """Run one training job.

    Args:
        role: ``init``, ``trunk`` or ``branch``.
        settings: config-shaped settings.
        values: the role's arguments (``dataset``, ``seed``, ``dataset_path``, ``start``,
            ``end``, ``method``, ``intervention_epoch``, ``in_checkpoint``,
            ``out_checkpoint``, ``out_records``, ``state_dir``).
        check: validate ``settings`` as a whole config and fill its defaults first
            (False for settings from a config the workflow already checked).

    Raises:
        SystemExit: unknown role or a missing value (the message names it).
        greenpath.config.ConfigError: invalid settings (with ``check``).
    """
    if role not in ROLES:
        raise SystemExit(f"training job: unknown role {role!r}; use one of {list(ROLES)}")
    from greenpath.devices import claim_for_job

    claim_for_job(settings)  # a free GPU of the run, before torch starts CUDA
    import torch

    if check:
        from greenpath.config import check_config

        settings = check_config(settings)
    settings = dict(settings)
    torch.set_num_threads(int(settings["training"]["num_threads"]))
    common = {"dataset_path": Path(_need(role, values, "dataset_path")),
              "seed": int(_need(role, values, "seed"))}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="greenpath-init-") as tmp:
        _run_role(role, settings, _epoch0_checkpoint(role, settings, dict(values), common, tmp),
                  common)  # fmt: skip


def _run_role(role: str, settings: dict, values: dict, common: dict) -> None:
    from greenpath.training import init_checkpoint, run_branch, run_trunk_segment

    paths = {k: Path(values[k]) for k in ("in_checkpoint", "out_checkpoint", "out_records")
             if values.get(k) is not None}  # fmt: skip
    state_dir = Path(values["state_dir"]) if values.get("state_dir") else None
    if role == "init":
        init_checkpoint(settings, out_checkpoint=Path(_need(role, values, "out_checkpoint")),
                        **common)  # fmt: skip
        return
    for key in ("dataset", "in_checkpoint", "out_records"):
        _need(role, values, key)
    if role == "trunk":
        run_trunk_segment(
            settings, dataset=str(values["dataset"]), start=int(_need(role, values, "start")),
            end=int(_need(role, values, "end")), in_checkpoint=paths["in_checkpoint"],
            out_checkpoint=Path(_need(role, values, "out_checkpoint")),
            out_records=paths["out_records"], state_dir=state_dir, **common,
        )  # fmt: skip
    else:
        run_branch(
            settings, dataset=str(values["dataset"]), method=str(_need(role, values, "method")),
            intervention_epoch=int(_need(role, values, "intervention_epoch")),
            in_checkpoint=paths["in_checkpoint"], out_records=paths["out_records"],
            state_dir=state_dir, **common,
        )  # fmt: skip


def parse_settings(text: str) -> dict[str, Any]:
    """Config-shaped settings from JSON, or from a Python dict literal (what Snakemake's
    ``{params.settings:q}`` writes for a dict param).

    Raises:
        SystemExit: neither parses to a dict (the message shows the start of ``text``).
    """
    try:
        settings = json.loads(text)
    except json.JSONDecodeError:
        try:
            settings = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            settings = None
    if not isinstance(settings, dict):
        raise SystemExit(
            f"--settings {text[:60]!r}... is not a JSON object or dict literal; pass the "
            "job's config-shaped settings"
        )
    return settings


def parser() -> argparse.ArgumentParser:
    """The command line of :func:`main`."""
    ap = argparse.ArgumentParser(
        prog="python -m greenpath.training.job", description=(__doc__ or "").split("\n\n")[0]
    )
    ap.add_argument("role", choices=ROLES)
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--settings", help="config-shaped JSON object (already checked)")
    source.add_argument("--config", type=Path, help="a YAML config file (checked here)")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--seed", required=True, type=int)
    ap.add_argument("--dataset-path", required=True, type=Path)
    ap.add_argument("--start", type=int)
    ap.add_argument("--end", type=int)
    ap.add_argument("--method", choices=["base", "freeze", "quant"])
    ap.add_argument("--intervention-epoch", type=int)
    ap.add_argument(
        "--in-checkpoint", type=lambda v: Path(v) if v else None, help="empty: epoch 0 in-process"
    )
    ap.add_argument("--out-checkpoint", type=Path)
    ap.add_argument("--out-records", type=Path)
    ap.add_argument("--state-dir", type=Path)
    ap.add_argument("--log", help="also append log lines to this file")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: the job runs in a child of the warm fork server
    (:mod:`greenpath.training.forkserver`) where enabled, else in this process; returns
    its exit status."""
    from greenpath.training import forkserver

    argv = sys.argv[1:] if argv is None else list(argv)
    if forkserver.enabled():
        try:
            return forkserver.run_via_server(argv)
        except forkserver.ServerUnavailable as exc:
            logging.getLogger("greenpath.training").warning(
                "training fork server unavailable (%s); running the job in this process", exc
            )
    return run_here(argv)


def run_here(argv: list[str] | None = None) -> int:
    """Run the job of command line ``argv`` in this process; returns the exit status.

    Raises:
        SystemExit: bad arguments, settings that are not a JSON object, or a missing value.
    """
    args = parser().parse_args(argv)
    setup_logging(args.log)
    if args.settings is not None:
        settings = parse_settings(args.settings)
    else:
        import yaml

        settings = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    skip = ("role", "settings", "config", "log")
    values = {k: v for k, v in vars(args).items() if k not in skip}
    run(args.role, settings, values, check=args.settings is None)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_sigterm)
    sys.exit(main())
