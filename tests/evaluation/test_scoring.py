"""The one scoring path: score_case and summarise_cases on hand-made cases with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from glsmonai.evaluation.metrics import hd95
from glsmonai.evaluation.scoring import score_case, summarise_cases


def square(col: int, shape=(20, 20)) -> np.ndarray:
    """10 x 10 square at rows 5-14, columns ``col`` to ``col + 9``."""
    mask = np.zeros(shape, bool)
    mask[5:15, col : col + 10] = True
    return mask


def test_shifted_square():
    scores = score_case(square(3), square(5))  # shifted by 2 columns: 80 pixels shared
    assert set(scores) == {"dice", "iou", "hd95"}
    assert scores["dice"] == pytest.approx(2 * 80 / 200)
    assert scores["iou"] == pytest.approx(80 / 120)
    assert scores["hd95"] == 2.0  # MONAI's compute_hausdorff_distance(percentile=95) gives 2.0 here
    assert set(score_case(square(3), square(5), with_hd95=False)) == {"dice", "iou"}


def test_empty_masks():
    empty = np.zeros((20, 20), bool)
    both = score_case(empty, empty)
    assert math.isnan(both["dice"]) and math.isnan(both["iou"]) and math.isnan(both["hd95"])
    for pred, ref in ((empty, square(5)), (square(5), empty)):
        one = score_case(pred, ref)
        assert one["dice"] == 0.0 and one["iou"] == 0.0 and math.isnan(one["hd95"])


def test_key_region_by_hand():
    pred, ref = square(3), square(5)  # reference rows 5-14, cols 5-14; prediction cols 3-12
    # (4, 4) windows: at [5, 5] rows 3-6, cols 3-6: reference 2 x 2 = 4 px, prediction 2 x 4 = 8, shared 4;
    # at [14, 14] rows 12-15, cols 12-15: reference 3 x 3 = 9, prediction 3 x 1 = 3, shared 3
    scores = score_case(pred, ref, ref_points=np.array([[5, 5], [14, 14]]), window=(4, 4))
    assert scores["key_dice"] == pytest.approx(2 * 7 / (13 + 11))
    assert scores["key_iou"] == pytest.approx(7 / (13 + 11 - 7))
    assert "kp_errors" not in scores


def test_keypoint_errors_euclidean():
    ref_points = np.array([[5.0, 5.0], [14.0, 14.0]])
    scores = score_case(square(3), square(5), ref_points, np.array([[8.0, 9.0], [14.0, 14.0]]))
    np.testing.assert_array_equal(scores["kp_errors"], [5.0, 0.0])
    assert "key_dice" not in scores  # no window
    scores = score_case(square(3), square(5), found_points=ref_points)
    assert "kp_errors" not in scores  # no reference keypoints


def test_window_points_place_the_windows_errors_use_ref_points():
    ref_points, found = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])
    scores = score_case(square(3), square(5), ref_points, found, (4, 4), window_points=np.array([[5, 5]]))
    assert scores["key_dice"] == pytest.approx(2 * 4 / 12)  # the [5, 5] window of the test above
    np.testing.assert_array_equal(scores["kp_errors"], [5.0])


def test_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(4, 4\).*\(4, 5\)"):
        score_case(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"\(4, 4\).*\(4, 5\)"):
        hd95(np.ones((4, 4)), np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(1, 2\).*\(2, 2\)"):
        score_case(square(3), square(5), np.zeros((2, 2)), np.zeros((1, 2)))


def test_summarise_cases():
    per_case = pd.DataFrame({"image": ["a", "b", "c"], "dice": [0.5, np.nan, 1.0], "iou": [0.25, 0.0, 1.0]})
    summary = summarise_cases(per_case, ["dice", "iou"])
    assert list(summary.columns) == ["metric", "n", "mean", "std", "median", "min", "max"]
    dice = summary.set_index("metric").loc["dice"]
    assert dice["n"] == 2 and dice["mean"] == 0.75 and dice["median"] == 0.75
    assert dice["std"] == pytest.approx(math.sqrt(0.125)) and dice["min"] == 0.5 and dice["max"] == 1.0
    assert list(summary["metric"]) == ["dice", "iou"]
    assert summary.set_index("metric").loc["iou", "n"] == 3


def test_summarise_keypoints_one_window_or_one_per_case():
    per_case = pd.DataFrame({"dice": [1.0]})
    errors = np.array([3.0, 5.0, np.nan, 1.0])
    one = summarise_cases(per_case, ["dice"], errors, (8, 8)).set_index("metric")
    kp = one.loc["kp_error"]
    assert kp["n"] == 3 and kp["mean"] == 3.0 and kp["median"] == 3.0 and kp["min"] == 1.0 and kp["max"] == 5.0
    assert kp["std"] == 2.0
    assert one.loc["kp_missed", "n"] == 4 and one.loc["kp_missed", "mean"] == 0.5  # 5 > 4 and the NaN
    # per keypoint's case: half windows 4, 6, 4, 1; only the NaN is missed (1 is not above 1)
    each = summarise_cases(per_case, ["dice"], errors, np.array([[8, 8], [12, 12], [8, 8], [2, 4]]))
    assert each.set_index("metric").loc["kp_missed", "mean"] == 0.25
    assert list(summarise_cases(per_case, ["dice"], errors)["metric"]) == ["dice", "kp_error"]
    assert list(summarise_cases(per_case, ["dice"], np.zeros(0), (8, 8))["metric"]) == ["dice"]
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        summarise_cases(per_case, ["dice"], errors, np.array([[8, 8], [12, 12]]))
