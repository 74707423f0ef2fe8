"""Keypoint rules: where the key regions of a mask are, when the datalist gives no keypoints.

A rule maps a binary ``(rows, cols)`` mask to a ``(K, 2)`` float array of ``[row, col]`` points in a
fixed order. Rules are looked up by name (``keypoint_rule`` in the bundle).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

__all__ = ["KEYPOINT_RULES", "iris_roots", "lv_apex_base", "get_rule", "rule_keypoint_count"]

#: CAMUS label values
LV_ENDO, MYOCARDIUM, LEFT_ATRIUM = 1, 2, 3


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


def _ends(pixels: np.ndarray, axis: np.ndarray, tolerance: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Means of the pixels within ``tolerance`` of the minimum and of the maximum projection on ``axis``."""
    proj = pixels @ axis
    return pixels[proj <= proj.min() + tolerance].mean(axis=0), pixels[proj >= proj.max() - tolerance].mean(axis=0)


def lv_apex_base(label: np.ndarray) -> np.ndarray:
    """The LV apex and the two ends of the mitral annulus, from a CAMUS-style label map.

    The LV is label 1 (any foreground when the map is binary). The annulus points are the two ends of
    the LV / left-atrium (label 3) contact, taken across the LV long axis (its principal axis); when
    there is no left atrium, or it does not touch the LV, they are the two ends of the LV's basal slab
    (the 5 % of the long axis at its wider end). The apex is the LV pixel farthest from the annulus
    midpoint.

    Args:
        label: ``(rows, cols)`` label map (0 background, 1 LV endocardium, 2 myocardium, 3 left atrium).

    Returns:
        ``(3, 2)`` ``[row, col]``: apex, annulus end with the smaller column, the other annulus end.

    Raises:
        ValueError: no LV pixels.
    """
    label = np.asarray(label)
    lv_mask = label == LV_ENDO if (label == LV_ENDO).any() else label > 0
    lv_mask = ndimage.binary_fill_holes(lv_mask)
    if not lv_mask.any():
        raise ValueError("the mask has no LV (label 1) pixels")
    lv = _components(lv_mask, 1)[0]
    centre = lv.mean(axis=0)
    # principal (long) axis of the LV and the axis across it
    _, vecs = np.linalg.eigh(np.cov((lv - centre).T))
    long_axis, across = vecs[:, 1], vecs[:, 0]
    la_mask = label == LEFT_ATRIUM
    contact = lv_mask & ndimage.binary_dilation(la_mask, structure=np.ones((3, 3), bool)) if la_mask.any() else None
    if contact is not None and contact.sum() >= 2:
        base_pixels = np.argwhere(contact).astype(np.float64)
    else:
        proj = (lv - centre) @ long_axis
        length = proj.max() - proj.min()
        slab = max(2.0, 0.05 * length)
        low, high = lv[proj <= proj.min() + slab], lv[proj >= proj.max() - slab]
        width = lambda px: np.ptp(px @ across) if len(px) else 0.0  # noqa: E731
        base_pixels = low if width(low) >= width(high) else high
    a, b = _ends(base_pixels, across)
    left, right = (a, b) if a[1] <= b[1] else (b, a)
    mid = (left + right) / 2
    dist = np.linalg.norm(lv - mid, axis=1)
    apex = lv[dist >= dist.max() - 1.0].mean(axis=0)
    return np.stack([apex, left, right])


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
    "lv_apex_base": (lv_apex_base, 3),
}


def get_rule(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The rule called ``name``, or ``errormap:<file.json>`` (a rule learnt from an error map, see
    ``glsmonai errormap --suggest``); raises ``ValueError`` listing the known ones."""
    if name.startswith("errormap:"):
        from glsmonai.evaluation.errormap import errormap_rule

        return errormap_rule(name.split(":", 1)[1])
    if name not in KEYPOINT_RULES:
        raise ValueError(f"unknown keypoint rule {name!r}; known rules: {sorted(KEYPOINT_RULES)} or errormap:<file>")
    return KEYPOINT_RULES[name][0]


def rule_keypoint_count(name: str) -> int:
    """How many keypoints the rule ``name`` gives."""
    if name.startswith("errormap:"):
        return int(get_rule(name).n_keypoints)  # type: ignore[attr-defined]
    get_rule(name)
    return KEYPOINT_RULES[name][1]
