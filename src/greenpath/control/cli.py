"""``greenpath train``: one controlled training run outside the grid.

Registered in :data:`greenpath.cli.COMMANDS` by ``add_train_parser`` / ``cmd_train``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from greenpath.cli import positive_int


def add_train_parser(p: argparse.ArgumentParser) -> None:
    """Options of ``greenpath train``."""
    p.add_argument(
        "--config",
        type=Path,
        default=Path("config/config.yaml"),
        help="workflow config to take data, model and training settings from (default: %(default)s)",
    )
    p.add_argument("--dataset", required=True, help="a dataset of the config, e.g. digits")
    p.add_argument(
        "--dataset-path", type=Path, help="prepared .npz (default <results>/data/<dataset>.npz)"
    )
    p.add_argument(
        "--epochs", type=positive_int, help="epochs of the full run, >= 1 (default training.epochs)"
    )
    p.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    p.add_argument(
        "--model",
        choices=["small_cnn", "vgg16_head"],
        help="CNN architecture to train (default: model.name of the config); not the predictor",
    )
    p.add_argument("--predictor", type=Path, help="fitted predictor JSON (`greenpath fit`)")
    p.add_argument(
        "--objective", choices=["constrained", "weighted", "score"], default="constrained"
    )
    p.add_argument("--tolerance", type=float, default=0.01, help="accuracy tolerance (fraction)")
    p.add_argument("--lam", type=float, help="weighted objective: accuracy per kWh")
    p.add_argument(
        "--decision-epochs",
        help="epochs where a switch to freeze/quant may start, comma-separated, e.g. 0,3,5,7 "
        "(default: 0 + interventions.epochs); stopping is decided after every epoch",
    )
    p.add_argument(
        "--actions",
        default="freeze,quant,stop",
        help="comma-separated actions the controller may take, from freeze, quant, stop "
        "(default: %(default)s)",
    )
    p.add_argument("--margin-z", type=float, default=0.0, help="safety margin: sigma multiple")
    p.add_argument("--margin-delta", type=float, default=0.0, help="safety margin: accuracy")
    p.add_argument(
        "--cold-start",
        action="store_true",
        help="allow a commitment at epoch 0, before any epoch has run; off by default, as in "
        "the planner, because forecasts without history rest on other datasets only "
        "(docs/paths.md)",
    )
    p.add_argument(
        "--patience", type=positive_int, help="patience early stopping on val accuracy, >= 1"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")


def cmd_train(a: argparse.Namespace) -> int:
    """Run :func:`greenpath.control.run.train_controlled` and print its summary."""
    from greenpath.config import load_config
    from greenpath.control import Controller, train_controlled
    from greenpath.paths import Margin

    cfg = load_config(a.config, check_datasets=False)
    if a.dataset not in cfg["datasets"]:
        raise ValueError(
            f"dataset {a.dataset!r} is not in {a.config}; choose one of {list(cfg['datasets'])}"
        )
    if a.model:
        cfg = {**cfg, "model": {**cfg["model"], "name": a.model}}
    E = int(a.epochs or cfg["training"]["epochs"])
    ds_path = a.dataset_path or Path("results") / "data" / f"{a.dataset}.npz"
    if not Path(ds_path).is_file():
        raise FileNotFoundError(
            f"prepared dataset {ds_path} not found; run `snakemake {ds_path}` or pass --dataset-path"
        )
    if a.decision_epochs:
        try:
            dec = [int(x) for x in a.decision_epochs.split(",") if x.strip()]
        except ValueError as exc:
            raise ValueError(
                f"--decision-epochs {a.decision_epochs!r}: use integers like 0,3,5,7"
            ) from exc
    else:
        dec = sorted({0, *[int(k) for k in cfg["interventions"]["epochs"] if int(k) < E]})
    ctl = None
    if a.predictor is not None:
        from greenpath.data import load_prepared

        prepared = load_prepared(Path(ds_path))
        # Descriptors for decisions before any epoch ran (cold-start forecasts use them).
        info = {
            "num_classes": prepared.num_classes,
            "train_size": prepared.train_size,
            "val_size": prepared.val_size,
            "image_size": prepared.image_size,
        }
        ctl = Controller(
            a.predictor,
            last_epoch=E,
            decision_epochs=dec,
            objective=a.objective,
            tolerance=a.tolerance,
            lam=a.lam,
            margin=Margin(a.margin_z, a.margin_delta, cold_start=a.cold_start),
            methods=tuple(x for x in a.actions.split(",") if x),
            dataset_info=info,
        )
    elif a.patience is None:
        raise ValueError("greenpath train needs --predictor MODEL.json and/or --patience N")
    import torch

    # The workflow's jobs train with training.num_threads intra-op threads; so does this run.
    # More threads than free cores make them spin while waiting for each other, and the CPU
    # time (and the estimate charging it) then follows the machine's load.
    torch.set_num_threads(int(cfg["training"].get("num_threads", 1)))
    res = train_controlled(cfg, dataset=a.dataset, dataset_path=Path(ds_path), seed=a.seed,
                           out_dir=a.out, controller=ctl, patience=a.patience, epochs=E)  # fmt: skip
    print(res.summary())
    print(
        f"records: {res.records_path}"
        + (f"; decisions: {res.decisions_path}" if res.decisions_path else "")
    )
    return 0
