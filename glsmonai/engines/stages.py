"""A training stage as data: what the batch holds, what the loss compares, what validation scores.

The three GLS stages differ only in these pieces; the loop itself is MONAI's ``SupervisedTrainer``
(see :mod:`glsmonai.engines.runner`).

* stage 1: global segmentation + keypoint heatmaps against the label and the Gaussian heatmaps;
* stage 2: the local U-Net on crops at the keypoints the frozen stage-1 network predicts, against the
  label cropped at the same keypoints;
* stage 3: everything unfrozen, the fused output against the label (plus, by default, the heatmap
  loss so the keypoints stay where they belong).

With ``crop_space original`` the local and fused outputs are windows of the original scan, and their
targets are the original-resolution label resampled at the same windows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping

import torch
import torch.nn as nn
from monai.transforms import Transform

from glsmonai.networks.gls import GLSKeys
from glsmonai.transforms.crop import crop_at_points, crop_windows

__all__ = ["prepare_gls_batch", "GLSLoss", "StageOutputd", "stage_target", "local_target", "STAGE_OUTPUT", "SOURCE_KEYS"]

#: the network output that each stage trains and validates
STAGE_OUTPUT: dict[int, str] = {1: GLSKeys.GLOBAL.value, 2: GLSKeys.LOCAL.value, 3: GLSKeys.FUSED.value}


#: batch keys passed to the network as keyword arguments (``crop_space original``)
SOURCE_KEYS = ("source", "to_source", "window")


def prepare_gls_batch(
    batchdata: Mapping[Hashable, torch.Tensor], device: str | torch.device | None = None, non_blocking: bool = False, **kwargs
) -> tuple:
    """Batch -> ``(image, targets)`` for MONAI engines, or ``(image, targets, (), network_kwargs)``
    when the batch carries the original-resolution scans (``crop_space original``).

    Returns:
        ``image`` ``(B, C, H, W)``; ``targets`` with ``label`` ``(B, 1, H, W)`` and, when present,
        ``heatmap`` ``(B, K, H, W)`` and ``source_label`` ``(B, 1, H0, W0)``; the network's ``source``,
        ``to_source`` and ``window`` (see :meth:`~glsmonai.networks.GLSNet.forward`).
    """

    def move(value):
        value = value.as_tensor() if hasattr(value, "as_tensor") else torch.as_tensor(value)
        return value.to(device=device, non_blocking=non_blocking, **kwargs)

    targets = {key: move(batchdata[key]) for key in ("label", "heatmap", "source_label") if key in batchdata}
    image = move(batchdata["image"])
    if "source" not in batchdata:
        return image, targets
    return image, targets, (), {key: move(batchdata[key]).float() for key in SOURCE_KEYS}


def local_target(pred: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], crop_size) -> torch.Tensor:
    """The label in the local windows: cut at the predicted keypoints of the working label, or resampled
    from the original-resolution label at the original-space windows."""
    if GLSKeys.FRAME_CENTRES.value in pred:
        size = pred[GLSKeys.LOCAL.value].shape[2:]
        return crop_windows(
            targets["source_label"], pred[GLSKeys.FRAME_CENTRES.value], pred[GLSKeys.FRAME_WINDOW.value], size,
            to_image=pred[GLSKeys.TO_SOURCE.value],
        )
    return crop_at_points(targets["label"], pred[GLSKeys.KEYPOINTS.value], crop_size)


def stage_target(stage: int, pred: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], crop_size) -> torch.Tensor:
    """The label that the stage's output is compared with: the label in the windows for the local output
    (stage 2) and for the fused output of ``crop_space original`` (stage 3), else the working label."""
    if stage == 2 or (stage == 3 and GLSKeys.CENTRES.value in pred):
        return local_target(pred, targets, crop_size)
    return targets["label"]


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
            aux = aux + self.seg_loss(pred[GLSKeys.LOCAL.value], local_target(pred, targets, self.crop_size))
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
