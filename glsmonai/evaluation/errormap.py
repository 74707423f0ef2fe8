"""Error-frequency maps: where, relative to the object, a model errs most (thesis section 2.1).

For every case the error pixels (false positives and false negatives of a prediction against its
reference) are aligned and normalised to the object: for each of the ``n_components`` largest
connected components of the *reference* (ordered by centroid column, left first), the component's
bounding box is enlarged by ``margin`` of its height / width on each side and the error map inside
that box is resampled to a fixed grid. The panels (one per component, side by side) are averaged over
the cases into a heatmap with values in ``[0, 1]``: the mean fraction of each grid cell that is wrong.

Resampling is an exact area average (each grid cell gets the fraction of its area covered by error
pixels, a pixel being a unit square), so thin boundary errors are neither lost nor aliased when a large
box is shrunk onto the grid, and identical relative error patterns give identical panels whatever
the object's size. Geometry is never distorted by the image border: the part of an enlarged box that
falls outside the image is sampled as error-free.

The hottest spots of the map give a keypoint rule (:func:`suggest_keypoints`, :func:`save_rule`; read
back by :func:`glsmonai.keypoints.errormap_rule`): each spot is a position ``(u, v)`` relative to a
component's enlarged box, so it can be placed on any new label map.

Coordinates: a pixel ``(i, j)`` is the unit square ``[i, i + 1) x [j, j + 1)`` in *edge* coordinates;
its centre, the usual ``[row, col]`` keypoint coordinate, is ``(i + 0.5, j + 0.5)`` there.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from glsmonai.data.io import read_image
from glsmonai.data.pairs import foreground, pair_predictions
from glsmonai.keypoints import (
    RULE_KIND,
    RULE_VERSION,
    Box,
    check_margin,
    check_n_components,
    check_rule_points,
    component_boxes,
    enlarged_box,
)
from glsmonai.utils import atomic_write

logger = logging.getLogger(__name__)

__all__ = [
    "aligned_errors",
    "error_map",
    "error_map_from_folders",
    "save_error_map",
    "suggest_keypoints",
    "save_rule",
]


# ---------------------------------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------------------------------


def _check_grid(grid: tuple[int, int]) -> tuple[int, int]:
    if len(grid) != 2 or any(int(g) != g or g < 1 for g in grid):
        raise ValueError(f"grid must be two positive integers (rows, cols), got {tuple(grid)}")
    return int(grid[0]), int(grid[1])


def _area_resample(integral: np.ndarray, box: Box, grid: tuple[int, int]) -> np.ndarray:
    """Fraction of each grid cell of ``box`` covered by the map whose padded integral image is given.

    Args:
        integral: ``(rows + 1, cols + 1)`` with ``integral[i, j]`` the sum of ``map[:i, :j]``; the
            integral of a piecewise-constant map is bilinear between these knots, so linear
            interpolation of it is exact.
        box: ``(top, left, height, width)`` in edge coordinates.
        grid: ``(grid_rows, grid_cols)``.

    Returns:
        ``(grid_rows, grid_cols)`` float64: the mean of the map over each cell (0 outside the image).
    """
    top, left, height, width = box
    g_r, g_c = grid
    rows, cols = integral.shape[0] - 1, integral.shape[1] - 1
    edges_r = np.clip(top + height * np.arange(g_r + 1) / g_r, 0, rows)
    edges_c = np.clip(left + width * np.arange(g_c + 1) / g_c, 0, cols)
    rr, cc = np.meshgrid(edges_r, edges_c, indexing="ij")
    knots = ndimage.map_coordinates(integral, [rr.ravel(), cc.ravel()], order=1, mode="nearest")
    knots = knots.reshape(g_r + 1, g_c + 1)
    sums = knots[1:, 1:] - knots[:-1, 1:] - knots[1:, :-1] + knots[:-1, :-1]
    cell_area = (height / g_r) * (width / g_c)
    if cell_area <= 0:
        return np.zeros((g_r, g_c))
    return np.clip(sums / cell_area, 0.0, 1.0)


def aligned_errors(
    pred: np.ndarray,
    ref: np.ndarray,
    n_components: int = 2,
    grid: tuple[int, int] = (64, 128),
    margin: float = 0.25,
) -> np.ndarray | None:
    """The aligned error map of one case.

    Args:
        pred, ref: ``(rows, cols)`` binary masks (foreground ``> 0``).
        n_components, grid, margin: as in :func:`error_map`.

    Returns:
        ``(grid_rows, n_components * grid_cols)`` float64 in ``[0, 1]``, or ``None`` when the reference
        has fewer than ``n_components`` components.

    Raises:
        ValueError: the shapes differ or are not 2D.
    """
    pred, ref = np.asarray(pred) > 0, np.asarray(ref) > 0
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    if ref.ndim != 2:
        raise ValueError(f"expected 2D masks, got shape {ref.shape}")
    grid, margin, n_components = _check_grid(grid), check_margin(margin), check_n_components(n_components)
    boxes = component_boxes(ref, n_components)
    if boxes is None:
        return None
    errors = (pred ^ ref).astype(np.float64)
    integral = np.zeros((errors.shape[0] + 1, errors.shape[1] + 1))
    integral[1:, 1:] = errors.cumsum(axis=0).cumsum(axis=1)
    panels = [_area_resample(integral, enlarged_box(b, margin), grid) for b in boxes]
    return np.concatenate(panels, axis=1)


# ---------------------------------------------------------------------------------------------------
# the map
# ---------------------------------------------------------------------------------------------------


def error_map(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    n_components: int = 2,
    grid: tuple[int, int] = (64, 128),
    margin: float = 0.25,
) -> tuple[np.ndarray, int]:
    """Mean aligned error map over cases.

    Args:
        pairs: ``(pred, ref)`` binary ``(rows, cols)`` masks, one pair per case (any iterable; read once).
        n_components: reference components aligned per case (2 for the iris: left and right segment).
        grid: ``(grid_rows, grid_cols)`` of each component's panel.
        margin: the component's bounding box is enlarged by this fraction of its size on each side;
            errors outside every enlarged box are ignored.

    Returns:
        ``(emap, n_cases)``: ``(grid_rows, n_components * grid_cols)`` float64 in ``[0, 1]`` (left panel
        = leftmost component), and the number of cases that contributed. A case whose reference has
        fewer than ``n_components`` components is skipped (logged); with no case the map is all zero.

    Raises:
        ValueError: bad arguments, or a pair whose shapes differ (naming the case index).
    """
    grid, margin, n_components = _check_grid(grid), check_margin(margin), check_n_components(n_components)
    total = np.zeros((grid[0], n_components * grid[1]))
    n_cases = 0
    for index, (pred, ref) in enumerate(pairs):
        try:
            aligned = aligned_errors(pred, ref, n_components, grid, margin)
        except ValueError as err:
            raise ValueError(f"case {index}: {err}") from None
        if aligned is None:
            found = ndimage.label(np.asarray(ref) > 0)[1]
            logger.warning("case %d skipped: the reference has %d component(s), %d needed", index, found, n_components)
            continue
        total += aligned
        n_cases += 1
    if n_cases == 0:
        logger.warning("no case contributed to the error map")
        return total, 0
    return total / n_cases, n_cases


def _folder_pairs(pred_dir: Path, labels_dir: Path, label_value: int | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(pred > 0, reference foreground)`` for every ``<name>_seg.<ext>`` with a usable reference."""
    for pred_path, ref_path in pair_predictions(pred_dir, labels_dir):
        if ref_path is None:
            logger.error("no reference in %s for %s: skipped", labels_dir, pred_path.name)
            continue
        pred, _ = read_image(pred_path)
        ref, _ = read_image(ref_path)
        if pred.shape != ref.shape:
            logger.error("%s %s vs %s %s: shapes differ, skipped", pred_path, pred.shape, ref_path, ref.shape)
            continue
        yield pred > 0, foreground(ref, label_value)


