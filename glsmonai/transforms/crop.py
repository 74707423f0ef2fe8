"""Keypoint-centred crops of a fixed size, and the paste back onto an empty canvas.

MONAI's ``SpatialCrop(roi_center, roi_size)`` shrinks and shifts a window that crosses the border.
The local branch needs every crop exactly ``size`` and centred on its keypoint, batched over many
keypoints and differentiable for the paste, so these two functions pad by half a window and slice.

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
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

__all__ = ["crop_at_points", "paste_at_points", "crop_windows", "paste_windows", "window_positions", "KeypointCrop", "KeypointCropd", "PasteAtPoints"]


def _int_points(points: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
    """Round points to pixels and clamp them into the image."""
    pts = torch.round(torch.as_tensor(points, dtype=torch.float32)).long()
    upper = torch.as_tensor([s - 1 for s in spatial], device=pts.device)
    return torch.minimum(torch.clamp(pts, min=0), upper)


def crop_at_points(image: torch.Tensor, points: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Cut one fixed-size window per keypoint.

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
    pts = _int_points(points.to(image.device), spatial)
    pads: list[int] = []
    for s in reversed(size):
        pads.extend([s // 2, s - s // 2])
    padded = F.pad(image, pads)
    crops = []
    for b in range(pts.shape[0]):
        for k in range(pts.shape[1]):
            window = tuple(slice(int(p), int(p) + s) for p, s in zip(pts[b, k], size))
            crops.append(padded[(b, slice(None), *window)])
    return torch.stack(crops)


def paste_at_points(patches: torch.Tensor, points: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
    """Paste windows back at their keypoints on an empty canvas; overlaps keep the maximum.

    Args:
        patches: ``(B * K, C, *size)`` as returned by :func:`crop_at_points`.
        points: ``(B, K, D)`` the same keypoints.
        spatial: the canvas size ``S`` (D ints).

    Returns:
        ``(B, C, *S)``; differentiable with respect to ``patches``.
    """
    n_img, n_pts = points.shape[:2]
    size = patches.shape[2:]
    if patches.shape[0] != n_img * n_pts:
        raise ValueError(f"{patches.shape[0]} patches for {n_img} x {n_pts} keypoints")
    pts = _int_points(points.to(patches.device), spatial)
    canvases = []
    for i in range(n_img * n_pts):
        p = pts[i // n_pts, i % n_pts]
        pads: list[int] = []
        # canvas of the padded frame, then cut back to S
        for d in reversed(range(len(spatial))):
            before = int(p[d])  # window start in padded coordinates
            after = spatial[d] + size[d] - before - size[d]
            pads.extend([before, after])
        canvas = F.pad(patches[i], pads)
        window = tuple(slice(s // 2, s // 2 + full) for s, full in zip(size, spatial))
        canvases.append(canvas[(slice(None), *window)])
    stacked = torch.stack(canvases).reshape(n_img, n_pts, patches.shape[1], *spatial)
    return stacked.amax(dim=1)


def window_positions(centres: torch.Tensor, window: torch.Tensor, size: Sequence[int]) -> list[torch.Tensor]:
    """Source coordinates sampled by each window, one ``(N, n_d)`` tensor per axis.

    Args:
        centres: ``(N, D)`` window centres in source pixels.
        window: ``(N, D)`` window sizes in source pixels.
        size: output size ``n``, D ints.
    """
    axes = []
    for d, n in enumerate(size):
        steps = torch.arange(n, device=centres.device, dtype=centres.dtype) + 0.5 - n / 2.0
        axes.append(centres[:, d : d + 1] + steps[None] * (window[:, d : d + 1] / n))
    return axes


def crop_windows(
    image: torch.Tensor,
    centres: torch.Tensor,
    window: torch.Tensor,
    size: Sequence[int],
    to_image: torch.Tensor | None = None,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Resample one window per keypoint to ``size`` (2D).

    Args:
        image: ``(B, C, H, W)``.
        centres: ``(B, K, 2)`` window centres ``[row, col]`` in source pixels (sub-pixel allowed).
        window: ``(B, 2)`` or ``(B, K, 2)`` window sizes in source pixels.
        size: output ``(h, w)``.
        to_image: ``(B, 2, 2)`` ``[[scale_row, scale_col], [offset_row, offset_col]]`` mapping source
            pixels to ``image`` pixels (``image = source * scale + offset``); ``None`` when ``image`` is
            the source itself. Lets one window be sampled from the original image and from the
            working-size global prediction alike.
        mode: ``grid_sample`` mode.

    Returns:
        ``(B * K, C, h, w)``, image by image, keypoint by keypoint.
    """
    if image.ndim != 4 or centres.ndim != 3 or centres.shape[-1] != 2:
        raise ValueError(f"crop_windows is 2D: image {tuple(image.shape)}, centres {tuple(centres.shape)}")
    b, k = centres.shape[:2]
    centres = centres.to(image.device, image.dtype)
    window = torch.as_tensor(window, device=image.device, dtype=image.dtype)
    if window.ndim == 2:
        window = window[:, None].expand(b, k, 2)
    rows, cols = window_positions(centres.reshape(-1, 2), window.reshape(-1, 2), size)
    if to_image is not None:
        scale, offset = to_image.to(image.device, image.dtype).repeat_interleave(k, dim=0).unbind(1)
        rows = rows * scale[:, 0:1] + offset[:, 0:1]
        cols = cols * scale[:, 1:2] + offset[:, 1:2]
    h, w = image.shape[2:]
    # grid_sample (align_corners=False): x_norm = (2 * x + 1) / W - 1, with x in pixel-centre coordinates
    grid = torch.stack(
        torch.broadcast_tensors(((2 * cols + 1) / w - 1)[:, None, :], ((2 * rows + 1) / h - 1)[:, :, None]), dim=-1
    )
    sources = image.repeat_interleave(k, dim=0)
    return F.grid_sample(sources, grid, mode=mode, padding_mode="zeros", align_corners=False)


