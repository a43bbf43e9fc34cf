"""The ``greenpath`` command line.

Subcommands (each a handler in :data:`COMMANDS`; add more by registering a parser
builder and a handler there):

- ``import-eatit --src DIR --out FILE.parquet [--trajectories TRAJ.parquet]
  [--energy nvidia|codecarbon]``
- ``fit --trajectories FILE... --predictor NAME [--held-out DATASET] --out MODEL.json``
  (``NAME`` a registered predictor or ``paper_savings``, the paper's savings model)
- ``evaluate --model MODEL.json --trajectories FILE... --out EVAL.json [--zero-accuracy 0.01]``
- ``evaluate --lodo --predictor NAME --trajectories FILE... --out EVAL.json``
- ``paths --model MODEL.json --trajectories FILE... [--models D=MODEL.json ...]
  [--paper-models D=MODEL.json ...] --objective constrained|score|weighted
  --tolerance 0.01 [--lam X] --out PATHS.json`` (calls ``greenpath.paths.run_paths``)
- ``gpus [--config FILE]``: the GPUs a run would train on (one job per GPU); one line
  when there is none
- ``train --dataset NAME --predictor MODEL.json [--objective ...] [--patience N] --out DIR``
  (a controlled run, ``greenpath.control.cli``)

Trajectories are ``trajectories.parquet`` files, as the workflow's aggregate rule writes
them; ``import-eatit --trajectories`` writes them for the EAT-IT data, as the workflow's
import_eatit rule does. fit, evaluate and paths read them and build none.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("greenpath")

#: Top-level help (plain text: argparse prints it as it is).
DESCRIPTION = (
    "greenpath: measure, predict and cut the energy of neural-network training. "
    "Import the paper's EAT-IT data, fit and evaluate predictors of accuracy and energy, "
    "choose training paths, or run one controlled training run."
)

TRAJECTORIES_HELP = (
    "trajectories Parquet file(s), e.g. results/<study>/trajectories.parquet (written by the "
    "workflow's aggregate rule or `greenpath import-eatit --trajectories`)"
)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse names the flag in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def open_fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1, e.g. 0.01."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{value} must be a fraction in (0, 1), e.g. 0.01")
    return value


def _trajectories(files: Sequence[Path]):
    from greenpath.modeling.workflow import read_trajectories

    return read_trajectories(list(files))


def _pairs(items: Sequence[str] | None, flag: str) -> dict[str, Path]:
    """``DATASET=FILE`` arguments as a dict.

    Raises:
        ValueError: an item without ``=`` (names it and the flag).
    """
    out: dict[str, Path] = {}
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"{flag}: {item!r} is not DATASET=FILE")
        d, f = item.split("=", 1)
        out[d] = Path(f)
    return out


def predictor_parameters(name: str) -> list[str]:
    """Parameter names a registered predictor's constructor takes (``**params`` excluded)."""
    from greenpath.modeling.base import get_predictor

    names: list[str] = []
    for cls in type(get_predictor(name)).__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                names.append(p.name)
    return sorted(set(names))


def _params(text: str | None, predictor: str | None = None) -> dict[str, Any]:
    """``--params`` as a dict; keys the predictor does not take are refused.

    Raises:
        ValueError: not a JSON object, or an unknown key (names the known ones).
    """
    if not text:
        return {}
    try:
        val = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--params must be a JSON object, got {text!r}: {exc}") from exc
    if not isinstance(val, dict):
        raise ValueError(f"--params must be a JSON object, got {text!r}")
    if predictor:
        known = predictor_parameters(predictor)
        unknown = sorted(set(val) - set(known))
        if unknown:
            takes = f"it takes {', '.join(known)}" if known else "it takes no parameters"
            raise ValueError(
                f"--params: predictor {predictor!r} has no parameter {unknown}; {takes}"
            )
    return val


# ----------------------------------------------------------------------- handlers
def cmd_import_eatit(a: argparse.Namespace) -> int:
    from greenpath.modeling.eatit import flag_chance_level, import_eatit
    from greenpath.records import write_records

    rows = import_eatit(a.src, energy=a.energy)
    flagged = sorted(flag_chance_level(rows))
    write_records(
        rows,
        a.out,
        metadata={"source": "eatit", "energy": a.energy, "chance_level": ",".join(flagged)},
    )
    if a.trajectories:
        from greenpath.records import build_trajectories, read_records
        from greenpath.records.aggregate import write_trajectories

        write_trajectories(build_trajectories(read_records(a.out)), a.trajectories)
        print(f"wrote every path to {a.trajectories}")
    print(
        f"wrote {len(rows)} rows to {a.out}; datasets flagged as chance level (kept, and "
        f"metrics also reported without them, docs/modeling.md): {flagged or 'none'}"
    )
    return 0


