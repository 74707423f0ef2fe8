"""What is written per scan: its mask, its overlay and its rows of ``keypoints.csv``.

The names and the table's columns are the prediction folder's format
(:mod:`glsmonai.data.prediction_folder`, which the readers of a prediction folder share); this module writes
a :class:`~glsmonai.inference.predict_from_raw_data.Prediction` in it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from glsmonai.data.io import read_image, write_mask
from glsmonai.data.pairs import foreground
from glsmonai.data.prediction_folder import OVERLAYS_DIR, KeypointTable, keypoint_rows, mask_path
from glsmonai.visualize import save_overlay

if TYPE_CHECKING:
    from glsmonai.inference.predict_from_raw_data import Prediction

__all__ = ["write_prediction"]


def write_prediction(
    prediction: Prediction,
    scan: str | os.PathLike,
    output_dir: str | os.PathLike,
    table: KeypointTable | None = None,
    overlay: str | None = None,
    reference: str | os.PathLike | None = None,
    label_value: int | None = None,
) -> Path:
    """Write one scan's outputs into ``output_dir``, in this order: the mask (the scan's size and geometry), the
    overlay, the keypoint rows; the rows come last, so a scan with rows in the table has all its outputs.

    Args:
        prediction: the scan's prediction.
        scan: the scan's file (its name names the outputs).
        output_dir: the prediction folder.
        table: the folder's ``keypoints.csv``; ``None``: no rows written.
        overlay: the overlay's file name in ``overlays/``
            (:func:`~glsmonai.data.prediction_folder.overlay_names`); ``None``: no overlay.
        reference: a reference label file, drawn on the overlay (its ``label_value``, else every label > 0).

    Returns:
        the mask written.
    """
    scan, output_dir = Path(scan), Path(output_dir)
    written = write_mask(mask_path(output_dir, scan), prediction.mask, prediction.geometry)
    if overlay is not None:
        ref = foreground(read_image(reference)[0], label_value) if reference is not None else None
        save_overlay(output_dir / OVERLAYS_DIR / overlay, prediction.image, prediction.mask, ref, prediction.keypoints,
                     prediction.window_size)
    if table is not None:
        table.add(keypoint_rows(scan.name, prediction.keypoints, prediction.scores, prediction.confidence,
                                prediction.unsure, prediction.source))
    return written