def error_map_from_folders(
    pred_dir: str | os.PathLike,
    labels_dir: str | os.PathLike,
    label_value: int | None = None,
    **kw,
) -> tuple[np.ndarray, int]:
    """:func:`error_map` of every ``<name>_seg.<ext>`` in ``pred_dir`` against ``<name>.<ext>`` in ``labels_dir``.

    A reference ``<name>`` with another extension is used when none has the same one; a prediction
    without reference, or with one of another size, is logged and skipped (as in ``evaluate``).

    Args:
        pred_dir: folder of predicted masks (foreground ``> 0``).
        labels_dir: folder of reference label maps.
        label_value: the reference label that is the foreground (default: any value above 0).
        **kw: ``n_components``, ``grid``, ``margin`` of :func:`error_map`.

    Returns:
        ``(emap, n_cases)`` as :func:`error_map`.

    Raises:
        FileNotFoundError: a folder is missing, or ``pred_dir`` holds no predictions.
    """
    pred_dir, labels_dir = Path(pred_dir), Path(labels_dir)
    if not labels_dir.is_dir():
        raise FileNotFoundError(f"labels folder not found: {labels_dir}")
    return error_map(_folder_pairs(pred_dir, labels_dir, label_value), **kw)


def _colourise(emap: np.ndarray) -> np.ndarray:
    """``(rows, cols, 3)`` uint8: black -> red -> yellow -> white, scaled to the map's max."""
    top = float(emap.max()) if emap.size else 0.0
    t = emap / top if top > 0 else np.zeros_like(emap)
    rgb = np.stack([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1), np.clip(3 * t - 2, 0, 1)], axis=-1)
    return np.round(rgb * 255).astype(np.uint8)


