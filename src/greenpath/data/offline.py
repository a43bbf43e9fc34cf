"""The offline datasets of the default config: digits, lfw_faces, fashion_mnist, font_digits.

None of them needs the network: ``digits`` ships with scikit-learn, ``lfw_faces`` with
scikit-image, ``fashion_mnist`` with Debian's package ``dataset-fashion-mnist`` and
``font_digits`` is rendered from the TrueType fonts that ship with matplotlib.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from greenpath.data.base import RawDataset, RawSplit
from greenpath.data.errors import DataError
from greenpath.data.integrity import check_idx, verify_files
from greenpath.data.prepared import _default_mode
from greenpath.data.splits import STREAM_SYNTH, rng_for

# --------------------------------------------------------------------------- digits


def load_digits_raw(data_root: Path, download: bool, options: dict[str, Any]) -> RawDataset:
    """scikit-learn's ``load_digits``: 1797 images 8x8, grey levels 0..16, 10 classes.

    Grey levels are scaled to 0..255 by ``round(v * 255 / 16)``. No official split.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    return RawDataset(
        train=RawSplit(labels, lambda i: images[i]),
        val=None,
        class_names=[str(c) for c in bunch.target_names],
        source="sklearn.datasets.load_digits",
    )


# --------------------------------------------------------------------------- lfw_faces

LFW_CLASSES = ["face", "non_face"]


def load_lfw_faces_raw(data_root: Path, download: bool, options: dict[str, Any]) -> RawDataset:
    """scikit-image's ``data.lfw_subset()``: 200 images 25x25.

    skimage's docstring: "100 first images are faces and subsequent 100 are non-faces",
    so labels are 0 (face) for rows 0..99 and 1 (non_face) for rows 100..199. The
    float [0, 1] pixels become ``round(255 * x)``. No official split.
    """
    from skimage import data as skdata

    try:
        faces = skdata.lfw_subset()
    except Exception as exc:  # pooch/network errors differ between versions
        raise DataError(
            f"Dataset 'lfw_faces': scikit-image could not provide lfw_subset ({exc}). "
            "It ships inside the scikit-image wheel; reinstall scikit-image "
            "(pip install --force-reinstall scikit-image) or drop lfw_faces from the config."
        ) from exc
    images = np.rint(np.clip(faces, 0.0, 1.0) * 255.0).astype(np.uint8)
    half = images.shape[0] // 2
    labels = np.repeat(np.arange(2, dtype=np.int64), [half, images.shape[0] - half])
    return RawDataset(
        train=RawSplit(labels, lambda i: images[i]),
        val=None,
        class_names=list(LFW_CLASSES),
        source="skimage.data.lfw_subset",
    )


# --------------------------------------------------------------------------- fashion_mnist

FASHION_MNIST_DEBIAN_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FASHION_MNIST_INSTALL = f"apt-get install -y {FASHION_MNIST_DEBIAN_PACKAGE}"


def fashion_mnist_raw_dir(data_root: Path) -> Path:
    """torchvision's raw folder for FashionMNIST: ``<data_root>/FashionMNIST/raw``."""
    return Path(data_root) / "FashionMNIST" / "raw"


def _fashion_gz_md5() -> dict[str, str]:
    from torchvision.datasets import FashionMNIST

    return {name: md5 for name, md5 in FashionMNIST.resources}


