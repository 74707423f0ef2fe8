"""Keypoint rules: where the key regions of a mask are, when the datalist gives no keypoints.

A rule maps a binary ``(rows, cols)`` mask to a ``(K, 2)`` float array of ``[row, col]`` points in a
fixed order. Rules are looked up by name (``keypoint_rule`` in the bundle): the hand-written ones,
or ``errormap:<file.json>``, a rule learnt from an error map (:func:`errormap_rule`; the map and the
file are made by :mod:`glsmonai.evaluation.errormap`).

Boxes of the error-map rule are in *edge* coordinates: a pixel ``(i, j)`` is the unit square
``[i, i + 1) x [j, j + 1)``; its centre, the usual ``[row, col]`` keypoint coordinate, is
``(i + 0.5, j + 0.5)`` there.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

__all__ = [
    "KEYPOINT_RULES",
    "iris_roots",
    "lv_apex_base",
    "get_rule",
    "rule_keypoint_count",
    "rule_component_count",
    "RULE_KIND",
    "RULE_VERSION",
    "component_boxes",
    "enlarged_box",
    "errormap_rule",
]

#: CAMUS label values
LV_ENDO, MYOCARDIUM, LEFT_ATRIUM = 1, 2, 3


def _components(mask: np.ndarray, n: int) -> list[np.ndarray]:
    """Pixel coordinates ``(N_i, 2)`` of the ``n`` largest connected components, largest first."""
    labels, count = ndimage.label(mask > 0)
    if count < n:
        raise ValueError(f"the mask has {count} connected component(s), the rule needs {n}")
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1))
    order = np.argsort(-sizes, kind="stable")[:n] + 1
    return [np.argwhere(labels == i).astype(np.float64) for i in order]


def _far_end(pixels: np.ndarray, away_from: np.ndarray, tolerance: float = 2.0) -> np.ndarray:
    """Mean of the pixels lying furthest along the axis from ``away_from`` to their centroid."""
    centre = pixels.mean(axis=0)
    axis = centre - away_from
    norm = np.linalg.norm(axis)
    if norm == 0:
        raise ValueError("cannot tell the ends of a component apart: both components share a centroid")
    proj = pixels @ (axis / norm)
    return pixels[proj >= proj.max() - tolerance].mean(axis=0)


def _ends(pixels: np.ndarray, axis: np.ndarray, tolerance: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Means of the pixels within ``tolerance`` of the minimum and of the maximum projection on ``axis``."""
    proj = pixels @ axis
    return pixels[proj <= proj.min() + tolerance].mean(axis=0), pixels[proj >= proj.max() - tolerance].mean(axis=0)


def lv_apex_base(label: np.ndarray) -> np.ndarray:
    """The LV apex and the two ends of the mitral annulus, from a CAMUS-style label map.

    The LV is label 1 (any foreground when the map is binary). The annulus points are the two ends of
    the LV / left-atrium (label 3) contact, taken across the LV long axis (its principal axis); when
    there is no left atrium, or it does not touch the LV, they are the two ends of the LV's basal slab
    (the 5 % of the long axis at its wider end). The apex is the LV pixel farthest from the annulus
    midpoint.

    Args:
        label: ``(rows, cols)`` label map (0 background, 1 LV endocardium, 2 myocardium, 3 left atrium).

    Returns:
        ``(3, 2)`` ``[row, col]``: apex, annulus end with the smaller column, the other annulus end.

    Raises:
        ValueError: no LV pixels.
    """
    label = np.asarray(label)
    lv_mask = label == LV_ENDO if (label == LV_ENDO).any() else label > 0
    lv_mask = ndimage.binary_fill_holes(lv_mask)
    if not lv_mask.any():
        raise ValueError("the mask has no LV (label 1) pixels")
    lv = _components(lv_mask, 1)[0]
    centre = lv.mean(axis=0)
    # principal (long) axis of the LV and the axis across it
    _, vecs = np.linalg.eigh(np.cov((lv - centre).T))
    long_axis, across = vecs[:, 1], vecs[:, 0]
    la_mask = label == LEFT_ATRIUM
    contact = lv_mask & ndimage.binary_dilation(la_mask, structure=np.ones((3, 3), bool)) if la_mask.any() else None
    if contact is not None and contact.sum() >= 2:
        base_pixels = np.argwhere(contact).astype(np.float64)
    else:
        proj = (lv - centre) @ long_axis
        length = proj.max() - proj.min()
        slab = max(2.0, 0.05 * length)
        low, high = lv[proj <= proj.min() + slab], lv[proj >= proj.max() - slab]
        width = lambda px: np.ptp(px @ across) if len(px) else 0.0  # noqa: E731
        base_pixels = low if width(low) >= width(high) else high
    a, b = _ends(base_pixels, across)
    left, right = (a, b) if a[1] <= b[1] else (b, a)
    mid = (left + right) / 2
    dist = np.linalg.norm(lv - mid, axis=1)
    apex = lv[dist >= dist.max() - 1.0].mean(axis=0)
    return np.stack([apex, left, right])


