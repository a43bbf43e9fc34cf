"""Loading and checking the workflow configuration (``config/*.yaml``).

The schema lives in ``workflow/schemas/config.schema.yaml`` (JSON Schema, also used by
Snakemake's ``validate``). :func:`check_config` runs it with jsonschema and adds the
checks a schema cannot express (intervention epochs inside ``[0, epochs)`` and ascending,
dataset names known to the registry), raising one :class:`ConfigError` that names the key,
the bad value and what is allowed, before any job starts.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

#: The JSON schema file, relative to the repository root.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names key, value and what is allowed."""


def load_schema(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Read the config JSON schema (YAML) from ``path`` (default :data:`SCHEMA_PATH`)."""
    with open(path or SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _key(path: Any) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


def _describe(err: Any) -> str:
    key = _key(err.absolute_path)
    v = err.validator
    if v == "additionalProperties":
        allowed = sorted((err.schema.get("properties") or {}).keys())
        extra = sorted(set(err.instance) - set(allowed)) if isinstance(err.instance, dict) else []
        return f"unknown key(s) {extra} under {key}; allowed keys: {allowed} (typo?)"
    if v == "required":
        return f"{key}: {err.message}"
    if v == "enum":
        return f"{key} = {err.instance!r} is not allowed; choose one of {err.validator_value}"
    if v == "type":
        return f"{key} = {err.instance!r} has the wrong type; expected {err.validator_value}"
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        return f"{key} = {err.instance!r} violates {v} {err.validator_value}"
    if v == "pattern":
        return f"{key} = {err.instance!r} must match {err.validator_value!r}"
    if v == "uniqueItems":
        return f"{key} = {err.instance!r} has duplicate entries; list each value once"
    if v == "minItems":
        return f"{key} = {err.instance!r} needs at least {err.validator_value} item(s)"
    if v == "minProperties":
        return f"{key} needs at least {err.validator_value} entry"
    return f"{key} = {err.instance!r}: {err.message}"


def _fill_defaults(instance: Any, schema: Mapping[str, Any]) -> None:
    """Set schema ``default`` values for absent object properties, recursively."""
    if not isinstance(instance, dict):
        return
    for name, sub in (schema.get("properties") or {}).items():
        if name not in instance and "default" in sub:
            instance[name] = copy.deepcopy(sub["default"])
        if name in instance:
            _fill_defaults(instance[name], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for name, value in instance.items():
            if name not in (schema.get("properties") or {}):
                _fill_defaults(value, extra)


def check_config(config: Mapping[str, Any], *, check_datasets: bool = True) -> dict[str, Any]:
    """Validate a config and return a copy with schema defaults filled in.

    Args:
        config: the parsed YAML mapping.
        check_datasets: also check dataset names against :mod:`greenpath.data`'s registry.

    Returns:
        A deep copy of ``config`` with defaults from the schema.

    Raises:
        ConfigError: listing every problem found, one per line, each naming the key, the
            bad value and what is allowed.
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"the config must be a mapping of keys, got {type(config).__name__}")
    cfg = copy.deepcopy(dict(config))
    schema = load_schema()
    import jsonschema  # here, not at import: training jobs only need config_hash

    validator = jsonschema.Draft202012Validator(schema)
    problems = [
        _describe(e)
        for e in sorted(validator.iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if not problems:
        _fill_defaults(cfg, schema)
        epochs = cfg["training"]["epochs"]
        ks = cfg["interventions"]["epochs"]
        bad = [k for k in ks if not 0 <= k < epochs]
        if bad:
            problems.append(
                f"interventions.epochs = {ks}: {bad} outside [0, training.epochs) = [0, {epochs}); "
                "an intervention epoch k branches after k trained epochs"
            )
        if list(ks) != sorted(ks):
            problems.append(f"interventions.epochs = {ks} must be ascending, e.g. {sorted(ks)}")
        eatit = cfg.get("modeling", {}).get("eatit", {})
        if eatit.get("required") and not (eatit.get("src") and Path(eatit["src"]).is_dir()):
            problems.append(
                f"modeling.eatit.src = {eatit.get('src')!r} is not a folder, and "
                "modeling.eatit.required is true; point src at the EAT-IT CSV folder or set "
                "required: false"
            )
        if check_datasets:
            from greenpath.data import list_datasets

            known = list_datasets()
            unknown = [d for d in cfg["datasets"] if d not in known]
            if unknown:
                problems.append(f"datasets: unknown dataset(s) {unknown}; known: {known}")
            problems += _data_root_problems(cfg)
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))
    return cfg


