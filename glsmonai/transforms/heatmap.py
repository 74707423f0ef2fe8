"""Keypoints from heatmaps (the heatmaps themselves come from MONAI's ``GenerateHeatmapd``).

MONAI has no heatmap decoding, so the three steps are written here:

* :func:`heatmap_argmax`: the arg-max pixel of each channel;
* :func:`refine_peaks`: the peak below one pixel, from a parabola through the log heatmap at the arg-max
  and its two neighbours along each axis (exact for a Gaussian peak, which is what the heatmap decoder
  is trained to produce);
* :func:`boundary_band`: the pixels near a predicted mask's boundary, where the keypoints of the GLS
  tasks lie (iris roots, LV apex and mitral annulus), to keep a heatmap's arg-max from jumping to
  another structure.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["heatmap_argmax", "refine_peaks", "boundary_band", "decode_keypoints"]


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


def refine_peaks(heatmaps: torch.Tensor, points: torch.Tensor, eps: float = 1e-6, log_input: bool = False) -> torch.Tensor:
    """Sub-pixel peaks: per axis, the vertex of the parabola through ``log h`` at ``p - 1, p, p + 1``.

    Args:
        heatmaps: ``(B, K, *S)`` positive heatmaps (probabilities), or their logarithms with ``log_input``.
        points: ``(B, K, D)`` integer arg-max positions (from :func:`heatmap_argmax`).

    Returns:
        ``(B, K, D)`` float points; the shift is clamped to half a pixel and is 0 at the image border or
        where the three values are not a maximum (flat or noisy peaks).
    """
    b, k = heatmaps.shape[:2]
    spatial = heatmaps.shape[2:]
    logs = (heatmaps if log_input else torch.log(heatmaps.clamp_min(eps))).reshape(b * k, -1)
    pts = points.reshape(b * k, len(spatial)).long()
    strides = [int(torch.tensor(spatial[d + 1:]).prod()) for d in range(len(spatial))]
    index = sum(pts[:, d] * strides[d] for d in range(len(spatial)))
    centre = logs.gather(1, index[:, None])[:, 0]
    refined = pts.to(heatmaps.dtype).clone()
    for d, (size, stride) in enumerate(zip(spatial, strides)):
        inside = (pts[:, d] > 0) & (pts[:, d] < size - 1)
        lower = logs.gather(1, (index - stride * inside)[:, None])[:, 0]
        upper = logs.gather(1, (index + stride * inside)[:, None])[:, 0]
        curvature = lower - 2 * centre + upper
        ok = inside & (curvature < -1e-12)
        shift = torch.where(ok, 0.5 * (lower - upper) / torch.where(ok, curvature, -torch.ones_like(curvature)), 0.0)
        refined[:, d] += shift.clamp(-0.5, 0.5)
    return refined.reshape(b, k, len(spatial))


def boundary_band(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels within ``width`` pixels (chessboard distance) of a binary mask's boundary.

    Args:
        mask: ``(B, 1, *S)`` 0/1 float (2D or 3D).
        width: band half-width in pixels.

    Returns:
        ``(B, 1, *S)`` bool: dilation minus erosion of the mask by a ``2 * width + 1`` cube.
    """
    pool = F.max_pool2d if mask.ndim == 4 else F.max_pool3d
    size = 2 * width + 1
    dilated = pool(mask, size, stride=1, padding=width)
    eroded = -pool(-mask, size, stride=1, padding=width)
    return (dilated - eroded) > 0.5


def _separate(logs: torch.Tensor, separation: float) -> torch.Tensor:
    """Suppress, channel by channel from the strongest peak down, every pixel closer than
    ``separation`` to a peak already taken, so no two keypoints share one spot (2D)."""
    b, k = logs.shape[:2]
    rows = torch.arange(logs.shape[2], device=logs.device, dtype=logs.dtype)[:, None]
    cols = torch.arange(logs.shape[3], device=logs.device, dtype=logs.dtype)[None, :]
    out = logs.clone()
    for i in range(b):
        taken = torch.zeros(logs.shape[2:], dtype=torch.bool, device=logs.device)
        for ch in torch.argsort(logs[i].flatten(1).amax(dim=1), descending=True).tolist():
            out[i, ch] = torch.where(taken, torch.full_like(out[i, ch], -torch.inf), out[i, ch])
            peak, _ = heatmap_argmax(out[i : i + 1, ch : ch + 1])
            r, c = peak[0, 0].tolist()
            taken |= (rows - r) ** 2 + (cols - c) ** 2 < separation**2
    return out


def decode_keypoints(
    logits: torch.Tensor, mask: torch.Tensor | None = None, band: int = 0, separation: float = 0.0
) -> dict[str, torch.Tensor]:
    """Heatmap logits -> sub-pixel keypoints, kept near the predicted mask's boundary when ``band > 0``.

    Peaks are found on ``log sigmoid(logits)``, not on the probabilities: a confident heatmap decoder
    saturates the sigmoid to exactly 1.0 over many pixels, and an arg-max over such ties returns the
    first of them (the top-left one), whatever the true peak. The log-probability keeps the order.

    The heatmap peak is searched inside :func:`boundary_band` of ``mask``. Fallback: an image whose
    mask is empty keeps its unconstrained peaks. With ``separation > 0`` the keypoints are also kept
    apart (:func:`_separate`): when two channels peak at one spot (a left-root channel and a
    right-root channel both answering the left root), the weaker one takes its best peak elsewhere.
    ``confidence`` is the constrained peak's probability over the unconstrained one: 1 when the strongest response already lies on the structure's
    boundary, small when the keypoint decoder preferred a place that the segmentation does not support.

    Args:
        logits: ``(B, K, *S)`` heatmap logits.
        mask: ``(B, 1, *S)`` 0/1 predicted mask on the same grid, or ``None``.
        band: half-width of the search band in pixels (0: no constraint).
        separation: least distance in pixels between two keypoints of one image (0: no constraint; 2D).

    Returns:
        ``points`` ``(B, K, D)`` float, ``scores`` ``(B, K)`` heatmap probability at the chosen peak,
        ``confidence`` ``(B, K)`` in ``[0, 1]``.
    """
    logs = F.logsigmoid(logits.float())
    free_points, free_logs = heatmap_argmax(logs)
    searched = logs
    if band > 0 and mask is not None:
        allowed = boundary_band(mask, band)
        has_mask = allowed.flatten(1).any(dim=1)  # (B,)
        allowed = allowed | ~has_mask.view(-1, *[1] * (allowed.ndim - 1))
        searched = torch.where(allowed, logs, torch.full_like(logs, -torch.inf))
    if separation > 0 and logs.shape[1] > 1 and logs.ndim == 4:
        searched = _separate(searched, separation)
    points, peak_logs = (free_points, free_logs) if searched is logs else heatmap_argmax(searched)
    confidence = torch.exp(peak_logs - free_logs).clamp(0.0, 1.0)
    # the parabola is fitted to log p (exact for a Gaussian peak); where the sigmoid saturates, log p is
    # flat to float precision and the logits themselves are fitted instead
    saturated = (peak_logs > -1e-2)[..., None]
    points = torch.where(saturated, refine_peaks(logits.float(), points, log_input=True),
                         refine_peaks(logs, points, log_input=True))
    return {"points": points, "scores": torch.exp(peak_logs), "confidence": confidence}
