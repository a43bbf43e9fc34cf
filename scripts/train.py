"""Training entry point: epoch-0 checkpoint, one trunk segment, or one branch.

Standalone::

    python scripts/train.py init   --config config/config.yaml --dataset digits --seed 0 \\
        --dataset-path results/prepared/digits.npz --out-checkpoint CKPT0
    python scripts/train.py trunk  --config config/config.yaml --dataset digits --seed 0 \\
        --dataset-path NPZ --start 0 --end 3 --in-checkpoint CKPT0 \\
        --out-checkpoint CKPT3 --out-records RECORDS.parquet [--state-dir DIR]
    python scripts/train.py branch --config config/config.yaml --dataset digits --seed 0 \\
        --dataset-path NPZ --method freeze --intervention-epoch 3 --in-checkpoint CKPT3 \\
        --out-records RECORDS.parquet [--state-dir DIR]

From Snakemake (``script: "../../scripts/train.py"``), with ``params.role`` one of
``init``/``trunk``/``branch``; the values are read from (first found wins):

=================== ==================================================================
value               where
=================== ==================================================================
dataset, seed       ``params`` or ``wildcards`` (``dataset``, ``seed``)
start, end          ``params`` or ``wildcards`` (``start``, ``end``) -- trunk
method, k           ``params`` or ``wildcards`` (``method``; ``k`` or
                    ``intervention_epoch``) -- branch
dataset path        ``input.dataset``
in checkpoint       ``input.checkpoint``
out checkpoint      ``output.checkpoint``
records             ``output.records``
state dir           ``params.state_dir`` (optional)
config              ``params.settings``: the job's settings, config-shaped (checked with
                    ``greenpath.config.check_settings``)
log                 ``log[0]`` (optional): all log lines go there
=================== ==================================================================

Torch uses ``training.num_threads`` intra-op threads. SIGTERM (e.g. a SLURM time limit)
ends the job cleanly: temporary files are removed and the per-epoch resume state stays, so
a rerun continues from the last complete epoch (docs/training.md).
"""

import argparse
import logging
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _setup_logging(log_file: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="a", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, handlers=handlers, force=True)


def run(role: str, config: dict[str, Any], values: dict[str, Any]) -> None:
    """Run one training job; ``values`` holds the role's arguments (see module docstring).

    Raises:
        SystemExit: unknown role or a missing value (message names it).
        greenpath.config.ConfigError: invalid config.
    """
    import torch

    from greenpath.config import check_settings
    from greenpath.training import init_checkpoint, run_branch, run_trunk_segment

    cfg = check_settings(config)
    torch.set_num_threads(int(cfg["training"].get("num_threads", 1)))

    def need(key: str) -> Any:
        if values.get(key) is None:
            raise SystemExit(f"train.py {role}: missing value {key!r}")
        return values[key]

    common = {
        "dataset_path": Path(need("dataset_path")),
        "seed": int(need("seed")),
    }
    state_dir = Path(values["state_dir"]) if values.get("state_dir") else None
    if role in ("trunk", "branch") and not values.get("in_checkpoint"):
        # The epoch-0 state is a pure function of (config, dataset, seed): a job that starts
        # at epoch 0 builds it in-process instead of waiting for an `init` job.
        start = values.get("start") if role == "trunk" else values.get("intervention_epoch")
        if int(need("start" if role == "trunk" else "intervention_epoch")) != 0:
            raise SystemExit(f"train.py {role}: missing value 'in_checkpoint' (start {start})")
        tmp = tempfile.TemporaryDirectory(prefix="greenpath-init-")
        values = {**values, "in_checkpoint": str(Path(tmp.name) / "trunk_e0.pt")}
        init_checkpoint(cfg, out_checkpoint=Path(values["in_checkpoint"]), **common)
    if role == "init":
        init_checkpoint(cfg, out_checkpoint=Path(need("out_checkpoint")), **common)
    elif role == "trunk":
        run_trunk_segment(
            cfg,
            dataset=str(need("dataset")),
            start=int(need("start")),
            end=int(need("end")),
            in_checkpoint=Path(need("in_checkpoint")),
            out_checkpoint=Path(need("out_checkpoint")),
            out_records=Path(need("out_records")),
            state_dir=state_dir,
            **common,
        )
    elif role == "branch":
        run_branch(
            cfg,
            dataset=str(need("dataset")),
            method=str(need("method")),
            intervention_epoch=int(need("intervention_epoch")),
            in_checkpoint=Path(need("in_checkpoint")),
            out_records=Path(need("out_records")),
            state_dir=state_dir,
            **common,
        )
    else:
        raise SystemExit(f"train.py: unknown role {role!r}; use init, trunk or branch")


def _from_snakemake(smk: Any) -> None:
    def pick(*names: str, sources: tuple[Any, ...]) -> Any:
        for src in sources:
            for n in names:
                try:
                    v = getattr(src, n)
                except AttributeError:
                    continue
                if v is not None and not callable(v) and not (isinstance(v, list) and not v):
                    return v
        return None

    p, w = smk.params, smk.wildcards
    log_file = str(smk.log[0]) if len(smk.log) else None
    _setup_logging(log_file)
    role = str(pick("role", sources=(p,)))
    values = {
        "dataset": pick("dataset", sources=(p, w)),
        "seed": pick("seed", sources=(p, w)),
        "start": pick("start", sources=(p, w)),
        "end": pick("end", sources=(p, w)),
        "method": pick("method", sources=(p, w)),
        "intervention_epoch": pick("intervention_epoch", "k", sources=(p, w)),
        "dataset_path": pick("dataset", sources=(smk.input,)),
        "in_checkpoint": pick("checkpoint", sources=(smk.input,)),
        "out_checkpoint": pick("checkpoint", sources=(smk.output,)),
        "out_records": pick("records", sources=(smk.output,)),
        "state_dir": pick("state_dir", sources=(p,)),
    }
    run(role, dict(smk.params.settings), values)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    import yaml

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("role", choices=["init", "trunk", "branch"])
    ap.add_argument("--config", required=True, type=Path)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--seed", required=True, type=int)
    ap.add_argument("--dataset-path", required=True, type=Path)
    ap.add_argument("--start", type=int)
    ap.add_argument("--end", type=int)
    ap.add_argument("--method", choices=["base", "freeze", "quant"])
    ap.add_argument("--intervention-epoch", type=int)
    ap.add_argument("--in-checkpoint", type=Path)
    ap.add_argument("--out-checkpoint", type=Path)
    ap.add_argument("--out-records", type=Path)
    ap.add_argument("--state-dir", type=Path)
    ap.add_argument("--log", help="also append log lines to this file")
    args = ap.parse_args(argv)
    _setup_logging(args.log)
    with open(args.config, encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    values = {k: v for k, v in vars(args).items() if k not in ("role", "config", "log")}
    run(args.role, config, values)
    return 0


if __name__ == "__main__" or "snakemake" in globals():
    signal.signal(signal.SIGTERM, _on_sigterm)
    if "snakemake" in globals():
        _from_snakemake(snakemake)  # type: ignore[name-defined]  # noqa: F821
    else:
        sys.exit(main())