def _data_root_problems(cfg: Mapping[str, Any]) -> list[str]:
    """A missing ``data.root`` when a dataset must be read from it and cannot be downloaded.

    The offline datasets (:data:`greenpath.data.OFFLINE_DATASETS`) need no root: they come
    from installed packages and are written under it when needed.
    """
    from greenpath.data import OFFLINE_DATASETS

    root = Path(cfg["data"]["root"])
    on_disk = [d for d in cfg["datasets"] if d not in OFFLINE_DATASETS]
    if on_disk and not cfg["data"].get("download") and not root.is_dir():
        return [
            f"data.root = {str(root)!r} does not exist, and datasets {on_disk} are read from "
            "it; create it with the dataset files (docs/datasets.md), point data.root at "
            "them, or set data.download: true where the network is"
        ]
    return []


def load_config(path: str | os.PathLike[str], *, check_datasets: bool = True) -> dict[str, Any]:
    """Read a YAML config file and :func:`check_config` it.

    Raises:
        ConfigError: the file is missing, not YAML, or invalid (names the file).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from exc
    try:
        return check_config(raw, check_datasets=check_datasets)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from exc


#: Keys of ``data`` that change what a job computes (``root``/``download`` only say where
#: the raw files come from).
DATA_COMPUTE_KEYS: tuple[str, ...] = ("image_size", "channels", "val_fraction", "seed")

#: Sections shared by every training job of a study; hashed into the first part of
#: :func:`config_hash`.
SHARED_SECTIONS: tuple[str, ...] = ("data", "model", "training", "energy")


def _digest(obj: Any, n: int) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


def config_hash(config: Mapping[str, Any]) -> str:
    """Hash of every setting that changes what a training job computes.

    Three dot-separated parts (SHA-256 of canonical JSON with sorted keys): 16 hex digits
    of the study-wide sections (:data:`SHARED_SECTIONS`; of ``data`` only
    :data:`DATA_COMPUTE_KEYS`), 8 of ``datasets`` (a job's settings hold its own dataset)
    and 8 of ``methods`` (a branch's settings hold its own method, a trunk's none). Within a
    study the first part is the same for every record, the second for every record of a
    dataset, the third for every record of a method (``greenpath.records.aggregate``
    checks this). Seeds and the intervention grid are record keys and are not hashed.

    >>> len(config_hash({"training": {"epochs": 3}}))
    34
    """
    shared = {k: config.get(k) for k in SHARED_SECTIONS}
    data = shared.get("data") or {}
    shared["data"] = {k: data.get(k) for k in DATA_COMPUTE_KEYS if k in data}
    datasets = config.get("datasets") or {}
    methods = config.get("methods") or {}
    return ".".join((_digest(shared, 16), _digest(datasets, 8), _digest(methods, 8)))


@functools.lru_cache(maxsize=1)
def _default_schema_properties() -> dict[str, Any]:
    return load_schema().get("properties") or {}


def _section_schema(name: str) -> Mapping[str, Any]:
    sub = dict(_default_schema_properties().get(name) or {})
    if name == "data":  # a job's data settings may leave out root/download
        sub.pop("required", None)
    return sub


@functools.cache
def _section_validator(name: str) -> Any:
    """A ``jsonschema.Draft202012Validator`` of one config section (jsonschema imported
    here, not at import: training jobs only need :func:`config_hash`)."""
    import jsonschema

    return jsonschema.Draft202012Validator(_section_schema(name))


def check_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a job's settings: a config-shaped mapping holding only some sections.

    Each top-level section present is checked against its part of the config schema and
    completed with that part's defaults; absent sections stay absent (the job does not
    read them). A whole config passes as well.

    Raises:
        ConfigError: every problem found, one per line (key, bad value, what is allowed).
    """
    if not isinstance(settings, Mapping):
        raise ConfigError(f"settings must be a mapping of keys, got {type(settings).__name__}")
    cfg = copy.deepcopy(dict(settings))
    problems = []
    for name, value in cfg.items():
        sub = _section_schema(name)
        if not sub:
            problems.append(f"unknown settings section {name!r}")
            continue
        for err in _section_validator(name).iter_errors(value):
            err.path.appendleft(name)
            problems.append(_describe(err))
        if not problems:
            holder = {name: value}
            _fill_defaults(holder, {"properties": {name: sub}})
            cfg[name] = holder[name]
    if problems:
        raise ConfigError("invalid settings:\n  - " + "\n  - ".join(problems))
    return cfg