def paste_windows(
    canvas: torch.Tensor, patches: torch.Tensor, centres: torch.Tensor, window: torch.Tensor
) -> torch.Tensor:
    """Resample windows back onto the source grid of one image, replacing the canvas inside them.

    Only the pixels whose centres fall inside a window are computed (cost grows with the windows'
    area, not the image's); where windows overlap, later keypoints win.

    Args:
        canvas: ``(C, H, W)`` the source-grid image to paste into (not modified).
        patches: ``(K, C, h, w)`` windows as made by :func:`crop_windows` for this image.
        centres: ``(K, 2)`` their centres in source pixels.
        window: ``(2,)`` or ``(K, 2)`` their sizes in source pixels.

    Returns:
        ``(C, H, W)`` a new tensor.
    """
    out = canvas.clone()
    n = patches.shape[2:]
    centres = centres.to(torch.float64)
    window = torch.as_tensor(window, dtype=torch.float64).expand(centres.shape[0], 2)
    for kp in range(centres.shape[0]):
        c, s = centres[kp], window[kp]
        # pixels whose centres lie in [c - s / 2, c + s / 2)
        lo = [max(0, int(torch.ceil(c[d] - s[d] / 2))) for d in range(2)]
        hi = [min(canvas.shape[1 + d], int(torch.ceil(c[d] + s[d] / 2))) for d in range(2)]
        if hi[0] <= lo[0] or hi[1] <= lo[1]:
            continue
        # the inverse of window_positions: source x -> patch pixel (x - c) * n / s + n / 2 - 0.5
        rows = (torch.arange(lo[0], hi[0], dtype=torch.float64) - c[0]) * n[0] / s[0] + n[0] / 2 - 0.5
        cols = (torch.arange(lo[1], hi[1], dtype=torch.float64) - c[1]) * n[1] / s[1] + n[1] / 2 - 0.5
        grid = torch.stack(
            torch.broadcast_tensors(((2 * cols + 1) / n[1] - 1)[None, :], ((2 * rows + 1) / n[0] - 1)[:, None]), dim=-1
        )
        # border padding: the outermost half pixel of the window repeats the patch's edge
        sampled = F.grid_sample(
            patches[kp : kp + 1], grid[None].to(patches.dtype), mode="bilinear", padding_mode="border", align_corners=False
        )[0]
        out[:, lo[0] : hi[0], lo[1] : hi[1]] = sampled.to(out.dtype)
    return out


class KeypointCrop(Transform):
    """Array transform: ``(C, *S)`` image and ``(K, D)`` keypoints -> ``(K, C, *size)`` crops."""

    def __init__(self, size: Sequence[int]) -> None:
        self.size = tuple(int(s) for s in size)

    def __call__(self, img: torch.Tensor | np.ndarray, points: torch.Tensor | np.ndarray) -> torch.Tensor:
        img_t = torch.as_tensor(np.asarray(img) if isinstance(img, np.ndarray) else img)
        pts = torch.as_tensor(np.asarray(points, dtype=np.float32))
        return crop_at_points(img_t[None], pts[None], self.size)


class KeypointCropd(MapTransform):
    """Dictionary version of :class:`KeypointCrop`: crops every key at ``d[points_key]``."""

    def __init__(self, keys: KeysCollection, points_key: str, size: Sequence[int], allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.points_key = points_key
        self.cropper = KeypointCrop(size)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.cropper(d[key], d[self.points_key])
        return d


class PasteAtPoints(Transform):
    """Array transform: ``(K, C, *size)`` crops and ``(K, D)`` keypoints -> ``(C, *S)`` canvas."""

    def __init__(self, spatial_size: Sequence[int]) -> None:
        self.spatial_size = tuple(int(s) for s in spatial_size)

    def __call__(self, patches: torch.Tensor, points: torch.Tensor | np.ndarray) -> torch.Tensor:
        pts = torch.as_tensor(np.asarray(points, dtype=np.float32))
        return paste_at_points(torch.as_tensor(patches), pts[None], self.spatial_size)[0]
