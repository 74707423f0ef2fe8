"""Plane geometry shared by the measures: outlines of masks, physical coordinates, lines and chords.

Points are ``(N, 2)`` float arrays. A mask's outline and its keypoints come in pixel-index ``[row,
col]`` coordinates (pixel centres at integer positions); :func:`to_physical` multiplies them by the
pixel spacing ``(row mm, col mm)`` so that every length, angle and perpendicular is taken in the
physical plane (anisotropic pixels turn a perpendicular in pixels into a slanted line in mm). Without
a spacing the same functions work in pixels (spacing ``(1, 1)``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage import measure as skmeasure

__all__ = [
    "Spacing",
    "to_physical",
    "mask_outline",
    "polygon_area",
    "cumulative_length",
    "resample",
    "smooth_line",
    "tangents",
    "chords",
    "farthest",
]

#: pixel size ``(row mm, col mm)``, or ``None`` when unknown (measures are then in pixels)
Spacing = tuple[float, float] | None


def to_physical(points: np.ndarray, spacing: Spacing) -> np.ndarray:
    """``(N, 2)`` ``[row, col]`` pixel coordinates to ``(N, 2)`` physical ones (unchanged without spacing)."""
    points = np.asarray(points, dtype=np.float64)
    return points if spacing is None else points * np.asarray(spacing, dtype=np.float64)


def mask_outline(mask: np.ndarray, smooth: float = 1.0) -> np.ndarray:
    """The outer boundary of a binary mask as a closed polygon, ``(N, 2)`` ``[row, col]`` (last vertex
    not repeated).

    skimage's marching squares at level 0.5 of the mask blurred by a Gaussian of ``smooth`` pixels:
    the level-0.5 line of a binary mask lies halfway between the centres of the pixels inside and
    outside (a band ``k`` pixels thick has a chord of ``k``) but follows the pixel staircase, whose
    steps change a chord across a slanted band by up to a pixel; the blur rounds the steps off and
    leaves a straight edge where it was. The mask is padded so that the outline closes at the image
    border; of several pieces the one enclosing the largest area is taken (holes give inner outlines).

    Raises:
        ValueError: the mask is empty.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("the mask is empty")
    pad = 1 + int(math.ceil(3 * smooth))
    field = np.pad(mask, pad).astype(np.float32)
    if smooth > 0:
        field = ndimage.gaussian_filter(field, smooth)
    contours = skmeasure.find_contours(field, 0.5)
    if not contours:
        raise ValueError("the mask is too thin to have an outline")
    best = max(contours, key=lambda c: abs(polygon_area(c)))
    if len(best) > 1 and np.allclose(best[0], best[-1]):
        best = best[:-1]
    return best - float(pad)


def polygon_area(polygon: np.ndarray) -> float:
    """Signed area of a polygon ``(N, 2)`` (shoelace formula; the sign gives the orientation)."""
    p = np.asarray(polygon, dtype=np.float64)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def cumulative_length(line: np.ndarray) -> np.ndarray:
    """``(N,)`` arc length from the first point of an open polyline ``(N, 2)``."""
    steps = np.linalg.norm(np.diff(line, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(steps)])


def resample(line: np.ndarray, step: float, max_points: int = 4000) -> np.ndarray:
    """An open polyline resampled at equal arc-length steps of about ``step`` (ends kept)."""
    line = np.asarray(line, dtype=np.float64)
    keep = np.concatenate([[True], np.linalg.norm(np.diff(line, axis=0), axis=1) > 1e-12])
    line = line[keep]
    cum = cumulative_length(line)
    if len(line) < 2 or cum[-1] <= 0:
        return line[:1].repeat(2, axis=0)
    n = int(min(max(math.ceil(cum[-1] / step), 1), max_points - 1)) + 1
    s = np.linspace(0.0, cum[-1], n)
    return np.stack([np.interp(s, cum, line[:, 0]), np.interp(s, cum, line[:, 1])], axis=1)


