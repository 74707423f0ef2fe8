"""A batch in, a batch out: what MONAI's engines need from a GLS stage besides the loss.

* :func:`prepare_gls_batch`: a collated batch -> the network's input and the targets;
* :class:`StageOutputd`: the evaluator's post-processing, the stage's output and its target as binary
  masks for MONAI's ``MeanDice`` / ``MeanIoUHandler``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.transforms import Transform

from glsmonai.engines.loss import output_target
from glsmonai.stages import Stage, get_stage

__all__ = ["SOURCE_KEYS", "StageOutputd", "prepare_gls_batch"]

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


class StageOutputd(Transform):
    """Evaluator post-processing: the stage's output thresholded, and the label it is scored against.

    Turns ``{"pred": {...network outputs...}, "label": {"label", "heatmap"}}`` into
    ``{"pred": (N, 1, h, w), "label": (N, 1, h, w)}`` binary tensors (``N = B`` for the global and
    working fused outputs, ``B * K`` windows for the local output and the original-space fused one).

    Args:
        stage: ``"stage1"`` ... (or 1, 2, 3).
        crop_size: the local window size in working pixels.
        threshold: on the sigmoid of the output.
    """

    def __init__(self, stage: str | int | Stage, crop_size: Sequence[int], threshold: float = 0.5) -> None:
        self.stage = get_stage(stage)
        self.crop_size = tuple(crop_size)
        self.threshold = threshold

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        pred, targets = d["pred"], d["label"]
        out = self.stage.output
        d["pred"] = (torch.sigmoid(pred[out]) > self.threshold).float()
        d["label"] = (output_target(out, pred, targets, self.crop_size) > 0.5).float()
        return d
