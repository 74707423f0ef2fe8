"""Column names that carry their unit: millimetres where the pixel spacing is known, pixels otherwise."""

from __future__ import annotations

from glsmonai.data.io import Geometry
from glsmonai.measure.geometry import Spacing

__all__ = ["KINDS", "column", "unit_of", "spacing_of"]


#: kind of a measure -> (suffix with a known spacing, suffix without)
KINDS: dict[str, tuple[str, str]] = {
    "length": ("mm", "px"),
    "area": ("mm2", "px2"),
    "volume": ("ml", "px3"),  # 1 ml = 1000 mm^3
    "percent": ("pct", "pct"),
}


def column(base: str, kind: str, physical: bool) -> str:
    """``iris_area_left`` + ``area`` -> ``iris_area_left_mm2`` (with a spacing) or ``iris_area_left_px2``."""
    return f"{base}_{KINDS[kind][0 if physical else 1]}"


def unit_of(name: str) -> str:
    """The unit a column name ends with (``mm``, ``px2``, ``ml``, ...; ``""`` when none)."""
    suffix = name.rsplit("_", 1)[-1]
    return suffix if any(suffix in pair for pair in KINDS.values()) else ""


def spacing_of(geometry: Geometry, override: Spacing = None) -> Spacing:
    """The pixel size ``(row mm, col mm)`` of a scan, or ``None`` when it is unknown.

    ``override`` (``--spacing``) wins. Otherwise the file's spacing is used unless every in-plane
    component is exactly 1: formats without a spacing (PNG, JPEG, BMP) read as 1, and the CAMUS subset
    and the phantoms store 1 for "not known", so a spacing of 1 x 1 counts as unknown (pass it with
    ``--spacing 1 1`` to mean 1 mm). SimpleITK's spacing is ``(x = col, y = row[, z])``.
    """
    if override is not None:
        return float(override[0]), float(override[1])
    return geometry.pixel_size_mm()
