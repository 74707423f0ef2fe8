"""What the phantom generators share: the case they return, the size check, soft shapes and the
draw-until-valid loop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from scipy import ndimage

__all__ = [
    "BORDER_FRACTION",
    "MAX_ATTEMPTS",
    "MIN_SIDE",
    "SynthCase",
    "draw_until",
    "largest_component",
    "parse_size",
    "smoothstep",
    "soft_edge",
    "within_margin",
]

logger = logging.getLogger(__name__)

#: the smallest image side a phantom is drawn at
MIN_SIDE = 32
#: the label keeps at least this fraction of H / W from every border
BORDER_FRACTION = 0.05
#: rejected draws before the safe draw that is always taken
MAX_ATTEMPTS = 64

T = TypeVar("T")


@dataclass
class SynthCase:
    """One synthetic case.

    Attributes:
        image: ``(H, W)`` float32 scan in ``[0, 1]``.
        label: ``(H, W)`` uint8 label map (iris = 1; or CAMUS values 1 LV, 2 myocardium, 3 left atrium).
        keypoints: ``(K, 2)`` float64 ``[row, col]`` (pixel-index coordinates), in the task's order.
        info: what was drawn that the label and keypoints do not show (generator-specific, e.g. the
            iris phantom's lens type and artefact); empty by default, not written to disk.
    """

    image: np.ndarray
    label: np.ndarray
    keypoints: np.ndarray
    info: dict = field(default_factory=dict)


def parse_size(size: Sequence[int]) -> tuple[int, int]:
    """``(H, W)`` as ints; ``ValueError`` unless two integers of at least :data:`MIN_SIDE`."""
    if len(size) != 2:
        raise ValueError(f"size must be (H, W), got {size!r}")
    h, w = int(size[0]), int(size[1])
    if h < MIN_SIDE or w < MIN_SIDE or h != size[0] or w != size[1]:
        raise ValueError(f"size must be two integers >= {MIN_SIDE}, got {size!r}")
    return h, w


def smoothstep(t: np.ndarray | float) -> np.ndarray:
    """Cubic Hermite step from 0 (``t <= 0``) to 1 (``t >= 1``)."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def soft_edge(d: np.ndarray, edge: float) -> np.ndarray:
    """Soft inside indicator of a signed distance ``d`` (positive inside), 0.5 on the boundary."""
    return np.clip(0.5 + d / edge, 0.0, 1.0)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Largest 4-connected component of ``mask`` (the mask itself when it has at most one)."""
    lab, n = ndimage.label(mask)
    if n > 1:
        sizes = np.bincount(lab.ravel())[1:]
        mask = lab == (int(np.argmax(sizes)) + 1)
    return mask


def within_margin(mask: np.ndarray, fraction: float = BORDER_FRACTION) -> bool:
    """Whether ``mask`` is non-empty and keeps ``fraction`` of H / W from every border."""
    h, w = mask.shape
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return False
    mr, mc = fraction * h, fraction * w
    return bool(rows[0] >= mr and rows[-1] <= h - 1 - mr and cols[0] >= mc and cols[-1] <= w - 1 - mc)


def draw_until(draw: Callable[[bool], T | None], what: str, tries: int = MAX_ATTEMPTS) -> T:
    """Call ``draw(safe)`` until it returns something other than ``None``.

    Args:
        draw: draws a candidate from the caller's generator and returns it, or ``None`` to reject
            it; it is called with ``safe=False`` ``tries`` times, then once with ``safe=True`` (a
            conservative draw that is meant to be accepted).
        what: the kind of case, for the log and the error (``"iris case"``).
        tries: rejections allowed before the safe draw.

    Raises:
        RuntimeError: the safe draw was rejected too.
    """
    for attempt in range(tries + 1):
        found = draw(attempt == tries)
        if found is not None:
            if attempt:
                logger.debug("%s accepted after %d rejected draw(s)", what, attempt)
            return found
    raise RuntimeError(f"no {what} fitting the image in {tries + 1} draws")
