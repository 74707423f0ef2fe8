"""What the phantom generators share: the case they return and the size check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_SIDE", "SynthCase", "parse_size"]

#: the smallest image side a phantom is drawn at
MIN_SIDE = 32


@dataclass
class SynthCase:
    """One synthetic case.

    Attributes:
        image: ``(H, W)`` float32 scan in ``[0, 1]``.
        label: ``(H, W)`` uint8 label map (iris = 1; or CAMUS values 1 LV, 2 myocardium, 3 left atrium).
        keypoints: ``(K, 2)`` float64 ``[row, col]`` (pixel-index coordinates), in the task's order.
    """

    image: np.ndarray
    label: np.ndarray
    keypoints: np.ndarray


def parse_size(size: Sequence[int]) -> tuple[int, int]:
    """``(H, W)`` as ints; ``ValueError`` unless two integers of at least :data:`MIN_SIDE`."""
    if len(size) != 2:
        raise ValueError(f"size must be (H, W), got {size!r}")
    h, w = int(size[0]), int(size[1])
    if h < MIN_SIDE or w < MIN_SIDE or h != size[0] or w != size[1]:
        raise ValueError(f"size must be two integers >= {MIN_SIDE}, got {size!r}")
    return h, w
