"""The deterministic transform chains shared by training, validation and prediction.

Augmentation is wired in the bundle config between :func:`load_transforms` and
:func:`target_transforms`; the predictor uses :func:`load_transforms` alone, with the settings the
model folder recorded, so a scan is prepared exactly as in training.
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.transforms import EnsureTyped, GenerateHeatmapd, ScaleIntensityRangePercentilesd, SelectItemsd

from glsmonai.transforms.loading import BinarizeLabeld, Keypointsd, LoadScand
from glsmonai.transforms.spatial import ToWorkingSized

__all__ = ["load_transforms", "target_transforms"]


def load_transforms(
    image_size: Sequence[int],
    num_keypoints: int,
    keypoint_rule: str | None = "iris_roots",
    intensity_percentiles: Sequence[float] = (0.5, 99.5),
    label_value: int | None = None,
    with_label: bool = True,
    load: bool = True,
) -> list:
    """Read, attach keypoints, binarise the label, scale intensities to [0, 1], go to the working size.

    Args:
        image_size: working size ``(rows, cols)`` of the networks.
        num_keypoints: K.
        keypoint_rule: rule deriving keypoints from the label when the datalist gives none.
        intensity_percentiles: image percentiles mapped to 0 and 1 (then clipped).
        label_value: the label value that is the foreground (``None``: any value above 0).
        with_label: ``False`` for prediction (image only).
        load: ``False`` when the caller has read the scan already (``d["image"]`` is ``(1, rows, cols)``).
    """
    keys = ["image", "label"] if with_label else ["image"]
    chain = [LoadScand(keys)] if load else []
    if with_label:
        # the rule reads the label map before binarisation (lv_apex_base needs the left atrium)
        chain += [Keypointsd("label", num_keypoints, keypoint_rule), BinarizeLabeld("label", label_value)]
    lower, upper = intensity_percentiles
    chain += [
        ScaleIntensityRangePercentilesd("image", lower=lower, upper=upper, b_min=0.0, b_max=1.0, clip=True),
        ToWorkingSized(keys, image_size, points_key="keypoints" if with_label else None),
    ]
    return chain


def target_transforms(sigma: float) -> list:
    """Gaussian keypoint heatmaps (MONAI ``GenerateHeatmapd``), then the keys a batch needs."""
    return [
        GenerateHeatmapd(keys="keypoints", heatmap_keys="heatmap", ref_image_keys="image", sigma=sigma),
        SelectItemsd(keys=["image", "label", "heatmap", "keypoints", "image_path"]),
        EnsureTyped(keys=["image", "label", "heatmap"], track_meta=False),
    ]
