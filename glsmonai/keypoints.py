"""Keypoint rules: where the key regions of a mask are, when the datalist gives no keypoints.

A rule maps a binary ``(rows, cols)`` mask to a ``(K, 2)`` float array of ``[row, col]`` points in a
fixed order. Rules are looked up by name (``keypoint_rule`` in the bundle).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

__all__ = ["KEYPOINT_RULES", "iris_roots", "get_rule"]


def _components(mask: np.ndarray, n: int) -> list[np.ndarray]:
    """Pixel coordinates ``(N_i, 2)`` of the ``n`` largest connected components, largest first."""
    labels, count = ndimage.label(mask > 0)
    if count < n:
        raise ValueError(f"the mask has {count} connected component(s), the rule needs {n}")
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1))
    order = np.argsort(-sizes, kind="stable")[:n] + 1
    return [np.argwhere(labels == i).astype(np.float64) for i in order]


def _far_end(pixels: np.ndarray, away_from: np.ndarray, tolerance: float = 2.0) -> np.ndarray:
    """Mean of the pixels lying furthest along the axis from ``away_from`` to their centroid."""
    centre = pixels.mean(axis=0)
    axis = centre - away_from
    norm = np.linalg.norm(axis)
    if norm == 0:
        raise ValueError("cannot tell the ends of a component apart: both components share a centroid")
    proj = pixels @ (axis / norm)
    return pixels[proj >= proj.max() - tolerance].mean(axis=0)


def iris_roots(mask: np.ndarray) -> np.ndarray:
    """The two iris roots: the peripheral end of each of the two largest components, left one first.

    The peripheral end of a component is where its pixels reach furthest along the axis pointing from
    the other component's centroid to its own (the end away from the pupil).

    Args:
        mask: ``(rows, cols)`` binary iris mask.

    Returns:
        ``(2, 2)`` ``[row, col]`` of the left root, then the right root.

    Raises:
        ValueError: fewer than two components.
    """
    a, b = _components(mask, 2)
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    left, right = (a, b) if ca[1] <= cb[1] else (b, a)
    c_left, c_right = left.mean(axis=0), right.mean(axis=0)
    return np.stack([_far_end(left, c_right), _far_end(right, c_left)])


KEYPOINT_RULES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], int]] = {
    "iris_roots": (iris_roots, 2),
}


def get_rule(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The rule called ``name``; raises ``ValueError`` listing the known ones."""
    if name not in KEYPOINT_RULES:
        raise ValueError(f"unknown keypoint rule {name!r}; known rules: {sorted(KEYPOINT_RULES)}")
    return KEYPOINT_RULES[name][0]
