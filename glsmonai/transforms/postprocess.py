"""Mask post-processing of the predictor: keep the task's largest connected pieces, fill their holes.

Both as MONAI does them, in less time (each tested equal to MONAI's): the pieces as MONAI's
``KeepLargestConnectedComponent`` keeps them (the same ranking of the same labels, the labels from
``scipy.ndimage.label`` rather than scikit-image's through MONAI's conversions: about a quarter of its 58 ms
on a 1459 x 1713 AS-OCT scan), and the holes as MONAI's ``FillHoles`` fills them (it grows the outside in
by repeated binary dilation, about 90 ms; labelling the background once and keeping the pieces that touch
the border takes a tenth of it). ``glsmonai review`` post-processes the whole mask after every moved
keypoint, so this is on its path as much as on ``predict``'s.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["fill_holes", "keep_largest", "MaskPostprocessing"]


def keep_largest(mask: np.ndarray, components: int) -> np.ndarray:
    """The ``components`` largest connected pieces of a 0/1 mask, as MONAI's ``KeepLargestConnectedComponent``
    (``applied_labels=[1]``, full connectivity) keeps them: the pieces labelled in raster order, ranked by size
    with ``argsort`` as MONAI ranks them, so that ties go the same way.

    Args:
        mask: ``(rows, cols)`` (or any N-D) 0/1 array.
        components: how many pieces to keep.

    Returns:
        a new uint8 array of the same shape.
    """
    foreground = np.asarray(mask) == 1
    structure = ndimage.generate_binary_structure(foreground.ndim, foreground.ndim)
    labels, count = ndimage.label(foreground, structure=structure)
    if count <= components:
        return foreground.astype(np.uint8)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = np.zeros(len(sizes), dtype=bool)
    keep[np.argsort(sizes)[::-1][:components]] = True
    return keep[labels].astype(np.uint8)


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
    outside = np.zeros(labels.max() + 1, dtype=bool)  # a lookup by label: the pieces the border touches
    outside[np.concatenate([e.ravel() for e in edges])] = True
    outside[0] = False  # the foreground
    return (~outside[labels] | ~background).astype(np.uint8)


class MaskPostprocessing:
    """Keep the ``components`` largest pieces of a ``(rows, cols)`` 0/1 mask, then fill their holes.

    Args:
        components: how many pieces to keep (the iris 2, the LV 1).
    """

    def __init__(self, components: int) -> None:
        self.components = int(components)

    def __call__(self, mask: np.ndarray) -> np.ndarray:
        return fill_holes(keep_largest(mask, self.components))
