"""Prepare one dataset once as uint8 arrays (.npz) for the training jobs.

Standalone:
    python scripts/prepare_dataset.py --dataset digits --config config/config.yaml \
        --out results/default/data/digits.npz

From Snakemake (``script:`` directive): reads ``snakemake.wildcards.dataset``,
``snakemake.params.settings`` (``data`` and the dataset's options, config-shaped),
``snakemake.output[0]`` and ``snakemake.log`` (first entry, if any).

All logic lives in :func:`greenpath.data.prepare_from_config`; this file only parses
arguments. A :class:`greenpath.data.DataError` (missing or corrupt data, bad option) is
printed without a traceback and the exit status is 1, so no training job starts.
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

try:
    import greenpath  # noqa: F401
except ImportError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import yaml

from greenpath.data import DataError, prepare_from_config
from greenpath.interrupts import one_line_on_interrupt


def run(dataset: str, config: dict[str, Any], out: Path, log_path: Path | None = None) -> int:
    """Prepare ``dataset``; return the exit status (0 ok, 1 DataError)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )
    try:
        prepare_from_config(dataset, config, out)
    except DataError as exc:
        logging.getLogger("prepare_dataset").error("%s", exc)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="registry name, e.g. digits")
    parser.add_argument(
        "--config", required=True, type=Path, help="YAML config (config/config.yaml)"
    )
    parser.add_argument("--out", required=True, type=Path, help="output .npz path")
    parser.add_argument("--log", type=Path, default=None, help="optional log file")
    args = parser.parse_args(argv)
    try:
        config = yaml.safe_load(args.config.read_text())
    except (OSError, yaml.YAMLError) as exc:
        print(f"Cannot read config {args.config}: {exc}", file=sys.stderr)
        return 1
    return run(args.dataset, config, args.out, args.log)


if "snakemake" in globals():
    _smk = globals()["snakemake"]
    _log = Path(_smk.log[0]) if len(_smk.log) else None
    with one_line_on_interrupt(f"prepare_dataset {_smk.wildcards.dataset}"):
        _status = run(
            str(_smk.wildcards.dataset), dict(_smk.params.settings), Path(_smk.output[0]), _log
        )
    sys.exit(_status)
elif __name__ == "__main__":
    sys.exit(main())