def cmd_fit(a: argparse.Namespace) -> int:
    from greenpath.modeling import paper_savings
    from greenpath.modeling.base import get_predictor
    from greenpath.modeling.evaluate import lodo_training_set
    from greenpath.modeling.io import save

    traj = _trajectories(a.trajectories)
    if a.predictor == paper_savings.NAME:
        if a.params:
            raise ValueError(f"--params: {paper_savings.NAME} takes no parameters")
        model = paper_savings.fit_paper_savings(traj, a.held_out)
        paper_savings.save(model, a.out)
    else:
        model = get_predictor(a.predictor, **_params(a.params, a.predictor)).fit(
            lodo_training_set(traj, a.held_out)
        )
        save(model, a.out)
    print(f"fitted {a.predictor} on {len(model.trained_datasets)} datasets -> {a.out}")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from greenpath.modeling.evaluate import evaluate_lodo, evaluate_model

    if a.lodo and not a.predictor:
        raise ValueError("evaluate --lodo needs --predictor NAME")
    if not a.lodo and not a.model:
        raise ValueError("evaluate needs --model MODEL.json, or --lodo --predictor NAME")
    if not a.lodo and a.params:
        raise ValueError("--params goes with --lodo --predictor NAME (a fitted model has its own)")
    params = _params(a.params, a.predictor) if a.lodo else {}
    traj = _trajectories(a.trajectories)
    if a.lodo:
        res = evaluate_lodo(traj, a.predictor, params, zero_accuracy=a.zero_accuracy)
    else:
        from greenpath.modeling.io import load

        res = evaluate_model(load(a.model), traj, zero_accuracy=a.zero_accuracy)
    from greenpath.records import write_json

    write_json(res, a.out)
    pooled = res["pooled"]["all"]["one_step"]
    if pooled.get("n"):
        p = pooled["paper"]
        print(
            f"one-step MAPE: accuracy {p['acc_mape_pct']:.2f}%, energy "
            f"{p['energy_mape_pct']:.2f}%, score {p['score_mape_pct']:.2f}% -> {a.out}"
        )
    return 0


def cmd_paths(a: argparse.Namespace) -> int:
    try:
        from greenpath.paths import run_paths  # type: ignore[attr-defined]
    except ImportError as exc:
        raise RuntimeError(f"greenpath.paths.run_paths is not available: {exc}") from exc
    res = run_paths(
        model_path=Path(a.model),
        trajectories=[Path(t) for t in a.trajectories],
        objective=a.objective,
        tolerance=a.tolerance,
        lam=a.lam,
        out=Path(a.out),
        models=_pairs(a.models, "--models") or None,
        paper_models=_pairs(a.paper_models, "--paper-models") or None,
    )
    print(f"paths ({a.objective}) -> {a.out}")
    return 0 if res is not None else 1


def cmd_gpus(a: argparse.Namespace) -> int:
    from greenpath.devices import run_gpus

    training: dict[str, Any] = {"device": "cuda"}
    if a.config:
        from greenpath.config import load_config

        training = load_config(a.config, check_datasets=False)["training"]
    gpus, inventory = run_gpus(training)
    device = training["device"]
    if not gpus:
        cpu = not str(device).startswith("cuda")
        print(f"no GPU: {f'training.device is {device!r}' if cpu else inventory.reason}")
        return 0
    print(f"{len(gpus)} GPU(s) for training.device {device!r} ({inventory.how}):")
    for g in gpus:
        mem = f"{g.memory_mib / 1024:.1f} GiB" if g.memory_mib is not None else "? GiB"
        counter = {True: "yes", False: "no", None: "?"}[g.energy_counter]
        note = f"  ({g.note})" if g.note else ""
        print(f"  cuda:{g.index}  {g.uuid}  {g.name}  {mem}  energy counter: {counter}{note}")
    return 0


# ------------------------------------------------------------------------ parsers
def _predictor_names() -> list[str]:
    from greenpath.modeling.base import available_predictors

    return available_predictors()


