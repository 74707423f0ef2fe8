"""Keypoint-centred crops of a fixed size, and the paste back onto an empty canvas.

MONAI's ``SpatialCrop(roi_center, roi_size)`` shrinks and shifts a window that crosses the border.
The local branch needs every crop exactly ``size`` and centred on its keypoint, batched over many
keypoints and differentiable for the paste, so these two functions pad by half a window and gather
the pixels by index, with no loop over the windows and no index read back into Python: they trace for
TorchScript and ONNX (:mod:`glsmonai.export`).

Convention: the window of a keypoint ``p`` covers ``[p - size // 2, p - size // 2 + size)`` along each
axis, so ``p`` is at index ``size // 2`` of the crop. Pixels outside the image are zero.

:func:`crop_windows` / :func:`paste_windows` are the resampling counterparts for ``crop_space:
original``: a window of any size (in the source image's pixels, around a sub-pixel centre) is
resampled to the local network's input size with ``grid_sample`` and, after the local network,
resampled back onto the source grid, touching only the pixels inside the window. MONAI's
``SpatialCrop`` / ``Resize`` work on one integer box at a time; these take a batch of windows with
sub-pixel centres and stay differentiable.

Continuous convention: pixel ``i`` covers ``[i - 0.5, i + 0.5)``; a window of size ``s`` centred at ``c``
covers ``[c - s / 2, c + s / 2)`` and its ``n`` output pixels sample the source at
``c + (j + 0.5 - n / 2) * s / n``, ``j = 0 .. n - 1`` (bilinear, zero outside the image).

:func:`feather_profile` / :func:`window_weights` give a window a blend weight that is 1 in its middle
and falls to 0 at its border, so a window prediction can be blended into the global one without a seam.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "crop_at_points", "paste_at_points", "crop_windows", "paste_windows", "window_offsets", "feather_profile",
    "window_weights",
]


def _int_points(points: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
    """Round ``(B, K, D)`` points to pixels and clamp them into the image (one clamp per axis, so that
    the image size stays a traced size, not a constant, when the function is traced)."""
    pts = points.float() if isinstance(points, torch.Tensor) else torch.as_tensor(points, dtype=torch.float32)
    pts = torch.round(pts).long()
    return torch.stack([pts[..., d].clamp(0, size - 1) for d, size in enumerate(spatial)], dim=-1)


def _flat_index(starts: torch.Tensor, extent: Sequence[int], strides: Sequence[int]) -> torch.Tensor:
    """Flat indices of the boxes that start at ``starts`` ``(N, D)`` and span ``extent`` (D ints), in a
    grid of the given ``strides``: ``(N, prod(extent))``, row-major over the box."""
    index = torch.zeros(starts.shape[0], *[1] * len(extent), dtype=torch.long, device=starts.device)
    for d, (n, stride) in enumerate(zip(extent, strides)):
        shape = [1] * len(extent)
        shape[d] = n
        steps = torch.arange(n, device=starts.device).reshape(1, *shape)
        index = index + (starts[:, d].reshape(-1, *[1] * len(extent)) + steps) * stride
    return index.reshape(starts.shape[0], -1)


def crop_at_points(image: torch.Tensor, points: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Cut one fixed-size window per keypoint.

    The windows are gathered from the zero-padded image by index (no loop over images or keypoints,
    no index read back into Python), so the crop traces for TorchScript and ONNX.

    Args:
        image: ``(B, C, *S)`` with ``S`` of length D.
        points: ``(B, K, D)`` keypoints in pixel coordinates (rounded, clamped into the image).
        size: window size, D ints.

    Returns:
        ``(B * K, C, *size)``, ordered image by image, keypoint by keypoint.
    """
    spatial = image.shape[2:]
    if len(size) != len(spatial) or points.shape[-1] != len(spatial):
        raise ValueError(f"crop size {tuple(size)} and points {tuple(points.shape)} do not match image {tuple(image.shape)}")
    size = [int(s) for s in size]
    b, c = image.shape[:2]
    k = points.shape[1]
    pts = _int_points(points.to(image.device), spatial)  # (B, K, D)
    pads: list[int] = []
    for s in reversed(size):
        pads.extend([s // 2, s - s // 2])
    padded = F.pad(image, pads)  # a keypoint p starts its window at p in the padded frame
    strides = [math.prod(padded.shape[2 + d + 1:]) for d in range(len(size))]
    index = _flat_index(pts.reshape(b * k, -1), size, strides).reshape(b, 1, k * math.prod(size))
    crops = padded.reshape(b, c, -1).gather(2, index.expand(b, c, index.shape[2]))  # (B, C, K * prod(size))
    return crops.reshape(b, c, k, *size).transpose(1, 2).reshape(b * k, c, *size)


def paste_at_points(patches: torch.Tensor, points: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
    """Paste windows back at their keypoints on an empty canvas; overlaps keep the maximum.

    Each canvas pixel reads its value from every window by index (0 outside a window) and keeps the
    largest, so no loop over the windows and no index read back into Python: the paste traces.

    Args:
        patches: ``(B * K, C, *size)`` as returned by :func:`crop_at_points`.
        points: ``(B, K, D)`` the same keypoints.
        spatial: the canvas size ``S`` (D ints).

    Returns:
        ``(B, C, *S)``; differentiable with respect to ``patches``.
    """
    n_img, n_pts = points.shape[:2]
    size = patches.shape[2:]
    c = patches.shape[1]
    if patches.shape[0] != n_img * n_pts:
        raise ValueError(f"{patches.shape[0]} patches for {n_img} x {n_pts} keypoints")
    pts = _int_points(points.to(patches.device), spatial).reshape(n_img * n_pts, -1)  # (N, D)
    # canvas pixel x lies in the window of keypoint p at patch index x - p + size // 2
    index = torch.zeros(n_img * n_pts, *[1] * len(spatial), dtype=torch.long, device=patches.device)
    inside = torch.ones(n_img * n_pts, *[1] * len(spatial), dtype=torch.bool, device=patches.device)
    for d, (full, n) in enumerate(zip(spatial, size)):
        shape = [1] * len(spatial)
        shape[d] = full
        start = pts[:, d].reshape(-1, *[1] * len(spatial)) - n // 2  # the window's first canvas pixel
        at = torch.arange(full, device=patches.device).reshape(1, *shape) - start
        inside = inside & (at >= 0) & (at < n)
        index = index + at.clamp(0, n - 1) * math.prod(size[d + 1:])
    values = patches.reshape(n_img * n_pts, c, -1).gather(2, index.reshape(n_img * n_pts, 1, -1).expand(-1, c, -1))
    values = values.reshape(n_img * n_pts, c, *index.shape[1:])
    canvases = torch.where(inside[:, None], values, torch.zeros_like(values))
    return canvases.reshape(n_img, n_pts, c, *spatial).amax(dim=1)


def window_offsets(window: torch.Tensor, size: Sequence[int]) -> list[torch.Tensor]:
    """Offsets of the ``n`` samples of each window from its centre, one ``(N, n_d)`` tensor per axis.

    Args:
        window: ``(N, D)`` window sizes (in the units of the frame the offsets are added in).
        size: output size ``n``, D ints.
    """
    axes = []
    for d, n in enumerate(size):
        steps = torch.arange(n, device=window.device, dtype=window.dtype) + 0.5 - n / 2.0
        axes.append(steps[None] * (window[:, d : d + 1] / n))
    return axes


def feather_profile(offsets: torch.Tensor, size: float | torch.Tensor, feather: float) -> torch.Tensor:
    """Blend weight along one axis of a window: 1 in its middle, a cosine ramp down to 0 at its border.

    Args:
        offsets: any shape, distances from the window's centre (in the units of ``size``).
        size: the window's extent along the axis.
        feather: the ramp's length as a fraction of ``size``, from each border inwards (``0 < feather <= 0.5``;
            0.5: the weight is 1 at the centre only).

    Returns:
        the weights, shaped like ``offsets``: 0 where ``|offset| >= size / 2``, 1 where
        ``|offset| <= size / 2 - feather * size``, ``(1 - cos(pi t)) / 2`` in between (``t``: the distance
        from the border in ramp lengths), so monotone from the centre outwards with no kink.
    """
    if not 0 < feather <= 0.5:
        raise ValueError(f"feather must be in (0, 0.5], got {feather}")
    inset = (size / 2 - offsets.abs()) / (feather * size)
    return (1 - torch.cos(torch.pi * inset.clamp(0.0, 1.0))) / 2


def window_weights(size: Sequence[int], feather: float) -> torch.Tensor:
    """``(h, w)`` blend weights of a :func:`crop_at_points` window of ``size`` pixels: the product of the
    rows' and the columns' :func:`feather_profile` at the pixel centres."""
    d_rows, d_cols = window_offsets(torch.tensor([size], dtype=torch.float64), size)
    rows, cols = feather_profile(d_rows[0], size[0], feather), feather_profile(d_cols[0], size[1], feather)
    return (rows[:, None] * cols[None, :]).to(torch.float32)


def crop_windows(
    image: torch.Tensor,
    centres: torch.Tensor,
    window: torch.Tensor,
    size: Sequence[int],
    to_image: torch.Tensor | None = None,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Resample one window per keypoint to ``size`` (2D).

    The window is an axis-aligned box of the *frame* the centres are given in; ``to_image`` maps that
    frame into ``image``'s pixels by any affine map, so a window defined on the (augmented) working
    grid can be sampled straight from the original scan, rotation and flip included, without
    resampling the whole scan.

    Args:
        image: ``(B, C, H, W)``.
        centres: ``(B, K, 2)`` window centres ``[row, col]`` in the frame (sub-pixel allowed).
        window: ``(B, 2)`` or ``(B, K, 2)`` window sizes in frame units.
        size: output ``(h, w)``.
        to_image: ``(B, 2, 3)`` affine ``image_pixel = M @ frame_point + t`` (``[M | t]``); ``None``:
            the frame is ``image``'s pixel grid.
        mode: ``grid_sample`` mode.

    Returns:
        ``(B * K, C, h, w)``, image by image, keypoint by keypoint.
    """
    if image.ndim != 4 or centres.ndim != 3 or centres.shape[-1] != 2:
        raise ValueError(f"crop_windows is 2D: image {tuple(image.shape)}, centres {tuple(centres.shape)}")
    b, k = centres.shape[:2]
    h, w = size
    centres = centres.to(image.device, image.dtype)
    window = torch.as_tensor(window, device=image.device, dtype=image.dtype)
    if window.ndim == 2:
        window = window[:, None].expand(b, k, 2)
    d_rows, d_cols = window_offsets(window.reshape(-1, 2), size)  # (B*K, h), (B*K, w)
    rows = (centres[..., 0].reshape(-1, 1) + d_rows)[:, :, None].expand(-1, h, w)
    cols = (centres[..., 1].reshape(-1, 1) + d_cols)[:, None, :].expand(-1, h, w)
    if to_image is not None:
        m = to_image.to(image.device, image.dtype).repeat_interleave(k, dim=0)[:, :, :, None, None]  # (B*K, 2, 3, 1, 1)
        rows, cols = (m[:, 0, 0] * rows + m[:, 0, 1] * cols + m[:, 0, 2], m[:, 1, 0] * rows + m[:, 1, 1] * cols + m[:, 1, 2])
    height, width = image.shape[2:]
    # grid_sample (align_corners=False): x_norm = (2 * x + 1) / W - 1, with x in pixel-centre coordinates
    grid = torch.stack([(2 * cols + 1) / width - 1, (2 * rows + 1) / height - 1], dim=-1)  # (B*K, h, w, 2)
    # one grid per image holding its K windows one above the other: no copy of the (large) image
    grid = grid.reshape(b, k * h, w, 2)
    out = F.grid_sample(image, grid, mode=mode, padding_mode="zeros", align_corners=False)  # (B, C, K*h, w)
    return out.reshape(b, image.shape[1], k, h, w).transpose(1, 2).reshape(b * k, image.shape[1], h, w)


def paste_windows(
    canvas: torch.Tensor, patches: torch.Tensor, centres: torch.Tensor, window: torch.Tensor, feather: float = 0.0
) -> torch.Tensor:
    """Resample windows back onto the source grid of one image, replacing the canvas inside them.

    Only the pixels whose centres fall inside a window are computed and changed (cost grows with the
    windows' area, not the image's).

    With ``feather = 0`` each window replaces the canvas (a hard paste); where windows overlap, later
    keypoints win. With ``feather > 0`` each window ``k`` is blended in with the weight ``w_k``, its
    :func:`feather_profile` along the rows times along the columns (1 in its middle, 0 at its border):
    ``out = w * sum_k(w_k p_k) / sum_k(w_k) + (1 - w) * canvas`` with ``w = max_k w_k``. For one window
    this is ``w_k p_k + (1 - w_k) canvas``; where windows overlap they are averaged by their weights,
    which, unlike taking the window of the larger weight, leaves no seam where their weights cross.

    Args:
        canvas: ``(C, H, W)`` the source-grid image to paste into (not modified).
        patches: ``(K, C, h, w)`` windows as made by :func:`crop_windows` for this image.
        centres: ``(K, 2)`` their centres in source pixels.
        window: ``(2,)`` or ``(K, 2)`` their sizes in source pixels.
        feather: 0 (hard paste) or the ramp fraction of :func:`feather_profile`.

    Returns:
        ``(C, H, W)`` a new tensor.
    """
    out = canvas.clone()
    n = patches.shape[2:]
    centres = centres.to(torch.float64)
    window = torch.as_tensor(window, dtype=torch.float64).expand(centres.shape[0], 2)
    if feather > 0:
        # sum_k w_k p_k, sum_k w_k and max_k w_k on the canvas grid, and the boxes they were added to
        total, weight, cover = torch.zeros_like(canvas), torch.zeros_like(canvas[:1]), torch.zeros_like(canvas[:1])
        boxes = []
    for kp in range(centres.shape[0]):
        c, s = centres[kp], window[kp]
        # pixels whose centres lie in [c - s / 2, c + s / 2)
        lo = [max(0, int(torch.ceil(c[d] - s[d] / 2))) for d in range(2)]
        hi = [min(canvas.shape[1 + d], int(torch.ceil(c[d] + s[d] / 2))) for d in range(2)]
        if hi[0] <= lo[0] or hi[1] <= lo[1]:
            continue
        d_rows = torch.arange(lo[0], hi[0], dtype=torch.float64) - c[0]
        d_cols = torch.arange(lo[1], hi[1], dtype=torch.float64) - c[1]
        # the inverse of window_offsets: source x -> patch pixel (x - c) * n / s + n / 2 - 0.5
        rows = d_rows * n[0] / s[0] + n[0] / 2 - 0.5
        cols = d_cols * n[1] / s[1] + n[1] / 2 - 0.5
        grid = torch.stack(
            torch.broadcast_tensors(((2 * cols + 1) / n[1] - 1)[None, :], ((2 * rows + 1) / n[0] - 1)[:, None]), dim=-1
        )
        # border padding: the outermost half pixel of the window repeats the patch's edge
        sampled = F.grid_sample(
            patches[kp : kp + 1], grid[None].to(patches.dtype), mode="bilinear", padding_mode="border", align_corners=False
        )[0].to(out.dtype)
        box = (slice(None), slice(lo[0], hi[0]), slice(lo[1], hi[1]))
        if feather <= 0:
            out[box] = sampled
            continue
        w = feather_profile(d_rows, s[0], feather)[:, None] * feather_profile(d_cols, s[1], feather)[None, :]
        w = w.to(out.dtype)[None]
        total[box] += w * sampled
        weight[box] += w
        cover[box] = torch.maximum(cover[box], w)
        boxes.append(box)
    if feather > 0:
        for box in boxes:  # overlapping boxes compute their shared pixels twice, to the same values
            mix = total[box] / weight[box].clamp_min(torch.finfo(out.dtype).tiny)
            out[box] = cover[box] * mix + (1 - cover[box]) * canvas[box]
    return out
