"""Iris biometrics of an AS-OCT B-scan from its iris mask (two halves) and the two iris roots.

Per half (``left``: the half with the smaller centroid column):

* ``iris_area``: the half's pixels times the pixel area.
* ``iris_length``: along the iris' **centre line**, from the root to the pupillary margin. The
  pupillary margin is the point of the half's outline farthest from its root (the middle of a blunt
  end, see :func:`~glsmonai.measure.geometry.farthest`); the centre line is the
  line of points as far from its anterior as from its posterior side (see :func:`centre_line`).
* ``iris_thickness_750um`` / ``iris_thickness_2000um``: the chord of the half perpendicular to the
  centre line at 0.75 / 2 mm from the root along it (only with a known pixel spacing; NaN when the
  centre line is shorter).
* ``iris_thickness_max``: the largest such chord along the whole centre line.
* ``iris_curvature``: how far the posterior surface comes in front of the line from the root to the
  pupillary margin (towards the anterior surface): its largest distance on that side of the line, 0
  when it stays behind it (a flat or backward-bowed iris). The posterior surface is the part of the
  outline between the peripheral tip and the pupillary margin with the larger mean row (depth grows
  downwards in AS-OCT), less the end caps (its points within half the median thickness of the tip or
  the margin).

And for the scan: ``pupil_diameter`` (between the two pupillary margins) and ``iris_root_distance``
(root to root).

Every length is measured in the physical plane (``[row, col]`` times the spacing) when the spacing is
known, in pixels otherwise; the column names say which (:mod:`glsmonai.measure.units`). The outline
of a mask is skimage's marching-squares boundary (:func:`~glsmonai.measure.geometry.mask_outline`);
the phantom generator's truth passes its analytic outline and centre line through the same
:func:`iris_measures`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage import measure as skmeasure

from glsmonai.keypoints import iris_roots
from glsmonai.measure.geometry import (
    Spacing,
    chords,
    cumulative_length,
    farthest,
    mask_outline,
    resample,
    smooth_line,
    tangents,
    to_physical,
)
from glsmonai.measure.units import column

__all__ = ["SIDES", "THICKNESS_AT_MM", "IrisSide", "centre_line", "iris_side", "iris_measures", "measure_iris",
           "iris_columns"]

SIDES = ("left", "right")
#: distances from the root, along the centre line, of the fixed-position thicknesses (mm)
THICKNESS_AT_MM = (0.75, 2.0)


@dataclass
class IrisSide:
    """One iris half, in physical coordinates (mm, or pixels without a spacing).

    Attributes:
        area: area of the half.
        outline: ``(M, 2)`` closed outline.
        root, margin: ``(2,)`` iris root and pupillary margin.
        tip: ``(2,)`` the outline point farthest from the margin (the peripheral tip).
        line: ``(N, 2)`` centre line from the root to the margin.
        arc: ``(N,)`` arc length along ``line`` from the root.
        thickness: ``(N,)`` chord perpendicular to ``line`` at each point (NaN where it misses).
        anterior, posterior: the two outline pieces from ``tip`` to ``margin``.
    """

    area: float
    outline: np.ndarray
    root: np.ndarray
    margin: np.ndarray
    tip: np.ndarray
    line: np.ndarray
    arc: np.ndarray
    thickness: np.ndarray
    anterior: np.ndarray
    posterior: np.ndarray

    @property
    def length(self) -> float:
        return float(self.arc[-1])

    @property
    def max_thickness(self) -> float:
        """The largest perpendicular chord along the centre line."""
        ok = np.isfinite(self.thickness)
        return float(self.thickness[ok].max()) if ok.any() else float("nan")

    def thickness_at(self, distance: float) -> float:
        """The perpendicular chord at ``distance`` from the root along the centre line (NaN past the margin)."""
        if distance > self.arc[-1]:
            return float("nan")
        ok = np.isfinite(self.thickness)
        return float(np.interp(distance, self.arc[ok], self.thickness[ok])) if ok.any() else float("nan")

    def curvature(self) -> float:
        """Largest distance of the posterior surface in front of the root-margin line (0: none in front)."""
        axis = self.margin - self.root
        normal = np.array([-axis[1], axis[0]]) / max(np.linalg.norm(axis), 1e-12)
        if np.dot(self.anterior.mean(axis=0) - self.root, normal) < 0:
            normal = -normal  # point to the anterior side
        # the surface proper: without the end caps (half the median thickness around the tip and margin)
        cap = 0.5 * float(np.nanmedian(self.thickness)) if np.isfinite(self.thickness).any() else 0.0
        away = np.minimum(np.linalg.norm(self.posterior - self.tip, axis=1),
                          np.linalg.norm(self.posterior - self.margin, axis=1)) > cap
        surface = self.posterior[away] if away.any() else self.posterior
        return max(float(((surface - self.root) @ normal).max()), 0.0)


def _pieces(outline: np.ndarray, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """The two ways round a closed outline from vertex ``start`` to vertex ``end``."""
    n = len(outline)
    forward = outline[(start + np.arange((end - start) % n + 1)) % n]
    backward = outline[(start - np.arange((start - end) % n + 1)) % n]
    return forward, backward


def centre_line(outline: np.ndarray, root: np.ndarray, margin: np.ndarray, tip: np.ndarray, step: float,
                grid_step: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """The centre line of an elongated shape from ``root`` to ``margin``: the points as far from one
    side of the outline as from the other.

    The outline is cut at ``tip`` and ``margin`` into its two sides; the line is the zero level of
    (distance to one side - distance to the other), found by marching squares on a grid over the
    shape (``grid_step`` apart, the pixel size) between the tip and the margin, then joined to the
    root and smoothed over half the shape's median thickness. Hand-written on scipy's k-d tree and
    skimage's marching squares: a skeleton (skimage's ``skeletonize``) stops short of both ends and
    forks at blunt ones, while this line runs from end to end.

    Args:
        outline: ``(M, 2)`` closed outline.
        root, margin, tip: ``(2,)`` points (``tip`` and ``margin`` on the outline).
        step: sampling step along the line.
        grid_step: grid spacing (physical size of a pixel).

    Returns:
        ``(N, 2)`` line, ``root`` first and ``margin`` last, sampled every ``step`` or so.
    """
    i_tip = int(np.argmin(np.linalg.norm(outline - tip, axis=1)))
    i_margin = int(np.argmin(np.linalg.norm(outline - margin, axis=1)))
    a, b = (resample(piece, 0.5 * step) for piece in _pieces(outline, i_tip, i_margin))
    g = np.asarray(grid_step, dtype=np.float64)
    lo = np.floor(outline.min(axis=0) / g) - 2
    hi = np.ceil(outline.max(axis=0) / g) + 2
    rows, cols = np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1)
    grid = np.stack(np.meshgrid(rows * g[0], cols * g[1], indexing="ij"), axis=-1).reshape(-1, 2)
    field = (cKDTree(a).query(grid)[0] - cKDTree(b).query(grid)[0]).reshape(len(rows), len(cols))
    best, best_cost = None, np.inf
    for piece in skmeasure.find_contours(field, 0.0):
        piece = (piece + lo) * g
        j_tip = int(np.argmin(np.linalg.norm(piece - tip, axis=1)))
        j_margin = int(np.argmin(np.linalg.norm(piece - margin, axis=1)))
        cost = np.linalg.norm(piece[j_tip] - tip) + np.linalg.norm(piece[j_margin] - margin)
        if cost < best_cost and j_tip != j_margin:
            best_cost = cost
            best = piece[j_tip:j_margin + 1] if j_tip < j_margin else piece[j_margin:j_tip + 1][::-1]
    if best is None:  # degenerate shape: the straight line
        best = np.stack([tip, margin])
    # from the root: drop the stretch of the line between the tip and the point nearest to the root
    start = int(np.argmin(np.linalg.norm(best - root, axis=1)))
    line = np.concatenate([root[None], best[start + 1:-1], margin[None]])
    return _smoothed(line, outline, step)


def _normals(line: np.ndarray) -> np.ndarray:
    t = tangents(line)
    return np.stack([-t[:, 1], t[:, 0]], axis=1)


def _smoothed(line: np.ndarray, outline: np.ndarray, step: float) -> np.ndarray:
    """Resampled every ``step`` and smoothed over about half the shape's median thickness."""
    line = resample(line, step)
    lo, hi = chords(line, _normals(line), outline)
    width = np.nanmedian(hi - lo) if np.isfinite(lo).any() else 4.0 * step
    return smooth_line(line, max(0.5 * width / step, 1.0))


