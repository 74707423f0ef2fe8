"""Bland-Altman statistics on literal numbers worked out by hand, and the plot file."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from glsmonai.measure.agreement import AGREEMENT_COLUMNS, agreement_stats, agreement_table, bland_altman_plot

PRED = [1.0, 2.0, 3.0, 4.0]
REF = [1.5, 2.0, 2.5, 5.0]
# differences -0.5, 0, 0.5, -1: mean -0.25; squared deviations 0.0625 + 0.0625 + 0.5625 + 0.5625 = 1.25,
# sample variance 1.25 / 3; absolute differences sum to 2
SD = math.sqrt(1.25 / 3)
# Pearson: deviations -1.5 -0.5 0.5 1.5 and -1.25 -0.75 -0.25 2.25; products sum 5.5, squares 5 and 7.25
R = 5.5 / math.sqrt(5 * 7.25)


def test_statistics_of_literal_pairs():
    s = agreement_stats(np.array(PRED), np.array(REF))
    assert s["n"] == 4
    assert s["mean_prediction"] == pytest.approx(2.5) and s["mean_reference"] == pytest.approx(2.75)
    assert s["bias"] == pytest.approx(-0.25)
    assert s["sd"] == pytest.approx(SD)
    assert s["loa_lower"] == pytest.approx(-0.25 - 1.96 * SD)
    assert s["loa_upper"] == pytest.approx(-0.25 + 1.96 * SD)
    assert s["mae"] == pytest.approx(0.5)
    assert s["pearson_r"] == pytest.approx(R)


def test_pairs_with_a_missing_value_are_left_out():
    s = agreement_stats(np.array(PRED + [np.nan, 7.0]), np.array(REF + [3.0, np.nan]))
    assert s["n"] == 4 and s["bias"] == pytest.approx(-0.25)


def test_one_pair_has_no_spread_and_none_has_nothing():
    one = agreement_stats(np.array([2.0]), np.array([1.0]))
    assert one["n"] == 1 and one["bias"] == 1.0 and one["mae"] == 1.0
    assert math.isnan(one["sd"]) and math.isnan(one["pearson_r"])
    none = agreement_stats(np.array([np.nan]), np.array([1.0]))
    assert none["n"] == 0 and math.isnan(none["bias"])


def test_table_matches_cases_by_name_and_skips_measures_on_one_side():
    pred = pd.DataFrame({"image": ["d", "a", "b", "c"], "x_mm": [4.0, 1.0, 2.0, 3.0], "only_pred_px": 1.0})
    ref = pd.DataFrame({"image": ["a", "b", "c", "d", "e"], "x_mm": REF + [9.0]})
    table = agreement_table(pred, ref, ["x_mm", "only_pred_px"])
    assert list(table.columns) == AGREEMENT_COLUMNS
    (row,) = table.to_dict("records")
    assert row["measure"] == "x_mm" and row["unit"] == "mm" and row["level"] == "scan"
    assert row["n"] == 4 and row["bias"] == pytest.approx(-0.25) and row["pearson_r"] == pytest.approx(R)


def test_plot_is_a_png_with_the_points_and_lines(tmp_path):
    path = bland_altman_plot(tmp_path / "plots" / "x_mm.png", np.array(PRED), np.array(REF), "x_mm", size=(400, 300))
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (300, 400, 3)
    blue = (image[..., 2] > 150) & (image[..., 0] < 60)  # the bias line
    red = (image[..., 0] > 150) & (image[..., 1] < 80) & (image[..., 2] < 80)  # the limits of agreement
    assert blue.sum() > 100 and red.sum() > 100
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "temporary file left behind"
