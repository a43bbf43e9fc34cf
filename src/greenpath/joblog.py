"""A job's log file: where its log lines and, when it fails, its error go.

Each workflow rule names a ``log:`` file; a script that only configured logging would leave
it empty when it raises, because the traceback goes to Snakemake's own output. Scripts wrap
their work in :func:`job_log`::

    with job_log(snakemake.log[0] if snakemake.log else None):
        main(...)

Log lines (INFO and above) go to stderr and, when a file is given, are appended to it; an
exception leaving the block is written there with its traceback and raised again, so the
job still fails.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Line format of job logs.
LOG_FORMAT: str = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger("greenpath.job")


def setup_job_logging(log_file: str | os.PathLike[str] | None, level: int = logging.INFO) -> None:
    """Send log records of ``level`` and above to stderr and, if given, to ``log_file``
    (appended; parent directories are created). Replaces earlier root handlers."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="a", encoding="utf-8"))
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)


@contextmanager
def job_log(log_file: str | os.PathLike[str] | None, level: int = logging.INFO) -> Iterator[None]:
    """Log to ``log_file`` inside the block; an exception is logged with its traceback, then
    re-raised (the job still fails).

    Raises:
        Whatever the block raises, unchanged.
    """
    setup_job_logging(log_file, level)
    try:
        yield
    except BaseException as exc:
        # an interrupt is not an error: the caller prints its one line
        interrupted = isinstance(exc, KeyboardInterrupt)
        if not interrupted and (not isinstance(exc, SystemExit) or exc.code not in (0, None)):
            log.error("job failed: %s: %s", type(exc).__name__, exc, exc_info=True)
        raise
    finally:
        for h in logging.getLogger().handlers:
            h.flush()