def iris_side(outline: np.ndarray, root: np.ndarray, area: float, step: float,
              line: np.ndarray | None = None, grid_step: tuple[float, float] = (1.0, 1.0)) -> IrisSide:
    """Measure one half from its outline and root (physical coordinates).

    Args:
        outline: ``(M, 2)`` closed outline.
        root: ``(2,)`` iris root.
        area: the half's area.
        step: sampling step along the centre line.
        line: a centre line to use instead of :func:`centre_line` (the phantom truth passes its
            analytic one, root first; the margin is appended).
        grid_step: the physical size of a pixel, the grid :func:`centre_line` is found on.

    Returns:
        the half's geometry.
    """
    root = np.asarray(root, dtype=np.float64)
    tolerance = 3.0 * step
    margin = farthest(outline, root, tolerance)
    tip = farthest(outline, margin, tolerance)
    if line is None:
        line = centre_line(outline, root, margin, tip, step, grid_step)
    else:
        line = _smoothed(np.concatenate([line, margin[None]]), outline, step)
    lo, hi = chords(line, _normals(line), outline)
    i_tip = int(np.argmin(np.linalg.norm(outline - tip, axis=1)))
    i_margin = int(np.argmin(np.linalg.norm(outline - margin, axis=1)))
    a, b = _pieces(outline, i_tip, i_margin)
    anterior, posterior = (a, b) if a[:, 0].mean() <= b[:, 0].mean() else (b, a)
    return IrisSide(area=float(area), outline=outline, root=root, margin=margin, tip=tip, line=line,
                    arc=cumulative_length(line), thickness=hi - lo, anterior=anterior, posterior=posterior)


