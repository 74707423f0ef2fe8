"""MONAI-style transforms of the GLS pipeline (array versions with thin dictionary versions)."""

from glsmonai.transforms.crop import (
    KeypointCrop,
    KeypointCropd,
    PasteAtPoints,
    crop_at_points,
    crop_windows,
    paste_at_points,
    paste_windows,
)
from glsmonai.transforms.heatmap import boundary_band, decode_keypoints, heatmap_argmax, refine_peaks
from glsmonai.transforms.loading import BinarizeLabeld, Keypointsd, LoadScand
from glsmonai.transforms.pipeline import load_transforms, target_transforms, to_working_keeping_source
from glsmonai.transforms.spatial import CropWindowd, RandKeypointAffined, ToWorkingSized, WorkingGrid, window_in_original

__all__ = [
    "BinarizeLabeld", "CropWindowd", "KeypointCrop", "KeypointCropd", "Keypointsd", "LoadScand", "PasteAtPoints",
    "RandKeypointAffined", "ToWorkingSized", "WorkingGrid", "boundary_band", "crop_at_points", "crop_windows",
    "decode_keypoints", "heatmap_argmax", "load_transforms", "paste_at_points", "paste_windows", "refine_peaks",
    "target_transforms", "to_working_keeping_source", "window_in_original",
]