def iris_roots(mask: np.ndarray) -> np.ndarray:
    """The two iris roots: the peripheral end of each of the two largest components, left one first.

    The peripheral end of a component is where its pixels reach furthest along the axis pointing from
    the other component's centroid to its own (the end away from the pupil).

    Args:
        mask: ``(rows, cols)`` binary iris mask.

    Returns:
        ``(2, 2)`` ``[row, col]`` of the left root, then the right root.

    Raises:
        ValueError: fewer than two components.
    """
    a, b = _components(mask, 2)
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    left, right = (a, b) if ca[1] <= cb[1] else (b, a)
    c_left, c_right = left.mean(axis=0), right.mean(axis=0)
    return np.stack([_far_end(left, c_right), _far_end(right, c_left)])


# ---------------------------------------------------------------------------------------------------
# the rule learnt from an error map
# ---------------------------------------------------------------------------------------------------

RULE_KIND = "errormap"
RULE_VERSION = 1

#: ``(top, left, height, width)`` of a box in edge coordinates (see the module docstring)
Box = tuple[float, float, float, float]


def component_boxes(mask: np.ndarray, n_components: int) -> list[tuple[int, int, int, int]] | None:
    """Bounding boxes of the ``n_components`` largest connected components, left to right.

    Components are 4-connected (as in the other rules); the largest are kept (ties broken by
    label order) and then ordered by centroid column.

    Args:
        mask: ``(rows, cols)`` binary mask (foreground ``> 0``).
        n_components: how many components to keep.

    Returns:
        ``[(r0, r1, c0, c1), ...]`` with exclusive ends (``mask[r0:r1, c0:c1]`` holds the component),
        or ``None`` when the mask has fewer than ``n_components`` components.
    """
    mask = np.asarray(mask) > 0
    labels, count = ndimage.label(mask)
    if count < n_components:
        return None
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = np.argsort(-sizes, kind="stable")[:n_components] + 1
    slices = ndimage.find_objects(labels)
    centroid_cols = [c for _, c in ndimage.center_of_mass(mask, labels, keep)]
    boxes = []
    for _, index in sorted(zip(centroid_cols, keep), key=lambda t: t[0]):
        rs, cs = slices[index - 1]
        boxes.append((rs.start, rs.stop, cs.start, cs.stop))
    return boxes


def enlarged_box(bbox: tuple[int, int, int, int], margin: float) -> Box:
    """A bounding box enlarged by ``margin`` of its size on each side (not clipped to the image).

    Args:
        bbox: ``(r0, r1, c0, c1)`` with exclusive ends, as from :func:`component_boxes`.
        margin: fraction of the box height (width) added above and below (left and right).

    Returns:
        ``(top, left, height, width)`` in edge coordinates.
    """
    r0, r1, c0, c1 = bbox
    h, w = r1 - r0, c1 - c0
    return (r0 - margin * h, c0 - margin * w, h * (1 + 2 * margin), w * (1 + 2 * margin))


def check_margin(margin: float) -> float:
    """``margin`` as a float; ``ValueError`` unless finite and ``>= 0``."""
    margin = float(margin)
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, got {margin}")
    return margin


def check_n_components(n_components: int) -> int:
    """``n_components`` as an int; ``ValueError`` unless a positive integer."""
    if int(n_components) != n_components or n_components < 1:
        raise ValueError(f"n_components must be a positive integer, got {n_components}")
    return int(n_components)


def check_rule_points(points, n_components: int, where: str) -> list[dict]:
    """Validated copies of the keypoint dicts; raises ``ValueError`` naming ``where``."""
    if not isinstance(points, list) or not points:
        raise ValueError(f"{where}: the rule needs a non-empty list of keypoints")
    out = []
    for i, p in enumerate(points):
        try:
            comp, u, v = int(p["component"]), float(p["u"]), float(p["v"])
            heat = float(p.get("heat", float("nan")))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}: keypoint {i} must have 'component', 'u' and 'v', got {p!r}") from None
        if not 0 <= comp < n_components or not (0 <= u <= 1 and 0 <= v <= 1):
            raise ValueError(
                f"{where}: keypoint {i} needs 0 <= component < {n_components} and u, v in [0, 1], got {p!r}"
            )
        out.append({"component": comp, "u": u, "v": v, "heat": heat})
    return out


