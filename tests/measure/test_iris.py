"""Iris measures on hand-made masks whose answers are known: straight bands, bowed bands, tilted bands
drawn on anisotropic pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glsmonai.measure.iris import measure_iris
from glsmonai.measure.table import measure_columns
from tests.measure.shapes import arc_band, capsule


def _two_bands(thick: int, length: int, gap: int, top: int = 10, left: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Two horizontal rectangles ``thick`` rows x ``length`` cols, ``gap`` cols apart; the roots at the
    centres of their outer end columns."""
    mask = np.zeros((2 * top + thick, 2 * left + 2 * length + gap), np.uint8)
    mask[top : top + thick, left : left + length] = 1
    mask[top : top + thick, left + length + gap : left + 2 * length + gap] = 1
    mid = top + (thick - 1) / 2
    roots = np.array([[mid, left], [mid, left + 2 * length + gap - 1]], float)
    return mask, roots


def test_rectangle_bands_in_pixels():
    thick, length, gap = 8, 120, 20
    mask, roots = _two_bands(thick, length, gap)
    m = measure_iris(mask, roots)
    assert list(m) == measure_columns("iris", physical=False)
    for side in ("left", "right"):
        assert m[f"iris_area_{side}_px2"] == thick * length
        assert m[f"iris_thickness_max_{side}_px"] == pytest.approx(thick, abs=0.05)
        # from the root (centre of the outer end column) to the inner end's boundary, half a pixel past
        # its last column
        assert m[f"iris_length_{side}_px"] == pytest.approx(length - 0.5, abs=0.3)
        assert m[f"iris_curvature_{side}_px"] == pytest.approx(0.0, abs=0.3)
    # the pupillary margins are the inner ends' boundaries, gap columns apart
    assert m["pupil_diameter_px"] == pytest.approx(gap, abs=0.3)
    assert m["iris_root_distance_px"] == pytest.approx(2 * length + gap - 1)


def test_roots_found_by_the_rule_without_keypoints():
    mask, roots = _two_bands(8, 120, 20)
    by_rule = measure_iris(mask)
    given = measure_iris(mask, roots)
    # iris_roots takes the mean of the pixels within 2 px of each outer end: 1 px inwards
    assert by_rule["iris_root_distance_px"] == pytest.approx(given["iris_root_distance_px"] - 2, abs=0.01)
    assert by_rule["iris_length_left_px"] == pytest.approx(given["iris_length_left_px"] - 1, abs=0.3)


def test_thickness_at_750_and_2000_um_with_a_spacing():
    # 8 rows of 0.02 mm = 0.16 mm thick, 300 cols of 0.01 mm = 3 mm long
    spacing = (0.02, 0.01)
    mask, roots = _two_bands(8, 300, 20)
    m = measure_iris(mask, roots, spacing)
    assert list(m) == measure_columns("iris", physical=True)
    for side in ("left", "right"):
        assert m[f"iris_thickness_750um_{side}_mm"] == pytest.approx(0.16, abs=0.002)
        assert m[f"iris_thickness_2000um_{side}_mm"] == pytest.approx(0.16, abs=0.002)
        assert m[f"iris_area_{side}_mm2"] == pytest.approx(8 * 300 * 0.02 * 0.01)
        assert m[f"iris_length_{side}_mm"] == pytest.approx(299.5 * 0.01, abs=0.003)


def test_thickness_past_the_margin_is_nan():
    mask, roots = _two_bands(8, 150, 20)
    m = measure_iris(mask, roots, (0.01, 0.01))  # 1.5 mm long: 2000 um is past the margin
    assert np.isnan(m["iris_thickness_2000um_left_mm"]) and np.isfinite(m["iris_thickness_750um_left_mm"])


def test_bowed_band_curvature_length_and_thickness():
    # centre line: an arc of radius R over +-theta bowing upwards, band thickness t, round ends
    radius, theta, t = 150.0, 0.4, 10.0
    shape = (50, 280)
    centres = (170.0, 70.0), (170.0, 210.0)
    mask = arc_band(shape, centres[0], radius, theta, t) | arc_band(shape, centres[1], radius, theta, t)
    roots = []
    for (r0, c0), sign in zip(centres, (-1, 1)):  # the periphery: left end of the left half, right end of the right
        outer = np.array([r0 - radius * math.cos(theta), c0 + sign * radius * math.sin(theta)])
        inner = np.array([r0 - radius * math.cos(theta), c0 - sign * radius * math.sin(theta)])
        roots.append(outer + (t / 2) * (outer - inner) / np.linalg.norm(outer - inner))  # the end cap's tip
    m = measure_iris(mask, np.array(roots))
    # the line from root to margin is the chord of the centre arc; the posterior (lower) surface, of
    # radius R - t/2, comes R - t/2 - R cos(theta) in front of it
    curvature = radius - t / 2 - radius * math.cos(theta)
    for side in ("left", "right"):
        assert m[f"iris_curvature_{side}_px"] == pytest.approx(curvature, abs=0.5)
        assert m[f"iris_thickness_max_{side}_px"] == pytest.approx(t, abs=0.5)
        assert m[f"iris_length_{side}_px"] == pytest.approx(2 * theta * radius + t, abs=1.5)


def test_anisotropic_pixels_measure_the_physical_shape():
    # two capsules at 30 degrees in mm (0.2 mm thick, 2.4 mm between cap centres), on 0.02 x 0.01 mm pixels
    spacing = (0.02, 0.01)
    shape = (90, 700)
    direction = np.array([math.sin(math.radians(30)), math.cos(math.radians(30))])
    a_left = np.array([0.3, 0.3])
    b_left = a_left + 2.4 * direction
    a_right = np.array([0.3, 6.7])
    b_right = a_right + 2.4 * direction * np.array([1, -1])
    mask = capsule(shape, a_left, b_left, 0.1, spacing) | capsule(shape, a_right, b_right, 0.1, spacing)
    tips = [a_left - 0.1 * direction, a_right - 0.1 * direction * np.array([1, -1])]
    roots = np.array(tips) / np.array(spacing)  # [row, col] pixels
    mm = measure_iris(mask, roots, spacing)
    px = measure_iris(mask, roots, None)
    for side in ("left", "right"):
        assert mm[f"iris_thickness_max_{side}_mm"] == pytest.approx(0.2, abs=0.02)  # one row pixel
        assert mm[f"iris_length_{side}_mm"] == pytest.approx(2.6, abs=0.03)  # tip to tip
        assert mm[f"iris_area_{side}_mm2"] == pytest.approx(mask.sum() / 2 * 0.0002, rel=0.02)
        assert mm[f"iris_area_{side}_mm2"] == pytest.approx(px[f"iris_area_{side}_px2"] * 0.02 * 0.01)
        # in pixels the band is slanted otherwise: its thickness is not the mm one divided by either spacing
        assert px[f"iris_thickness_max_{side}_px"] != pytest.approx(0.2 / 0.02, rel=0.05)
        assert px[f"iris_thickness_max_{side}_px"] != pytest.approx(0.2 / 0.01, rel=0.05)
    assert mm["iris_root_distance_mm"] == pytest.approx(np.linalg.norm(tips[0] - tips[1]))


def test_one_half_only_is_an_error():
    mask, _ = _two_bands(8, 120, 20)
    mask[:, mask.shape[1] // 2 :] = 0
    with pytest.raises(ValueError, match="1 connected component"):
        measure_iris(mask)
