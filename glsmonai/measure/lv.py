"""Left-ventricle measures of an apical echocardiography view from its LV mask, apex and mitral annulus.

Per scan:

* ``lv_area``: the LV pixels times the pixel area;
* ``lv_long_axis``: from the apex to the midpoint of the mitral annulus;
* ``lv_annulus_width``: between the two ends of the annulus;
* ``lv_volume_al``: the single-plane area-length volume ``V = 8 A^2 / (3 pi L)`` (``A`` the area,
  ``L`` the long axis), in ml (1 ml = 1000 mm^3) or cubic pixels.

Per patient (scans named as CAMUS names them, ``patientXXXX_{2CH,4CH}_{ED,ES}``; see
:func:`patient_measures`): each view's end-diastolic and end-systolic area-length volumes and its
ejection fraction ``EF = 100 (EDV - ESV) / EDV``; with both views of a phase, the biplane method of
discs (Simpson): the long axis cut into 20 discs, each an ellipse whose two diameters are the LV's
widths perpendicular to the long axis at the disc's middle in the 2CH and in the 4CH view,
``V = pi / 4 * sum(a_i b_i) * L / 20`` with ``L`` the longer of the two long axes; and its EF.

The apex and annulus come from the keypoints GLS predicted, or from the
:func:`~glsmonai.keypoints.lv_apex_base` rule on the label map (the ends of the LV / left-atrium
contact when the map has a left atrium, else the ends of the LV's basal slab). Lengths are in the
physical plane with a known spacing (:mod:`glsmonai.measure.geometry`).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from glsmonai.keypoints import LV_ENDO, lv_apex_base
from glsmonai.measure.geometry import Spacing, chords, farthest, mask_outline, to_physical
from glsmonai.measure.units import column

__all__ = ["N_DISCS", "LVView", "lv_view_from_outline", "lv_measures", "lv_columns", "measure_lv",
           "biplane_volume", "camus_name", "patient_columns", "patient_measures"]

logger = logging.getLogger(__name__)

#: discs of the biplane method (the guidelines' 20)
N_DISCS = 20
_CAMUS = re.compile(r"^(patient\d+)_(2CH|4CH)_(ED|ES)$", re.IGNORECASE)


@dataclass
class LVView:
    """One apical view, in physical coordinates (mm, or pixels without a spacing).

    Attributes:
        area: LV area.
        outline: ``(M, 2)`` closed LV outline.
        apex: ``(2,)``.
        annulus: ``(2, 2)`` the two ends of the mitral annulus.
        discs: ``(N_DISCS,)`` LV width perpendicular to the long axis at the middle of each disc, from
            the base to the apex (NaN where that line misses the LV).
    """

    area: float
    outline: np.ndarray
    apex: np.ndarray
    annulus: np.ndarray
    discs: np.ndarray

    @property
    def base(self) -> np.ndarray:
        """Midpoint of the mitral annulus."""
        return self.annulus.mean(axis=0)

    @property
    def long_axis(self) -> float:
        return float(np.linalg.norm(self.apex - self.base))

    @property
    def annulus_width(self) -> float:
        return float(np.linalg.norm(self.annulus[1] - self.annulus[0]))

    def volume_area_length(self) -> float:
        """``8 A^2 / (3 pi L)`` (cubic units of the coordinates)."""
        return 8.0 * self.area**2 / (3.0 * math.pi * self.long_axis) if self.long_axis > 0 else float("nan")


def disc_diameters(outline: np.ndarray, apex: np.ndarray, base: np.ndarray, n: int = N_DISCS) -> np.ndarray:
    """``(n,)`` widths of the outline perpendicular to the base-apex axis at the middle of each of ``n``
    equal discs, base first (NaN where the perpendicular misses the outline)."""
    axis = apex - base
    length = np.linalg.norm(axis)
    if length == 0:
        return np.full(n, np.nan)
    unit = axis / length
    centres = base[None] + ((np.arange(n) + 0.5) / n)[:, None] * axis[None]
    across = np.repeat(np.array([[-unit[1], unit[0]]]), n, axis=0)
    lo, hi = chords(centres, across, outline)
    return hi - lo


def lv_view_from_outline(outline: np.ndarray, area: float, apex: np.ndarray | None, end_a: np.ndarray,
                         end_b: np.ndarray, tolerance: float = 1.0) -> LVView:
    """An :class:`LVView` from an outline, its area, the apex and the annulus ends (physical coordinates).

    ``apex`` ``None``: the outline point farthest from the annulus midpoint (the middle of the run
    within ``tolerance`` of the farthest, :func:`~glsmonai.measure.geometry.farthest`).
    """
    annulus = np.stack([np.asarray(end_a, float), np.asarray(end_b, float)])
    if apex is None:
        apex = farthest(outline, annulus.mean(axis=0), tolerance)
    apex = np.asarray(apex, dtype=np.float64)
    return LVView(area=float(area), outline=outline, apex=apex, annulus=annulus,
                  discs=disc_diameters(outline, apex, annulus.mean(axis=0)))


def _volume(value: float, physical: bool) -> float:
    """Cubic coordinate units to the table's volume unit: mm^3 -> ml; pixels stay cubic pixels."""
    return value / 1000.0 if physical else value


