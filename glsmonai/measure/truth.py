"""The true measures of a phantom, from the shape its generator drew (not from its mask).

The generators put that shape in ``case.info["truth"]`` (image ``[row, col]`` coordinates):

* iris (:func:`glsmonai.data.synth.iris._true_geometry`): per half the analytic outline, the root
  keypoint and the midline between the two surfaces;
* echo (:func:`glsmonai.data.synth.echo._true_geometry`): the LV cavity's analytic outline and the
  two analytic ends of the mitral annulus.

These go through the same formulas as a measured mask (:func:`~glsmonai.measure.iris.iris_measures`,
:func:`~glsmonai.measure.lv.lv_measures`), but with the analytic outline (area by the shoelace
formula instead of a pixel count), the drawn midline instead of the equidistant centre line, the
drawn annulus and the outline's point farthest from the annulus midpoint as the apex.
"""

from __future__ import annotations

import numpy as np

from glsmonai.measure.geometry import Spacing, polygon_area, to_physical
from glsmonai.measure.iris import SIDES, iris_measures, iris_side
from glsmonai.measure.lv import lv_measures, lv_view_from_outline

__all__ = ["true_measures"]


def true_measures(task: str, truth: dict, spacing: Spacing = None) -> dict[str, float]:
    """The measures of a phantom from its generator's ``info["truth"]``.

    Args:
        task: ``"iris"`` or ``"lv"``.
        truth: the generator's ``info["truth"]``.
        spacing: pixel size ``(row mm, col mm)`` to give the phantom (its files carry none), or
            ``None``: pixels, as ``glsmonai measure`` gives for the phantom files.

    Returns:
        ``{column: value}``, the columns of the measured table.
    """
    step = 0.5 * (1.0 if spacing is None else min(spacing))
    if task == "iris":
        sides = {}
        for name in SIDES:
            half = truth[name]
            outline = to_physical(half["outline"], spacing)
            sides[name] = iris_side(outline, to_physical(np.asarray(half["root"])[None], spacing)[0],
                                    abs(polygon_area(outline)), step, line=to_physical(half["midline"], spacing))
        return iris_measures(sides, spacing is not None)
    if task == "lv":
        outline = to_physical(truth["outline"], spacing)
        ends = to_physical(truth["annulus"], spacing)
        view = lv_view_from_outline(outline, abs(polygon_area(outline)), None, ends[0], ends[1])
        return lv_measures(view, spacing is not None)
    raise ValueError(f"unknown measure task {task!r}; known: iris, lv")
