"""Image decoding, channel conversion and resizing to uint8 arrays.

Every image goes through Pillow: converted to ``"L"`` (channels=1) or ``"RGB"``
(channels=3), then resized to ``image_size x image_size`` with ``Image.BILINEAR``.
Pillow's resize widens the filter support when downscaling, so bilinear downscaling is
antialiased (Pillow handbook, "Filters"). Greyscale -> RGB repeats the grey value in all
three channels; RGB -> grey uses Pillow's ITU-R 601-2 luma
``L = R * 299/1000 + G * 587/1000 + B * 114/1000``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

_MODE = {1: "L", 3: "RGB"}


def to_pil(image: Image.Image | np.ndarray) -> Image.Image:
    """A Pillow image from a Pillow image or a uint8 (H, W) / (H, W, 1|3) array."""
    if isinstance(image, Image.Image):
        return image
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"expected uint8 image array, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return Image.fromarray(arr)


def convert_image(image: Image.Image | np.ndarray, image_size: int, channels: int) -> np.ndarray:
    """Convert one image to uint8 (image_size, image_size, channels).

    Raises:
        ValueError: channels not in {1, 3} or image_size < 1.
    """
    if channels not in _MODE:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    img = to_pil(image)
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")  # palette, RGBA, CMYK, 16-bit...: go through RGB first
    img = img.convert(_MODE[channels])
    if img.size != (image_size, image_size):
        img = img.resize((image_size, image_size), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def convert_many(
    image_at: Callable[[int], Image.Image | np.ndarray],
    indices: Sequence[int] | np.ndarray,
    image_size: int,
    channels: int,
) -> np.ndarray:
    """Decode and convert ``image_at(i)`` for every i in ``indices``.

    Returns:
        uint8 (len(indices), image_size, image_size, channels).
    """
    out = np.empty((len(indices), image_size, image_size, channels), dtype=np.uint8)
    for row, i in enumerate(indices):
        img = image_at(int(i))
        out[row] = convert_image(img, image_size, channels)
        if isinstance(img, Image.Image):
            img.close()
    return out
