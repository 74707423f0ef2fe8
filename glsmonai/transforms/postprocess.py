"""Mask post-processing of the predictor: keep the task's largest connected pieces, fill their holes.

The components come from MONAI's ``KeepLargestConnectedComponent``. The holes are filled here:
MONAI's ``FillHoles`` grows the outside in by repeated binary dilation, which takes about 90 ms on a
1459 x 1713 AS-OCT scan, more than the network itself; labelling the background once and keeping the
pieces that touch the border gives the same mask (tested against ``FillHoles``) in about a tenth of it.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.transforms import KeepLargestConnectedComponent
from scipy import ndimage

__all__ = ["fill_holes", "MaskPostprocessing"]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Set to 1 every background pixel the border cannot reach.

    Args:
        mask: ``(rows, cols)`` (or any N-D) 0/1 array.

    Returns:
        a new uint8 array of the same shape. Background pieces are connected with full connectivity
        (8 neighbours in 2D), as in MONAI's ``FillHoles`` default: a hole is enclosed only if it
        touches the outside nowhere, diagonals included.
    """
    background = np.asarray(mask) == 0
    structure = ndimage.generate_binary_structure(background.ndim, background.ndim)
    labels, _ = ndimage.label(background, structure=structure)
    edges = [labels[(slice(None),) * axis + (end,)] for axis in range(labels.ndim) for end in (0, -1)]
    outside = np.unique(np.concatenate([e.ravel() for e in edges]))
    outside = outside[outside > 0]
    return (~np.isin(labels, outside) | ~background).astype(np.uint8)


class MaskPostprocessing:
    """Keep the ``components`` largest pieces of a ``(rows, cols)`` 0/1 mask, then fill their holes.

    Args:
        components: how many pieces to keep (the iris 2, the LV 1).
    """

    def __init__(self, components: int) -> None:
        self.components = int(components)
        self.keep = KeepLargestConnectedComponent(applied_labels=[1], num_components=self.components, independent=True)

    def __call__(self, mask: np.ndarray) -> np.ndarray:
        kept = np.asarray(self.keep(torch.from_numpy(np.ascontiguousarray(mask, dtype=np.uint8))[None]))[0]
        return fill_holes(kept)
