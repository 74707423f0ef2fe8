"""One scoring path: every case scored by :func:`score_case`, every folder summarised by :func:`summarise_cases`.

``glsmonai evaluate`` and ``glsmonai compare`` both go through these two: Dice, IoU, the 95 % Hausdorff
distance, Dice and IoU inside the key-region windows at the reference keypoints, the errors of the
predicted keypoints, all in the pixels of the reference, and, for ``summary.json``, the confusion counts
and the two masks' sizes (in mm² too where the file records its pixel size).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from glsmonai.evaluation.keyregion import key_region_dice_iou, keypoint_errors, summarise_keypoint_errors
from glsmonai.evaluation.metrics import dice_iou, hd95

__all__ = ["COUNTS", "pixel_counts", "score_case", "summarise_cases"]

#: the statistics of each summary row, after ``metric`` and ``n``
STATISTICS = ("mean", "std", "median", "min", "max")
#: the pixel counts of :func:`pixel_counts`, in the order of the reports (``ref_mm2``, ``pred_mm2`` follow)
COUNTS = ("tp", "fp", "fn", "ref_px", "pred_px")


def pixel_counts(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float] | None = None) -> dict:
    """Confusion counts of two binary masks on the same grid.

    Args:
        pred, ref: ``(rows, cols)`` masks (foreground ``> 0``).
        spacing: ``(row, col)`` pixel size in mm, or ``None``.

    Returns:
        ``{"tp", "fp", "fn", "ref_px", "pred_px"}`` as ints, and ``"ref_mm2"``, ``"pred_mm2"`` (float)
        when ``spacing`` is given.

    Raises:
        ValueError: the shapes differ.
    """
    pred, ref = np.asarray(pred) > 0, np.asarray(ref) > 0
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    tp = int(np.count_nonzero(pred & ref))
    ref_px, pred_px = int(np.count_nonzero(ref)), int(np.count_nonzero(pred))
    counts: dict = {"tp": tp, "fp": pred_px - tp, "fn": ref_px - tp, "ref_px": ref_px, "pred_px": pred_px}
    if spacing is not None:
        area = float(spacing[0]) * float(spacing[1])
        counts.update(ref_mm2=ref_px * area, pred_mm2=pred_px * area)
    return counts


def score_case(
    pred: np.ndarray,
    ref: np.ndarray,
    ref_points: np.ndarray | None = None,
    found_points: np.ndarray | None = None,
    window: tuple[int, int] | None = None,
    with_hd95: bool = True,
    window_points: np.ndarray | None = None,
    with_counts: bool = False,
    spacing: Sequence[float] | None = None,
) -> dict:
    """Score one predicted mask against its reference.

    Args:
        pred, ref: ``(rows, cols)`` binary masks (foreground ``> 0``) on the same grid.
        ref_points: ``(K, 2)`` ``[row, col]`` reference keypoints (pixels of ``ref``).
        found_points: ``(K, 2)`` ``[row, col]`` predicted keypoints in the same order.
        window: ``(h, w)`` key-region window size in pixels.
        with_hd95: also the 95 % Hausdorff distance.
        window_points: ``(K', 2)`` centres of the key-region windows when they are not ``ref_points``
            (``evaluate`` places them at a rule's keypoints while measuring the errors against a
            datalist's).
        with_counts: also the pixel counts ``"tp"`` (in both masks), ``"fp"`` (predicted only), ``"fn"``
            (reference only), ``"ref_px"`` and ``"pred_px"`` (the two masks' sizes), and, with
            ``spacing``, ``"ref_mm2"`` and ``"pred_mm2"``.
        spacing: ``(row, col)`` size of a pixel in mm (see :meth:`~glsmonai.data.io.Geometry.pixel_size_mm`); ``None`` when the
            file records none.

    Returns:
        ``{"dice", "iou"}`` (both NaN when both masks are empty, 0 when one is), ``"hd95"`` with
        ``with_hd95`` (NaN when either mask is empty), ``"key_dice"`` and ``"key_iou"`` when
        ``window`` and window centres are given (see
        :func:`~glsmonai.evaluation.keyregion.key_region_dice_iou`), and ``"kp_errors"``, the ``(K,)``
        Euclidean distances between ``found_points`` and ``ref_points``, when both are given.

    Raises:
        ValueError: the masks differ in shape, or the keypoint arrays (message naming both shapes);
            a bad window size or a non-finite window centre.
    """
    pred, ref = np.asarray(pred) > 0, np.asarray(ref) > 0
    dice, iou = dice_iou(pred, ref)
    scores = {"dice": dice, "iou": iou}
    if with_counts:
        scores.update(pixel_counts(pred, ref, spacing))
    if with_hd95:
        scores["hd95"] = hd95(pred, ref)
    centres = ref_points if window_points is None else window_points
    if window is not None and centres is not None:
        scores["key_dice"], scores["key_iou"] = key_region_dice_iou(pred, ref, centres, window)
    if found_points is not None and ref_points is not None:
        scores["kp_errors"] = keypoint_errors(found_points, ref_points)
    return scores


def _statistics(values: pd.DataFrame) -> pd.DataFrame:
    """``metric, n, mean, std, median, min, max`` of each column, NaN left out (``n`` counts the rest)."""
    stats = values.agg(list(STATISTICS)).T
    stats.insert(0, "n", values.notna().sum().values)
    stats.index.name = "metric"
    return stats.reset_index()


def summarise_cases(
    per_case: pd.DataFrame,
    metrics: Sequence[str] = ("dice", "iou"),
    kp_errors: np.ndarray | None = None,
    windows: Sequence[int] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Summary over cases, one row per metric: ``metric, n, mean, std, median, min, max``.

    Args:
        per_case: one row per case, with the ``metrics`` columns (NaN cases are left out of each).
        metrics: the columns to summarise, in the order of the rows.
        kp_errors: ``(M,)`` errors (pixels) of all keypoints of all cases, NaN where a keypoint was not
            found: adds the row ``kp_error`` when ``M > 0``.
        windows: ``(h, w)`` window size, or ``(M, 2)`` the window of each keypoint's case: adds the row
            ``kp_missed``, the rate of keypoints whose error is above half their window's smaller side
            or NaN (in ``mean``; ``n = M``), see
            :func:`~glsmonai.evaluation.keyregion.summarise_keypoint_errors`.

    Returns:
        the summary table.
    """
    summary = _statistics(per_case[list(metrics)])
    errors = np.asarray([] if kp_errors is None else kp_errors, dtype=np.float64).ravel()
    if not errors.size:
        return summary
    extra = [_statistics(pd.DataFrame({"kp_error": errors}))]
    if windows is not None:
        missed = summarise_keypoint_errors(errors, windows)["missed_rate"]
        extra.append(pd.DataFrame([{"metric": "kp_missed", "n": errors.size, "mean": missed}]))
    return pd.concat([summary, *extra], ignore_index=True)
