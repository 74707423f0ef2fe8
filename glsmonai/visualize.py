"""Overlay PNGs: prediction contour in red, reference contour in green, keypoints and crop windows."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from glsmonai.utils import atomic_write

__all__ = ["contour", "save_overlay", "to_rgb"]

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


def save_overlay(
    path: str | os.PathLike,
    image: np.ndarray,
    mask: np.ndarray,
    reference: np.ndarray | None = None,
    keypoints: np.ndarray | None = None,
    window_size: tuple[float, float] | None = None,
) -> Path:
    """Write an RGB PNG of ``image`` ``(rows, cols)`` with the contours, keypoints and windows drawn."""
    rgb = to_rgb(np.asarray(image, dtype=np.float32))
    if reference is not None:
        rgb[contour(reference)] = GREEN
    rgb[contour(mask)] = RED
    picture = Image.fromarray(rgb)
    draw = ImageDraw.Draw(picture)
    size = max(2, round(max(rgb.shape[:2]) / 150))
    for k, (r, c) in enumerate(np.asarray(keypoints if keypoints is not None else np.zeros((0, 2)))):
        if window_size is not None:
            h, w = window_size
            draw.rectangle([c - w / 2, r - h / 2, c + w / 2, r + h / 2], outline=CYAN)
        draw.line([c - size, r, c + size, r], fill=YELLOW, width=max(1, size // 2))
        draw.line([c, r - size, c, r + size], fill=YELLOW, width=max(1, size // 2))
    return atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))