def lv_columns(physical: bool) -> list[str]:
    """The measure columns of :func:`lv_measures`, in order."""
    return [column("lv_area", "area", physical), column("lv_long_axis", "length", physical),
            column("lv_annulus_width", "length", physical), column("lv_volume_al", "volume", physical)]


def lv_measures(view: LVView, physical: bool) -> dict[str, float]:
    """``{column: value}`` of one view: area, long axis, annulus width, area-length volume."""
    values = [view.area, view.long_axis, view.annulus_width, _volume(view.volume_area_length(), physical)]
    return dict(zip(lv_columns(physical), values))


def _lv_mask(label: np.ndarray, label_value: int | None) -> np.ndarray:
    """The LV: ``label == label_value`` (default 1) when present, else any foreground; holes filled,
    largest 4-connected component."""
    value = LV_ENDO if label_value is None else label_value
    mask = label == value if (label == value).any() else label > 0
    labels, count = ndimage.label(ndimage.binary_fill_holes(mask))
    if count == 0:
        raise ValueError("the mask has no LV pixels")
    return labels == (int(np.argmax(np.bincount(labels.ravel())[1:])) + 1)


def measure_lv(label: np.ndarray, points: np.ndarray | None = None, spacing: Spacing = None,
               label_value: int | None = None) -> tuple[dict[str, float], LVView]:
    """LV measures of one view.

    Args:
        label: ``(rows, cols)`` label map (CAMUS values: 1 LV, 3 left atrium) or a binary LV mask.
        points: ``(3, 2)`` ``[row, col]`` of the apex and the two annulus ends (e.g. the keypoints GLS
            predicted); ``None``: the :func:`~glsmonai.keypoints.lv_apex_base` rule on ``label``.
        spacing: pixel size ``(row mm, col mm)``, or ``None`` (pixels).
        label_value: the LV's value (default 1; any foreground when the map has none).

    Returns:
        ``({column: value}, view)``; the view feeds :func:`patient_measures`.

    Raises:
        ValueError: no LV pixels, or ``points`` not three points.
    """
    label = np.asarray(label)
    lv = _lv_mask(label, label_value)
    if points is None:
        # the rule reads CAMUS values (1 LV, 3 left atrium); an LV of another value goes in as a binary mask
        points = lv_apex_base(label if label_value in (None, LV_ENDO) else lv.astype(np.uint8))
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (3, 2) or not np.isfinite(points).all():
        raise ValueError(f"expected the apex and two annulus ends [row, col], got {points.tolist()}")
    pixel_area = 1.0 if spacing is None else float(spacing[0] * spacing[1])
    outline = to_physical(mask_outline(lv), spacing)
    apex, end_a, end_b = to_physical(points, spacing)
    view = lv_view_from_outline(outline, float(lv.sum()) * pixel_area, apex, end_a, end_b)
    return lv_measures(view, spacing is not None), view