def errormap_rule(path_json: str | os.PathLike) -> Callable[[np.ndarray], np.ndarray]:
    """The keypoint rule stored in a file written by :func:`glsmonai.evaluation.errormap.save_rule`.

    The returned function finds the components of a label map as the error map did (the
    ``n_components`` largest, left to right), computes the same enlarged boxes and places each stored
    spot at ``[top + u * height, left + v * width]`` of its component's box (as a pixel-centre
    ``[row, col]``), clipped to the image. The foreground is ``label == label_value`` when the rule
    names a label value present in the map, else ``label > 0`` (so binary predictions work too).
    It carries ``n_keypoints`` and ``n_components`` as attributes.

    Args:
        path_json: the rule file.

    Returns:
        ``rule(label: (rows, cols)) -> (K, 2) [row, col]``; it raises ``ValueError`` when the map has
        fewer than ``n_components`` components.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a valid error-map rule.
    """
    path = Path(path_json)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: keypoint rule file not found")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a JSON file ({err})") from None
    if not isinstance(spec, dict) or spec.get("rule") != RULE_KIND:
        raise ValueError(f"{path}: not an error-map keypoint rule (expected \"rule\": \"{RULE_KIND}\")")
    try:
        n_components = check_n_components(spec["n_components"])
        margin = check_margin(spec["margin"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: bad or missing n_components / margin ({err})") from None
    points = check_rule_points(spec.get("keypoints"), n_components, str(path))
    label_value = spec.get("label_value")

    def rule(label: np.ndarray) -> np.ndarray:
        label = np.asarray(label)
        if label.ndim != 2:
            raise ValueError(f"expected a 2D label map, got shape {label.shape}")
        use_value = label_value is not None and (label == label_value).any()
        mask = label == label_value if use_value else label > 0
        boxes = component_boxes(mask, n_components)
        if boxes is None:
            found = ndimage.label(mask)[1]
            raise ValueError(f"the mask has {found} connected component(s), the rule {path.name} needs {n_components}")
        rows, cols = label.shape
        out = np.empty((len(points), 2))
        for i, p in enumerate(points):
            top, left, height, width = enlarged_box(boxes[p["component"]], margin)
            out[i] = (top + p["u"] * height - 0.5, left + p["v"] * width - 0.5)
        out[:, 0] = np.clip(out[:, 0], 0, rows - 1)
        out[:, 1] = np.clip(out[:, 1], 0, cols - 1)
        return out

    rule.__doc__ = f"Keypoints learnt from an error map ({path}): (rows, cols) label -> ({len(points)}, 2) [row, col]."
    rule.__name__ = f"errormap_rule[{path.name}]"
    rule.n_keypoints = len(points)  # type: ignore[attr-defined]
    rule.n_components = n_components  # type: ignore[attr-defined]
    return rule


KEYPOINT_RULES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], int]] = {
    "iris_roots": (iris_roots, 2),
    "lv_apex_base": (lv_apex_base, 3),
}
#: how many connected pieces the structure of each rule has: the two iris halves, the one LV
_RULE_COMPONENTS = {"iris_roots": 2, "lv_apex_base": 1}


def get_rule(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The rule called ``name``, or ``errormap:<file.json>`` (a rule learnt from an error map, see
    ``glsmonai errormap --suggest``); raises ``ValueError`` listing the known ones."""
    if name.startswith("errormap:"):
        return errormap_rule(name.split(":", 1)[1])
    if name not in KEYPOINT_RULES:
        raise ValueError(f"unknown keypoint rule {name!r}; known rules: {sorted(KEYPOINT_RULES)} or errormap:<file>")
    return KEYPOINT_RULES[name][0]


def rule_keypoint_count(name: str) -> int:
    """How many keypoints the rule ``name`` gives."""
    if name.startswith("errormap:"):
        return int(get_rule(name).n_keypoints)  # type: ignore[attr-defined]
    get_rule(name)
    return KEYPOINT_RULES[name][1]


def rule_component_count(name: str) -> int:
    """How many connected pieces the structure has that the rule ``name`` reads: ``iris_roots`` 2 (the
    iris halves either side of the pupil), ``lv_apex_base`` 1 (the LV), ``errormap:<file>`` the number
    its error map was aligned to. The task's ``num_components`` when its datalist gives none."""
    if name.startswith("errormap:"):
        return int(get_rule(name).n_components)  # type: ignore[attr-defined]
    get_rule(name)
    return _RULE_COMPONENTS[name]
