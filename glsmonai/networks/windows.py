"""Where the local windows come from: the two crop spaces of :class:`~glsmonai.networks.GLSNet`.

* :class:`WorkingWindows` (thesis): fixed-size crops of the working-size image at the keypoints; the
  fusion network sees the whole working image (global probability, pasted local probability and,
  optionally, the window mask).
* :class:`OriginalWindows`: windows of the original-resolution scan, resampled to the local network's
  input size through the working-to-original map; the fusion network sees the windows only (global
  probability sampled at the same pixels, local probability), and the predictor pastes them on the
  original grid.

Each strategy has two steps: :meth:`crop` (image and keypoints -> local inputs) and :meth:`fusion_input`
(outputs so far -> the fusion network's input), each also returning the outputs it adds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from glsmonai.networks.keys import GLSKeys
from glsmonai.transforms.crop import crop_at_points, crop_windows, paste_at_points

__all__ = ["CROP_SPACES", "OriginalWindows", "WorkingWindows"]

#: where the local windows are cut from: the working-size image (thesis) or the original scan
CROP_SPACES = ("working", "original")

Outputs = dict[str, torch.Tensor]


class WorkingWindows:
    """Crops of ``crop_size`` working pixels centred at the keypoints (thesis).

    Args:
        crop_size: ``(h, w)`` of the crops.
        window_channel: give the fusion network the window mask as a third channel.
        jitter: in training, shift each window centre by up to this fraction of the window (uniform, per
            axis), so the local and fusion networks meet off-centre windows as at test time. Without it,
            stages 2 and 3 crop at the keypoints the network finds on its own training images, which are
            nearly exact there, and the local network learns that the structure sits in the middle.
    """

    def __init__(self, crop_size: Sequence[int], window_channel: bool = True, jitter: float = 0.0) -> None:
        self.crop_size = tuple(int(c) for c in crop_size)
        self.window_channel = window_channel
        self.jitter = float(jitter)

    def crop(self, image: torch.Tensor, keypoints: torch.Tensor, training: bool = False, **_) -> tuple[torch.Tensor, Outputs]:
        """``(B, C, H, W)`` image, ``(B, K, 2)`` keypoints -> ``(B*K, C, h, w)`` crops.

        In training with ``jitter``, the shifted centres are returned as ``keypoints``: the windows are then
        pasted back (:meth:`fusion_input`) and the label cropped (:func:`~glsmonai.engines.loss.local_target`)
        at the same place as the image.
        """
        placed: Outputs = {}
        if training and self.jitter > 0:
            reach = keypoints.new_tensor(self.crop_size) * self.jitter  # (2,) working pixels
            keypoints = keypoints + (torch.rand_like(keypoints) * 2 - 1) * reach
            placed[GLSKeys.KEYPOINTS.value] = keypoints
        return crop_at_points(image, keypoints, self.crop_size), placed

    def fusion_input(self, out: Outputs) -> tuple[torch.Tensor, Outputs]:
        """``(B, 2 or 3, H, W)``: global probability, local probability pasted at the keypoints, window mask."""
        local_prob = torch.sigmoid(out[GLSKeys.LOCAL.value])
        points, spatial = out[GLSKeys.KEYPOINTS.value], out[GLSKeys.GLOBAL.value].shape[2:]
        pasted = paste_at_points(local_prob, points, spatial)
        windows = paste_at_points(torch.ones_like(local_prob), points, spatial)
        parts = [torch.sigmoid(out[GLSKeys.GLOBAL.value]), pasted] + ([windows] if self.window_channel else [])
        return torch.cat(parts, dim=1), {GLSKeys.LOCAL_PASTED.value: pasted, GLSKeys.WINDOWS.value: windows}


class OriginalWindows:
    """Windows of the original scan around the keypoints, resampled to ``local_size``.

    Each window is an axis-aligned box of the working grid around the keypoint, as large as ``window``
    original pixels, sampled from ``source`` through ``to_source`` (which carries any augmentation of
    the working image, so the scan itself is never warped).

    Args:
        local_size: ``(h, w)`` the local network's input.
        jitter: in training, shift each window centre by up to this fraction of the window (uniform),
            so stages 2 and 3 meet the keypoint errors of test time.
    """

    def __init__(self, local_size: Sequence[int], jitter: float = 0.0) -> None:
        self.local_size = tuple(int(c) for c in local_size)
        self.jitter = float(jitter)

    def crop(
        self,
        image: torch.Tensor,
        keypoints: torch.Tensor,
        training: bool = False,
        source: torch.Tensor | None = None,
        to_source: torch.Tensor | None = None,
        window: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Outputs]:
        """``(B*K, C, *local_size)`` crops of ``source`` ``(B, C, H0, W0)``; adds the window geometry
        (``centres``, ``window``, ``frame_centres``, ``frame_window``, ``to_source``, see :class:`GLSKeys`)."""
        if source is None or to_source is None or window is None:
            raise ValueError("crop_space 'original' needs source, to_source and window with the image")
        linear, shift = to_source[:, :, :2], to_source[:, :, 2]  # (B, 2, 2), (B, 2)
        frame_window = window / linear.norm(dim=1)  # original pixels per working step, per axis
        frame_centres = keypoints
        if training and self.jitter > 0:
            jitter = (torch.rand_like(frame_centres) * 2 - 1) * self.jitter * frame_window[:, None]
            frame_centres = frame_centres + jitter
        crops = crop_windows(source, frame_centres, frame_window, self.local_size, to_image=to_source)
        return crops, {
            GLSKeys.CENTRES.value: frame_centres @ linear.transpose(1, 2) + shift[:, None],
            GLSKeys.WINDOW.value: window,
            GLSKeys.FRAME_CENTRES.value: frame_centres,
            GLSKeys.FRAME_WINDOW.value: frame_window,
            GLSKeys.TO_SOURCE.value: to_source,
        }

    def fusion_input(self, out: Outputs) -> tuple[torch.Tensor, Outputs]:
        """``(B*K, 2, h, w)``: the global probability sampled at the window pixels, the local probability."""
        global_prob = torch.sigmoid(out[GLSKeys.GLOBAL.value])
        global_windows = crop_windows(
            global_prob, out[GLSKeys.FRAME_CENTRES.value], out[GLSKeys.FRAME_WINDOW.value], self.local_size
        )
        fusion_in = torch.cat([global_windows, torch.sigmoid(out[GLSKeys.LOCAL.value])], dim=1)
        return fusion_in, {GLSKeys.GLOBAL_WINDOWS.value: global_windows}
