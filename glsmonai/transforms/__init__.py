"""MONAI-style transforms of the GLS pipeline, and the crop and keypoint operations the network uses."""

from glsmonai.transforms.crop import crop_at_points, crop_windows, feather_profile, paste_at_points, paste_windows, window_weights
from glsmonai.transforms.heatmap import boundary_band, decode_keypoints, heatmap_argmax, refine_peaks
from glsmonai.transforms.loading import BinarizeLabeld, Keypointsd, LoadScand
from glsmonai.transforms.pipeline import prediction_transforms
from glsmonai.transforms.spatial import CropWindowd, RandKeypointAffined, ToWorkingSized, WorkingGrid, window_in_original

__all__ = [
    "BinarizeLabeld", "CropWindowd", "Keypointsd", "LoadScand", "RandKeypointAffined", "ToWorkingSized", "WorkingGrid",
    "boundary_band", "crop_at_points", "crop_windows", "decode_keypoints", "feather_profile", "heatmap_argmax",
    "paste_at_points", "paste_windows", "prediction_transforms", "refine_peaks", "window_in_original", "window_weights",
]