def _gunzip_atomic(src: Path, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _default_mode())
        with gzip.open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def ensure_fashion_mnist_raw(data_root: Path, debian_dir: Path | None = None) -> Path:
    """Make ``<data_root>/FashionMNIST/raw`` hold the four uncompressed IDX files.

    Sources, in order: the uncompressed files already there; ``*.gz`` files in that folder
    (torchvision's download layout; MD5 checked against ``FashionMNIST.resources``); the
    Debian package's files in ``debian_dir`` (default :data:`FASHION_MNIST_DEBIAN_DIR`;
    their MD5 differs from upstream because Debian recompresses, so they are checked as
    complete gzip streams and valid IDX files instead). Bad files in the data root are
    quarantined (see :mod:`greenpath.data.integrity`).

    Returns:
        The raw folder.

    Raises:
        DataError: files missing or corrupt; the message gives the exact
            ``apt-get install`` command and how to drop the dataset from the config.
    """
    debian_dir = FASHION_MNIST_DEBIAN_DIR if debian_dir is None else Path(debian_dir)
    raw = fashion_mnist_raw_dir(data_root)
    fix = (
        f"Install the Debian package: `sudo {FASHION_MNIST_INSTALL}` (files land in {debian_dir}), "
        f"or copy the four *-ubyte.gz files of Fashion-MNIST into {raw}, "
        "or remove `fashion_mnist` from `datasets:` in the config."
    )
    # 1. uncompressed files already present: check their IDX structure.
    present = [raw / n for n in FASHION_MNIST_FILES if (raw / n).is_file()]
    verify_files("fashion_mnist", data_root, {p: None for p in present}, fix)
    missing = [n for n in FASHION_MNIST_FILES if not (raw / n).is_file()]
    if not missing:
        return raw
    md5 = _fashion_gz_md5()
    # 2. gz files in the raw folder (user copies / earlier torchvision downloads).
    local = {raw / f"{n}.gz": md5.get(f"{n}.gz") for n in missing if (raw / f"{n}.gz").is_file()}
    verify_files("fashion_mnist", data_root, local, fix)
    # 3. Debian's copies.
    debian = {debian_dir / f"{n}.gz": None for n in missing if (raw / f"{n}.gz") not in local}
    absent = [p for p in debian if not p.is_file()]
    if absent:
        raise DataError(
            f"Dataset 'fashion_mnist' not found: data root {Path(data_root).resolve()} lacks "
            f"{', '.join(str(raw / n) for n in missing)} and the Debian package "
            f"{FASHION_MNIST_DEBIAN_PACKAGE!r} is not installed (missing "
            f"{', '.join(str(p) for p in absent)}). {fix}"
        )
    verify_files(
        "fashion_mnist",
        data_root,
        debian,
        f"Reinstall the package: `sudo apt-get install --reinstall -y {FASHION_MNIST_DEBIAN_PACKAGE}`.",
        movable=False,
    )
    raw.mkdir(parents=True, exist_ok=True)
    for name in missing:
        src = raw / f"{name}.gz" if (raw / f"{name}.gz") in local else debian_dir / f"{name}.gz"
        _gunzip_atomic(src, raw / name)
        problem = check_idx(raw / name)
        if problem:
            (raw / name).unlink()
            raise DataError(
                f"Dataset 'fashion_mnist': {src} decompresses to a bad IDX file: {problem}. {fix}"
            )
    return raw


def load_fashion_mnist_raw(data_root: Path, download: bool, options: dict[str, Any]) -> RawDataset:
    """Fashion-MNIST (70 000 images 28x28 grey, 10 classes) via torchvision's FashionMNIST.

    Raw files come from :func:`ensure_fashion_mnist_raw` (no network); only when they are
    absent everywhere and ``download`` is true does torchvision download them. Official
    split: train (60 000) / test (10 000, used as validation).
    """
    from torchvision.datasets import FashionMNIST

    raw = fashion_mnist_raw_dir(data_root)
    had_local = all((raw / n).is_file() or (raw / f"{n}.gz").is_file() for n in FASHION_MNIST_FILES)
    try:
        ensure_fashion_mnist_raw(data_root)
        source = (
            "torchvision.datasets.FashionMNIST"
            if had_local
            else f"debian:{FASHION_MNIST_DEBIAN_PACKAGE}"
        )
        use_download = False
    except DataError as exc:
        if not download or "corrupt" in str(exc):
            raise
        source, use_download = "torchvision.datasets.FashionMNIST (downloaded)", True
    try:
        train = FashionMNIST(str(data_root), train=True, download=use_download)
        test = FashionMNIST(str(data_root), train=False, download=use_download)
    except Exception as exc:
        raise DataError(
            f"Dataset 'fashion_mnist': torchvision could not load {raw} ({exc}). "
            f"Install `{FASHION_MNIST_DEBIAN_PACKAGE}` (sudo {FASHION_MNIST_INSTALL}) or remove "
            "`fashion_mnist` from the config."
        ) from exc
    xtr, xte = train.data.numpy(), test.data.numpy()
    return RawDataset(
        train=RawSplit(train.targets.numpy().astype(np.int64), lambda i: xtr[i]),
        val=RawSplit(test.targets.numpy().astype(np.int64), lambda i: xte[i]),
        class_names=list(FashionMNIST.classes),
        source=source,
    )


# --------------------------------------------------------------------------- font_digits

