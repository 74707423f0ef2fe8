"""Hand-made masks with known measures, drawn in physical coordinates on a (possibly anisotropic) grid."""

from __future__ import annotations

import numpy as np


def grid(shape: tuple[int, int], spacing: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """``(rows, cols, 2)`` physical ``[row, col]`` of every pixel centre (pixel index times spacing)."""
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    return np.stack([rr * spacing[0], cc * spacing[1]], axis=-1).astype(np.float64)


def capsule(shape, a, b, radius, spacing=(1.0, 1.0)) -> np.ndarray:
    """Pixels within ``radius`` of the segment ``a``-``b`` (a band with round ends), physical units."""
    p = grid(shape, spacing)
    a, b = np.asarray(a, float), np.asarray(b, float)
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1) <= radius


def arc_band(shape, centre, radius, half_angle, thickness) -> np.ndarray:
    """A band of ``thickness`` around the circular arc of ``radius`` about ``centre`` that bows upwards
    (angles -``half_angle`` .. ``half_angle`` from straight up), with round ends; pixels."""
    p = grid(shape)
    d = p - np.asarray(centre, float)
    phi = np.arctan2(d[..., 1], -d[..., 0])  # 0 straight up, positive to the right
    on_arc = np.abs(np.hypot(d[..., 0], d[..., 1]) - radius)
    ends = [np.asarray(centre) + radius * np.array([-np.cos(s * half_angle), np.sin(s * half_angle)]) for s in (-1, 1)]
    to_end = np.minimum(*(np.linalg.norm(p - e, axis=-1) for e in ends))
    dist = np.where(np.abs(phi) <= half_angle, on_arc, to_end)
    return dist <= thickness / 2.0


def ellipse(shape, centre, semi_rows, semi_cols, spacing=(1.0, 1.0), below: float | None = None) -> np.ndarray:
    """Pixels inside the ellipse (physical units); with ``below``, only those with row <= ``below``."""
    p = grid(shape, spacing)
    inside = ((p[..., 0] - centre[0]) / semi_rows) ** 2 + ((p[..., 1] - centre[1]) / semi_cols) ** 2 <= 1.0
    return inside & (p[..., 0] <= below) if below is not None else inside
