"""Install or explain the system packages the configured datasets need (run by ``make run``).

Fashion-MNIST for the default config comes from Debian's package ``dataset-fashion-mnist``
(files under ``/usr/share/datasets/fashion-mnist``). As root with apt-get available it is
installed; otherwise this stops before any job with the exact command to run, or how to
drop the dataset from the config.

Usage: ``python -m greenpath.system_deps --config config/config.yaml``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

#: dataset name -> (Debian package, directory it installs, files expected there)
DEBIAN_DATASETS: dict[str, tuple[str, Path, tuple[str, ...]]] = {
    "fashion_mnist": (
        "dataset-fashion-mnist",
        Path("/usr/share/datasets/fashion-mnist"),
        (
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ),
    ),
}


def missing_packages(datasets: list[str]) -> list[tuple[str, str]]:
    """(dataset, Debian package) pairs whose files are not on this machine."""
    out = []
    for name in datasets:
        if name in DEBIAN_DATASETS:
            pkg, folder, files = DEBIAN_DATASETS[name]
            if not all((folder / f).is_file() for f in files):
                out.append((name, pkg))
    return out


def ensure(config_path: str | os.PathLike[str]) -> int:
    """Install missing Debian dataset packages (as root) or explain; return an exit code."""
    with open(config_path, encoding="utf-8") as fh:
        config = yaml.safe_load(fh) or {}
    missing = missing_packages(list((config.get("datasets") or {}).keys()))
    if not missing:
        return 0
    pkgs = sorted({p for _, p in missing})
    names = sorted({d for d, _ in missing})
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing Debian package(s) {pkgs} for dataset(s) {names}", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *pkgs], check=True, env=env)
        return 0
    print(
        f"dataset(s) {names} need the Debian package(s) {pkgs}, which are not installed.\n"
        f"  Install:  sudo apt-get install {' '.join(pkgs)}\n"
        f"  or remove {names} from 'datasets:' in {config_path}.",
        file=sys.stderr,
    )
    return 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/config.yaml")
    return ensure(ap.parse_args(argv).config)


if __name__ == "__main__":
    sys.exit(main())