# Fonts from matplotlib's mpl-data/fonts/ttf that contain the ten digit glyphs. Symbol
# fonts (cmex10, cmsy10, cmmi10, STIXSiz*, STIXNonUni*), the reduced "Display" fonts and
# LastResortHE (placeholder glyphs only) are left out.
FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
    "cmr10.ttf",
    "cmb10.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
    "cmti10.ttf",
)
FONT_CANVAS = 64  # render size in pixels before jitter and resizing
FONT_DEFAULTS = {
    "per_class": 150,
    "max_rotation_deg": 15.0,
    "scale_range": (0.75, 1.05),
    "max_shift_frac": 0.1,
    "noise_std": 12.0,
}


def matplotlib_fonts() -> list[Path]:
    """The digit-capable TrueType fonts that ship with matplotlib, in a fixed order."""
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = [ttf / f for f in FONT_FILES if (ttf / f).is_file()]
    if not fonts:
        raise DataError(
            f"Dataset 'font_digits': no TrueType fonts found in {ttf}; "
            "reinstall matplotlib or drop font_digits from the config."
        )
    return fonts


def render_digit(
    digit: int,
    font: ImageFont.FreeTypeFont,
    rng: np.random.Generator,
    *,
    max_rotation_deg: float,
    scale_range: tuple[float, float],
    max_shift_frac: float,
    noise_std: float,
) -> np.ndarray:
    """Render one digit: light glyph on a dark background with affine jitter and noise.

    The glyph is centred on a 64x64 canvas, then rotated by U(-max_rotation_deg,
    +max_rotation_deg) degrees, scaled by U(scale_range), shifted by U(+-max_shift_frac *
    64) pixels in x and y (one bilinear affine warp), and Gaussian noise with standard
    deviation ``noise_std`` grey levels is added. Foreground and background levels are
    drawn from U(170, 255) and U(0, 60).

    Returns:
        uint8 (64, 64) array.
    """
    size = FONT_CANVAS
    bg = int(rng.integers(0, 61))
    fg = int(rng.integers(170, 256))
    canvas = Image.new("L", (size, size), color=bg)
    draw = ImageDraw.Draw(canvas)
    draw.text((size / 2, size / 2), str(digit), fill=fg, font=font, anchor="mm")
    angle = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg))
    scale = rng.uniform(*scale_range)
    dx, dy = rng.uniform(-max_shift_frac, max_shift_frac, size=2) * size
    # Inverse map output -> input for Image.transform: x_in = A^-1 (x_out - c - t) + c.
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    c = size / 2
    a, b = cos, sin
    d, e = -sin, cos
    tx, ty = c + dx, c + dy
    coeffs = (a, b, c - a * tx - b * ty, d, e, c - d * tx - e * ty)
    warped = canvas.transform((size, size), Image.AFFINE, coeffs, Image.BILINEAR, fillcolor=bg)
    arr = np.asarray(warped, dtype=np.float64)
    arr = arr + rng.normal(0.0, noise_std, size=arr.shape)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def load_font_digits_raw(data_root: Path, download: bool, options: dict[str, Any]) -> RawDataset:
    """Synthetic digits 0-9 rendered from matplotlib's fonts (``synthetic=True``).

    ``per_class`` images per digit (default 150), cycling through :data:`FONT_FILES`;
    jitter parameters come from :data:`FONT_DEFAULTS` and may be overridden in
    ``options``. Deterministic for ``options["seed"]``. No official split.
    """
    params = {**FONT_DEFAULTS, **{k: v for k, v in options.items() if k in FONT_DEFAULTS}}
    per_class = int(params.pop("per_class"))
    if per_class < 2:
        raise DataError(f"Dataset 'font_digits': per_class must be >= 2, got {per_class}.")
    seed = int(options.get("seed", 0))
    rng = rng_for(seed, STREAM_SYNTH)
    font_paths = matplotlib_fonts()
    fonts = [ImageFont.truetype(str(p), size=44) for p in font_paths]
    images = np.empty((10 * per_class, FONT_CANVAS, FONT_CANVAS), dtype=np.uint8)
    labels = np.repeat(np.arange(10, dtype=np.int64), per_class)
    for row, digit in enumerate(labels):
        font = fonts[(row % per_class) % len(fonts)]  # each class cycles through all fonts
        images[row] = render_digit(int(digit), font, rng, **params)
    return RawDataset(
        train=RawSplit(labels, lambda i: images[i]),
        val=None,
        class_names=[str(d) for d in range(10)],
        source="synthetic:matplotlib-fonts",
        synthetic=True,
        info={"fonts": [p.name for p in font_paths], "per_class": per_class},
    )
