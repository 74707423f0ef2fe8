"""Keypoints from heatmaps (the heatmaps themselves come from MONAI's ``GenerateHeatmapd``)."""

from __future__ import annotations

import torch

__all__ = ["heatmap_argmax"]


def heatmap_argmax(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Arg-max of each heatmap channel.

    Args:
        heatmaps: ``(B, K, *S)`` probabilities.

    Returns:
        ``points`` ``(B, K, D)`` long pixel coordinates (row, col for 2D) and ``scores`` ``(B, K)``,
        the heatmap value at each point.
    """
    b, k = heatmaps.shape[:2]
    spatial = heatmaps.shape[2:]
    flat = heatmaps.reshape(b, k, -1)
    scores, index = flat.max(dim=-1)
    coords = []
    for size in reversed(spatial):
        coords.append(index % size)
        index = torch.div(index, size, rounding_mode="floor")
    points = torch.stack(list(reversed(coords)), dim=-1)
    return points, scores
