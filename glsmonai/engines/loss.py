"""What a stage's output is compared with, and the loss of each stage (read from :mod:`glsmonai.stages`).

With ``crop_space original`` the local and fused outputs are windows of the original scan, and their
targets are the original-resolution label resampled at the same windows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn as nn

from glsmonai.networks.keys import GLSKeys
from glsmonai.stages import Stage, get_stage
from glsmonai.transforms.crop import crop_at_points, crop_windows

__all__ = ["GLSLoss", "local_target", "output_target"]

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def local_target(pred: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], crop_size: Sequence[int]) -> torch.Tensor:
    """The label in the local windows, ``(B*K, 1, h, w)``: cut at the predicted keypoints of the working
    label, or resampled from the original-resolution label at the original-space windows."""
    if GLSKeys.FRAME_CENTRES.value in pred:
        size = pred[GLSKeys.LOCAL.value].shape[2:]
        return crop_windows(
            targets["source_label"], pred[GLSKeys.FRAME_CENTRES.value], pred[GLSKeys.FRAME_WINDOW.value], size,
            to_image=pred[GLSKeys.TO_SOURCE.value],
        )
    return crop_at_points(targets["label"], pred[GLSKeys.KEYPOINTS.value], crop_size)


def output_target(
    output: str, pred: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], crop_size: Sequence[int]
) -> torch.Tensor:
    """The label on the pixels of ``output``: the label in the windows for the local output and for the
    fused output of ``crop_space original`` (whose windows carry ``frame_centres``), else the working label."""
    if output == GLSKeys.LOCAL.value or (output == GLSKeys.FUSED.value and GLSKeys.FRAME_CENTRES.value in pred):
        return local_target(pred, targets, crop_size)
    return targets["label"]


class GLSLoss(nn.Module):
    """Loss of one stage: its output against its target, plus the terms the stage table names.

    Args:
        stage: ``"stage1"`` ... (or 1, 2, 3).
        seg_loss: segmentation loss on logits, e.g. ``DiceCELoss(sigmoid=True)`` or ``BCEWithLogitsLoss()``.
        crop_size: the local window size (to crop the working label at the keypoints).
        heatmap_loss: heatmap loss on logits against the Gaussian heatmaps (default BCE with logits).
        heatmap_weight: weight of the heatmap term (stages whose row has ``heatmap_loss``).
        aux_weight: weight of the global and local segmentation terms (stages whose row has ``aux_loss``);
            0, the thesis' loss, by default (the bundle sets 0.5).

    ``forward(pred, targets)``: ``pred`` the network's output dict, ``targets`` with ``label``
    ``(B, 1, H, W)``, ``heatmap`` ``(B, K, H, W)`` and, for ``crop_space original``, ``source_label``.
    """

    def __init__(
        self,
        stage: str | int | Stage,
        seg_loss: Loss,
        crop_size: Sequence[int],
        heatmap_loss: Loss | None = None,
        heatmap_weight: float = 1.0,
        aux_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.stage = get_stage(stage)
        self.seg_loss = seg_loss
        self.heatmap_loss = heatmap_loss or nn.BCEWithLogitsLoss()
        self.heatmap_weight = heatmap_weight
        self.crop_size = tuple(crop_size)
        self.aux_weight = aux_weight

    def forward(self, pred: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
        out = self.stage.output
        loss = self.seg_loss(pred[out], output_target(out, pred, targets, self.crop_size))
        if self.stage.heatmap_loss and self.heatmap_weight > 0:
            loss = loss + self.heatmap_weight * self.heatmap_loss(pred[GLSKeys.HEATMAP.value], targets["heatmap"])
        if self.stage.aux_loss and self.aux_weight > 0:
            aux = self.seg_loss(pred[GLSKeys.GLOBAL.value], targets["label"])
            aux = aux + self.seg_loss(pred[GLSKeys.LOCAL.value], local_target(pred, targets, self.crop_size))
            loss = loss + self.aux_weight * aux
        return loss
