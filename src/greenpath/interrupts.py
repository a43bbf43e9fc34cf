"""One line, not a traceback, when a workflow job is interrupted (Ctrl-C, SIGTERM)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def job_name(smk: Any) -> str:
    """``"<rule> <wildcards>"`` of a Snakemake ``script:`` job object (as far as it has them)."""
    rule = str(getattr(smk, "rule", "") or "job")
    wildcards = getattr(smk, "wildcards", None)
    items = dict(wildcards.items()) if hasattr(wildcards, "items") else {}
    return f"{rule} {items}" if items else rule


@contextmanager
def one_line_on_interrupt(job: str) -> Iterator[None]:
    """Run the body; on Ctrl-C or SIGTERM print one line naming ``job`` and exit 130.

    Files the body writes atomically are either complete or absent; Snakemake removes a
    job's incomplete outputs, and a rerun starts the job again.

    Raises:
        SystemExit: status 130 after an interrupt.
    """
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    except KeyboardInterrupt:
        print(f"greenpath: {job} interrupted; run snakemake again to continue", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