def _thickness_column(mm: float, side: str) -> str:
    """``iris_thickness_750um_left_mm`` for 0.75 mm on the left."""
    return f"iris_thickness_{int(round(mm * 1000))}um_{side}_mm"


def iris_columns(physical: bool) -> list[str]:
    """The measure columns of :func:`iris_measures`, in order (the fixed-position thicknesses only in mm)."""
    names = []
    for side in SIDES:
        names.append(column(f"iris_area_{side}", "area", physical))
        if physical:
            names += [_thickness_column(mm, side) for mm in THICKNESS_AT_MM]
        names += [column(f"iris_{what}_{side}", "length", physical)
                  for what in ("thickness_max", "length", "curvature")]
    return names + [column("pupil_diameter", "length", physical), column("iris_root_distance", "length", physical)]


def iris_measures(sides: dict[str, IrisSide], physical: bool) -> dict[str, float]:
    """The iris measures of a scan from its two halves.

    Args:
        sides: ``{"left": IrisSide, "right": IrisSide}``.
        physical: the coordinates are in mm (else pixels): picks the units in the column names, and
            whether the fixed-position thicknesses (in mm from the root) can be given.

    Returns:
        ``{column: value}``, the columns of :func:`iris_columns`.
    """
    values = []
    for name in SIDES:
        side = sides[name]
        values.append(side.area)
        if physical:
            values += [side.thickness_at(mm) for mm in THICKNESS_AT_MM]
        values += [side.max_thickness, side.length, side.curvature()]
    values.append(float(np.linalg.norm(sides["left"].margin - sides["right"].margin)))
    values.append(float(np.linalg.norm(sides["left"].root - sides["right"].root)))
    return dict(zip(iris_columns(physical), values))


def _halves(mask: np.ndarray) -> list[np.ndarray]:
    """The two largest 4-connected components (holes filled), left one (smaller centroid column) first."""
    labels, count = ndimage.label(mask)
    if count < 2:
        raise ValueError(f"the iris mask has {count} connected component(s), the measures need 2 (left and right half)")
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.argsort(-sizes, kind="stable")[:2] + 1
    halves = [ndimage.binary_fill_holes(labels == k) for k in keep]
    return sorted(halves, key=lambda m: np.argwhere(m)[:, 1].mean())


def measure_iris(mask: np.ndarray, roots: np.ndarray | None = None, spacing: Spacing = None) -> dict[str, float]:
    """Iris measures of a binary iris mask.

    Args:
        mask: ``(rows, cols)`` binary mask (the two halves).
        roots: ``(2, 2)`` ``[row, col]`` of the left and right root (e.g. the keypoints GLS predicted);
            ``None``: found on the mask by :func:`~glsmonai.keypoints.iris_roots`.
        spacing: pixel size ``(row mm, col mm)``, or ``None`` (pixels).

    Returns:
        ``{column: value}`` as :func:`iris_measures`.

    Raises:
        ValueError: fewer than two halves, or ``roots`` not two points.
    """
    mask = np.asarray(mask) > 0
    halves = _halves(mask)
    if roots is None:
        roots = iris_roots(mask)
    roots = np.asarray(roots, dtype=np.float64)
    if roots.shape != (2, 2) or not np.isfinite(roots).all():
        raise ValueError(f"expected two iris roots [row, col], got {roots.tolist()}")
    pixel_area = 1.0 if spacing is None else float(spacing[0] * spacing[1])
    step = 0.5 * (1.0 if spacing is None else min(spacing))
    sides = {}
    for name, half, root in zip(SIDES, halves, roots):
        outline = to_physical(mask_outline(half), spacing)
        sides[name] = iris_side(outline, to_physical(root[None], spacing)[0], half.sum() * pixel_area, step,
                                grid_step=(1.0, 1.0) if spacing is None else spacing)
    return iris_measures(sides, spacing is not None)
