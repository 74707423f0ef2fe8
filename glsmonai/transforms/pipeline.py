"""The deterministic transform chains shared by training, validation and prediction.

Augmentation is wired in the bundle config between :func:`load_transforms` and
:func:`target_transforms`; the predictor uses :func:`load_transforms` alone, with the settings the
model folder recorded, so a scan is prepared exactly as in training.

With ``crop_space original`` the original-resolution copies (``source``, ``source_label``), the map
from working to original pixels (``to_source``) and the window (``window``) are made once, before the
first random transform, so MONAI's ``CacheDataset`` keeps them: the scan is read and resized once.
The augmentation warps only the working-size arrays and composes its warp into ``to_source``; the
local windows are then sampled from the untouched original through that map.
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.transforms import EnsureTyped, GenerateHeatmapd, ScaleIntensityRangePercentilesd, SelectItemsd

from glsmonai.transforms.loading import BinarizeLabeld, Keypointsd, LoadScand
from glsmonai.transforms.spatial import CropWindowd, ToWorkingSized

__all__ = ["load_transforms", "target_transforms", "to_working_keeping_source"]


def load_transforms(
    image_size: Sequence[int],
    num_keypoints: int,
    keypoint_rule: str | None = "iris_roots",
    intensity_percentiles: Sequence[float] = (0.5, 99.5),
    label_value: int | None = None,
    with_label: bool = True,
    load: bool = True,
    crop_space: str = "working",
    crop_size: Sequence[int] | None = None,
    crop_window: Sequence[float] | None = None,
    crop_window_mm: Sequence[float] | None = None,
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
        crop_space: ``"original"`` also keeps the original-resolution arrays, the working-to-original
            map and the local window (:func:`to_working_keeping_source`; needs ``crop_size``).
        crop_size, crop_window, crop_window_mm: the local window (see :func:`window_in_original`).
    """
    keys = ["image", "label"] if with_label else ["image"]
    chain = [LoadScand(keys)] if load else []
    if with_label:
        # the rule reads the label map before binarisation (lv_apex_base needs the left atrium)
        chain += [Keypointsd("label", num_keypoints, keypoint_rule), BinarizeLabeld("label", label_value)]
    lower, upper = intensity_percentiles
    chain += [
        ScaleIntensityRangePercentilesd("image", lower=lower, upper=upper, b_min=0.0, b_max=1.0, clip=True),
    ]
    if crop_space == "original":
        if crop_size is None:
            raise ValueError("crop_space 'original' needs crop_size (the window's default field of view)")
        chain += to_working_keeping_source(image_size, crop_size, crop_window, crop_window_mm, with_label)
    else:
        chain.append(ToWorkingSized(keys, image_size, points_key="keypoints" if with_label else None))
    return chain


def to_working_keeping_source(
    image_size: Sequence[int],
    crop_size: Sequence[int],
    crop_window: Sequence[float] | None = None,
    crop_window_mm: Sequence[float] | None = None,
    with_label: bool = True,
) -> list:
    """Working-size image (and label, keypoints) with the original kept as ``source`` (``source_label``),
    the working-to-original map ``to_source`` and the local ``window`` in original pixels."""
    keys = {"image": "source", "label": "source_label"} if with_label else {"image": "source"}
    return [
        ToWorkingSized(list(keys), image_size, points_key="keypoints" if with_label else None, source_keys=keys),
        CropWindowd(crop_size, crop_window, crop_window_mm),
    ]


def target_transforms(sigma: float, crop_space: str = "working") -> list:
    """Gaussian keypoint heatmaps (MONAI ``GenerateHeatmapd``), then the keys a batch needs.

    With ``crop_space original`` the batch also holds ``source``, ``source_label``, ``to_source`` and
    ``window``; collate with ``pad_list_data_collate(method="end")``, which pads scans of different
    sizes at the end and so leaves their pixel coordinates unchanged.
    """
    keys = ["image", "label", "heatmap", "keypoints", "image_path"]
    if crop_space == "original":
        keys += ["source", "source_label", "to_source", "window"]
    return [
        GenerateHeatmapd(keys="keypoints", heatmap_keys="heatmap", ref_image_keys="image", sigma=sigma),
        SelectItemsd(keys=keys),
        EnsureTyped(keys=[k for k in keys if k not in ("keypoints", "image_path")], track_meta=False),
    ]
