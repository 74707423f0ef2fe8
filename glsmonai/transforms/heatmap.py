"""Keypoints from heatmaps (the heatmaps themselves come from MONAI's ``GenerateHeatmapd``).

MONAI has no heatmap decoding, so the three steps are written here:

* :func:`heatmap_argmax`: the arg-max pixel of each channel;
* :func:`refine_peaks`: the peak below one pixel, from a parabola through the log heatmap at the arg-max
  and its two neighbours along each axis (exact for a Gaussian peak, which is what the heatmap decoder
  is trained to produce);
* :func:`boundary_band`: the pixels near a predicted mask's boundary, where the keypoints of the GLS
  tasks lie (iris roots, LV apex and mitral annulus), to keep a heatmap's arg-max from jumping to
  another structure.

Everything here is written with tensor operations only (no loop over the images, no value read back
into Python, no in-place update), so the whole GLS forward traces for TorchScript and ONNX
(:mod:`glsmonai.export`) and the keypoints follow each input.
"""

from __future__ import annotations

import math

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
        # index - (index // size) * size rather than index % size: the ONNX exporter has no remainder by a
        # dynamic size
        quotient = torch.div(index, size, rounding_mode="floor")
        coords.append(index - quotient * size)
        index = quotient
    points = torch.stack(list(reversed(coords)), dim=-1)
    return points, scores


def refine_peaks(heatmaps: torch.Tensor, points: torch.Tensor, eps: float = 1e-6, log_input: bool = False) -> torch.Tensor:
    """Sub-pixel peaks: per axis, the vertex of the parabola through ``log h`` at ``p - 1, p, p + 1``.

    Written with tensor operations only (no in-place update, no value read back into Python), so the
    function traces for TorchScript and ONNX with any batch size.

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
    strides = [math.prod(spatial[d + 1:]) for d in range(len(spatial))]
    index = sum(pts[:, d] * strides[d] for d in range(len(spatial)))
    centre = logs.gather(1, index[:, None])[:, 0]
    axes = []
    for d, (size, stride) in enumerate(zip(spatial, strides)):
        inside = (pts[:, d] > 0) & (pts[:, d] < size - 1)
        step = inside.long() * stride  # explicit: a traced stride times a bool tensor would stay bool
        lower = logs.gather(1, (index - step)[:, None])[:, 0]
        upper = logs.gather(1, (index + step)[:, None])[:, 0]
        curvature = lower - 2 * centre + upper
        ok = inside & (curvature < -1e-12)
        shift = torch.where(ok, 0.5 * (lower - upper) / torch.where(ok, curvature, -torch.ones_like(curvature)), 0.0)
        axes.append(pts[:, d].to(heatmaps.dtype) + shift.clamp(-0.5, 0.5))
    return torch.stack(axes, dim=-1).reshape(b, k, len(spatial))


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
    """Keep the keypoints of one image at least ``separation`` pixels apart (2D).

    Channel by channel, from the channel with the strongest peak down (ties: the lower channel first),
    every pixel closer than ``separation`` to a peak already taken is suppressed (set to ``-inf``)
    before the channel's own peak is taken. Written for tracing: all images at once, ``K`` steps (the
    channel count is fixed by the network), each step selecting the channel of that rank with a mask
    instead of sorting the channels and looping in Python.

    Args:
        logs: ``(B, K, H, W)`` log-probabilities (``-inf`` outside the allowed pixels).
        separation: least distance in pixels.

    Returns:
        ``(B, K, H, W)``, ``logs`` with the suppressed pixels set to ``-inf``.
    """
    k = logs.shape[1]
    rows = torch.arange(logs.shape[2], device=logs.device, dtype=logs.dtype)[:, None]
    cols = torch.arange(logs.shape[3], device=logs.device, dtype=logs.dtype)[None, :]
    # rank of each channel by its peak, strongest first, ties by channel index (a stable descending sort)
    peaks = logs.flatten(2).amax(dim=2)  # (B, K)
    channel = torch.arange(k, device=logs.device)
    before = (peaks[:, None, :] > peaks[:, :, None]) | (
        (peaks[:, None, :] == peaks[:, :, None]) & (channel[None, :] < channel[:, None])
    )  # (B, K, K): channel j (last axis) comes before channel i (middle axis)
    rank = before.sum(dim=2)  # (B, K), a permutation of 0 .. K - 1 per image
    out = logs
    taken = torch.zeros_like(logs[:, 0], dtype=torch.bool)  # (B, H, W)
    suppressed = torch.full_like(logs, -torch.inf)
    for step in range(k):
        current = (rank == step)[:, :, None, None]  # (B, K, 1, 1): the channel handled at this step
        out = torch.where(current & taken[:, None], suppressed, out)
        # the current channel's map: the other channels masked to -inf, so the maximum over channels is it
        peak, _ = heatmap_argmax(torch.where(current, out, suppressed).amax(dim=1, keepdim=True))
        r, c = peak[:, 0, 0].to(logs.dtype), peak[:, 0, 1].to(logs.dtype)  # (B,)
        near = (rows[None] - r[:, None, None]) ** 2 + (cols[None] - c[:, None, None]) ** 2 < separation**2
        taken = taken | near
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
    ``confidence`` is the constrained peak's probability over the unconstrained one: 1 when the strongest
    response already lies on the structure's boundary, small when the keypoint decoder preferred a place
    that the segmentation does not support.

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