def smooth_line(line: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of an open polyline's coordinates (``sigma`` in samples), both ends kept."""
    if sigma <= 0 or len(line) < 3:
        return np.asarray(line, dtype=np.float64)
    out = ndimage.gaussian_filter1d(np.asarray(line, dtype=np.float64), sigma, axis=0, mode="nearest")
    out[0], out[-1] = line[0], line[-1]
    return out


def tangents(line: np.ndarray) -> np.ndarray:
    """``(N, 2)`` unit tangents of an open polyline (central differences)."""
    d = np.gradient(np.asarray(line, dtype=np.float64), axis=0)
    norm = np.linalg.norm(d, axis=1, keepdims=True)
    return d / np.where(norm > 0, norm, 1.0)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def chords(points: np.ndarray, directions: np.ndarray, polygon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the lines ``points + t * directions`` cross a closed polygon, around each point.

    For a point inside the polygon: the nearest crossing behind it (``t_lo < 0``) and in front of it
    (``t_hi > 0``), so ``t_hi - t_lo`` is the chord through the point. For a point outside: the ends
    of the inside stretch of its line nearest to it. Hand-written because neither scipy nor skimage
    intersects lines with a polygon; vectorised over points and edges.

    Args:
        points: ``(N, 2)`` points.
        directions: ``(N, 2)`` unit directions (``t`` is then a length).
        polygon: ``(M, 2)`` closed polygon (last vertex not repeated).

    Returns:
        ``(t_lo, t_hi)``, each ``(N,)``; NaN where the line misses the polygon.
    """
    p = np.asarray(points, dtype=np.float64)[:, None, :]
    d = np.asarray(directions, dtype=np.float64)[:, None, :]
    a = np.asarray(polygon, dtype=np.float64)[None, :, :]
    e = np.roll(a, -1, axis=1) - a
    denom = _cross(d, e)  # (N, M)
    ap = a - p
    with np.errstate(divide="ignore", invalid="ignore"):
        t = _cross(ap, e) / denom
        u = _cross(ap, d) / denom
    valid = (np.abs(denom) > 1e-12) & (u >= 0.0) & (u < 1.0)
    t = np.where(valid, t, np.nan)
    t_lo = np.full(len(t), np.nan)
    t_hi = np.full(len(t), np.nan)
    for i, row in enumerate(t):
        ts = np.sort(row[np.isfinite(row)])
        if len(ts) < 2:
            continue
        ahead, behind = ts[ts > 0], ts[ts <= 0]
        if len(ahead) % 2 == 1 and len(behind):  # inside: the crossings that enclose the point
            t_lo[i], t_hi[i] = behind[-1], ahead[0]
            continue
        if len(ts) % 2:  # a line through a vertex counted once too often: drop the farthest crossing
            ts = np.delete(ts, np.argmax(np.abs(ts)))
        pairs = ts.reshape(-1, 2)
        j = int(np.argmin(np.minimum(np.abs(pairs[:, 0]), np.abs(pairs[:, 1]))))
        t_lo[i], t_hi[i] = pairs[j]
    return t_lo, t_hi


def farthest(outline: np.ndarray, origin: np.ndarray, tolerance: float) -> np.ndarray:
    """The point of a closed outline farthest from ``origin``, taken as the middle of the farthest run.

    The vertices within ``tolerance`` of the largest distance form a run along the outline (a round
    end gives its tip, a blunt, square end its whole face, whose corners are only a little farther
    than its middle); the point halfway along the run (by length, between vertices) containing the
    farthest vertex is returned, so a blunt end gives the middle of its face rather than a corner.

    Args:
        outline: ``(M, 2)`` closed outline.
        origin: ``(2,)`` point.
        tolerance: distance below the largest that still counts as farthest.

    Returns:
        ``(2,)`` point on the outline.
    """
    outline = np.asarray(outline, dtype=np.float64)
    dist = np.linalg.norm(outline - np.asarray(origin), axis=1)
    n, best = len(dist), int(np.argmax(dist))
    near = dist >= dist[best] - tolerance
    ahead = behind = 0
    while ahead < n - 1 and near[(best + ahead + 1) % n]:
        ahead += 1
    while behind < n - 1 - ahead and near[(best - behind - 1) % n]:
        behind += 1
    run = outline[(best - behind + np.arange(ahead + behind + 1)) % n]
    if len(run) == 1:
        return run[0].copy()
    cum = cumulative_length(run)
    half = 0.5 * cum[-1]
    return np.array([np.interp(half, cum, run[:, 0]), np.interp(half, cum, run[:, 1])])
