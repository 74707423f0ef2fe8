"""Overlay PNGs: prediction contour in red, reference contour in green, keypoints and crop windows.

Overlays are for looking at, so a scan larger than ``max_side`` pixels (a 1459 x 1713 AS-OCT B-scan) is
drawn shrunk to it (area-averaged grey, masks by majority) and written with fast PNG compression:
drawing and encoding it at full size took longer than predicting it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from scipy import ndimage

from glsmonai.utils import atomic_write

__all__ = ["contour", "save_overlay", "to_rgb", "OVERLAY_MAX_SIDE"]

#: the longer side of an overlay PNG at most, in pixels (larger scans are drawn shrunk)
OVERLAY_MAX_SIDE = 1024

RED, GREEN, YELLOW, CYAN = (255, 40, 40), (40, 220, 40), (255, 220, 0), (0, 200, 255)


def contour(mask: np.ndarray) -> np.ndarray:
    """One-pixel inner boundary of a binary mask, ``(rows, cols)`` bool."""
    mask = np.asarray(mask) > 0
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """``(rows, cols)`` scan -> ``(rows, cols, 3)`` uint8 grey, scaled by its 0.5 and 99.5 percentiles."""
    lo, hi = np.percentile(image, [0.5, 99.5])
    grey = np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)
    return np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=-1)


def _shrink(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(rows, cols)`` -> ``shape`` by area averaging (float32)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    return F.interpolate(tensor, size=shape, mode="area")[0, 0].numpy()


def save_overlay(
    path: str | os.PathLike,
    image: np.ndarray,
    mask: np.ndarray,
    reference: np.ndarray | None = None,
    keypoints: np.ndarray | None = None,
    window_size: tuple[float, float] | None = None,
    max_side: int | None = OVERLAY_MAX_SIDE,
) -> Path:
    """Write an RGB PNG of ``image`` ``(rows, cols)`` with the contours, keypoints and windows drawn.

    ``mask`` and ``reference`` are ``(rows, cols)`` 0/1, ``keypoints`` ``(K, 2)`` ``[row, col]`` and
    ``window_size`` ``(rows, cols)`` in the image's pixels. An image whose longer side exceeds
    ``max_side`` (``None``: never) is drawn shrunk to it.
    """
    image = np.asarray(image, dtype=np.float32)
    scale = 1.0
    if max_side and max(image.shape) > max_side:
        scale = max_side / max(image.shape)
        shape = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
        image = _shrink(image, shape)
        mask = _shrink(np.asarray(mask) > 0, shape) >= 0.5
        reference = None if reference is None else _shrink(np.asarray(reference) > 0, shape) >= 0.5
    rgb = to_rgb(image)
    if reference is not None:
        rgb[contour(reference)] = GREEN
    rgb[contour(mask)] = RED
    picture = Image.fromarray(rgb)
    draw = ImageDraw.Draw(picture)
    size = max(2, round(max(rgb.shape[:2]) / 150))
    points = np.asarray(keypoints if keypoints is not None else np.zeros((0, 2)), dtype=np.float64)
    for r, c in (points + 0.5) * scale - 0.5:  # pixel centres map onto pixel centres
        if window_size is not None:
            h, w = (s * scale for s in window_size)
            draw.rectangle([c - w / 2, r - h / 2, c + w / 2, r + h / 2], outline=CYAN)
        draw.line([c - size, r, c + size, r], fill=YELLOW, width=max(1, size // 2))
        draw.line([c, r - size, c, r + size], fill=YELLOW, width=max(1, size // 2))
    return atomic_write(path, lambda tmp: picture.save(tmp, format="PNG", compress_level=1))
