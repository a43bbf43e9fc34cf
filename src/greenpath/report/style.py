"""One plotting style for every report figure: Agg backend, Okabe-Ito colours, units.

Colours come from the Okabe-Ito palette (Okabe & Ito, "Color Universal Design", 2008),
which stays distinguishable under the common colour-vision deficiencies. Each training
method and each energy component keeps the same colour in every figure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

#: Okabe-Ito palette (hex), in the authors' order.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: Colour of each training method (the trunk is black: it is the reference).
METHOD_COLORS: dict[str, str] = {
    "base": OKABE_ITO["black"],
    "freeze": OKABE_ITO["blue"],
    "quant": OKABE_ITO["vermillion"],
    "stop": OKABE_ITO["bluish_green"],
}

#: Human-readable method names used in legends.
METHOD_LABELS: dict[str, str] = {
    "base": "trunk (base)",
    "freeze": "layer freezing",
    "quant": "mixed precision",
    "stop": "early stopping",
}

#: Colour of each energy component.
COMPONENT_COLORS: dict[str, str] = {
    "gpu": OKABE_ITO["orange"],
    "cpu": OKABE_ITO["sky_blue"],
    "dram": OKABE_ITO["reddish_purple"],
}

#: Colours cycled for predictors / strategies (no black: black marks references).
SERIES_COLORS: tuple[str, ...] = (
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["orange"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["yellow"],
)

#: Hatch pattern that marks modelled (estimated) energy, never measured.
ESTIMATE_HATCH: str = "///"

#: Joules per kilowatt-hour (exact); kWh are for display only.
J_PER_KWH: float = 3.6e6

#: Matplotlib rc settings shared by every figure.
RC: dict[str, object] = {
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "lines.linewidth": 1.4,
    "figure.constrained_layout.use": True,
    # tick labels carry the whole value: no "1e-5" or "+1.4e2" offset text at the axis end
    "axes.formatter.useoffset": False,
    "axes.formatter.limits": (-9, 9),
}


@contextmanager
def style() -> Iterator[None]:
    """Context in which figures get the report style (rc settings of :data:`RC`)."""
    with plt.rc_context(RC):
        yield


def method_color(method: str) -> str:
    """Colour of a method; unknown methods get grey."""
    return METHOD_COLORS.get(method, "#7F7F7F")


def series_color(i: int) -> str:
    """The i-th colour of :data:`SERIES_COLORS` (cycled)."""
    return SERIES_COLORS[i % len(SERIES_COLORS)]


#: Largest energy (J) shown in kJ; above it energies are shown in kWh (0.1 kWh and up).
KJ_LIMIT_J: float = 0.1 * J_PER_KWH


def energy_scale(max_j: float) -> tuple[float, str]:
    """Display divisor and unit for energies up to ``max_j`` joules.

    J below 1 kJ, kJ up to :data:`KJ_LIMIT_J` (0.1 kWh), kWh above: tick labels stay
    between about 1 and 1000, so no axis needs an offset or a power of ten.
    """
    if max_j >= KJ_LIMIT_J:
        return J_PER_KWH, "kWh"
    if max_j >= 1e3:
        return 1e3, "kJ"
    return 1.0, "J"


def save_figure(fig: Figure, path: str | os.PathLike[str], *, close: bool = True) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix: .png, .svg, .pdf), atomically.

    The figure is written to a temporary name in the same directory and renamed, so a
    report never embeds a half-written image. Parent directories are created.

    Raises:
        ValueError: the suffix is not one matplotlib can write.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in {"png", "svg", "pdf"}:
        raise ValueError(f"figure path {path} must end in .png, .svg or .pdf")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, format=fmt, dpi=RC["savefig.dpi"], facecolor="white")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
        if close:
            plt.close(fig)
    return path
