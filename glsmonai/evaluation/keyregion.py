"""Key-region metrics: overlap inside the windows centred on the reference keypoints, keypoint errors.

The windows are the GLS local crops: a window of ``(h, w)`` pixels centred on keypoint ``p`` covers
rows ``[round(p_row) - h // 2, round(p_row) - h // 2 + h)`` and the same for columns, clipped to the
image. Dice/IoU restricted to the union of the windows show how well the key regions (iris roots,
LV apex and annulus) are segmented, which a whole-image Dice hides.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from glsmonai.evaluation.metrics import dice_iou

logger = logging.getLogger(__name__)

__all__ = ["window_mask", "key_region_dice_iou", "keypoint_errors", "summarise_keypoint_errors"]


def _window_size(size: Sequence[float]) -> tuple[int, int]:
    """``(h, w)`` as positive ints; raises ``ValueError`` otherwise."""
    if len(size) != 2:
        raise ValueError(f"window size must be (rows, cols), got {tuple(size)}")
    h, w = (int(round(float(s))) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"window size must be positive, got {tuple(size)}")
    return h, w


def _points(keypoints: np.ndarray, what: str = "keypoints") -> np.ndarray:
    """``(K, 2)`` float array; raises ``ValueError`` on another shape."""
    points = np.asarray(keypoints, dtype=np.float64)
    if points.size == 0:
        return points.reshape(0, 2)
    if points.ndim == 1 and points.shape[0] == 2:
        points = points[None]
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{what} must be a (K, 2) array of [row, col], got shape {points.shape}")
    return points


def window_mask(shape: tuple[int, int], keypoints: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Union of the windows centred on the keypoints.

    Args:
        shape: ``(rows, cols)`` of the image.
        keypoints: ``(K, 2)`` ``[row, col]`` (may lie outside the image; the window is clipped).
        size: ``(h, w)`` window size in pixels (the GLS crop size).

    Returns:
        ``(rows, cols)`` bool mask, True inside at least one window (all False when ``K == 0``).

    Raises:
        ValueError: bad keypoint array or window size, or a non-finite keypoint.
    """
    rows, cols = int(shape[0]), int(shape[1])
    h, w = _window_size(size)
    points = _points(keypoints)
    if not np.isfinite(points).all():
        raise ValueError(f"keypoints must be finite to place windows, got {points.tolist()}")
    mask = np.zeros((rows, cols), dtype=bool)
    for r, c in points:
        r0 = int(np.round(r)) - h // 2
        c0 = int(np.round(c)) - w // 2
        r_lo, r_hi = max(r0, 0), min(r0 + h, rows)
        c_lo, c_hi = max(c0, 0), min(c0 + w, cols)
        if r_lo < r_hi and c_lo < c_hi:
            mask[r_lo:r_hi, c_lo:c_hi] = True
        else:
            logger.debug("window at [%g, %g] lies outside the %dx%d image", r, c, rows, cols)
    return mask


def key_region_dice_iou(
    pred: np.ndarray, ref: np.ndarray, keypoints: np.ndarray, size: tuple[int, int]
) -> tuple[float, float]:
    """Dice and IoU of two binary masks inside the windows centred on the (reference) keypoints.

    Args:
        pred, ref: ``(rows, cols)`` binary masks (foreground ``> 0``).
        keypoints: ``(K, 2)`` ``[row, col]`` reference keypoints.
        size: ``(h, w)`` window size.

    Returns:
        ``(dice, iou)`` of ``pred & window`` vs ``ref & window``; both NaN when both are empty
        inside the windows (or there are no windows).

    Raises:
        ValueError: the shapes differ, or bad keypoints / window size.
    """
    pred, ref = np.asarray(pred) > 0, np.asarray(ref) > 0
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    window = window_mask(ref.shape, keypoints, size)
    return dice_iou(pred & window, ref & window)


def keypoint_errors(pred_points: np.ndarray, ref_points: np.ndarray) -> np.ndarray:
    """Euclidean distance (pixels) between matching predicted and reference keypoints.

    Args:
        pred_points, ref_points: ``(K, 2)`` ``[row, col]`` in the same order.

    Returns:
        ``(K,)`` float distances (NaN where either point is NaN).

    Raises:
        ValueError: the arrays are not both ``(K, 2)`` with the same ``K``.
    """
    pred = _points(pred_points, "predicted keypoints")
    ref = _points(ref_points, "reference keypoints")
    if pred.shape != ref.shape:
        raise ValueError(f"predicted keypoints {pred.shape} and reference keypoints {ref.shape} differ in shape")
    return np.sqrt(((pred - ref) ** 2).sum(axis=1))


def _half_windows(window: Sequence[float] | np.ndarray, n: int) -> np.ndarray:
    """``(n,)`` half of the smaller side of one ``(h, w)`` window, or of each row of ``(n, 2)`` windows."""
    sizes = np.asarray(window, dtype=np.float64)
    if sizes.ndim < 2:
        return np.full(n, min(_window_size(window)) / 2.0)
    if sizes.shape != (n, 2):
        raise ValueError(f"one window per error needs ({n}, 2) window sizes, got shape {sizes.shape}")
    return np.array([min(_window_size(size)) / 2.0 for size in sizes])


def summarise_keypoint_errors(errors: np.ndarray, window: Sequence[float] | np.ndarray) -> dict:
    """Summary of keypoint errors over cases.

    A keypoint is *missed* when its error exceeds half the window's smaller side (its true position
    then falls outside a window centred on the prediction, at least along that side). NaN errors
    (a keypoint that could not be found in the prediction) count as missed and are left out of the
    mean, median and max.

    Args:
        errors: ``(N, K)`` errors in pixels (any shape is accepted and flattened).
        window: ``(h, w)`` window size, or ``(M, 2)`` one window per error in flattened order
            (``M = errors.size``; cases of different sizes have different windows).

    Returns:
        ``{"mean", "median", "max", "missed_rate", "n", "n_undefined"}``: statistics of the finite
        errors (NaN when there are none), the fraction of missed keypoints among all ``n`` of them
        (NaN when ``n == 0``), and the number of NaN errors.

    Raises:
        ValueError: a bad window size, or ``(M, 2)`` windows with ``M != errors.size``.
    """
    values = np.asarray(errors, dtype=np.float64).ravel()
    limits = _half_windows(window, values.size)
    is_finite = np.isfinite(values)
    finite = values[is_finite]
    n, n_undefined = int(values.size), int(values.size - finite.size)
    missed = int((finite > limits[is_finite]).sum()) + n_undefined
    nan = float("nan")
    return {
        "mean": float(finite.mean()) if finite.size else nan,
        "median": float(np.median(finite)) if finite.size else nan,
        "max": float(finite.max()) if finite.size else nan,
        "missed_rate": missed / n if n else nan,
        "n": n,
        "n_undefined": n_undefined,
    }
