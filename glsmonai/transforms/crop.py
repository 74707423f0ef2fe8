"""Keypoint-centred crops of a fixed size, and the paste back onto an empty canvas.

MONAI's ``SpatialCrop(roi_center, roi_size)`` shrinks and shifts a window that crosses the border.
The local branch needs every crop exactly ``size`` and centred on its keypoint, batched over many
keypoints and differentiable for the paste, so these two functions pad by half a window and slice.

Convention: the window of a keypoint ``p`` covers ``[p - size // 2, p - size // 2 + size)`` along each
axis, so ``p`` is at index ``size // 2`` of the crop. Pixels outside the image are zero.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

__all__ = ["crop_at_points", "paste_at_points", "KeypointCrop", "KeypointCropd", "PasteAtPoints"]


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