def save_error_map(path_png: str | os.PathLike, emap: np.ndarray) -> None:
    """Write the map as a colour PNG (one pixel per grid cell) and as ``<same stem>.npy`` beside it.

    Args:
        path_png: the PNG file to write (folders are created).
        emap: ``(rows, cols)`` map, as from :func:`error_map`.

    Raises:
        ValueError: the map is not 2D or holds non-finite values.
    """
    path = Path(path_png)
    emap = np.asarray(emap, dtype=np.float64)
    if emap.ndim != 2 or emap.size == 0:
        raise ValueError(f"{path}: the error map must be a non-empty 2D array, got shape {emap.shape}")
    if not np.isfinite(emap).all():
        raise ValueError(f"{path}: the error map holds non-finite values")
    picture = Image.fromarray(_colourise(emap))
    atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))

    def write_npy(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, emap)

    atomic_write(path.with_name(f"{path.stem}.npy"), write_npy)


# ---------------------------------------------------------------------------------------------------
# keypoint rule learnt from the map
# ---------------------------------------------------------------------------------------------------


def suggest_keypoints(emap: np.ndarray, n_components: int, k: int, min_distance: int = 8) -> list[dict]:
    """The ``k`` hottest spots of an error map: greedy arg-max with non-maximum suppression.

    After each pick, every cell of the same panel within ``min_distance`` grid cells (Euclidean) is
    suppressed; panels do not suppress each other. When the maximum is a plateau of equal values the
    spot is the centroid of the plateau's connected cells (so a flat-topped blob gives its centre).
    The search stops early (with a warning) when no cell above zero is left.

    Args:
        emap: ``(grid_rows, n_components * grid_cols)`` map, as from :func:`error_map`.
        n_components: number of panels side by side.
        k: number of spots wanted.
        min_distance: suppression radius in grid cells.

    Returns:
        Up to ``k`` dicts, hottest first: ``{"component": i, "u": row fraction, "v": col fraction,
        "heat": value}`` with ``u, v`` in ``[0, 1]`` relative to component ``i``'s enlarged box (cell
        centres: ``u = (row + 0.5) / grid_rows``).

    Raises:
        ValueError: the map is not 2D, or its width is not a multiple of ``n_components``.
    """
    emap = np.asarray(emap, dtype=np.float64)
    n_components = check_n_components(n_components)
    if emap.ndim != 2 or emap.shape[1] % n_components or emap.size == 0:
        raise ValueError(f"error map of shape {emap.shape} cannot be split into {n_components} panels side by side")
    g_r, g_c = emap.shape[0], emap.shape[1] // n_components
    panels = [emap[:, i * g_c : (i + 1) * g_c] for i in range(n_components)]
    work = [np.where(np.isfinite(p), p, -np.inf) for p in panels]
    rr, cc = np.mgrid[0:g_r, 0:g_c]
    spots: list[dict] = []
    for _ in range(int(k)):
        peaks = [w.max() for w in work]
        comp = int(np.argmax(peaks))
        peak = peaks[comp]
        if not peak > 0:
            logger.warning("only %d hot spot(s) above zero in the error map, %d wanted", len(spots), k)
            break
        r, c = np.unravel_index(int(np.argmax(work[comp])), (g_r, g_c))
        plateau_cells = work[comp] >= peak - 1e-9 * max(1.0, abs(peak))
        regions, _ = ndimage.label(plateau_cells, structure=np.ones((3, 3), bool))
        plateau = regions == regions[r, c]
        pr, pc = float(rr[plateau].mean()), float(cc[plateau].mean())
        spots.append(
            {
                "component": comp,
                "u": (pr + 0.5) / g_r,
                "v": (pc + 0.5) / g_c,
                "heat": float(peak),
            }
        )
        near = (rr - pr) ** 2 + (cc - pc) ** 2 <= float(min_distance) ** 2
        work[comp][near | plateau] = -np.inf
    return spots


def save_rule(
    path_json: str | os.PathLike,
    suggestions: list[dict],
    n_components: int,
    margin: float,
    label_value: int | None = None,
) -> None:
    """Write a keypoint rule file from :func:`suggest_keypoints`' spots (atomically).

    Args:
        path_json: the JSON file to write.
        suggestions: ``[{"component", "u", "v", "heat"}, ...]`` in keypoint order.
        n_components, margin: those the error map was made with.
        label_value: the foreground label of the label maps the rule will be applied to (``None``:
            any value above 0).

    Raises:
        ValueError: a suggestion is malformed.
    """
    path = Path(path_json)
    n_components, margin = check_n_components(n_components), check_margin(margin)
    points = check_rule_points(suggestions, n_components, str(path))
    rule = {
        "rule": RULE_KIND,
        "version": RULE_VERSION,
        "n_components": n_components,
        "margin": margin,
        "label_value": label_value,
        "keypoints": points,
    }
    text = json.dumps(rule, indent=2) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