def biplane_volume(view_2ch: LVView, view_4ch: LVView) -> float:
    """Biplane method of discs: ``pi / 4 * sum(a_i b_i) * L / N_DISCS``, ``L`` the longer long axis
    (cubic units of the coordinates; NaN when a disc's width is unknown)."""
    length = max(view_2ch.long_axis, view_4ch.long_axis)
    return float(math.pi / 4.0 * np.sum(view_2ch.discs * view_4ch.discs) * length / N_DISCS)


def camus_name(stem: str) -> tuple[str, str, str] | None:
    """``patient0001_2CH_ED`` -> ``("patient0001", "2CH", "ED")``; ``None`` for other names."""
    match = _CAMUS.match(stem)
    return None if match is None else (match.group(1), match.group(2).upper(), match.group(3).upper())


def _ef(edv: float, esv: float) -> float:
    return 100.0 * (edv - esv) / edv if edv > 0 else float("nan")


def patient_columns(physical: bool) -> list[str]:
    """The measure columns :func:`patient_measures` can give, in order."""
    names = []
    for v in ("2ch", "4ch", "biplane"):
        names += [column(f"lv_edv_{v}", "volume", physical), column(f"lv_esv_{v}", "volume", physical),
                  f"lv_ef_{v}_pct"]
    return names


def patient_measures(views: dict[str, tuple[LVView, bool]]) -> list[dict]:
    """Per-patient volumes and ejection fractions of the CAMUS-named views among ``views``.

    Args:
        views: ``{scan stem: (view, physical)}``; stems that are not CAMUS names are ignored.

    Returns:
        One row per patient with at least one named frame: ``patient``, ``units`` and, where the
        frames exist, ``lv_edv_2ch`` / ``lv_esv_2ch`` (area-length, ml or px3), ``lv_ef_2ch_pct`` (both
        frames), the same for 4CH, and ``lv_edv_biplane`` / ``lv_esv_biplane`` (both views of that
        phase) with ``lv_ef_biplane_pct``. A patient whose frames mix mm and pixels is skipped (logged).
    """
    by_patient: dict[str, dict[tuple[str, str], tuple[LVView, bool]]] = {}
    for stem, item in views.items():
        name = camus_name(stem)
        if name is not None:
            by_patient.setdefault(name[0], {})[name[1:]] = item
    rows = []
    for patient in sorted(by_patient):
        frames = by_patient[patient]
        kinds = {physical for _, physical in frames.values()}
        if len(kinds) > 1:
            logger.warning("%s: some frames have a pixel spacing and some have none: no patient measures", patient)
            continue
        physical = kinds.pop()
        row: dict = {"patient": patient, "units": "mm" if physical else "px"}
        volume = {key: _volume(view.volume_area_length(), physical) for key, (view, _) in frames.items()}
        for v in ("2CH", "4CH"):
            for phase, key in (("ED", "edv"), ("ES", "esv")):
                if (v, phase) in volume:
                    row[column(f"lv_{key}_{v.lower()}", "volume", physical)] = volume[(v, phase)]
            if (v, "ED") in volume and (v, "ES") in volume:
                row[f"lv_ef_{v.lower()}_pct"] = _ef(volume[(v, "ED")], volume[(v, "ES")])
        biplane = {}
        for phase, key in (("ED", "edv"), ("ES", "esv")):
            if ("2CH", phase) in frames and ("4CH", phase) in frames:
                biplane[phase] = _volume(biplane_volume(frames[("2CH", phase)][0], frames[("4CH", phase)][0]), physical)
                row[column(f"lv_{key}_biplane", "volume", physical)] = biplane[phase]
        if len(biplane) == 2:
            row["lv_ef_biplane_pct"] = _ef(biplane["ED"], biplane["ES"])
        order = ["patient", "units"] + patient_columns(physical)
        rows.append({key: row[key] for key in order if key in row})
    return rows
