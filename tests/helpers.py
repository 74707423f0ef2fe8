"""Test helpers shared by several test files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from glsmonai.data.io import write_image
from glsmonai.model_folder import stage_checkpoint, write_model_info
from glsmonai.networks import GLSNet


def untrained_model_folder(path: Path, crop_space: str = "working", tta: bool = False, seed: int = 1,
                           image_size: tuple[int, int] = (32, 32)) -> Path:
    """An untrained but complete stage-3 model folder (weights seeded by ``seed``: outputs are arbitrary, yet fixed)."""
    torch.manual_seed(seed)
    net = GLSNet(crop_size=(8, 8), channels=(4, 8, 16), crop_space=crop_space, keypoint_band=2)
    write_model_info(path, net, {"image_size": list(image_size), "flip_swap": [[0, 1]], "num_components": 2,
                                 "predict": {"tta": tta, "components": "task"}})
    for stage in ("stage1", "stage2", "stage3"):
        torch.save(net.state_dict(), stage_checkpoint(path, stage))
    return path


def random_scans(folder: Path, shapes: list[tuple[int, int]], seed: int = 0) -> list[Path]:
    """Random uint8 scans of the given shapes, NIfTI and PNG alternately; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, shape in enumerate(shapes):
        path = folder / f"scan{i:03d}{'.png' if i % 2 else '.nii.gz'}"
        write_image(path, (rng.random(shape) * 255).astype(np.uint8))
        paths.append(path)
    return paths
