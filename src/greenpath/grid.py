"""The experiment tree of one (dataset, seed): trunk segments and branches.

The trunk is cut at every intervention epoch so that a branch waits only for the trunk
checkpoint it starts from, and no epoch is trained twice. With E epochs and
intervention epochs K (ascending, in [0, E)), the trunk segments are the consecutive pairs
of ``sorted(set(K) | {0, E})`` and each method in ``freeze``/``quant`` gets one branch per
k in K training epochs k+1..E. ``stop`` trains nothing: its path is the trunk up to k.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Methods that train a branch (``stop`` reuses the trunk).
TRAINED_METHODS: tuple[str, ...] = ("freeze", "quant")


@dataclass(frozen=True)
class Segment:
    """Trunk epochs ``start+1 .. end`` (1-based), from checkpoint ``start`` to ``end``."""

    start: int
    end: int


def trunk_segments(epochs: int, interventions: Sequence[int]) -> list[Segment]:
    """Trunk segments between consecutive boundaries ``{0} | K | {E}``.

    >>> [(s.start, s.end) for s in trunk_segments(10, [0, 3, 5, 7])]
    [(0, 3), (3, 5), (5, 7), (7, 10)]
    """
    bounds = sorted({0, epochs, *interventions})
    return [Segment(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def branches(interventions: Sequence[int], methods: Sequence[str]) -> list[tuple[str, int]]:
    """(method, k) of every trained branch, in a stable order."""
    return [(m, k) for m in methods if m in TRAINED_METHODS for k in interventions]


def stop_points(interventions: Sequence[int], methods: Sequence[str]) -> list[int]:
    """Intervention epochs at which a ``stop`` path exists (k >= 1: stopping at 0 trains nothing)."""
    return [k for k in interventions if k >= 1] if "stop" in methods else []


def epochs_needed(epochs: int, interventions: Sequence[int], methods: Sequence[str]) -> int:
    """Minimum number of epochs one (dataset, seed) tree needs: trunk + trained branches.

    >>> epochs_needed(10, [0, 3, 5, 7], ["freeze", "quant", "stop"])
    60
    """
    return epochs + sum(epochs - k for _, k in branches(interventions, methods))


def grid_summary(config: Mapping[str, Any]) -> dict[str, int]:
    """Job and epoch counts for a checked config (see ``tests/test_grid.py``)."""
    e = config["training"]["epochs"]
    ks = config["interventions"]["epochs"]
    ms = config["interventions"]["methods"]
    trees = len(config["datasets"]) * len(config["seeds"])
    return {
        "trees": trees,
        "trunk_jobs": trees * len(trunk_segments(e, ks)),
        "branch_jobs": trees * len(branches(ks, ms)),
        "epochs": trees * epochs_needed(e, ks, ms),
        "paths": trees * (1 + len(branches(ks, ms)) + len(stop_points(ks, ms))),
    }
