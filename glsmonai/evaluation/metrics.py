"""Per-case metrics on binary masks: Dice, IoU and the 95 % Hausdorff distance.

MONAI's ``compute_dice`` / ``compute_iou`` give NaN (``ignore_empty``) or 1 whenever the reference is
empty, whatever the prediction; the reports here follow nnU-Net instead: NaN only when reference and
prediction are both empty, 0 when just one is. So the two ratios are computed directly; the Hausdorff
distance is MONAI's.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import compute_hausdorff_distance

__all__ = ["dice_iou", "hd95"]


def dice_iou(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """Dice and IoU of two binary masks of the same shape.

    Returns:
        ``(dice, iou)``; both NaN when both masks are empty.

    Raises:
        ValueError: the shapes differ.
    """
    pred, ref = np.asarray(pred) > 0, np.asarray(ref) > 0
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    inter = float(np.logical_and(pred, ref).sum())
    total = float(pred.sum() + ref.sum())
    if total == 0:
        return float("nan"), float("nan")
    return 2.0 * inter / total, inter / (total - inter)


def hd95(pred: np.ndarray, ref: np.ndarray) -> float:
    """95 % Hausdorff distance in pixels between two binary masks (MONAI, Euclidean, on their edges).

    Args:
        pred, ref: ``(rows, cols)`` binary masks (foreground ``> 0``).

    Returns:
        the distance; NaN when either mask is empty.

    Raises:
        ValueError: the shapes differ.
    """
    pred, ref = np.asarray(pred) > 0, np.asarray(ref) > 0
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    if not pred.any() or not ref.any():
        return float("nan")
    as_onehot = lambda m: torch.from_numpy(m)[None, None].float()  # noqa: E731
    return float(compute_hausdorff_distance(as_onehot(pred), as_onehot(ref), percentile=95)[0, 0])
