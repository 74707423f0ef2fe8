"""The predictor's transform chain: a scan, already read, prepared as training prepared it.

Training's chains are written out in ``bundles/gls/configs/train.json`` (``train#deterministic_transforms``,
``train#random_transforms``, ``train#target_transforms``). Prediction has no label and no bundle at
hand, only the model folder's recorded settings, so its chain is built here from the same transforms
in the same order; a test checks that both prepare an image identically.
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.transforms import Compose, ScaleIntensityRangePercentilesd

from glsmonai.transforms.spatial import CropWindowd, ToWorkingSized

__all__ = ["prediction_transforms"]


def prediction_transforms(
    image_size: Sequence[int],
    intensity_percentiles: Sequence[float] = (0.5, 99.5),
    crop_space: str = "working",
    crop_size: Sequence[int] | None = None,
    crop_window: Sequence[float] | None = None,
    crop_window_mm: Sequence[float] | None = None,
) -> Compose:
    """``{"image": (1, rows, cols), "geometry"}`` -> intensities scaled to [0, 1], working size.

    Args:
        image_size: working size ``(rows, cols)`` of the networks.
        intensity_percentiles: image percentiles mapped to 0 and 1 (then clipped).
        crop_space: ``"original"`` also keeps the scan as ``source``, the working-to-original map
            ``to_source`` and the local ``window`` in original pixels (needs ``crop_size``).
        crop_size, crop_window, crop_window_mm: the local window (see
            :func:`~glsmonai.transforms.spatial.window_in_original`).
    """
    original = crop_space == "original"
    if original and not crop_size:
        raise ValueError("crop_space 'original' needs crop_size (the window's default field of view)")
    lower, upper = intensity_percentiles
    chain = [
        ScaleIntensityRangePercentilesd("image", lower=lower, upper=upper, b_min=0.0, b_max=1.0, clip=True),
        ToWorkingSized("image", image_size, points_key=None, source_keys={"image": "source"} if original else None),
    ]
    if original:
        chain.append(CropWindowd(crop_size, crop_window, crop_window_mm))
    return Compose(chain)
