"""The deterministic preprocessing of a scan: one chain for training, validation and prediction.

:func:`deterministic_transforms` is the chain ``bundles/gls/configs/train.json`` caches for training and
validation (``train#deterministic_transforms``, before its random and target transforms) and, without a
label, the chain the predictor runs on every scan (:func:`prediction_transforms`, built from the model
folder's recorded settings). One function builds both, so a scan is prepared for prediction exactly as it
was for training::

    image (and label) read --> intensities: percentiles to [0, 1] --> letterboxed to the working size
        (keypoints and label along) --> crop_space original: the local window in original pixels
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.transforms import Compose, MapTransform, ScaleIntensityRangePercentilesd, Transform

from glsmonai.transforms.loading import BinarizeLabeld, Keypointsd, LoadScand
from glsmonai.transforms.spatial import CropWindowd, ToWorkingSized

__all__ = ["DEFAULT_INTENSITY_PERCENTILES", "deterministic_transforms", "prediction_transforms"]

#: the scan percentiles mapped to 0 and 1 when a bundle or model folder sets none
DEFAULT_INTENSITY_PERCENTILES: tuple[float, float] = (0.5, 99.5)


def deterministic_transforms(
    image_size: Sequence[int],
    intensity_percentiles: Sequence[float] = DEFAULT_INTENSITY_PERCENTILES,
    crop_space: str = "working",
    crop_size: Sequence[int] | None = None,
    crop_window: Sequence[float] | None = None,
    crop_window_mm: Sequence[float] | None = None,
    label_key: str | None = None,
    num_keypoints: int | None = None,
    keypoint_rule: str | None = None,
    label_value: int | None = None,
) -> list[MapTransform | Transform]:
    """The deterministic chain, as a list of dictionary transforms.

    Without ``label_key`` (prediction) it takes a scan already read, ``{"image": (1, rows, cols),
    "geometry"}``. With ``label_key`` (training and validation: ``"label"``) it takes a datalist entry and
    first reads the image and label files (:class:`~glsmonai.transforms.loading.LoadScand`), attaches the
    keypoints (:class:`~glsmonai.transforms.loading.Keypointsd`: the entry's, else ``keypoint_rule`` on the
    label) and binarises the label (``label_value``); label and keypoints then follow the image.

    Args:
        image_size: working size ``(rows, cols)`` of the networks.
        intensity_percentiles: image percentiles mapped to 0 and 1 (then clipped).
        crop_space: ``"original"`` also keeps the scan (and the label) at original resolution as ``source``
            (``source_label``), the working-to-original map ``to_source`` and the local ``window`` in
            original pixels (needs ``crop_size``).
        crop_size, crop_window, crop_window_mm: the local window (see
            :func:`~glsmonai.transforms.spatial.window_in_original`).
        label_key: the label's key, for a labelled chain.
        num_keypoints, keypoint_rule, label_value: the task (labelled chain only).

    Raises:
        ValueError: ``crop_space original`` without ``crop_size``; a labelled chain without ``num_keypoints``.
    """
    original = crop_space == "original"
    if original and not crop_size:
        raise ValueError("crop_space 'original' needs crop_size (the window's default field of view)")
    lower, upper = intensity_percentiles
    chain: list[MapTransform | Transform] = []
    keys: list[str] = ["image"]
    source_keys = {"image": "source"}
    if label_key is not None:
        if num_keypoints is None:
            raise ValueError("a labelled chain needs num_keypoints")
        chain += [
            LoadScand(["image", label_key]),
            Keypointsd(label_key, num_keypoints=num_keypoints, rule=keypoint_rule),
            BinarizeLabeld(label_key, label_value=label_value),
        ]
        keys.append(label_key)
        source_keys[label_key] = f"source_{label_key}"
    chain += [
        ScaleIntensityRangePercentilesd("image", lower=lower, upper=upper, b_min=0.0, b_max=1.0, clip=True),
        ToWorkingSized(keys, image_size, points_key="keypoints" if label_key is not None else None,
                       source_keys=source_keys if original else None),
    ]
    if original:
        chain.append(CropWindowd(crop_size, crop_window, crop_window_mm))
    return chain


def prediction_transforms(
    image_size: Sequence[int],
    intensity_percentiles: Sequence[float] = DEFAULT_INTENSITY_PERCENTILES,
    crop_space: str = "working",
    crop_size: Sequence[int] | None = None,
    crop_window: Sequence[float] | None = None,
    crop_window_mm: Sequence[float] | None = None,
) -> Compose:
    """``{"image": (1, rows, cols), "geometry"}`` -> intensities scaled to [0, 1], working size: the
    :func:`deterministic_transforms` of a scan without label, composed (arguments as there)."""
    return Compose(deterministic_transforms(image_size, intensity_percentiles, crop_space, crop_size, crop_window,
                                            crop_window_mm))
