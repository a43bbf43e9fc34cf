"""Save and load fitted predictors as JSON (never pickle).

File layout (one JSON object)::

    {"format": "greenpath-predictor", "format_version": 1,
     "name": ..., "params": {...}, "trained_datasets": [...], "state": {...}}

LightGBM boosters are embedded in ``state`` as LightGBM's own text model format
(``Booster.model_to_string``), so a file can be inspected and loaded without executing
anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from greenpath.modeling.base import Predictor, predictor_class
from greenpath.records.io import write_json

FORMAT = "greenpath-predictor"
FORMAT_VERSION = 1


def save(predictor: Predictor, path: str | os.PathLike[str]) -> Path:
    """Write a fitted predictor to ``path`` (atomically). Returns the path.

    Raises:
        RuntimeError: the predictor is not fitted.
    """
    doc: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION}
    doc.update(predictor.to_json())
    return write_json(doc, path)


def load(path: str | os.PathLike[str]) -> Predictor:
    """Read a predictor written by :func:`save`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a greenpath predictor file, or another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}; create it with `greenpath fit`")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not a greenpath predictor file (format {FORMAT!r})")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has format version {doc.get('format_version')}, this greenpath reads "
            f"{FORMAT_VERSION}; refit it with `greenpath fit`"
        )
    return predictor_class(doc["name"]).from_json(doc)