def _p_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("--src", type=Path, required=True, help="folder with EAT-IT CSV files")
    p.add_argument("--out", type=Path, required=True, help="records Parquet file to write")
    p.add_argument(
        "--trajectories",
        type=Path,
        help="also write every path (trunk prefix + branch) to this trajectories Parquet "
        "file, what fit, evaluate and paths read",
    )
    p.add_argument(
        "--energy",
        choices=["nvidia", "codecarbon"],
        default="nvidia",
        help="energy column: nvidia (the paper's nvidia-smi integration) or codecarbon "
        "(default: %(default)s)",
    )


def _p_fit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trajectories", type=Path, nargs="+", required=True, help=TRAJECTORIES_HELP)
    p.add_argument(
        "--predictor",
        required=True,
        choices=[*_predictor_names(), "paper_savings"],
        help="predictor to fit, or paper_savings (the model of the paper's savings "
        "simulation, for `paths --paper-models`)",
    )
    p.add_argument(
        "--held-out",
        metavar="DATASET",
        help="leave this dataset out (leave-one-dataset-out; default: fit on every dataset)",
    )
    p.add_argument(
        "--params",
        help='predictor parameters as a JSON object, e.g. \'{"acc_model": "ols"}\'; '
        "unknown keys are refused",
    )
    p.add_argument("--out", type=Path, required=True, help="model JSON to write")


def _p_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, help="model JSON from `greenpath fit`")
    p.add_argument("--trajectories", type=Path, nargs="+", required=True, help=TRAJECTORIES_HELP)
    p.add_argument("--lodo", action="store_true", help="leave-one-dataset-out refits")
    p.add_argument("--predictor", choices=_predictor_names(), help="predictor (with --lodo)")
    p.add_argument(
        "--params",
        help="predictor parameters as a JSON object (with --lodo); unknown keys are refused",
    )
    p.add_argument(
        "--zero-accuracy",
        type=open_fraction,
        metavar="FRACTION",
        help="read validation accuracies of exactly 0 as FRACTION (fitting inputs, histories "
        "and truth); the authors' analysis does this with 0.01 (their all_data.csv has 0.01 "
        "where history.csv has 0), so 0.01 reproduces the paper's score MAPE on EAT-IT "
        "(default: keep zeros)",
    )
    p.add_argument("--out", type=Path, required=True, help="evaluation JSON to write")


def _p_paths(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True, help="model JSON from `greenpath fit`")
    p.add_argument("--trajectories", type=Path, nargs="+", required=True, help=TRAJECTORIES_HELP)
    p.add_argument(
        "--models",
        nargs="*",
        metavar="DATASET=MODEL.json",
        help="the planner's predictor fitted without DATASET (`fit --held-out DATASET`); "
        "datasets without one use --model",
    )
    p.add_argument(
        "--paper-models",
        nargs="*",
        metavar="DATASET=MODEL.json",
        help="the paper's savings model fitted without DATASET (`fit --predictor "
        "paper_savings --held-out DATASET`), one per dataset; without them the paper's "
        "method is skipped",
    )
    p.add_argument(
        "--objective", choices=["constrained", "score", "weighted"], default="constrained"
    )
    p.add_argument("--tolerance", type=float, default=0.01, help="accuracy tolerance (fraction)")
    p.add_argument(
        "--lam", type=float, default=None, help="lambda of the weighted objective (per kWh)"
    )
    p.add_argument("--out", type=Path, required=True, help="paths JSON to write")


def _p_gpus(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        help="workflow config: its training.device and training.gpus (default: device cuda, "
        "every visible GPU)",
    )


#: subcommand -> (parser builder, handler, help)
COMMANDS: dict[
    str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]
] = {
    "import-eatit": (_p_import, cmd_import_eatit, "import the paper's EAT-IT CSV files"),
    "fit": (_p_fit, cmd_fit, "fit a predictor on trajectories and save it as JSON"),
    "evaluate": (_p_evaluate, cmd_evaluate, "evaluate a model (or leave-one-dataset-out)"),
    "paths": (_p_paths, cmd_paths, "choose training paths with a fitted model"),
    "gpus": (_p_gpus, cmd_gpus, "list the GPUs a run would use (one training job per GPU)"),
    "train": (  # greenpath.control.cli, imported only when used (it pulls in torch)
        lambda p: importlib.import_module("greenpath.control.cli").add_train_parser(p),
        lambda a: importlib.import_module("greenpath.control.cli").cmd_train(a),
        "one controlled training run (energy-aware controller, patience)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with every subcommand of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="greenpath", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (build, handler, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        build(p)
        p.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``greenpath`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from greenpath.records import RecordsError

    try:
        return int(args.handler(args))
    except (ValueError, FileNotFoundError, RuntimeError, RecordsError) as exc:
        print(f"greenpath {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
