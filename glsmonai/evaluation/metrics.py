"""Per-case overlap metrics on binary masks.

MONAI's ``compute_dice`` / ``compute_iou`` give NaN (``ignore_empty``) or 1 whenever the reference is
empty, whatever the prediction; the reports here follow nnU-Net instead: NaN only when reference and
prediction are both empty, 0 when just one is. So the two ratios are computed directly.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dice_iou"]


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
