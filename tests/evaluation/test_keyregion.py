"""Key-region Dice/IoU and keypoint errors on hand-made masks with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glsmonai.evaluation.keyregion import key_region_dice_iou, keypoint_errors, summarise_keypoint_errors, window_mask


def test_window_convention():
    # window of (4, 4) at [10, 10]: rows/cols [10 - 2, 10 - 2 + 4) = [8, 12)
    mask = window_mask((20, 20), np.array([[10, 10]]), (4, 4))
    expected = np.zeros((20, 20), bool)
    expected[8:12, 8:12] = True
    np.testing.assert_array_equal(mask, expected)
    # odd size (3, 5) at [5.2, 6.7] -> rounded [5, 7]: rows [4, 7), cols [5, 10)
    mask = window_mask((20, 20), np.array([[5.2, 6.7]]), (3, 5))
    expected = np.zeros((20, 20), bool)
    expected[4:7, 5:10] = True
    np.testing.assert_array_equal(mask, expected)


def test_window_clipped_at_borders():
    mask = window_mask((20, 20), np.array([[0, 19], [30, 30]]), (4, 6))
    expected = np.zeros((20, 20), bool)
    expected[0:2, 16:20] = True  # rows [-2, 2), cols [16, 22) clipped; the second window lies outside
    np.testing.assert_array_equal(mask, expected)
    assert mask.sum() == 8


def test_window_union_of_overlapping():
    mask = window_mask((20, 20), np.array([[10, 10], [11, 12]]), (4, 4))
    # [8, 12) x [8, 12) united with [9, 13) x [10, 14): 16 + 16 - 3 * 2 overlap = 26 pixels
    assert mask.sum() == 26
    assert mask[8:12, 8:12].all() and mask[9:13, 10:14].all()
    assert not mask[12, 9] and not mask[8, 13]


def test_window_empty_keypoints_and_bad_input():
    assert not window_mask((5, 5), np.zeros((0, 2)), (2, 2)).any()
    with pytest.raises(ValueError, match="finite"):
        window_mask((5, 5), np.array([[np.nan, 1.0]]), (2, 2))
    with pytest.raises(ValueError, match="positive"):
        window_mask((5, 5), np.array([[1, 1]]), (0, 2))
    with pytest.raises(ValueError, match=r"\(K, 2\)"):
        window_mask((5, 5), np.zeros((2, 3)), (2, 2))


def test_key_region_dice_hand_computed():
    ref = np.zeros((20, 20), np.uint8)
    ref[8:12, 8:12] = 1  # 16 px, all inside the window [8, 12) x [8, 12)
    pred = np.zeros((20, 20), np.uint8)
    pred[8:12, 10:16] = 1  # 8 px in the window (cols 10, 11), 8 of them overlapping ref
    pred[0:3, 0:3] = 1  # outside the window: ignored
    dice, iou = key_region_dice_iou(pred, ref, np.array([[10, 10]]), (4, 4))
    assert dice == pytest.approx(2 * 8 / (8 + 16))
    assert iou == pytest.approx(8 / 16)


def test_key_region_union_and_clipping():
    ref = np.zeros((20, 20), np.uint8)
    ref[0:2, :] = 1
    pred = np.zeros((20, 20), np.uint8)
    pred[0:1, :] = 1
    # windows [0, 2) x [0, 2) and [0, 2) x [17, 20) (both clipped): ref 4 + 6 px, pred 2 + 3 px, overlap 5
    dice, iou = key_region_dice_iou(pred, ref, np.array([[0, 0], [0, 19]]), (4, 4))
    assert dice == pytest.approx(2 * 5 / 15)
    assert iou == pytest.approx(5 / 10)


def test_key_region_nan_when_both_empty_in_windows():
    ref = np.zeros((20, 20), np.uint8)
    ref[15:18, 15:18] = 1
    pred = ref.copy()
    dice, iou = key_region_dice_iou(pred, ref, np.array([[3, 3]]), (4, 4))
    assert math.isnan(dice) and math.isnan(iou)
    # only the prediction inside: 0, not NaN
    pred[3, 3] = 1
    assert key_region_dice_iou(pred, ref, np.array([[3, 3]]), (4, 4)) == (0.0, 0.0)


def test_key_region_shape_mismatch():
    with pytest.raises(ValueError, match="differs from reference"):
        key_region_dice_iou(np.zeros((4, 4)), np.zeros((4, 5)), np.array([[1, 1]]), (2, 2))


def test_keypoint_errors_and_summary():
    errors = keypoint_errors(np.array([[0, 0], [3, 4]]), np.array([[0, 0], [0, 0]]))
    np.testing.assert_allclose(errors, [0.0, 5.0])
    with pytest.raises(ValueError, match="differ in shape"):
        keypoint_errors(np.zeros((2, 2)), np.zeros((3, 2)))

    table = np.array([[0.0, 5.0], [1.0, 10.0]])  # window (8, 12): missed when > 4
    summary = summarise_keypoint_errors(table, (8, 12))
    assert summary["mean"] == pytest.approx(4.0)
    assert summary["median"] == pytest.approx(3.0)
    assert summary["max"] == pytest.approx(10.0)
    assert summary["missed_rate"] == pytest.approx(0.5)
    assert summary["n"] == 4 and summary["n_undefined"] == 0


def test_summary_nan_counts_as_missed():
    summary = summarise_keypoint_errors(np.array([[1.0, np.nan]]), (10, 10))
    assert summary["mean"] == pytest.approx(1.0) and summary["max"] == pytest.approx(1.0)
    assert summary["missed_rate"] == pytest.approx(0.5) and summary["n_undefined"] == 1
    empty = summarise_keypoint_errors(np.zeros((0, 2)), (10, 10))
    assert empty["n"] == 0 and math.isnan(empty["mean"]) and math.isnan(empty["missed_rate"])


def test_summary_with_one_window_per_error():
    # half windows 4, 1.5 (smaller side 3), 6: 5 > 4 missed, 1 < 1.5 kept, 7 > 6 missed
    summary = summarise_keypoint_errors(np.array([5.0, 1.0, 7.0]), np.array([[8, 8], [3, 10], [12, 12]]))
    assert summary["missed_rate"] == pytest.approx(2 / 3) and summary["mean"] == pytest.approx(13 / 3)
    with pytest.raises(ValueError, match="one window per error"):
        summarise_keypoint_errors(np.array([5.0, 1.0, 7.0]), np.array([[8, 8], [3, 10]]))
