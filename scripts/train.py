"""Training entry point for Snakemake ``script:`` rules and the command line.

The workflow's training rules start jobs with the lean ``python -m greenpath.training.job``
(see that module for the command line, which this script's ``main`` shares with
``--config FILE``). This script remains for a ``script: "../../scripts/train.py"`` rule,
with ``params.role`` one of ``init``/``trunk``/``branch``; the values are read from
(first found wins):

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
settings            ``params.settings`` (config-shaped, already checked) if given, else
                    ``snakemake.config`` (checked with ``greenpath.config.check_config``)
log                 ``log[0]`` (optional): all log lines go there
=================== ==================================================================
"""

import signal
import sys
from typing import Any

from greenpath.training.job import on_sigterm, parse_settings, run, setup_logging
from greenpath.training.job import run_here as main


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
    setup_logging(str(smk.log[0]) if len(smk.log) else None)
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
    settings = pick("settings", sources=(p,))
    role = str(pick("role", sources=(p,)))
    if settings is not None:
        parsed = parse_settings(settings) if isinstance(settings, str) else dict(settings)
        run(role, parsed, values, check=False)
    else:
        run(role, dict(smk.config), values, check=True)


__all__ = ["main"]

if __name__ == "__main__" or "snakemake" in globals():
    signal.signal(signal.SIGTERM, on_sigterm)
    if "snakemake" in globals():
        _from_snakemake(snakemake)  # type: ignore[name-defined]  # noqa: F821
    else:
        sys.exit(main())
