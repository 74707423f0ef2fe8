"""MONAI-style transforms of the GLS pipeline (array versions with thin dictionary versions)."""

from glsmonai.transforms.crop import KeypointCrop, KeypointCropd, PasteAtPoints, crop_at_points, paste_at_points
from glsmonai.transforms.heatmap import heatmap_argmax
from glsmonai.transforms.loading import BinarizeLabeld, Keypointsd, LoadScand
from glsmonai.transforms.pipeline import load_transforms, target_transforms
from glsmonai.transforms.spatial import RandKeypointAffined, ToWorkingSized, WorkingGrid

__all__ = [
    "BinarizeLabeld", "KeypointCrop", "KeypointCropd", "Keypointsd", "LoadScand", "PasteAtPoints",
    "RandKeypointAffined", "ToWorkingSized", "WorkingGrid", "crop_at_points", "heatmap_argmax",
    "load_transforms", "paste_at_points", "target_transforms",
]
