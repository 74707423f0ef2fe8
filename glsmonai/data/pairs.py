"""Predictions and their references: the ``<name>_seg<ext>`` naming, pairing, and the foreground.

A prediction of scan ``<name><ext>`` is written as ``<name>_seg<mask ext>`` (PNG for JPEG inputs, see
:func:`~glsmonai.data.io.mask_extension`); its reference is ``<name>`` in a label folder or a datalist.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from glsmonai.data.datalist import scan_list
from glsmonai.data.io import find_partner, list_images, mask_extension, split_ext

__all__ = ["SEG_SUFFIX", "foreground", "prediction_path", "reference_name", "pair_predictions"]

#: what a prediction's file stem adds to its scan's stem
SEG_SUFFIX = "_seg"


def foreground(label: np.ndarray, label_value: int | None) -> np.ndarray:
    """The structure in a label map: ``label == label_value``, or ``label > 0`` when ``None``.

    Works elementwise on anything with comparison operators (a torch tensor gives a bool tensor).
    """
    return label > 0 if label_value is None else label == label_value


def prediction_path(output_dir: str | os.PathLike, stem: str, ext: str) -> Path:
    """Where the prediction of scan ``<stem><ext>`` is written: ``<output_dir>/<stem>_seg<mask ext>``."""
    return Path(output_dir) / f"{stem}{SEG_SUFFIX}{mask_extension(ext)}"


def reference_name(pred_path: str | os.PathLike) -> str:
    """The scan stem a prediction belongs to: ``a_seg.nii.gz`` -> ``"a"``."""
    return split_ext(pred_path)[0][: -len(SEG_SUFFIX)]


def _reference_finder(labels: Path, split: str, dataset_dir: str | os.PathLike | None) -> Callable[[str, str], Path | None]:
    """``(name, ext) -> reference path or None`` for a label folder or a datalist's split."""
    if labels.is_dir():
        files = list_images(labels)
        return lambda name, ext: find_partner(files, name, ext)
    by_image = {split_ext(image)[0]: label for image, label in scan_list(labels, split, dataset_dir) if label}
    return lambda name, ext: by_image.get(name)


def pair_predictions(
    pred_dir: str | os.PathLike,
    labels: str | os.PathLike,
    split: str = "testing",
    dataset_dir: str | os.PathLike | None = None,
) -> list[tuple[Path, Path | None]]:
    """Every ``<name>_seg.<ext>`` in ``pred_dir`` with its reference (``None`` when there is none).

    Args:
        labels: a folder of references ``<name>.<ext>`` (another extension is used when none has the
            same one), or a datalist JSON whose ``split`` gives the references of its images.

    Raises:
        FileNotFoundError: ``labels`` does not exist, or ``pred_dir`` holds no predictions.
    """
    pred_dir, labels = Path(pred_dir), Path(labels)
    if not labels.exists():
        raise FileNotFoundError(f"labels folder or datalist not found: {labels}")
    preds = [p for p in list_images(pred_dir) if split_ext(p)[0].endswith(SEG_SUFFIX)]
    if not preds:
        raise FileNotFoundError(f"{pred_dir}: no <name>{SEG_SUFFIX}.<ext> predictions")
    reference_of = _reference_finder(labels, split, dataset_dir)
    return [(pred_path, reference_of(reference_name(pred_path), split_ext(pred_path)[1])) for pred_path in preds]
