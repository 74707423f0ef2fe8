"""LV measures on hand-made ellipses whose area, axes, annulus and volumes are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glsmonai.measure.lv import N_DISCS, biplane_volume, camus_name, measure_lv, patient_measures
from glsmonai.measure.table import measure_columns
from tests.measure.shapes import ellipse


def test_ellipse_area_axis_annulus_and_area_length_volume():
    a, b = 50.0, 25.0  # semi-axes: along the long axis (rows), across it (cols)
    centre = (70.0, 60.0)
    mask = ellipse((130, 120), centre, a, b).astype(np.uint8)
    # apex at the top of the ellipse, annulus across its middle
    points = np.array([[centre[0] - a, centre[1]], [centre[0], centre[1] - b], [centre[0], centre[1] + b]])
    m, view = measure_lv(mask, points)
    assert list(m) == measure_columns("lv", physical=False)
    assert m["lv_area_px2"] == pytest.approx(math.pi * a * b, rel=0.01)
    assert m["lv_long_axis_px"] == pytest.approx(a)
    assert m["lv_annulus_width_px"] == pytest.approx(2 * b)
    assert m["lv_volume_al_px3"] == pytest.approx(8 * (math.pi * a * b) ** 2 / (3 * math.pi * a), rel=0.02)
    # the discs span the long axis, widest at the annulus (the ellipse's middle), narrowest near the apex
    assert len(view.discs) == N_DISCS and view.discs[0] == pytest.approx(2 * b, abs=1.0)
    assert np.all(np.diff(view.discs) < 0.01) and view.discs[-1] < view.discs[0] / 2


def test_rule_points_on_a_camus_label_map():
    # LV (1) half-ellipse over a left atrium (3): the annulus is the LV / LA contact
    a, b = 50.0, 20.0
    lv = ellipse((140, 100), (79.5, 50.0), a, b, below=79.5)
    label = lv.astype(np.uint8)
    label[80:110, 25:76] = 3
    m, view = measure_lv(label)
    # the rule takes pixel centres (the LV's last rows), about a pixel inside the outline at each end
    assert m["lv_long_axis_px"] == pytest.approx(a, abs=2.0)
    # the rule's annulus ends are the means of the contact pixels within 2 px of each end: one pixel
    # inwards of the first and last contact pixel
    contact = np.flatnonzero(lv[79])
    assert m["lv_annulus_width_px"] == pytest.approx(contact[-1] - contact[0] - 2)
    assert m["lv_annulus_width_px"] == pytest.approx(2 * b, abs=5.0)
    assert view.apex[0] == pytest.approx(79.5 - a, abs=1.5)  # the top pixels lie below the outline


def _half_ellipse_view(a: float, b: float, spacing=None):
    """A half ellipse (apex at the top, flat base = annulus) and its measure; the apex and annulus given."""
    centre = (79.5, 60.0)
    mask = ellipse((90, 120), centre, a, b, below=centre[0])
    points = np.array([[centre[0] - a, centre[1]], [centre[0], centre[1] - b], [centre[0], centre[1] + b]])
    return measure_lv(mask.astype(np.uint8), points, spacing)


def test_biplane_discs_of_half_ellipses_give_the_half_ellipsoid():
    a, b_2ch, b_4ch = 50.0, 20.0, 25.0
    _, view_2ch = _half_ellipse_view(a, b_2ch)
    _, view_4ch = _half_ellipse_view(a, b_4ch)
    # half an ellipsoid with semi-axes a, b_2ch, b_4ch
    assert biplane_volume(view_2ch, view_4ch) == pytest.approx(2 / 3 * math.pi * a * b_2ch * b_4ch, rel=0.02)


def test_patient_volumes_and_ejection_fractions_from_camus_names():
    ed, es = (50.0, 20.0, 25.0), (44.0, 16.0, 20.0)  # long semi-axis, 2CH and 4CH half-widths
    views = {}
    for phase, (a, b2, b4) in (("ED", ed), ("ES", es)):
        views[f"patient0007_2CH_{phase}"] = (_half_ellipse_view(a, b2)[1], False)
        views[f"patient0007_4CH_{phase}"] = (_half_ellipse_view(a, b4)[1], False)
    views["other_scan"] = views["patient0007_2CH_ED"]  # not a CAMUS name: ignored
    (row,) = patient_measures(views)
    assert row["patient"] == "patient0007" and row["units"] == "px"
    # area-length volume of a half ellipse (area pi a b / 2, length a) is the half prolate ellipsoid 2/3 pi a b^2
    for view, k in (("2ch", 1), ("4ch", 2)):
        assert row[f"lv_edv_{view}_px3"] == pytest.approx(2 / 3 * math.pi * ed[0] * ed[k] ** 2, rel=0.03)
        ef = 100 * (1 - (es[0] * es[k] ** 2) / (ed[0] * ed[k] ** 2))
        assert row[f"lv_ef_{view}_pct"] == pytest.approx(ef, abs=1.5)
    ef_biplane = 100 * (1 - (es[0] * es[1] * es[2]) / (ed[0] * ed[1] * ed[2]))
    assert row["lv_ef_biplane_pct"] == pytest.approx(ef_biplane, abs=1.5)
    assert row["lv_edv_biplane_px3"] == pytest.approx(2 / 3 * math.pi * ed[0] * ed[1] * ed[2], rel=0.03)


def test_one_phase_gives_volumes_but_no_ejection_fraction():
    views = {"patient0001_4CH_ED": (_half_ellipse_view(50, 25)[1], False)}
    (row,) = patient_measures(views)
    assert "lv_edv_4ch_px3" in row and "lv_ef_4ch_pct" not in row and "lv_edv_biplane_px3" not in row


def test_anisotropic_spacing_measures_the_physical_ellipse():
    spacing = (0.3, 0.2)  # mm per row, per col
    a, b = 15.0, 7.5  # mm
    centre = (21.0, 12.0)  # mm
    mask = ellipse((130, 120), centre, a, b, spacing).astype(np.uint8)
    to_px = np.array(spacing)
    points = np.array([[centre[0] - a, centre[1]], [centre[0], centre[1] - b], [centre[0], centre[1] + b]]) / to_px
    mm, view = measure_lv(mask, points, spacing)
    px, _ = measure_lv(mask, points, None)
    assert list(mm) == measure_columns("lv", physical=True)
    assert mm["lv_area_mm2"] == pytest.approx(math.pi * a * b, rel=0.02)
    assert mm["lv_long_axis_mm"] == pytest.approx(a)
    assert mm["lv_annulus_width_mm"] == pytest.approx(2 * b)
    assert mm["lv_volume_al_ml"] == pytest.approx(8 * mm["lv_area_mm2"] ** 2 / (3 * math.pi * a) / 1000)
    # the same mask in pixels: the long axis is a / 0.3 rows, the annulus 2 b / 0.2 columns
    assert px["lv_long_axis_px"] == pytest.approx(a / spacing[0])
    assert px["lv_annulus_width_px"] == pytest.approx(2 * b / spacing[1])
    assert px["lv_area_px2"] * spacing[0] * spacing[1] == pytest.approx(mm["lv_area_mm2"])
    # the discs are cut across the long axis in mm: the widest is the annulus, 2 b
    assert view.discs[0] == pytest.approx(2 * b, abs=0.4)


def test_camus_names():
    assert camus_name("patient0001_2CH_ED") == ("patient0001", "2CH", "ED")
    assert camus_name("patient0450_4ch_es") == ("patient0450", "4CH", "ES")
    assert camus_name("patient0001_2CH_ED_gt") is None
    assert camus_name("echo_s0_0001") is None


def test_empty_mask_is_an_error():
    with pytest.raises(ValueError, match="no LV"):
        measure_lv(np.zeros((20, 20), np.uint8))
