"""A training stage as data: what the batch holds, what the loss compares, what validation scores.

The three GLS stages differ only in these pieces; the loop itself is MONAI's ``SupervisedTrainer``
(see :mod:`glsmonai.engines.runner`).

* stage 1: global segmentation + keypoint heatmaps against the label and the Gaussian heatmaps;
* stage 2: the local U-Net on crops at the keypoints the frozen stage-1 network predicts, against the
  label cropped at the same keypoints;
* stage 3: everything unfrozen, the fused output against the label (plus, by default, the heatmap
  loss so the keypoints stay where they belong).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping

import torch
import torch.nn as nn
from monai.transforms import Transform

from glsmonai.networks.gls import GLSKeys
from glsmonai.transforms.crop import crop_at_points

__all__ = ["prepare_gls_batch", "GLSLoss", "StageOutputd", "stage_target", "STAGE_OUTPUT"]

#: the network output that each stage trains and validates
STAGE_OUTPUT: dict[int, str] = {1: GLSKeys.GLOBAL.value, 2: GLSKeys.LOCAL.value, 3: GLSKeys.FUSED.value}


def prepare_gls_batch(
    batchdata: Mapping[Hashable, torch.Tensor], device: str | torch.device | None = None, non_blocking: bool = False, **kwargs
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Batch -> ``(image, targets)`` for MONAI engines.

    Returns:
        ``image`` ``(B, C, H, W)`` and ``targets`` with ``label`` ``(B, 1, H, W)`` and, when present,
        ``heatmap`` ``(B, K, H, W)``.
    """
    image = batchdata["image"].as_tensor() if hasattr(batchdata["image"], "as_tensor") else batchdata["image"]
    targets = {}
    for key in ("label", "heatmap"):
        if key in batchdata:
            value = batchdata[key]
            value = value.as_tensor() if hasattr(value, "as_tensor") else value
            targets[key] = value.to(device=device, non_blocking=non_blocking, **kwargs)
    return image.to(device=device, non_blocking=non_blocking, **kwargs), targets


def stage_target(stage: int, pred: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], crop_size) -> torch.Tensor:
    """The label that the stage's output is compared with: the crops at the predicted keypoints in stage 2."""
    label = targets["label"]
    if stage == 2:
        return crop_at_points(label, pred[GLSKeys.KEYPOINTS.value], crop_size)
    return label


class GLSLoss(nn.Module):
    """Loss of one stage.

    Args:
        stage: 1, 2 or 3.
        seg_loss: segmentation loss on logits, e.g. ``DiceCELoss(sigmoid=True)`` or ``BCEWithLogitsLoss()``.
        heatmap_loss: heatmap loss on logits against the Gaussian heatmaps (default BCE with logits).
        heatmap_weight: weight of the heatmap term in stages 1 and 3.
        crop_size: the local window size (to crop the label in stage 2).
        stage3_aux_weight: weight of the global and local segmentation terms added in stage 3.
    """

    def __init__(
        self,
        stage: int,
        seg_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        crop_size,
        heatmap_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        heatmap_weight: float = 1.0,
        stage3_aux_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.stage = stage
        self.seg_loss = seg_loss
        self.heatmap_loss = heatmap_loss or nn.BCEWithLogitsLoss()
        self.heatmap_weight = heatmap_weight
        self.crop_size = tuple(crop_size)
        self.stage3_aux_weight = stage3_aux_weight

    def forward(self, pred: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
        out_key = STAGE_OUTPUT[self.stage]
        loss = self.seg_loss(pred[out_key], stage_target(self.stage, pred, targets, self.crop_size))
        if self.stage in (1, 3) and self.heatmap_weight > 0:
            loss = loss + self.heatmap_weight * self.heatmap_loss(pred[GLSKeys.HEATMAP.value], targets["heatmap"])
        if self.stage == 3 and self.stage3_aux_weight > 0:
            aux = self.seg_loss(pred[GLSKeys.GLOBAL.value], targets["label"])
            aux = aux + self.seg_loss(pred[GLSKeys.LOCAL.value], stage_target(2, pred, targets, self.crop_size))
            loss = loss + self.stage3_aux_weight * aux
        return loss


class StageOutputd(Transform):
    """Evaluator post-processing: the stage's output thresholded, and the label it is scored against.

    Turns ``{"pred": {...network outputs...}, "label": {"label", "heatmap"}}`` into
    ``{"pred": (N, 1, h, w), "label": (N, 1, h, w)}`` binary tensors for MONAI's ``MeanDice`` /
    ``MeanIoUHandler`` (``N = B`` for stages 1 and 3, ``B * K`` crops for stage 2).
    """

    def __init__(self, stage: int, crop_size, threshold: float = 0.5) -> None:
        self.stage = stage
        self.crop_size = tuple(crop_size)
        self.threshold = threshold

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        pred, targets = d["pred"], d["label"]
        d["pred"] = (torch.sigmoid(pred[STAGE_OUTPUT[self.stage]]) > self.threshold).float()
        d["label"] = (stage_target(self.stage, pred, targets, self.crop_size) > 0.5).float()
        return d
